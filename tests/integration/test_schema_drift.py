"""Schema drift is drift at any moment (docs/design.md §6): a BANT input field deleted after preflight —
before the first page is read, or between two pages — ends the run failed with an error naming the field;
nothing of that page or a later one is written; no deal is flagged because of the field; and once the field
is restored the next run completes and leaves every deal as a run without drift would have.

The field is deleted by a hook on the connector's page stream, so the moment is exact whatever calls
preflight makes: right before the connector is asked for page N (for page 1, right after preflight)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.hubspot import HubSpotConnector
from connectors.hubspot.mapping import parse_datetime
from connectors.model import Cursor, Page
from connectors.salesforce.connector import SalesforceConnector
from sandbox import SandboxOptions
from tests.integration.conftest import Env, sandbox_env
from worker import exit_codes
from worker.cli.app import main

PAGE = 200
"""Deals per page on both CRMs: Salesforce's smallest query batch (200), HubSpot's largest search page."""
DEALS = 3 * PAGE
"""Synthetic open deals: three pages. (The track-selling story's 133 open deals fit one Salesforce page.)"""
FIELD = {"salesforce": ("Opportunity", "BANT_Budget__c"), "hubspot": ("deals", "bant_budget")}
UNQUALIFIED = {"needs_qualification", "poc_unqualified", "qualify_out"}


@pytest.fixture(params=["salesforce", "hubspot"])
def drift_env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    """Whole runs against a sandbox of DEALS open deals, read PAGE deals a page (one HubSpot search each)."""
    options = SandboxOptions(deals=DEALS, seed_value=7, enforce_rate_limits=False)
    with sandbox_env(str(request.param), tmp_path, options, PAGE) as env:
        yield env


def _delete_field(env: Env) -> None:
    obj, name = FIELD[env.crm]
    if env.crm == "salesforce":
        env.sb.salesforce.delete_field(obj, name)
    else:
        env.sb.hubspot.delete_property(obj, name)


def _restore_field(env: Env) -> None:
    obj, name = FIELD[env.crm]
    if env.crm == "salesforce":
        env.sb.salesforce.restore_field(obj, name)
    else:
        env.sb.hubspot.restore_property(obj, name)


def _drift_before_page(monkeypatch: pytest.MonkeyPatch, env: Env, page: int) -> None:
    """Delete the field once, right before the connector is asked for its `page`-th page (1-based)."""
    cls: Any = SalesforceConnector if env.crm == "salesforce" else HubSpotConnector
    original = cls.fetch_changed
    fired: list[bool] = []

    def fetch_changed(self: Any, cursor: Cursor | None, *, full: bool = False) -> Iterator[Page]:
        pages = original(self, cursor, full=full)
        number = 0
        while True:
            number += 1
            if number == page and not fired:
                fired.append(True)
                _delete_field(env)
            try:
                item = next(pages)
            except StopIteration:
                return
            yield item

    monkeypatch.setattr(cls, "fetch_changed", fetch_changed)


@dataclass(frozen=True)
class Expected:
    """What a run with the field in place does: each deal's status and the deals that get a task; and the
    open deals in the order the connector reads them, each with the cursor it had before the run."""

    status: dict[str, str]
    tasks: set[str]
    order: list[str]
    cursor: dict[str, Cursor]


def _read_positions(env: Env) -> dict[str, Cursor]:
    """Every open deal's (modified, id) position as the connector reads it (its cursor)."""
    if env.crm == "salesforce":
        return {
            str(r["Id"]): Cursor(r["SystemModstamp"], str(r["Id"]))  # type: ignore[arg-type]
            for r in env.sb.salesforce.records("Opportunity")
            if not r["IsClosed"]
        }
    found = {}
    for deal in env.sb.hubspot.deals():
        props: Any = deal["properties"]
        moment = parse_datetime(str(props["hs_lastmodifieddate"]))
        if props.get("hs_is_closed") != "true" and moment is not None:
            found[str(deal["id"])] = Cursor(moment, str(deal["id"]))
    return found


def _expected(env: Env) -> Expected:
    summary = env.run(mode="full", dry_run=True)
    assert summary.status == "succeeded", summary.error
    status = {p["deal_id"]: p["to"] for p in summary.planned if p["kind"] == "status"}
    tasks = {p["deal_id"] for p in summary.planned if p["kind"] == "task" and p["action"] == "create"}
    cursor = _read_positions(env)
    order = sorted(cursor, key=lambda i: (cursor[i].modified_at, int(i) if i.isdigit() else i))
    assert len(order) == DEALS and set(status) == set(order)
    stamps = [cursor[i].modified_at for i in order]
    assert all(stamps[k * PAGE - 1] != stamps[k * PAGE] for k in (1, 2)), "a page boundary splits a tie"
    return Expected(status, tasks, order, cursor)


def _shown(env: Env) -> tuple[dict[str, str], list[str]]:
    """Each deal's status as the CRM shows it (deals without one left out), and the deal of each open task."""
    statuses = {i: d["status"] for i, d in env.view.deals().items() if d["status"]}
    return statuses, [t["deal_id"] for t in env.view.tasks() if t["open"]]


@pytest.mark.parametrize("page", [1, 2], ids=["before-first-page", "before-middle-page"])
def test_a_field_deleted_mid_run_stops_before_its_page_and_flags_nothing(
    drift_env: Env, monkeypatch: pytest.MonkeyPatch, page: int
) -> None:
    """A BANT field deleted after preflight: the run fails naming it, no deal of that page or later gets a
    status or a task, whatever was written is what the field's real values give, the cursor never passes
    the pages before, and after a restore the next run ends exactly where a run without drift would."""
    env = drift_env
    expected = _expected(env)
    before = set(expected.order[: (page - 1) * PAGE])
    _drift_before_page(monkeypatch, env, page)

    summary = env.run()

    _obj, name = FIELD[env.crm]
    assert summary.status == "failed"
    assert summary.error and name in summary.error and "\n" not in summary.error, summary.error
    statuses, task_deals = _shown(env)
    assert set(statuses) <= before, "a deal of the drifted page or a later one got a status"
    assert set(task_deals) <= before, "a deal of the drifted page or a later one got a task"
    assert statuses == {i: expected.status[i] for i in statuses}
    cursor = env.worker.store.get_cursor(env.crm)
    if page == 1:
        assert cursor is None
    else:
        assert cursor is None or cursor <= expected.cursor[expected.order[(page - 1) * PAGE - 1]]

    _restore_field(env)
    again = env.run()

    assert again.status == "succeeded", again.error
    statuses, task_deals = _shown(env)
    assert statuses == expected.status
    assert sorted(task_deals) == sorted(expected.tasks)
    assert {statuses[d] for d in task_deals} <= UNQUALIFIED
    check = env.run(mode="full", dry_run=True)
    assert check.status == "succeeded" and check.planned == []


def test_pages_read_before_the_drift_are_written_and_checkpointed(
    drift_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drift before the middle page: the first page's statuses and tasks are all written and its cursor is
    checkpointed before the run fails, so the next run resumes after it."""
    env = drift_env
    expected = _expected(env)
    first = expected.order[:PAGE]
    _drift_before_page(monkeypatch, env, 2)

    summary = env.run()

    assert summary.status == "failed"
    statuses, task_deals = _shown(env)
    assert statuses == {i: expected.status[i] for i in first}
    assert sorted(task_deals) == sorted(d for d in first if d in expected.tasks)
    assert env.worker.store.get_cursor(env.crm) == expected.cursor[first[-1]]


def test_sync_cli_exits_1_with_one_line_naming_the_field(
    drift_env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bant-sync sync` when the field vanishes right after preflight: exit code 1 (the run failed) and
    one error line naming the field and what to do, and the run's log line at ERROR naming it too; no
    traceback."""
    env = drift_env
    env.worker.close()
    _drift_before_page(monkeypatch, env, 1)
    code = main(["--config", str(env.config), "--log-level", "error", "sync", "--connection", env.crm])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    _obj, name = FIELD[env.crm]
    assert code == exit_codes.FAILURE
    assert "Traceback" not in output
    logged = [line for line in output.splitlines() if line.startswith("{")]
    lines = [line for line in output.splitlines() if name in line and not line.startswith("{")]
    assert len(lines) == 1 and "error:" in lines[0], output
    assert "bant-sync setup" in lines[0]
    (finished,) = [json.loads(line) for line in logged if json.loads(line)["event"] == "run finished"]
    assert finished["level"] == "error" and name in finished["error"]
    assert _shown(env) == ({}, [])
