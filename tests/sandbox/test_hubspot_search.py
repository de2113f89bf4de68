"""CRM search through hubspot-api-client: every operator, sorts, paging, the page and 10,000 caps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.deals import ApiException, BatchInputSimplePublicObjectBatchInput, PublicObjectSearchRequest

from sandbox import Sandbox
from sandbox.hubspot import search as search_module
from tests.sandbox.clients import hs_client
from tests.sandbox.conftest import Factory

Props = dict[str, Any]


def _search(hs: HubSpot, groups: list[list[dict[str, Any]]], **extra: Any) -> Any:
    request = PublicObjectSearchRequest(filter_groups=[{"filters": g} for g in groups], **extra)
    return hs.crm.deals.search_api.do_search(public_object_search_request=request)


def _amount(p: Props) -> float | None:
    return float(p["amount"]) if p.get("amount") else None


def _ms(p: Props) -> int:
    return int(datetime.fromisoformat(p["hs_lastmodifieddate"].replace("Z", "+00:00")).timestamp() * 1000)


CASES: list[tuple[str, list[list[dict[str, Any]]], Callable[[Props], bool]]] = [
    (
        "EQ",
        [[{"propertyName": "dealtype", "operator": "EQ", "value": "poc"}]],
        lambda p: p.get("dealtype") == "poc",
    ),
    (
        "EQ-ignores-case",
        [[{"propertyName": "dealtype", "operator": "EQ", "value": "POC"}]],
        lambda p: p.get("dealtype") == "poc",
    ),
    (
        "NEQ",
        [[{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]],
        lambda p: p["hs_is_closed"] != "true",
    ),
    (
        "IN",
        [[{"propertyName": "dealstage", "operator": "IN", "values": ["closedwon", "closedlost"]}]],
        lambda p: p["dealstage"] in ("closedwon", "closedlost"),
    ),
    (
        "NOT_IN",
        [[{"propertyName": "dealtype", "operator": "NOT_IN", "values": ["poc"]}]],
        lambda p: p.get("dealtype") != "poc",
    ),
    (
        "HAS_PROPERTY",
        [[{"propertyName": "bant_authority", "operator": "HAS_PROPERTY"}]],
        lambda p: p.get("bant_authority") is not None,
    ),
    (
        "NOT_HAS_PROPERTY",
        [[{"propertyName": "bant_authority", "operator": "NOT_HAS_PROPERTY"}]],
        lambda p: p.get("bant_authority") is None,
    ),
    (
        "GT",
        [[{"propertyName": "amount", "operator": "GT", "value": "50000"}]],
        lambda p: (_amount(p) or 0) > 50000,
    ),
    (
        "GTE",
        [[{"propertyName": "amount", "operator": "GTE", "value": "50000"}]],
        lambda p: (_amount(p) or 0) >= 50000,
    ),
    (
        "LT",
        [[{"propertyName": "amount", "operator": "LT", "value": "30000"}]],
        lambda p: _amount(p) is not None and _amount(p) < 30000,
    ),
    (
        "LTE",
        [[{"propertyName": "amount", "operator": "LTE", "value": "30000"}]],
        lambda p: _amount(p) is not None and _amount(p) <= 30000,
    ),
    (
        "BETWEEN",
        [[{"propertyName": "amount", "operator": "BETWEEN", "value": "20000", "highValue": "40000"}]],
        lambda p: _amount(p) is not None and 20000 <= _amount(p) <= 40000,
    ),
    (
        "AND-in-a-group",
        [
            [
                {"propertyName": "dealtype", "operator": "EQ", "value": "poc"},
                {"propertyName": "hs_is_closed", "operator": "EQ", "value": "false"},
            ]
        ],
        lambda p: p.get("dealtype") == "poc" and p["hs_is_closed"] == "false",
    ),
    (
        "OR-across-groups",
        [
            [{"propertyName": "dealstage", "operator": "EQ", "value": "closedwon"}],
            [{"propertyName": "dealtype", "operator": "EQ", "value": "newbusiness"}],
        ],
        lambda p: p["dealstage"] == "closedwon" or p.get("dealtype") == "newbusiness",
    ),
]


@pytest.mark.parametrize(("groups", "oracle"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES])
def test_each_operator_matches_what_the_data_says(
    sb: Sandbox, hs: HubSpot, groups: list[list[dict[str, Any]]], oracle: Callable[[Props], bool]
) -> None:
    """The search total and ids equal a plain Python filter over the portal's deals."""
    expected = {d["id"] for d in sb.hubspot.deals() if oracle(d["properties"])}
    seen: set[str] = set()
    after = None
    while True:
        page = _search(hs, groups, limit=200, after=after)
        assert page.total == len(expected)
        seen |= {r.id for r in page.results}
        if page.paging is None:
            break
        after = page.paging.next.after
    assert seen == expected and expected


