"""HubSpot closed-deal history (issue 13, "History from the CRM"): `closed_deals` against the sandbox through
the real hubspot-api-client — cohorts at entry, edits, fallback, entry stages, the API-call budget, retries,
and `record_url`."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from connectors.errors import SchemaDriftError
from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.hubspot.connector import ui_host
from connectors.hubspot.history import changes, closed_bounds, entered, value_at
from connectors.hubspot.mapping import deal_table, parse_datetime, to_deal
from connectors.hubspot.settings import DEFAULT_PROPERTIES
from connectors.model import ClosedDeal, HistoryWindow
from connectors.registry import ConnectorContext
from rules import Framework, Status, evaluate
from sandbox import FaultRule, Sandbox, SandboxOptions
from sandbox.hubspot.portal import PORTAL_ID
from sandbox.seeds.model import STAGES, SeedDeal
from sandbox.seeds.story import track_selling
from tests.sandbox.clients import START, hs_client
from worker.config.frameworks import load_framework

SEED = 7
TODAY = START.date()
WINDOW = HistoryWindow(TODAY - timedelta(days=400), TODAY)
HISTORY_READS = "/crm/v3/objects/deals/batch/read"
SEARCHES = "/crm/v3/objects/deals/search"
Cohorts = dict[bool, tuple[int, int]]


@pytest.fixture(scope="module")
def bant() -> Framework:
    return load_framework("bant")


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox.start(
        SandboxOptions(seed="track-selling", seed_value=SEED, enforce_rate_limits=False, start_time=START)
    )
    try:
        yield sandbox
    finally:
        errors = sandbox.server_errors()
        sandbox.stop()
        assert errors == []


@dataclass
class Harness:
    connector: HubSpotConnector
    slept: list[float] = field(default_factory=list)


def _harness(sb: Sandbox, **settings: Any) -> Harness:
    """A connector on the sandbox's clock; its sleep advances that clock (tests never wait)."""
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        sb.clock.advance(seconds)

    context = ConnectorContext(
        "hs", {"access_token": sb.info["hubspot"]["access_token"]}, sb.clock.now, sleep
    )
    base = {"host": sb.info["hubspot"]["host"], "burst_limit_per_10s": 10_000, "search_per_second": 1_000}
    connector = HubSpotConnector(HubSpotSettings(**{**base, **settings}), context)
    connector.preflight()
    return Harness(connector, slept)


def _closed(h: Harness, window: HistoryWindow = WINDOW) -> list[ClosedDeal]:
    return [deal for batch in h.connector.closed_deals(window) for deal in batch]


def _at_entry(closed: list[ClosedDeal]) -> list[tuple[Any, bool, date]]:
    """Each deal as it was at entry, judged as of its entry day (a timing date is judged by that day)."""
    return [(c.deal, c.won, c.entered_at.date()) for c in closed if c.entered_at is not None]


def _cohorts(deals: list[tuple[Any, bool, date]], bant: Framework) -> Cohorts:
    """POCs by qualified-or-not (the default framework, judged as of the given day, as the worker judges a
    deal as of its run's day): (how many, how many won)."""
    out: dict[bool, list[int]] = {True: [0, 0], False: [0, 0]}
    for deal, won, day in deals:
        if deal.deal_type != "poc":
            continue
        qualified = evaluate(deal, bant, day).status is Status.QUALIFIED
        out[qualified][0] += 1
        out[qualified][1] += int(won)
    return {k: (v[0], v[1]) for k, v in out.items()}


def _requests(sb: Sandbox, path: str) -> list[dict[str, Any]]:
    return [r for r in sb.requests() if r["crm"] == "hubspot" and r["path"] == path]


def _story() -> dict[str, SeedDeal]:
    return {d.name: d for d in track_selling(SEED, START).deals if not d.is_open}


def _seed_value(deal: SeedDeal, name: str, moment: datetime) -> str | None:
    """What the seed says `name` (budget.. or stage) held at `moment`: its value at close with every later
    change undone (independent of the connector's reading of HubSpot's history)."""
    value = str(deal.stage) if name == "stage" else getattr(deal, name)
    for change in reversed(deal.changes):
        if change.field == name and change.at > moment:
            value = change.old
    return value


