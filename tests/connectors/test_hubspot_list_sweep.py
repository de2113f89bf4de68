"""Full sweeps through the list endpoint (GET /crm/v3/objects/deals) where it ends sooner than search: every
open deal once and no closed one, paged by `after`, checked for drift, one cursor bounded by the sweep's
start; incremental runs keep searching. Against the sandbox through the real hubspot-api-client."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connectors.contract import ConnectorContract
from connectors.errors import SchemaDriftError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.pull import (
    LIST_PAGE,
    LIST_PROBE,
    Listed,
    expected_writes,
    list_reads_faster,
    list_sweep,
    list_sweep_faster,
)
from connectors.model import Cursor, Page
from connectors.registry import ConnectorContext

sandbox = pytest.importorskip("sandbox")
Sandbox = sandbox.Sandbox
SandboxOptions = sandbox.SandboxOptions
FaultRule = sandbox.FaultRule

LIST_PATH = "/crm/v3/objects/deals"
SEARCH_PATH = "/crm/v3/objects/deals/search"
LIMITS = {"burst_limit_per_10s": 190, "search_per_second": 5}
"""The sandbox's limits (and HubSpot's for Professional/Enterprise private apps): listing wins."""


def _start(deals: int, latency_ms: int = 0) -> Any:
    """A portal of `deals` open deals that bant-sync has judged before (each carries a status)."""
    options = SandboxOptions(deals=deals, seed_value=7, enforce_rate_limits=False, latency_ms=latency_ms)
    box = Sandbox.start(options)
    for deal_id in _open_ids(box):
        box.hubspot.update_deal(deal_id, {"bant_status": "qualified"})
    return box


@pytest.fixture
def sb() -> Iterator[Any]:
    """450 open deals, 100 of them then closed (the list endpoint returns those too)."""
    box = _start(450)
    try:
        for deal_id in sorted(_open_ids(box), key=int)[::4][:100]:
            box.hubspot.update_deal(deal_id, {"dealstage": "closedlost"})
        box.reset_requests()
        yield box
    finally:
        box.stop()


def _connector(box: Any, **settings: Any) -> HubSpotConnector:
    """A preflighted connector on the sandbox's clock; waiting for a rate-limit slot advances that clock."""
    context = ConnectorContext(
        "hs",
        {"access_token": box.info["hubspot"]["access_token"]},
        box.clock.now,
        box.clock.advance,
    )
    base = {"host": box.info["hubspot"]["host"], **LIMITS}
    connector = HubSpotConnector(HubSpotSettings(**{**base, **settings}), context)
    connector.preflight()
    box.reset_requests()
    return connector


def _open_ids(box: Any) -> set[str]:
    return {d["id"] for d in box.hubspot.deals() if d["properties"].get("hs_is_closed") != "true"}


def _requests(box: Any, path: str) -> list[dict[str, Any]]:
    return [r for r in box.requests() if r["crm"] == "hubspot" and r["path"] == path]


def _ids(pages: list[Page]) -> list[str]:
    return [deal.id for page in pages for deal in page.deals]


def test_a_full_sweep_lists_every_open_deal_once_and_no_closed_one(sb: Any) -> None:
    """350 open deals among 450: five list calls of 100, each asking for exactly the mapped properties and
    paged by the previous answer's `after`; the closed deals are left out as the search filter would."""
    connector = _connector(sb)
    pages = list(connector.fetch_changed(None, full=True))
    ids = _ids(pages)
    assert sorted(ids) == sorted(_open_ids(sb)) and len(ids) == 350
    lists = _requests(sb, LIST_PATH)
    assert len(lists) == 5
    wanted = ",".join(sorted(set(connector.field_names.values())))
    assert all(r["query"]["limit"] == "100" and r["query"]["properties"] == wanted for r in lists)
    afters = [r["query"].get("after") for r in lists]
    assert afters[0] is None and all(afters[1:])
    assert [int(a) for a in afters[1:]] == sorted(int(a) for a in afters[1:])
    assert all("archived" not in r["query"] for r in lists)


def test_a_full_sweep_costs_three_counts_and_one_list_call_per_hundred_deals(sb: Any) -> None:
    """The call count of a full sweep of N deals: ceil(N/100) list calls and the three one-result searches
    that chose the endpoint, nothing else."""
    connector = _connector(sb)
    before = Counter(connector.client.calls_by_method)
    list(connector.fetch_changed(None, full=True))
    assert connector.client.calls_by_method - before == {
        "deals_basic.get_page": math.ceil(450 / LIST_PAGE),
        "deals_search.do_search": 3,
    }
    assert len(_requests(sb, SEARCH_PATH)) == 3