@pytest.mark.parametrize("value_kind", ["epoch-ms", "iso"])
def test_datetime_filters_accept_epoch_millis_and_iso(sb: Sandbox, hs: HubSpot, value_kind: str) -> None:
    """hs_lastmodifieddate GTE compares instants whether given as epoch milliseconds or ISO-8601."""
    stamps = sorted(_ms(d["properties"]) for d in sb.hubspot.deals())
    pivot = stamps[len(stamps) // 2]
    value = (
        str(pivot)
        if value_kind == "epoch-ms"
        else datetime.fromtimestamp(pivot / 1000).astimezone().isoformat()
    )
    page = _search(
        hs, [[{"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": value}]], limit=1
    )
    assert page.total == sum(1 for s in stamps if s >= pivot)


def test_sorted_paging_walks_every_match_once_in_order(sb: Sandbox, hs: HubSpot) -> None:
    """Sorted by hs_lastmodifieddate ascending, 50 a page, the pages cover every open deal once, in order."""
    groups = [[{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]]
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    rows: list[Any] = []
    after = None
    while True:
        page = _search(hs, groups, sorts=sorts, limit=50, after=after, properties=["dealname"])
        rows += page.results
        if page.paging is None:
            break
        after = page.paging.next.after
    stamps = [r.properties["hs_lastmodifieddate"] for r in rows]
    assert stamps == sorted(stamps)
    assert len({r.id for r in rows}) == len(rows) == page.total
    assert set(rows[0].properties) == {"dealname", "createdate", "hs_lastmodifieddate", "hs_object_id"}


def test_sort_by_another_property_descending(sb: Sandbox, hs: HubSpot) -> None:
    """A numeric sort orders by value, highest first."""
    page = _search(
        hs,
        [],
        sorts=[{"propertyName": "amount", "direction": "DESCENDING"}],
        limit=100,
        properties=["amount"],
    )
    amounts = [float(r.properties["amount"]) for r in page.results]
    assert amounts == sorted(amounts, reverse=True)
    assert amounts[0] == max(float(d["properties"]["amount"]) for d in sb.hubspot.deals())


def test_the_kept_match_list_agrees_with_a_fresh_search_after_writes(sb: Sandbox, hs: HubSpot) -> None:
    """Paging while writing: the cached modification-order search equals a from-scratch evaluation."""
    sb.clock.freeze()
    cached = [[{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]]
    fresh = [[*cached[0], {"propertyName": "hs_object_id", "operator": "GT", "value": "0"}]]
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    for after in ("0", "40", "80", "120"):
        page = _search(hs, cached, sorts=sorts, limit=40, after=after)
        sb.clock.advance(1)
        updates = [{"id": r.id, "properties": {"bant_score": "10"}} for r in page.results[:5]]
        hs.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=updates))
        sb.clock.advance(1)
        closing = page.results[-1].id
        sb.hubspot.update_deal(closing, {"dealstage": "closedlost"})
        again = _search(hs, cached, sorts=sorts, limit=100, after=after)
        check = _search(hs, fresh, sorts=sorts, limit=100, after=after)
        assert [r.id for r in again.results] == [r.id for r in check.results]
        assert again.total == check.total
        assert closing not in {r.id for r in again.results}


def test_limit_above_200_is_a_400(hs: HubSpot) -> None:
    """Pages hold at most 200 results."""
    with pytest.raises(ApiException) as caught:
        _search(hs, [], limit=201)
    assert caught.value.status == 400 and "VALIDATION_ERROR" in caught.value.body


def test_an_unknown_property_in_a_filter_is_a_400(hs: HubSpot) -> None:
    """Filtering on a property the portal does not have fails the search."""
    with pytest.raises(ApiException) as caught:
        _search(hs, [[{"propertyName": "bant_vanished", "operator": "EQ", "value": "x"}]])
    assert caught.value.status == 400


def test_paging_stops_at_10000_results(make_sandbox: Factory) -> None:
    """With 10,050 matches the page at after=9,900 ends at 10,000; asking for after=10,000 is a 400."""
    sb = make_sandbox(deals=10_050)
    hs = hs_client(sb)
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    last = _search(hs, [], sorts=sorts, limit=200, after="9900")
    assert (last.total, len(last.results), last.paging.next.after) == (10_050, 100, "10000")
    with pytest.raises(ApiException) as caught:
        _search(hs, [], sorts=sorts, limit=200, after="10000")
    assert caught.value.status == 400
    assert '"category":"VALIDATION_ERROR"' in caught.value.body and "10000" in caught.value.body


_BOUND_CHECKS: dict[str | None, Callable[[int, int], bool]] = {
    "GTE": lambda stamp, bound: stamp >= bound,
    "GT": lambda stamp, bound: stamp > bound,
    "LTE": lambda stamp, bound: stamp <= bound,
    "LT": lambda stamp, bound: stamp < bound,
    None: lambda stamp, bound: True,
}


@pytest.mark.parametrize(
    ("low_op", "high_op"), [("GTE", "LTE"), ("GT", "LT"), ("GTE", None), (None, "LT")], ids=str
)
def test_a_modified_range_returns_exactly_the_deals_in_it(
    sb: Sandbox, hs: HubSpot, low_op: str | None, high_op: str | None
) -> None:
    """Keyset windows (a modified-date range, bisected on the kept match list) return exactly the open
    deals whose stamp is in range, bounds included or excluded as the operator says, while deals are
    written between searches."""
    sb.clock.freeze()
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    base = [{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]
    stamps = sorted({_ms(r.properties) for r in _search(hs, [base], sorts=sorts, limit=200).results})
    low, high = stamps[len(stamps) // 4], stamps[3 * len(stamps) // 4]
    window = list(base)
    if low_op:
        window.append({"propertyName": "hs_lastmodifieddate", "operator": low_op, "value": str(low)})
    if high_op:
        window.append({"propertyName": "hs_lastmodifieddate", "operator": high_op, "value": str(high)})
    for round_no in range(3):
        found = _search(hs, [window], sorts=sorts, limit=200)
        expected = {
            d["id"]
            for d in sb.hubspot.deals()
            if d["properties"]["hs_is_closed"] != "true"  # type: ignore[index]
            and _BOUND_CHECKS[low_op](_ms(d["properties"]), low)  # type: ignore[arg-type]
            and _BOUND_CHECKS[high_op](_ms(d["properties"]), high)  # type: ignore[arg-type]
        }
        assert {r.id for r in found.results} == expected
        assert found.total == len(expected) > 0
        ordered = [_ms(r.properties) for r in found.results]
        assert ordered == sorted(ordered)
        sb.clock.advance(1)
        updates = [{"id": r.id, "properties": {"bant_score": str(round_no)}} for r in found.results[:7]]
        hs.crm.deals.batch_api.update(BatchInputSimplePublicObjectBatchInput(inputs=updates))


def test_a_tie_window_by_id_returns_exactly_the_deals_at_that_instant(sb: Sandbox, hs: HubSpot) -> None:
    """`hs_lastmodifieddate EQ t` sorted by `hs_object_id` with `GT id` (a tie sweep) returns the open deals
    stamped exactly `t`, by id, after the anchor id."""
    sb.clock.freeze()
    deals = _search(hs, [[{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]], limit=200)
    chosen = sorted(r.id for r in deals.results[:30])
    sb.clock.advance(5)
    hs.crm.deals.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"bant_score": "1"}} for i in chosen]
        )
    )
    stamp = _ms(next(d for d in sb.hubspot.deals() if d["id"] == chosen[0])["properties"])  # type: ignore[arg-type]
    tie = [
        {"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"},
        {"propertyName": "hs_lastmodifieddate", "operator": "EQ", "value": str(stamp)},
        {"propertyName": "hs_object_id", "operator": "GT", "value": chosen[9]},
    ]
    found = _search(hs, [tie], sorts=[{"propertyName": "hs_object_id", "direction": "ASCENDING"}], limit=200)
    assert [r.id for r in found.results] == sorted(chosen[10:], key=int)
    assert found.total == 20


