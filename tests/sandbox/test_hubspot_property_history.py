"""HubSpot property history in the sandbox (`propertiesWithHistory`), through hubspot-api-client 12: the
single read, the list and batch/read, as HubSpot keeps it, and kept lazily."""

from __future__ import annotations

import sys

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId
from hubspot.crm.deals.exceptions import ApiException

from sandbox import Sandbox
from sandbox.hubspot.properties import iso_millis
from tests.sandbox.clients import hs_headers, hs_url
from tests.sandbox.conftest import Factory


def _closed_ids(sb: Sandbox) -> list[str]:
    return [str(d["id"]) for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "true"]


def _open_ids(sb: Sandbox) -> list[str]:
    return [str(d["id"]) for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "false"]


def _history(hs: HubSpot, deal_id: str, *names: str) -> dict[str, list[tuple[str, str]]]:
    """name -> [(value, sourceType)], newest first, as the SDK's get_by_id reads them."""
    deal = hs.crm.deals.basic_api.get_by_id(deal_id, properties_with_history=list(names))
    return {
        name: [(e.value, e.source_type) for e in entries]
        for name, entries in (deal.properties_with_history or {}).items()
    }


def test_a_closed_seed_deal_carries_its_stage_history_newest_first(sb: Sandbox, hs: HubSpot) -> None:
    """The seed's stage changes are the deal's dealstage history, by its owner (CRM_UI, the owner's user
    id), newest first, down to the stage it was created in; closing flips hs_is_closed (CALCULATED)."""
    deal_id = _closed_ids(sb)[0]
    deal = hs.crm.deals.basic_api.get_by_id(deal_id, properties_with_history=["dealstage", "hs_is_closed"])
    stages = deal.properties_with_history["dealstage"]
    assert [e.value for e in stages][1:] == ["contractsent", "presentationscheduled", "appointmentscheduled"]
    assert stages[0].value in {"closedwon", "closedlost"}
    assert [e.timestamp for e in stages] == sorted((e.timestamp for e in stages), reverse=True)
    assert stages[-1].timestamp == deal.created_at
    assert {e.updated_by_user_id for e in stages[:-1]} <= {9_100_001 + i for i in range(6)}
    assert all(e.source_type == "CRM_UI" for e in stages[:-1])
    assert [(e.value, e.source_type) for e in deal.properties_with_history["hs_is_closed"]] == [
        ("true", "CALCULATED"),
        ("false", "CALCULATED"),
    ]


def test_a_property_never_changed_has_one_entry_at_createdate(sb: Sandbox, hs: HubSpot) -> None:
    """An open seed deal: each set property has one entry, its value at creation; an unset one none; a
    name that is no property is ignored (as `properties` ignores it)."""
    deal_id = _open_ids(sb)[0]
    deal = hs.crm.deals.basic_api.get_by_id(
        deal_id, properties_with_history=["dealname", "bant_status", "no_such_property"]
    )
    history = deal.properties_with_history
    assert set(history) == {"dealname", "bant_status"}
    (entry,) = history["dealname"]
    assert entry.value == sb.hubspot.get_deal(deal_id)["properties"]["dealname"]  # type: ignore[index]
    assert entry.timestamp == deal.created_at
    assert history["bant_status"] == []
    assert sb.hubspot.stores["deals"].objects[deal_id].edits is None


def test_api_writes_are_recorded_and_a_cleared_value_is_empty(sb: Sandbox, hs: HubSpot) -> None:
    """An update through the API, a batch update and a clearing are entries with sourceType API, newest
    first, the creation value last; an unchanged value adds nothing."""
    deal_id = _open_ids(sb)[0]
    original = sb.hubspot.get_deal(deal_id)["properties"]["bant_budget"]  # type: ignore[index]
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"bant_budget": "50000"}})
    sb.clock.advance(5)
    hs.crm.deals.batch_api.update({"inputs": [{"id": deal_id, "properties": {"bant_budget": "60000"}}]})
    sb.clock.advance(5)
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"bant_budget": ""}})
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"bant_budget": ""}})
    expected = [("", "API"), ("60000", "API"), ("50000", "API")]
    if original is not None:
        expected.append((original, "API"))
    assert _history(hs, deal_id, "bant_budget")["bant_budget"] == expected


def test_a_person_editing_in_hubspot_is_crm_ui(sb: Sandbox, hs: HubSpot) -> None:
    deal_id = _open_ids(sb)[0]
    sb.hubspot.update_deal(deal_id, {"bant_need": "Replace the nightly batch with a streaming pipeline"})
    newest = _history(hs, deal_id, "bant_need")["bant_need"][0]
    assert newest == ("Replace the nightly batch with a streaming pipeline", "CRM_UI")


