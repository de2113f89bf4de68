"""Salesforce closed-deal history against the sandbox: criteria rebuilt at the entry point from field
history, judged by the default framework; fallbacks, entry stages, edits made later, and the API budget."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest

from connectors.model import ClosedDeal, HistoryWindow
from rules import evaluate
from rules.model import Deal
from sandbox import FaultRule, Sandbox, SandboxOptions
from sandbox.seeds import build_story
from sandbox.seeds.model import STAGES, SeedDeal
from tests.connectors.sf_sandbox_support import SfSandboxEnv, bant
from tests.sandbox.clients import START, sf_client

CRITERIA = ("budget", "authority", "need", "timing")
SF_FIELDS = dict(
    zip(CRITERIA, ("BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timing__c"), strict=True)
)
CLOSED_POCS = 85


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    options = SandboxOptions(seed="track-selling", enforce_rate_limits=False, start_time=START)
    with Sandbox.start(options) as sandbox:
        yield sandbox
        assert sandbox.server_errors() == []


@pytest.fixture
def env(sb: Sandbox) -> SfSandboxEnv:
    return SfSandboxEnv(sb)


def _window(env: SfSandboxEnv, entry_stage: str | None = None) -> HistoryWindow:
    today = env.now().date()
    return HistoryWindow(today - timedelta(days=400), today, entry_stage)


def _read(env: SfSandboxEnv, window: HistoryWindow) -> tuple[list[ClosedDeal], int]:
    """Every closed deal of the window, and the API calls closed_deals made (after preflight)."""
    connector = env.connector()
    connector.preflight()
    before = connector.api_calls
    deals = [d for page in connector.closed_deals(window) for d in page]
    return deals, connector.api_calls - before


def _cohorts(deals: list[ClosedDeal]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(unqualified POCs, won among them), (qualified POCs, won among them): each judged by the default
    framework as the worker judges a deal, as of the day it entered (a timing date is past or not then)."""
    framework = bant()
    pocs = [d for d in deals if d.deal.deal_type == "POC"]
    unqualified = [d for d in pocs if evaluate(d.deal, framework, _day(d)).status.is_unqualified]
    qualified = [d for d in pocs if d not in unqualified]
    return (
        (len(unqualified), sum(d.won for d in unqualified)),
        (len(qualified), sum(d.won for d in qualified)),
    )


def _day(closed: ClosedDeal) -> date:
    return closed.entered_at.date() if closed.entered_at is not None else closed.closed_on


def _story(sb: Sandbox) -> dict[str, SeedDeal]:
    """The seed's closed deals by name: what each held at every moment (the oracle the history must match)."""
    story = build_story("track-selling", sb.options.seed_value, sb.options.deals, START)
    return {d.name: d for d in story.deals if not d.is_open}


def _values_at(deal: SeedDeal, moment: datetime | None) -> dict[str, str | None]:
    """The seed deal's criteria at `moment` (None: at close): every change made after it undone."""
    values = {c: getattr(deal, c) for c in CRITERIA}
    for change in reversed(deal.changes):
        if moment is not None and change.at > moment and change.field in CRITERIA:
            values[change.field] = change.old
    return values


def _criteria(deal: Deal) -> dict[str, object]:
    return {c: getattr(deal, c) for c in CRITERIA}


def test_judged_at_entry_the_closed_pocs_tell_the_story(env: SfSandboxEnv) -> None:
    """Judged by what their fields held when each POC started, 65 were unqualified (3 won) and 20
    qualified (16 won); every value comes from history (no fallback), entered_at is the creation time and
    the stage the one the deal was created at."""
    deals, _ = _read(env, _window(env))
    assert len(deals) == CLOSED_POCS
    assert _cohorts(deals) == ((65, 3), (20, 16))
    assert all(d.fallback_fields == () for d in deals)
    assert {d.deal.stage for d in deals} == {"Prospecting"}
    seeded = _story(env.sb)
    for closed in deals:
        seed = seeded[str(closed.deal.name)]
        assert closed.entered_at == seed.created
        assert _criteria(closed.deal) == _values_at(seed, seed.created)
        assert closed.closed_on == seed.close_date and closed.won is (seed.stage == 8)


def test_values_at_close_tell_another_story(env: SfSandboxEnv) -> None:
    """With no BANT field tracked, the values at close stand in (each deal names all four as fallback):
    55 unqualified (5 won) and 30 qualified (14 won), since 14 POCs had BANT filled in and 4 one cleared."""
    for name in SF_FIELDS.values():
        env.sb.salesforce.set_history_tracking("Opportunity", name, False)
    deals, _ = _read(env, _window(env))
    assert _cohorts(deals) == ((55, 5), (30, 14))
    assert {d.fallback_fields for d in deals} == {CRITERIA}
    seeded = _story(env.sb)
    assert all(_criteria(d.deal) == _values_at(seeded[str(d.deal.name)], None) for d in deals)