def test_judged_at_entry_the_pocs_tell_the_seed_story(sb: Sandbox, bant: Framework) -> None:
    """Judged as they were at creation, the closed POCs are 65 unqualified (3 won) and 20 qualified (16
    won); every deal comes with its history (no fallback), entered at its createdate."""
    closed = _closed(_harness(sb))
    assert len(closed) == 85
    assert _cohorts(_at_entry(closed), bant) == {False: (65, 3), True: (20, 16)}
    assert all(c.fallback_fields == () for c in closed)
    created = {str(d["id"]): parse_datetime(d["properties"]["createdate"]) for d in sb.hubspot.deals()}
    assert all(c.entered_at is not None and c.entered_at == created[c.deal.id] for c in closed)
    assert {c.deal.stage for c in closed} == {STAGES[0][1]}
    assert all(c.closed_on == c.deal.close_date and WINDOW.closed_from <= c.closed_on for c in closed)


def test_values_at_close_tell_a_different_story(sb: Sandbox, bant: Framework) -> None:
    """The same deals judged by what they closed with, as of the same day (the seed filled in 14
    unqualified POCs and cleared a criterion on 4 qualified ones), give other cohorts: only history gives
    65/3 and 20/16."""
    table = deal_table(DEFAULT_PROPERTIES)
    at_close = [
        (
            to_deal(str(d["id"]), d["properties"], table),
            d["properties"]["hs_is_closed_won"] == "true",
            date.fromisoformat(d["properties"]["createdate"][:10]),
        )
        for d in sb.hubspot.deals()
        if d["properties"]["hs_is_closed"] == "true"
    ]
    cohorts = _cohorts(at_close, bant)
    assert cohorts == {False: (55, 5), True: (30, 14)}
    assert cohorts != {False: (65, 3), True: (20, 16)}


def test_an_api_edit_moves_the_value_only_when_made_before_the_entry_point(sb: Sandbox) -> None:
    """A budget written through the API after seeding is in the history: judged at creation the deal still
    shows its old budget; judged at a stage the deal entered after the edit, it shows the new one."""
    h = _harness(sb)
    hs = hs_client(sb)
    before = {c.deal.id: c for c in _closed(h)}
    deal_id = next(i for i, c in before.items() if c.deal.budget is not None)
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"bant_budget": "Edited 75000"}})
    sb.clock.advance(60)
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"dealstage": "decisionmakerboughtin"}})
    sb.clock.advance(60)
    hs.crm.deals.basic_api.update(deal_id, {"properties": {"dealstage": "closedwon"}})
    history = hs.crm.deals.basic_api.get_by_id(deal_id, properties_with_history=["bant_budget"])
    newest = history.properties_with_history["bant_budget"][0]
    assert (newest.value, newest.source_type) == ("Edited 75000", "API")

    after = {c.deal.id: c for c in _closed(h)}
    assert after[deal_id].deal.budget == before[deal_id].deal.budget != "Edited 75000"
    at_stage = {
        c.deal.id: c for c in _closed(h, HistoryWindow(WINDOW.closed_from, TODAY, "decisionmakerboughtin"))
    }
    assert at_stage[deal_id].deal.budget == "Edited 75000"
    assert at_stage[deal_id].deal.stage == "decisionmakerboughtin"
    assert at_stage[deal_id].won and at_stage[deal_id].entered_at is not None
    others = [c for i, c in at_stage.items() if i != deal_id]
    assert len(others) == 84 and all(c.entered_at is None for c in others)


def test_a_value_without_history_stands_in_at_close_and_is_named(sb: Sandbox) -> None:
    """A criterion with a value HubSpot holds no history for is read at close and listed in
    fallback_fields; the deal's other criteria still come from history."""
    h = _harness(sb)
    story = _story()
    changed = next(
        c for c in _closed(h) if any(ch.field == "budget" for ch in story[c.deal.name or ""].changes)
    )
    seed = story[changed.deal.name or ""]
    sb.hubspot.forget_history("deals", changed.deal.id, "bant_budget")
    again = next(c for c in _closed(h) if c.deal.id == changed.deal.id)
    assert again.fallback_fields == ("budget",)
    assert again.deal.budget == seed.budget != changed.deal.budget
    assert (again.deal.authority, again.deal.need) == (changed.deal.authority, changed.deal.need)