def test_forgotten_history_leaves_the_value_without_entries(sb: Sandbox, hs: HubSpot) -> None:
    deal_id = _closed_ids(sb)[0]
    sb.hubspot.forget_history("deals", deal_id, "dealstage")
    deal = hs.crm.deals.basic_api.get_by_id(
        deal_id, properties=["dealstage"], properties_with_history=["dealstage"]
    )
    assert deal.properties["dealstage"] in {"closedwon", "closedlost"}
    assert deal.properties_with_history["dealstage"] == []


def test_the_sdks_batch_read_returns_history_by_id_and_by_id_property(sb: Sandbox, hs: HubSpot) -> None:
    """`batch_api.read` with properties and properties_with_history, by record id and by
    idProperty=hs_object_id; a missing id is a 207 error beside the results."""
    ids = _closed_ids(sb)[:3]
    body = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in ids],
        properties=["dealname"],
        properties_with_history=["dealstage", "bant_budget"],
    )
    answer = hs.crm.deals.batch_api.read(body, archived=False)
    assert sorted(r.id for r in answer.results) == sorted(ids)
    for result in answer.results:
        assert set(result.properties_with_history) == {"dealstage", "bant_budget"}
        assert "dealname" in result.properties and "dealstage" not in result.properties
        assert len(result.properties_with_history["dealstage"]) == 4
    by_property = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": ids[0]}, {"id": "1"}],
        id_property="hs_object_id",
        properties=[],
        properties_with_history=["dealstage"],
    )
    partial = hs.crm.deals.batch_api.read(by_property)
    assert [r.id for r in partial.results] == [ids[0]]
    assert partial.errors[0].category == "OBJECT_NOT_FOUND"


def test_a_batch_read_with_history_takes_at_most_50_inputs(sb: Sandbox, hs: HubSpot) -> None:
    """51 inputs with history is a 400 naming the limit; 100 without history are read."""
    ids = [str(d["id"]) for d in sb.hubspot.deals()][:100]
    with pytest.raises(ApiException) as refused:
        hs.crm.deals.batch_api.read(
            BatchReadInputSimplePublicObjectId(
                inputs=[{"id": i} for i in ids[:51]], properties=[], properties_with_history=["dealstage"]
            )
        )
    assert refused.value.status == 400
    assert "property histories is 50" in str(refused.value.body)
    fifty = hs.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids[:50]], properties=[], properties_with_history=["dealstage"]
        )
    )
    assert len(fifty.results) == 50
    plain = hs.crm.deals.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=[], properties_with_history=[]
        )
    )
    assert len(plain.results) == 100 and all(r.properties_with_history is None for r in plain.results)


def test_a_list_page_with_history_holds_at_most_50(sb: Sandbox, hs: HubSpot) -> None:
    """limit=100 with propertiesWithHistory gives 50 records (and paging); without it, 100."""
    page = hs.crm.deals.basic_api.get_page(limit=100, properties_with_history=["dealstage"], archived=False)
    assert len(page.results) == 50 and page.paging.next.after
    assert all(len(r.properties_with_history["dealstage"]) >= 1 for r in page.results)
    assert len(hs.crm.deals.basic_api.get_page(limit=100, archived=False).results) == 100


def test_search_gives_no_history(sb: Sandbox) -> None:
    """Search has no history (HubSpot's search request has no propertiesWithHistory)."""
    body = {
        "filterGroups": [],
        "properties": ["dealstage"],
        "propertiesWithHistory": ["dealstage"],
        "limit": 5,
    }
    answer = requests.post(
        hs_url(sb, "/crm/v3/objects/deals/search"), headers=hs_headers(sb), json=body, timeout=10
    )
    assert answer.status_code == 200
    assert all("propertiesWithHistory" not in r for r in answer.json()["results"])


def _bytes(objects: list[object]) -> int:
    """Bytes of these objects, each counted once (shared tuples are one)."""
    return sum(sys.getsizeof(o) for o in {id(o): o for o in objects}.values())


def test_history_costs_nothing_until_a_value_changes(make_sandbox: Factory) -> None:
    """Seeded open deals carry no history; a status written to every deal at one moment (a first sync
    run's batch) keeps one shared edit and a one-item tuple a deal, not a list per property."""
    sb = make_sandbox(deals=2_000, crms=("hubspot",))
    store = sb.hubspot.stores["deals"]
    assert len(store.objects) == 2_000
    assert all(obj.edits is None for obj in store.objects.values())
    sb.clock.freeze()
    stamp = iso_millis(sb.clock.now())
    with sb.hubspot.lock:
        for deal_id in list(store.objects):
            sb.hubspot.update("deals", deal_id, {"bant_status": "qualified", "bant_checked_at": stamp})
    edits = [obj.edits for obj in store.objects.values()]
    assert all(e is not None and len(e) == 1 for e in edits)
    shared = {id(e[0]) for e in edits if e}
    assert len(shared) <= 2, "deals whose values were equal before share one edit"
    held = _bytes([e for e in edits if e]) + _bytes([e[0] for e in edits if e])
    assert held / len(edits) < 64