def test_paging_across_many_pages_carries_the_cursor_on_the_last_page_only() -> None:
    """2,500 deals in 25 list calls, grouped into pages of at most 300 deals: every deal once; only the
    last page carries a cursor, the newest modified time read."""
    box = _start(2500)
    try:
        connector = _connector(box, deals_per_page=300)
        pages = list(connector.fetch_changed(None, full=True))
        assert len(_requests(box, LIST_PATH)) == 25
        ids = _ids(pages)
        assert len(ids) == len(set(ids)) == 2500
        assert all(0 < len(page.deals) <= 300 for page in pages) and len(pages) >= 9
        assert [page.cursor is None for page in pages] == [True] * (len(pages) - 1) + [False]
        newest = max(Cursor(d.modified_at, d.id) for p in pages for d in p.deals if d.modified_at)
        assert pages[-1].cursor == newest
    finally:
        box.stop()


def test_deals_changed_during_the_sweep_are_read_by_the_next_incremental_run() -> None:
    """During a long sweep one deal is changed after the list passed it, and hours later one it has not
    reached yet: the sweep's cursor stays at its start (not at the later change, which would put the first
    change more than the overlap behind it), and the next incremental run reads both changes."""
    box = _start(600)
    try:
        connector = _connector(box, deals_per_page=200)
        ordered = sorted(_open_ids(box), key=int)
        passed, ahead = ordered[0], ordered[-1]
        pages = connector.fetch_changed(None, full=True)
        first = next(pages)
        assert passed in {d.id for d in first.deals} and first.cursor is None
        before_changes = box.clock.now()
        box.clock.advance(3 * 3600)
        box.hubspot.update_deal(passed, {"bant_budget": "USD 80k approved"})
        box.clock.advance(3 * 3600)
        box.hubspot.update_deal(ahead, {"bant_budget": "USD 90k approved"})
        rest = list(pages)
        later = {d.id: d for page in rest for d in page.deals}
        assert later[ahead].budget == "USD 90k approved"
        cursor = rest[-1].cursor
        assert cursor is not None and cursor.modified_at <= before_changes
        again = {d.id: d for page in connector.fetch_changed(cursor) for d in page.deals}
        assert again[passed].budget == "USD 80k approved" and ahead in again
    finally:
        box.stop()


def test_a_portal_of_one_list_page_is_timed_on_that_page_and_listed_once() -> None:
    """80 deals fit one list page: the probe stops at the page without `after`, and that page is the
    sweep (one list call), carrying the cursor."""
    box = _start(80)
    try:
        connector = _connector(box)
        pages = list(connector.fetch_changed(None, full=True))
        assert sorted(_ids(pages)) == sorted(_open_ids(box))
        assert len(_requests(box, LIST_PATH)) == 1
        assert len(pages) == 1 and pages[0].cursor is not None
    finally:
        box.stop()


def test_a_sweep_stopped_early_moves_no_cursor(sb: Any) -> None:
    """A page handed on before the sweep ends carries no cursor, so a run that fails after it leaves the
    saved cursor where it was (the pages are not in modified order)."""
    connector = _connector(sb, deals_per_page=200)
    first = next(iter(connector.fetch_changed(None, full=True)))
    assert first.deals and first.cursor is None


def test_a_property_gone_from_the_second_list_page_stops_before_the_page(sb: Any) -> None:
    """bant_authority is deleted as the sweep asks for its second list page: the stream raises drift
    naming it before the page holding the first list page's deals is handed on."""
    connector = _connector(sb, deals_per_page=300)
    sb.add_fault(
        FaultRule(
            kind="schema_change",
            crm="hubspot",
            method="GET",
            path=r"/objects/deals$",
            nth=2,
            object_name="deals",
            field_name="bant_authority",
        )
    )
    with pytest.raises(SchemaDriftError) as caught:
        next(iter(connector.fetch_changed(None, full=True)))
    assert caught.value.fields == ("bant_authority",)
    assert len(_requests(sb, LIST_PATH)) == 2