def test_entry_stage_reads_the_values_held_when_the_deal_entered_it(sb: Sandbox) -> None:
    """With an entry stage, each deal is judged when it first entered it (the seed's stage change), with
    the values the seed says it held then; a stage none of them reached leaves every one unentered."""
    story = _story()
    contract = STAGES[6][1]
    closed = _closed(_harness(sb), HistoryWindow(WINDOW.closed_from, TODAY, contract))
    assert len(closed) == 85
    moved = 0
    for c in closed:
        seed = story[c.deal.name or ""]
        entry = next(ch.at for ch in seed.changes if ch.field == "stage" and ch.new == "6")
        assert c.entered_at == entry and c.deal.stage == contract
        for name in ("budget", "authority", "need", "timing"):
            assert getattr(c.deal, name) == _seed_value(seed, name, entry), (c.deal.name, name)
        moved += any(
            _seed_value(seed, n, entry) != _seed_value(seed, n, seed.created) for n in ("budget", "need")
        )
    assert moved > 0
    never = _closed(_harness(sb), HistoryWindow(WINDOW.closed_from, TODAY, "decisionmakerboughtin"))
    assert len(never) == 85 and all(c.entered_at is None for c in never)


def test_a_window_leaves_out_deals_closed_outside_it(sb: Sandbox) -> None:
    """Only deals whose close date falls in the window (both ends inclusive) are read."""
    story = _story()
    days = sorted(d.close_date for d in story.values())
    middle = days[len(days) // 2]
    closed = _closed(_harness(sb), HistoryWindow(middle, days[-1]))
    assert len(closed) == sum(1 for d in days if d >= middle)
    assert {c.closed_on for c in closed} >= {middle, days[-1]}


def _add_closed_deals(sb: Sandbox, count: int, days: int = 300) -> None:
    """`count` more closed-lost deals created through the API, close dates spread over `days` days."""
    hs = hs_client(sb)
    for start in range(0, count, 100):
        inputs = [
            {
                "properties": {
                    "dealname": f"Archive deal {i}",
                    "dealstage": "closedlost",
                    "dealtype": "newbusiness",
                    "closedate": f"{(TODAY - timedelta(days=1 + i % days)).isoformat()}T00:00:00.000Z",
                    "bant_budget": "TBD",
                }
            }
            for i in range(start, min(count, start + 100))
        ]
        hs.crm.deals.batch_api.create({"inputs": inputs})


@pytest.mark.parametrize("extra", [0, 115, 315], ids=["85 deals", "200 deals", "400 deals"])
def test_the_calls_are_the_budget(sb: Sandbox, extra: int) -> None:
    """ceil(N/200) searches and ceil(N/50) history reads, nothing else (design §5)."""
    _add_closed_deals(sb, extra)
    h = _harness(sb)
    sb.reset_requests()
    before = h.connector.api_calls
    closed = _closed(h)
    n = 85 + extra
    assert len(closed) == n and len({c.deal.id for c in closed}) == n
    searches, reads = _requests(sb, SEARCHES), _requests(sb, HISTORY_READS)
    assert (len(searches), len(reads)) == (math.ceil(n / 200), math.ceil(n / 50))
    assert h.connector.api_calls - before == math.ceil(n / 200) + math.ceil(n / 50)
    assert len(sb.requests()) == len(searches) + len(reads)
    created = [c for c in closed if (c.deal.name or "").startswith("Archive deal")]
    assert all(c.deal.budget == "TBD" and not c.won and c.fallback_fields == () for c in created)


def test_deals_closed_on_one_day_cost_no_extra_search(sb: Sandbox) -> None:
    """A quarter end: 700 deals closed at midnight on one day. The read is keyed on deal ids, not close
    dates, so ties cost nothing: ceil(N/200) searches (sorted by close date, this took 2 or 3 searches per
    tied day, 1,341 instead of 500 for 100,000 deals)."""
    _add_closed_deals(sb, 700, days=1)
    h = _harness(sb)
    sb.reset_requests()
    closed = _closed(h)
    assert len(closed) == 785 and len({c.deal.id for c in closed}) == 785
    assert len(_requests(sb, SEARCHES)) == math.ceil(785 / 200)


@pytest.mark.parametrize("status", [429, 503])
def test_a_refused_history_read_is_sent_again(sb: Sandbox, bant: Framework, status: int) -> None:
    """A 429 or 5xx on batch/read is retried through the client seam (the wait on the sandbox's clock) and
    the result is whole."""
    h = _harness(sb)
    sb.reset_requests()
    sb.add_fault(
        FaultRule(
            kind="status", crm="hubspot", method="POST", path=r"/deals/batch/read$", status=status, times=1
        )
    )
    closed = _closed(h)
    assert _cohorts(_at_entry(closed), bant) == {False: (65, 3), True: (20, 16)}
    assert [r["status"] for r in _requests(sb, HISTORY_READS)] == [status, 200, 200]
    assert h.slept


def test_record_url_links_the_deal_in_the_portal(sb: Sandbox) -> None:
    """`https://app.hubspot.com/contacts/<portal>/record/0-3/<deal>`, the host from the portal's uiDomain."""
    h = _harness(sb)
    assert h.connector.record_url("10000000001") == (
        f"https://app.hubspot.com/contacts/{PORTAL_ID}/record/0-3/10000000001"
    )


@pytest.mark.parametrize(
    ("ui_domain", "api_host", "expected"),
    [
        ("app-eu1.hubspot.com", "https://api.hubapi.com", "app-eu1.hubspot.com"),
        (None, "https://api-eu1.hubapi.com", "app-eu1.hubspot.com"),
        (None, "https://api.hubapi.com", "app.hubspot.com"),
    ],
    ids=["portal says eu1", "eu1 api host", "default"],
)
def test_the_record_host_follows_the_data_centre(ui_domain: str | None, api_host: str, expected: str) -> None:
    assert ui_host(ui_domain, api_host) == expected


def test_history_reads_cover_every_window_day(sb: Sandbox) -> None:
    """A one-day window reads the deals closed that day, whatever time of day the close date holds."""
    story = _story()
    day = Counter(d.close_date for d in story.values()).most_common(1)[0][0]
    closed = _closed(_harness(sb), HistoryWindow(day, day))
    assert {c.closed_on for c in closed} == {day}
    assert len(closed) == sum(1 for d in story.values() if d.close_date == day)
    assert isinstance(day, date)


def _entry(value: str, timestamp: str) -> dict[str, str]:
    return {"value": value, "timestamp": timestamp, "sourceType": "API"}


@pytest.mark.parametrize(
    ("entries", "moment", "expected"),
    [
        ([], "2026-01-10T00:00:00Z", None),
        ([_entry("a", "2026-01-01T00:00:00.000Z")], "2026-01-01T00:00:00Z", "a"),
        ([_entry("a", "2026-01-02T00:00:00.000Z")], "2026-01-01T23:59:59Z", None),
        (
            [_entry("c", "2026-01-03T00:00:00.000Z"), _entry("b", "2026-01-02T00:00:00.000Z")],
            "2026-01-02T12:00:00Z",
            "b",
        ),
        (
            [_entry("b", "2026-01-02T00:00:00.000Z"), _entry("c", "2026-01-03T00:00:00.000Z")],
            "2026-01-04T00:00:00Z",
            "c",
        ),
        (
            [_entry("", "2026-01-02T00:00:00.000Z"), _entry("a", "2026-01-01T00:00:00.000Z")],
            "2026-01-03T00:00:00Z",
            None,
        ),
        (
            [_entry("a", "1767225600000"), {"value": "x", "timestamp": "not a time"}],
            "2026-01-02T00:00:00Z",
            "a",
        ),
    ],
    ids=["no history", "at the moment", "set later", "newest first", "oldest first", "cleared", "epoch ms"],
)
def test_the_value_at_a_moment_is_the_newest_entry_at_or_before_it(
    entries: list[dict[str, str]], moment: str, expected: str | None
) -> None:
    at = parse_datetime(moment)
    assert at is not None
    assert value_at(changes(entries), at) == expected


def test_a_stage_is_entered_at_its_first_entry() -> None:
    stages = changes(
        [
            _entry("closedwon", "2026-03-01T00:00:00.000Z"),
            _entry("contractsent", "2026-02-01T00:00:00.000Z"),
            _entry("qualifiedtobuy", "2026-01-15T00:00:00.000Z"),
            _entry("contractsent", "2026-01-10T00:00:00.000Z"),
        ]
    )
    assert entered(stages, "contractsent") == parse_datetime("2026-01-10T00:00:00Z")
    assert entered(stages, "appointmentscheduled") is None


def test_the_window_covers_whole_utc_days() -> None:
    since, until = closed_bounds(HistoryWindow(date(2026, 1, 1), date(2026, 1, 31)))
    assert since == parse_datetime("2026-01-01T00:00:00Z")
    assert until == parse_datetime("2026-01-31T23:59:59.999Z")


def test_a_criterion_property_gone_from_the_portal_stops_the_read(sb: Sandbox) -> None:
    """A mapped property HubSpot no longer returns is schema drift, not a deal with every value empty."""
    h = _harness(sb)
    sb.hubspot.delete_property("deals", "bant_need")
    with pytest.raises(SchemaDriftError) as caught:
        _closed(h)
    assert caught.value.fields == ("bant_need",)