def test_an_untracked_field_stands_at_its_value_at_close(env: SfSandboxEnv) -> None:
    """BANT_Need__c untracked: `need` is named in fallback_fields and holds the value at close on every
    deal, while the tracked criteria are still rebuilt at entry."""
    env.sb.salesforce.set_history_tracking("Opportunity", "BANT_Need__c", False)
    deals, _ = _read(env, _window(env))
    seeded = _story(env.sb)
    need_moved = 0
    for closed in deals:
        seed = seeded[str(closed.deal.name)]
        at_entry, at_close = _values_at(seed, seed.created), _values_at(seed, None)
        assert closed.fallback_fields == ("need",)
        assert closed.deal.need == at_close["need"]
        assert {c: v for c, v in _criteria(closed.deal).items() if c != "need"} == {
            c: v for c, v in at_entry.items() if c != "need"
        }
        need_moved += at_entry["need"] != at_close["need"]
    assert need_moved > 0


def test_entry_stage_judges_each_deal_when_it_first_entered_the_stage(env: SfSandboxEnv) -> None:
    """entry_stage 'Value Proposition': entered_at is when each deal first entered it (OpportunityHistory),
    the criteria what they held then (edits made the same moment or before count), the stage that one;
    a deal that went straight from Prospecting to Closed Lost never entered it: entered_at None."""
    sf = sf_client(env.sb)
    owner = env.sb.salesforce.default_owner_id
    today = env.now().date().isoformat()
    skipped = sf.Opportunity.create(
        {"Name": "Straight Through", "StageName": "Prospecting", "CloseDate": today, "OwnerId": owner}
    )["id"]
    env.advance(60)
    sf.Opportunity.update(skipped, {"StageName": "Closed Lost"})
    stage = STAGES[3][0]
    deals, calls = _read(env, _window(env, stage))
    by_name = {str(d.deal.name): d for d in deals}
    assert by_name["Straight Through"].entered_at is None
    seeded = _story(env.sb)
    moved = 0
    for name, seed in seeded.items():
        entered = next(c.at for c in seed.changes if c.field == "stage" and c.new == "3")
        closed = by_name[name]
        assert closed.entered_at == entered and closed.deal.stage == stage
        assert _criteria(closed.deal) == _values_at(seed, entered)
        moved += _values_at(seed, entered) != _values_at(seed, seed.created)
    assert moved > 0, "no seeded change falls between creation and the stage entry"
    assert calls == 1 + 1 + 1 + 1


def test_an_edit_through_the_api_moves_the_rebuilt_value(env: SfSandboxEnv) -> None:
    """An opportunity created through the API with Budget 'TBD', given a real budget in the same save that
    moves it to Value Proposition, then won: judged at creation its budget is 'TBD', at the stage entry
    the real one. A seeded closed deal edited after it closed keeps its value at entry."""
    sf = sf_client(env.sb)
    owner = env.sb.salesforce.default_owner_id
    today = env.now().date().isoformat()
    made = sf.Opportunity.create(
        {
            "Name": "Late Budget Co",
            "StageName": "Prospecting",
            "Type": "POC",
            "CloseDate": today,
            "OwnerId": owner,
            "BANT_Budget__c": "TBD",
        }
    )["id"]
    env.advance(3600)
    sf.Opportunity.update(made, {"BANT_Budget__c": "$90k approved in FY27", "StageName": "Value Proposition"})
    env.advance(3600)
    sf.Opportunity.update(made, {"StageName": "Closed Won"})
    seeded_id = next(o["Id"] for o in env.sb.salesforce.records("Opportunity") if o["IsClosed"])
    unedited = {d.deal.id: d.deal.authority for d in _read(env, _window(env))[0]}[seeded_id]
    env.advance(60)
    sf.Opportunity.update(seeded_id, {"BANT_Authority__c": "Someone new (CFO)"})

    at_creation = {d.deal.id: d for d in _read(env, _window(env))[0]}
    assert at_creation[made].deal.budget == "TBD" and at_creation[made].won
    assert at_creation[made].deal.stage == "Prospecting"
    assert at_creation[seeded_id].deal.authority == unedited != "Someone new (CFO)"
    at_stage = {d.deal.id: d for d in _read(env, _window(env, "Value Proposition"))[0]}
    assert at_stage[made].deal.budget == "$90k approved in FY27"
    assert at_stage[seeded_id].deal.authority != "Someone new (CFO)"
    assert at_creation[made].fallback_fields == () == at_stage[made].fallback_fields