def test_a_property_deleted_before_the_sweep_stops_it_at_the_first_list_page(sb: Any) -> None:
    """The list endpoint leaves out a property that no longer exists, as search does: drift, named."""
    connector = _connector(sb)
    sb.hubspot.delete_property("deals", "bant_need")
    with pytest.raises(SchemaDriftError) as caught:
        next(iter(connector.fetch_changed(None, full=True)))
    assert caught.value.fields == ("bant_need",)
    assert len(_requests(sb, LIST_PATH)) == 1


def test_incremental_runs_still_search(sb: Any) -> None:
    """A run from a cursor (and one without) reads by search; the list endpoint is for full sweeps."""
    connector = _connector(sb)
    cursor = Cursor(sb.clock.now() - timedelta(days=400), "0")
    assert sorted(_ids(list(connector.fetch_changed(cursor)))) == sorted(_open_ids(sb))
    list(connector.fetch_changed(None))
    assert _requests(sb, LIST_PATH) == []
    assert _requests(sb, SEARCH_PATH)


def test_a_portal_of_mostly_closed_deals_is_swept_by_search(sb: Any) -> None:
    """400 of 450 deals closed: listing all 450 (5 calls at 19/s) ends later than searching the 50 open
    ones (1 call at 5/s), so the sweep searches (after its 3 counts)."""
    for deal_id in sorted(_open_ids(sb), key=int)[50:]:
        sb.hubspot.update_deal(deal_id, {"dealstage": "closedwon"})
    connector = _connector(sb)
    assert sorted(_ids(list(connector.fetch_changed(None, full=True)))) == sorted(_open_ids(sb))
    assert _requests(sb, LIST_PATH) == []
    assert len(_requests(sb, SEARCH_PATH)) == 4


def test_a_portal_bant_sync_has_not_judged_yet_is_swept_by_search(sb: Any) -> None:
    """350 open deals without a bant-sync status (a first run): their status and task writes (8 calls)
    would share the burst window with 5 list calls (0.68 s at 19/s), where 2 searches leave them the room
    (0.53 s), so the sweep searches."""
    for deal_id in _open_ids(sb):
        sb.hubspot.update_deal(deal_id, {"bant_status": ""})
    connector = _connector(sb)
    assert sorted(_ids(list(connector.fetch_changed(None, full=True)))) == sorted(_open_ids(sb))
    assert _requests(sb, LIST_PATH) == []
    counts = [r for r in _requests(sb, SEARCH_PATH) if r["body"] and r["body"].get("limit") == 1]
    assert len(counts) == 3


def test_long_round_trips_favour_search() -> None:
    """Round trips of 0.2 s: the first three list pages show that five, each waiting for the one before,
    take 1 s where three searches at 5/s take 0.72 s, so the sweep searches after them (the counts alone,
    a rate comparison, had favoured listing)."""
    box = _start(450, latency_ms=200)
    try:
        connector = _connector(box)
        ids = _ids(list(connector.fetch_changed(None, full=True)))
        assert sorted(ids) == sorted(_open_ids(box))
        assert len(_requests(box, LIST_PATH)) == LIST_PROBE
        assert len(_requests(box, SEARCH_PATH)) == 3 + math.ceil(450 / 200)
        assert list_sweep_faster(450, 450, 190, 5, 200, latency=0.0)
    finally:
        box.stop()


def test_limits_that_favour_search_cost_no_count(sb: Any) -> None:
    """At 100 calls per 10 s and 5 searches a second a list call reads no faster than a search: the sweep
    searches as before, without the two counting searches."""
    connector = _connector(sb, burst_limit_per_10s=100, search_per_second=5)
    before = Counter(connector.client.calls_by_method)
    list(connector.fetch_changed(None, full=True))
    assert _requests(sb, LIST_PATH) == []
    assert connector.client.calls_by_method - before == {"deals_search.do_search": math.ceil(350 / 200)}


@pytest.mark.parametrize(
    ("burst", "search", "faster"),
    [(190, 5, True), (100, 4, True), (100, 5, False), (150, 5, True), (10_000, 1_000, False), (40, 5, False)],
)
def test_list_reads_faster_compares_deals_per_second(burst: int, search: int, faster: bool) -> None:
    """List: 100 deals per call at burst/10 calls a second; search: 200 per call at min(search, burst/10)."""
    assert list_reads_faster(burst, search, 200) is faster


