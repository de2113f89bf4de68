"""HubSpot objects, batches, properties, pipelines, owners and associations through hubspot-api-client 12."""

from __future__ import annotations

import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.deals import ApiException as DealsApiException
from hubspot.crm.deals import BatchReadInputSimplePublicObjectId, SimplePublicObjectInput
from hubspot.crm.deals.exceptions import NotFoundException, UnauthorizedException
from hubspot.crm.objects.tasks import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchResponseSimplePublicObject,
    BatchResponseSimplePublicUpsertObject,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate, PropertyUpdate
from hubspot.crm.properties.exceptions import NotFoundException as PropertyNotFound

from sandbox import Sandbox
from tests.sandbox.clients import hs_client, hs_info, hs_url
from tests.sandbox.conftest import Factory


def _open_deal_ids(sb: Sandbox, count: int) -> list[str]:
    return [str(d["id"]) for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "false"][:count]


def _task_input(deal_id: str, key: str, type_id: int = 216) -> dict[str, object]:
    return {
        "properties": {
            "hs_task_subject": "Qualify the deal",
            "hs_timestamp": "2026-03-09T17:00:00Z",
            "bant_sync_key": key,
        },
        "associations": [
            {
                "to": {"id": deal_id},
                "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
            }
        ],
    }


def test_get_by_id_honours_properties_and_always_returns_the_system_ones(sb: Sandbox, hs: HubSpot) -> None:
    """GET /deals/{id}?properties=... returns those (null when unset) plus id, createdate, modified date."""
    deal_id = _open_deal_ids(sb, 1)[0]
    deal = hs.crm.deals.basic_api.get_by_id(deal_id, properties=["dealname", "bant_status"])
    assert set(deal.properties) == {
        "dealname",
        "bant_status",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    }
    assert deal.properties["bant_status"] is None and deal.id == deal_id
    assert (
        deal.updated_at.isoformat().replace("+00:00", "Z")[:23] == deal.properties["hs_lastmodifieddate"][:23]
    )