def test_api_calls_equal_the_budget(env: SfSandboxEnv) -> None:
    """ceil(N/2000) + ceil(N/200) + 1 calls (FieldDefinition, closed deals, field history), and ceil(N/200)
    more with an entry stage: 3 and 4 for the 85 closed POCs; the sandbox saw the same requests."""
    n = CLOSED_POCS
    env.sb.reset_requests()
    deals, calls = _read(env, _window(env))
    assert len(deals) == n
    assert calls == math.ceil(n / 2000) + math.ceil(n / 200) + 1 == 3
    queries = [r for r in env.requests() if "/query" in str(r["path"])]
    texts = [str((r.get("query") or {}).get("q", "")) for r in queries]
    assert [t.split(" FROM ")[1].split()[0] for t in texts if " FROM " in t][-3:] == [
        "FieldDefinition",
        "Opportunity",
        "OpportunityFieldHistory",
    ]
    _, calls = _read(env, _window(env, "Value Proposition"))
    assert calls == math.ceil(n / 2000) + 2 * math.ceil(n / 200) + 1 == 4


def test_the_window_bounds_the_close_date(env: SfSandboxEnv) -> None:
    """Only deals closed between closed_from and closed_to (both inclusive) are read."""
    closed = [o for o in env.sb.salesforce.records("Opportunity") if o["IsClosed"]]
    dates = sorted(o["CloseDate"] for o in closed)
    low, high = dates[10], dates[40]
    deals, _ = _read(env, HistoryWindow(low, high))
    expected = sum(1 for o in closed if low <= o["CloseDate"] <= high)
    assert len(deals) == expected and all(low <= d.closed_on <= high for d in deals)
    empty, _ = _read(env, HistoryWindow(date(2000, 1, 1), date(2000, 12, 31)))
    assert empty == []


def test_a_refused_field_definition_read_falls_back_to_values_at_close(env: SfSandboxEnv) -> None:
    """An org that refuses the FieldDefinition read (INSUFFICIENT_ACCESS): no crash; every deal is yielded
    with all criteria and its stage at close, each named in fallback_fields."""
    connector = env.connector()
    connector.preflight()
    env.sb.add_fault(
        FaultRule(kind="error_code", crm="salesforce", path="/query", nth=1, error_code="INSUFFICIENT_ACCESS")
    )
    deals = [d for page in connector.closed_deals(_window(env)) for d in page]
    assert len(deals) == CLOSED_POCS
    assert {frozenset(d.fallback_fields) for d in deals} == {frozenset((*CRITERIA, "stage"))}
    assert _cohorts(deals) == ((55, 5), (30, 14))


def test_record_url_is_the_lightning_page_on_the_instance_host(env: SfSandboxEnv) -> None:
    """record_url links the Opportunity's Lightning record page on the authenticated instance's host."""
    connector = env.connector()
    connector.preflight()
    host = str(env.settings().instance_url).removeprefix("https://")
    deal_id = "0065g0009cs2q3KAAQ"
    assert connector.record_url(deal_id) == f"https://{host}/lightning/r/Opportunity/{deal_id}/view"


def test_paging_and_chunking_at_scale_stay_within_the_budget() -> None:
    """4,100 closed deals: 3 pages of closed opportunities, 21 field-history chunks of at most 200 ids
    (each URL under 16,384 bytes) and 21 stage-history chunks with an entry stage: the calls equal
    ceil(N/2000) + ceil(N/200) + 1, and ceil(N/200) more; every deal read once."""
    options = SandboxOptions(deals=10, closed_deals=4100, enforce_rate_limits=False, start_time=START)
    with Sandbox.start(options) as sandbox:
        env = SfSandboxEnv(sandbox)
        n = sum(1 for o in sandbox.salesforce.records("Opportunity") if o["IsClosed"])
        assert n == 4100
        deals, calls = _read(env, _window(env, None))
        ids = [d.deal.id for d in deals]
        assert len(ids) == len(set(ids)) == n
        assert calls == math.ceil(n / 2000) + math.ceil(n / 200) + 1 == 25
        sandbox.reset_requests()
        deals, calls = _read(env, _window(env, STAGES[3][0]))
        assert len(deals) == n and all(d.entered_at is not None for d in deals)
        assert calls == math.ceil(n / 2000) + 2 * math.ceil(n / 200) + 1 == 46
        urls = [len(str(r["path"])) + len(str((r.get("query") or {}).get("q", ""))) for r in env.requests()]
        assert max(urls) < 16_384
        assert sandbox.server_errors() == []