def test_the_sweep_that_ends_sooner_is_chosen_in_whole_calls() -> None:
    """100,000 open deals at 190/10 s and 5/s: 1,000 list calls (52.6 s) beat 500 searches (100 s); with
    71,000 closed deals beside them 1,710 list calls (90 s) no longer end 10% sooner, with 70,000 (89.5 s)
    they do."""
    assert list_sweep_faster(100_000, 100_000, 190, 5, 200)
    assert not list_sweep_faster(100_000, 171_000, 190, 5, 200)
    assert list_sweep_faster(100_000, 170_000, 190, 5, 200)
    assert not list_sweep_faster(0, 0, 190, 5, 200)


def test_list_pages_follow_after_and_a_repeated_after_stops_the_sweep() -> None:
    """Each page is asked for with the `after` of the one before; an endpoint that answers with the same
    `after` again would loop for ever, so the sweep stops with an error instead."""
    asked: list[str | None] = []
    answers = {None: "100", "100": "200", "200": None}

    def page(after: str | None) -> Listed:
        asked.append(after)
        return Listed((), answers[after])

    assert len(list(list_sweep(page))) == 3
    assert asked == [None, "100", "200"]
    with pytest.raises(ValueError, match="same cursor"):
        list(list_sweep(lambda after: Listed((), "7")))


def test_round_trips_bound_a_sweep_whose_reads_wait_for_each_other() -> None:
    """100,000 deals at 190/10 s and 5/s: with 0.05 s round trips 1,000 list calls take 52.9 s against
    500 searches' 105 s; with 0.09 s, 90 s against 109 s (listing is 17% sooner); with 0.1 s, 100 s against
    110 s, not the 10% margin listing must win by."""
    assert list_sweep_faster(100_000, 100_000, 190, 5, 200, latency=0.05)
    assert list_sweep_faster(100_000, 100_000, 190, 5, 200, latency=0.09)
    assert not list_sweep_faster(100_000, 100_000, 190, 5, 200, latency=0.1)


def test_writes_sharing_the_burst_window_favour_search() -> None:
    """A first run of 100,000 deals (about 2,000 write calls): listing would take (1,000 + 2,000) / 19 =
    158 s, searching max(100 s, 2,500 / 19 = 132 s); an unchanged sweep writes nothing and lists."""
    writes = expected_writes(100_000)
    assert writes == 2_000
    assert not list_sweep_faster(100_000, 100_000, 190, 5, 200, writes=writes)
    assert list_sweep_faster(100_000, 100_000, 190, 5, 200, writes=expected_writes(0))


class ListingContractEnv:
    """The contract suite's view of a 450-deal sandbox whose connectors sweep through the list endpoint
    (story deals fit one page; these take several)."""

    def __init__(self, box: Any) -> None:
        self.box = box

    def connector(self) -> HubSpotConnector:
        context = ConnectorContext(
            "hs", {"access_token": self.box.info["hubspot"]["access_token"]}, self.box.clock.now, self.advance
        )
        settings = HubSpotSettings(host=self.box.info["hubspot"]["host"], deals_per_page=200, **LIMITS)
        return HubSpotConnector(settings, context)

    def now(self) -> Any:
        return self.box.clock.now()

    def advance(self, seconds: float) -> None:
        self.box.clock.advance(seconds)

    def edit_deal(self, deal_id: str, field: str, value: str) -> None:
        self.box.hubspot.update_deal(deal_id, {HubSpotSettings().prop(field): value})

    def write_calls(self) -> int:
        return sum(
            1
            for r in self.box.requests()
            if r["method"] in ("POST", "PATCH") and "/batch/" in r["path"] and not r["path"].endswith("/read")
        )

    def open_tasks(self, deal_id: str) -> int:
        return sum(
            1
            for t in self.box.hubspot.tasks()
            if t["properties"].get("bant_sync_key")
            and deal_id in t["associations"].get("deals", [])
            and t["properties"].get("hs_task_status") != "COMPLETED"
        )

    def open_deal_count(self) -> int:
        return len(_open_ids(self.box))

    def unknown_deal_id(self) -> str:
        return "987654321098"


class TestListingContract(ConnectorContract):
    """A connector whose full sweeps list passes the same contract suite, across several pages."""

    @pytest.fixture
    def connector_env(self, sb: Any) -> ListingContractEnv:
        env = ListingContractEnv(sb)
        connector = env.connector()
        connector.preflight()
        pages = list(connector.fetch_changed(None, full=True))
        assert len(pages) > 1 and _requests(sb, LIST_PATH), "the listing contract must list, over pages"
        sb.reset_requests()
        return env