def test_list_pages_with_after_cursor_until_exhausted(make_sandbox: Factory) -> None:
    """GET /deals?limit=100 pages by paging.next.after through every deal exactly once."""
    sb = make_sandbox(deals=250)
    hs = hs_client(sb)
    seen: list[str] = []
    after = None
    while True:
        page = hs.crm.deals.basic_api.get_page(limit=100, after=after, properties=["dealname"])
        seen += [d.id for d in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    assert len(seen) == len(set(seen)) == 250


def test_update_bumps_the_modified_date_and_unknown_ids_are_404(sb: Sandbox, hs: HubSpot) -> None:
    """PATCH writes the property and moves hs_lastmodifieddate to the sandbox clock; a missing id is 404."""
    sb.clock.freeze()
    sb.clock.advance(120)
    deal_id = _open_deal_ids(sb, 1)[0]
    updated = hs.crm.deals.basic_api.update(
        deal_id, SimplePublicObjectInput(properties={"bant_status": "qualified", "bant_score": "100"})
    )
    assert updated.properties["bant_status"] == "qualified"
    stored = sb.hubspot.get_deal(deal_id)
    assert stored is not None
    assert stored["properties"]["hs_lastmodifieddate"] == sb.clock.now().isoformat(
        timespec="milliseconds"
    ).replace("+00:00", "Z")
    with pytest.raises(NotFoundException):
        hs.crm.deals.basic_api.get_by_id("999")


@pytest.mark.parametrize(
    ("properties", "error"),
    [
        ({"nope": "1"}, "PROPERTY_DOESNT_EXIST"),
        ({"bant_status": "maybe"}, "INVALID_OPTION"),
        ({"hs_lastmodifieddate": "0"}, "READ_ONLY_VALUE"),
        ({"bant_score": "lots"}, "INVALID_DECIMAL"),
    ],
    ids=["unknown", "bad-option", "read-only", "not-a-number"],
)
def test_invalid_property_values_are_400_validation_errors(
    sb: Sandbox, hs: HubSpot, properties: dict[str, str], error: str
) -> None:
    """Invalid values are refused with HubSpot's VALIDATION_ERROR naming the property error."""
    with pytest.raises(DealsApiException) as caught:
        hs.crm.deals.basic_api.update(
            _open_deal_ids(sb, 1)[0], SimplePublicObjectInput(properties=properties)
        )
    assert caught.value.status == 400
    assert "VALIDATION_ERROR" in caught.value.body and error in caught.value.body


def test_a_wrong_token_is_401(sb: Sandbox) -> None:
    """A bearer token the portal never issued gets 401, raised by the SDK as UnauthorizedException."""
    with pytest.raises(UnauthorizedException) as caught:
        hs_client(sb, token="pat-na1-wrong").crm.deals.basic_api.get_page()
    assert "INVALID_AUTHENTICATION" in caught.value.body


def test_tasks_batch_create_associates_each_task_to_its_deal(sb: Sandbox, hs: HubSpot) -> None:
    """tasks/batch/create with association type 216 links task->deal; both sides see the association."""
    deals = _open_deal_ids(sb, 3)
    batch = BatchInputSimplePublicObjectBatchInputForCreate(
        inputs=[_task_input(d, f"key-{d}") for d in deals]
    )
    created = hs.crm.objects.tasks.batch_api.create(batch)
    assert isinstance(created, BatchResponseSimplePublicObject) and created.status == "COMPLETE"
    assert {t.properties["hs_task_status"] for t in created.results} == {"NOT_STARTED"}
    for task in sb.hubspot.tasks():
        assert task["associations"] == {"deals": [task["properties"]["bant_sync_key"].removeprefix("key-")]}
    deal = hs.crm.deals.basic_api.get_by_id(deals[0], associations=["tasks"])
    assert [(a.type, a.id) for a in deal.associations["tasks"].results] == [
        ("deal_to_task", created.results[0].id)
    ]


def test_batch_create_with_a_bad_association_is_a_207_for_that_row(sb: Sandbox, hs: HubSpot) -> None:
    """A task pointing at a deal that does not exist fails alone; the SDK returns ...WithErrors."""
    deal = _open_deal_ids(sb, 1)[0]
    inputs = [_task_input(deal, "ok"), {**_task_input("123", "bad"), "objectWriteTraceId": "row-2"}]
    response = hs.crm.objects.tasks.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs)
    )
    assert response.num_errors == 1 and len(response.results) == 1
    assert response.errors[0].context == {"ids": ["123"], "objectWriteTraceId": ["row-2"]}


def test_batch_upsert_by_unique_property_creates_then_updates(sb: Sandbox, hs: HubSpot) -> None:
    """tasks/batch/upsert with idProperty=bant_sync_key: new=true the first time, new=false after."""

    def upsert(subject: str) -> BatchResponseSimplePublicUpsertObject:
        row = {
            "id": "deal-7",
            "idProperty": "bant_sync_key",
            "properties": {"hs_task_subject": subject, "hs_timestamp": "1772470800000"},
        }
        return hs.crm.objects.tasks.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(inputs=[row])
        )

    first, second = upsert("Qualify"), upsert("Qualify again")
    assert (first.results[0].new, second.results[0].new) == (True, False)
    assert first.results[0].id == second.results[0].id
    by_key = hs.crm.objects.tasks.basic_api.get_by_id(
        "deal-7", id_property="bant_sync_key", properties=["hs_task_subject"]
    )
    assert (by_key.id, by_key.properties["hs_task_subject"]) == (first.results[0].id, "Qualify again")
    assert [t["properties"]["hs_task_subject"] for t in sb.hubspot.tasks()] == ["Qualify again"]


def test_batch_read_reports_missing_ids_in_a_207(sb: Sandbox, hs: HubSpot) -> None:
    """batch/read with an unknown id: 207, the found deals in results, OBJECT_NOT_FOUND naming the id."""
    found = _open_deal_ids(sb, 2)
    request = BatchReadInputSimplePublicObjectId(
        inputs=[{"id": i} for i in [*found, "42"]], properties=["dealname"], properties_with_history=[]
    )
    response = hs.crm.deals.batch_api.read(request)
    assert sorted(r.id for r in response.results) == sorted(found)
    assert response.errors[0].category == "OBJECT_NOT_FOUND" and response.errors[0].context == {"ids": ["42"]}


