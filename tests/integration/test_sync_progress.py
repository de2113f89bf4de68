"""The progress of a sync run: the total the CRM gives (asked only by a display that wants it, at its API
cost: Salesforce one COUNT() query, HubSpot none), and `sync`'s progress bar on a terminal (rich), absent
when stderr is not one."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from tests.integration.conftest import Env, cli
from worker.cli import sync as sync_cli
from worker.cli.sync import SyncProgress
from worker.sync.run_model import RunRequest, RunSummary

EXTRA_CALLS = {"salesforce": 1, "hubspot": 0}
"""API calls a run makes for its total: Salesforce's `SELECT COUNT()`; HubSpot's total comes with the
first search the pull makes anyway (or the open-deal count a full sweep makes to pick its endpoint)."""

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Display:
    """A ProgressDisplay that records what the run tells it."""

    def __init__(self, wants_total: bool) -> None:
        self.wants_total = wants_total
        self.started: list[int | None] = []
        self.pages: list[tuple[int, int]] = []

    def start(self, total: int | None) -> None:
        self.started.append(total)

    def __call__(self, read: int, written: int) -> None:
        self.pages.append((read, written))


def _run(env: Env, mode: str, progress: object = None, dry_run: bool = False) -> RunSummary:
    summary = env.worker.run(RunRequest(env.crm, mode=mode, dry_run=dry_run), progress=progress)  # type: ignore[arg-type]
    assert summary.status == "succeeded", summary.error
    return summary


def _open_deals(env: Env) -> int:
    return sum(1 for deal in env.view.deals().values() if deal["open"])


def test_a_display_that_wants_the_total_gets_the_deals_the_run_reads(env: Env) -> None:
    """A full sweep's total is every open deal; an incremental run's, after edits, the deals it then reads
    from its cursor; both are told once, after preflight, before the first page."""
    display = Display(wants_total=True)
    summary = _run(env, "full", display)
    assert display.started == [summary.deals["read"]] == [_open_deals(env)]
    assert display.pages and display.pages[-1][0] == summary.deals["read"]
    env.advance_days(1)
    env.run()
    env.advance_days(1)
    flagged = [i for i, d in env.view.deals().items() if d["open"] and d["status"] == "poc_unqualified"]
    for deal_id in flagged[:3]:
        env.view.fix_bant(deal_id)
    display = Display(wants_total=True)
    summary = _run(env, "incremental", display)
    assert summary.deals["read"] >= 3
    assert display.started == [summary.deals["read"]]
    assert summary.deals["written"] >= 3


def test_the_total_costs_one_salesforce_call_and_no_hubspot_call_only_when_wanted(env: Env) -> None:
    """Runs without a display, with a plain hook, or with a display that wants no total make the same API
    calls; a display that wants the total adds Salesforce's COUNT() query and nothing on HubSpot."""
    _run(env, "full", dry_run=True)  # the owners are read once, by the first sweep
    calls = {"none": _run(env, "full", dry_run=True).api_calls}
    pages: list[tuple[int, int]] = []
    calls["hook"] = _run(env, "full", lambda read, written: pages.append((read, written)), True).api_calls
    quiet = Display(wants_total=False)
    calls["no total"] = _run(env, "full", quiet, dry_run=True).api_calls
    wanting = Display(wants_total=True)
    calls["total"] = _run(env, "full", wanting, dry_run=True).api_calls
    assert pages and quiet.started == [None] and wanting.started == [_open_deals(env)]
    base = calls["none"]
    assert calls == {"none": base, "hook": base, "no total": base, "total": base + EXTRA_CALLS[env.crm]}
    for mode in ("incremental", "deal"):
        assert _run(env, "full") and env.view.deals()
        deal_id = next(i for i, d in env.view.deals().items() if d["open"])
        extra = {"deal_id": deal_id} if mode == "deal" else {}
        plain = env.worker.run(RunRequest(env.crm, mode=mode, **extra)).api_calls  # type: ignore[arg-type]
        display = Display(wants_total=True)
        counted = env.worker.run(RunRequest(env.crm, mode=mode, **extra), progress=display)  # type: ignore[arg-type]
        added = EXTRA_CALLS[env.crm] if mode == "incremental" else 0
        assert counted.api_calls == plain + added, mode
        assert display.started == ([counted.deals["read"]] if mode == "incremental" else [None])


def _terminal(monkeypatch: pytest.MonkeyPatch) -> io.StringIO:
    """Make `sync` believe stderr is a terminal: its bar is drawn into the returned buffer."""
    screen = io.StringIO()
    monkeypatch.setattr(
        sync_cli, "stderr_console", lambda: Console(file=screen, force_terminal=True, width=120)
    )
    return screen


def test_sync_draws_a_bar_with_the_total_on_a_terminal(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal `sync --full` draws the connection, `N of TOTAL deals`, the rate and time left, on
    stderr; stdout holds the summary alone."""
    screen = _terminal(monkeypatch)
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--full")
    assert code in (0, 7), err
    total = _open_deals(env)
    drawn = ANSI.sub("", screen.getvalue())
    assert f"{total:,} of {total:,} deals" in drawn
    assert f"0 of {total:,} deals" in drawn
    assert env.crm in drawn and "deals/s" in drawn
    assert "━" not in out and "deals/s" not in out and "deals/s" not in err
    assert out.startswith(f"{env.crm}: full run ")
    assert f"read {total:,}" in out


def test_sync_shows_nothing_when_stderr_is_not_a_terminal_or_with_json(
    env: Env, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a terminal (pytest's captured stderr): no bar, and no count call. `--json`, even on a terminal:
    no bar either, and stdout is exactly one JSON object."""
    _run(env, "full", dry_run=True)  # the owners are read once, by the first sweep
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--full", "--dry-run", "--json")
    first = json.loads(out)
    assert code == 0, err
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--full", "--dry-run")
    assert code == 0 and "deals/s" not in err + out and "━" not in err + out
    assert f"api calls {first['api_calls']:,}\n" in out
    screen = _terminal(monkeypatch)
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--full", "--dry-run", "--json")
    assert code == 0 and screen.getvalue() == "" and "deals/s" not in err
    again = json.loads(out)
    assert again["api_calls"] == first["api_calls"]
    assert again["deals"] == first["deals"]


def test_the_bar_without_a_total_counts_deals_read_and_grows_a_short_total() -> None:
    """No total from the CRM: an indeterminate bar counting deals read; a total the run outgrows (deals
    changed after the count) grows with it; a bar that is not shown asks for no total, and neither does
    one on a console that is not a terminal."""
    screen = io.StringIO()
    bar = SyncProgress("acme", Console(file=screen, force_terminal=True, width=120))
    assert bar.wants_total
    bar.start(None)
    bar(250, 10)
    bar.done()
    assert "250 deals read" in ANSI.sub("", screen.getvalue())
    screen = io.StringIO()
    bar = SyncProgress("[red]acme", Console(file=screen, force_terminal=True, width=120))
    bar.start(100)
    bar(120, 0)
    bar.done()
    drawn = ANSI.sub("", screen.getvalue())
    assert "120 of 120 deals" in drawn and "[red]acme" in drawn, "the name is shown as it is, not as markup"
    hidden = SyncProgress("acme", None)
    assert not hidden.wants_total
    hidden.start(5)
    hidden(1, 1)
    hidden.done()
    piped = io.StringIO()
    assert not SyncProgress("acme", Console(file=piped)).wants_total