def _reanchored(low: int, excluded: list[str]) -> list[dict[str, Any]]:
    return [
        {"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"},
        {"propertyName": "hs_lastmodifieddate", "operator": "GTE", "value": str(low)},
        {"propertyName": "hs_object_id", "operator": "NOT_IN", "values": excluded},
    ]


def test_a_reanchored_window_excluding_seen_ids_returns_exactly_the_rest(sb: Sandbox, hs: HubSpot) -> None:
    """`GTE t` with `hs_object_id NOT_IN [seen]` (the connector's re-anchored page) returns, in modified
    order, the open deals from `t` on except the excluded ones, and counts them right — including excluded
    ids that are closed, out of range or not numbers of any deal."""
    sb.clock.freeze()
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    base = [{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]
    first = _search(hs, [base], sorts=sorts, limit=60).results
    low = _ms(first[20].properties)
    closed = next(d["id"] for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "true")  # type: ignore[index]
    excluded = [r.id for r in first[20:40]] + [first[0].id, str(closed), "999999999"]
    found = _search(hs, [_reanchored(low, excluded)], sorts=sorts, limit=200)
    expected = [
        r.id
        for r in _search(hs, [base], sorts=sorts, limit=200).results
        if _ms(r.properties) >= low and r.id not in excluded
    ]
    assert [r.id for r in found.results] == expected[:200]
    everything = [
        d
        for d in sb.hubspot.deals()
        if d["properties"]["hs_is_closed"] != "true" and _ms(d["properties"]) >= low  # type: ignore[index,arg-type]
    ]
    assert found.total == len([d for d in everything if d["id"] not in excluded])


def test_a_reanchored_window_reads_a_page_not_the_rest_of_the_table(
    make_sandbox: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Excluding seen ids does not push the search off the bisected path: a page near the start of 5,000
    deals looks at about a page of kept entries, not every entry after the anchor."""
    sb = make_sandbox(deals=5_000)
    hs = hs_client(sb)
    sorts = [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]
    base = [{"propertyName": "hs_is_closed", "operator": "NEQ", "value": "true"}]
    first = _search(hs, [base], sorts=sorts, limit=100).results
    examined = 0
    live = search_module._Matches._live

    def counting(self: Any, start: int, stop: int) -> Any:
        nonlocal examined
        for entry in live(self, start, stop):
            examined += 1
            yield entry

    monkeypatch.setattr(search_module._Matches, "_live", counting)
    page = _search(
        hs, [_reanchored(_ms(first[50].properties), [r.id for r in first[50:]])], sorts=sorts, limit=100
    )
    assert len(page.results) == 100 and page.total > 3_000
    assert examined <= 100 + 50 + 1, f"examined {examined} kept entries for one page"


def test_requested_properties_come_back_null_when_unset_and_are_left_out_when_unknown(
    sb: Sandbox, hs: HubSpot
) -> None:
    """Search answers every requested property that exists (null when the deal has no value) and leaves
    out one that does not exist, as HubSpot ignores unknown requested properties."""
    page = _search(hs, [], properties=["bant_budget", "bant_status", "no_such_property"], limit=100)
    props = [r.properties for r in page.results]
    assert props and all("bant_status" in p and "bant_budget" in p for p in props)
    assert all(p["bant_status"] is None for p in props)
    assert all("no_such_property" not in p for p in props)


def test_a_deleted_property_is_left_out_until_restored_with_its_values(sb: Sandbox, hs: HubSpot) -> None:
    """delete_property: search stops answering it; restore_property (HubSpot restores archived properties
    from its recycling bin) brings back every deal's value without moving hs_lastmodifieddate."""
    wanted = ["bant_need", "hs_lastmodifieddate"]
    before = {r.id: r.properties for r in _search(hs, [], properties=wanted, limit=200).results}
    sb.hubspot.delete_property("deals", "bant_need")
    gone = _search(hs, [], properties=wanted, limit=200).results
    assert gone and all("bant_need" not in r.properties for r in gone)
    sb.hubspot.restore_property("deals", "bant_need")
    after = {r.id: r.properties for r in _search(hs, [], properties=wanted, limit=200).results}
    assert after == before
    assert any(p["bant_need"] for p in after.values())