def test_a_batch_of_more_than_100_inputs_is_refused(sb: Sandbox, hs: HubSpot) -> None:
    """101 inputs: 400 for the whole batch."""
    from hubspot.crm.deals import BatchInputSimplePublicObjectBatchInput

    inputs = [{"id": i, "properties": {"bant_score": "1"}} for i in _open_deal_ids(sb, 101)]
    with pytest.raises(DealsApiException) as caught:
        hs.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=inputs))
    assert caught.value.status == 400


def test_properties_and_groups_can_be_listed_created_read_and_archived(make_sandbox: Factory) -> None:
    """What bant-sync setup does on a bare portal: create a group and a property, read it, archive it."""
    hs = hs_client(make_sandbox(bare=True))
    names = {p.name for p in hs.crm.properties.core_api.get_all("deals").results}
    assert "bant_need" in names and "bant_status" not in names
    hs.crm.properties.groups_api.create("deals", PropertyGroupCreate(name="bant_sync", label="BANT Sync"))
    options = [{"label": "Qualified", "value": "qualified", "hidden": False, "displayOrder": 0}]
    created = hs.crm.properties.core_api.create(
        "deals",
        PropertyCreate(
            name="bant_status",
            label="BANT Status",
            type="enumeration",
            field_type="select",
            group_name="bant_sync",
            options=options,
        ),
    )
    assert created.name == "bant_status" and created.options[0].value == "qualified"
    assert hs.crm.properties.core_api.get_by_name("deals", "bant_status").group_name == "bant_sync"
    assert "bant_sync" in {g.name for g in hs.crm.properties.groups_api.get_all("deals").results}
    relabelled = hs.crm.properties.core_api.update(
        "deals", "bant_status", PropertyUpdate(label="Qualification")
    )
    assert (relabelled.label, relabelled.type) == ("Qualification", "enumeration")
    hs.crm.properties.core_api.archive("deals", "bant_status")
    with pytest.raises(PropertyNotFound):
        hs.crm.properties.core_api.get_by_name("deals", "bant_status")


def test_pipelines_owners_and_association_labels(sb: Sandbox, hs: HubSpot) -> None:
    """The default pipeline's stages, the six owners, and the task<->deal association type ids."""
    pipeline = hs.crm.pipelines.pipelines_api.get_all("deals").results[0]
    assert [s.id for s in pipeline.stages][-2:] == ["closedwon", "closedlost"]
    assert pipeline.stages[-1].metadata["isClosed"] == "true"
    owners = hs.crm.owners.owners_api.get_page(limit=100).results
    assert len(owners) == 6 and all(o.email.endswith("@northbeam.example") for o in owners)
    labels = hs.crm.associations.v4.schema.definitions_api.get_all("tasks", "deals").results
    assert [(label.category, label.type_id) for label in labels] == [("HUBSPOT_DEFINED", 216)]
    assert hs.crm.associations.v4.schema.definitions_api.get_all("deals", "tasks").results[0].type_id == 217


def test_v4_associations_can_be_created_and_listed(sb: Sandbox, hs: HubSpot) -> None:
    """PUT a labelled association then GET it back from the deal's side."""
    from hubspot.crm.associations.v4 import AssociationSpec

    deal = _open_deal_ids(sb, 1)[0]
    task = hs.crm.objects.tasks.basic_api.create(
        {"properties": {"hs_task_subject": "x", "hs_timestamp": "2026-03-09T17:00:00Z"}}
    )
    spec = [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=216)]
    hs.crm.associations.v4.basic_api.create("tasks", task.id, "deals", deal, spec)
    page = hs.crm.associations.v4.basic_api.get_page("deals", deal, "tasks")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in page.results] == [(task.id, 217)]


def test_oauth_refresh_issues_a_new_token(sb: Sandbox) -> None:
    """POST /oauth/v1/token with the refresh_token grant returns an access token the API accepts."""
    info = hs_info(sb)
    form = {
        "grant_type": "refresh_token",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
    }
    body = requests.post(hs_url(sb, "/oauth/v1/token"), data=form, timeout=10).json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    assert hs_client(sb, token=body["access_token"]).crm.deals.basic_api.get_page(limit=1).results
    bad = requests.post(hs_url(sb, "/oauth/v1/token"), data={**form, "refresh_token": "x"}, timeout=10)
    assert (bad.status_code, bad.json()["status"]) == (400, "BAD_REFRESH_TOKEN")
