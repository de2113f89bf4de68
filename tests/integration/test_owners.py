"""Owners by name, whole runs on both CRMs: the full sweep keeps the owners cache a day fresh, a failed
read never fails the run, `sync --owner` takes an e-mail and `status` shows names."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from connectors.errors import TransientError
from connectors.salesforce import SalesforceConnector
from sandbox import FaultRule
from tests.integration.conftest import Env, cli
from worker import exit_codes
from worker.sync.run_model import RunSummary


def owner_reads(env: Env) -> int:
    """The owners reads in the sandbox's request log (HubSpot's owners API, a SOQL query of User)."""
    return sum(
        1
        for r in env.sb.requests()
        if "/crm/v3/owners" in str(r["path"]) or "FROM User" in str((r.get("query") or {}).get("q", ""))
    )


def seeded_owners(env: Env) -> dict[str, tuple[str, str]]:
    """The sandbox's owners as {id: (name, e-mail)}."""
    if env.crm == "salesforce":
        users = env.sb.salesforce.records("User")
        return {str(u["Id"]): (str(u["Name"]), str(u["Email"])) for u in users}
    return {
        str(o["id"]): (f"{o['firstName']} {o['lastName']}", str(o["email"])) for o in env.sb.hubspot.owners
    }


def refreshed_during(refreshed: datetime | None, run: RunSummary) -> bool:
    """The cache was refreshed by this run (the worker's clock moves on while a run goes)."""
    assert refreshed is not None and run.finished_at is not None
    return datetime.fromisoformat(run.started_at) <= refreshed <= datetime.fromisoformat(run.finished_at)


def test_a_full_sweep_fills_the_owners_cache_and_reads_it_again_a_day_later(env: Env) -> None:
    """The first full sweep reads the owners (counted in its API calls); a second one the same day does
    not; incremental runs never do; the first full sweep a day later reads them again."""
    store, connection = env.worker.store, env.crm
    env.sb.reset_requests()
    first = env.run("full")
    assert first.status == "succeeded", first.error
    reads = owner_reads(env)
    assert reads >= 1
    assert first.api_calls >= reads
    cached = {o.id: (o.name, o.email) for o in store.owners(connection)}
    assert cached == seeded_owners(env)
    assert refreshed_during(store.owners_refreshed_at(connection), first)

    env.sb.reset_requests()
    assert env.run("full").status == "succeeded"
    assert env.run("incremental").status == "succeeded"
    assert owner_reads(env) == 0

    env.advance_days(1)
    env.sb.reset_requests()
    later = env.run("full")
    assert later.status == "succeeded"
    assert owner_reads(env) == reads
    assert refreshed_during(store.owners_refreshed_at(connection), later)


def test_a_failed_owners_read_is_a_warning_and_the_run_goes_on(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CRM refusing the owners read leaves the cache as it was and the run succeeds."""
    if env.crm == "hubspot":
        env.sb.add_fault(FaultRule(kind="status", status=403, crm="hubspot", path="/crm/v3/owners"))
    else:

        def refuse(self: SalesforceConnector) -> list[Any]:
            raise TransientError("Salesforce 503 SERVER_UNAVAILABLE")

        monkeypatch.setattr(SalesforceConnector, "owners", refuse)
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    assert summary.deals["read"] > 0
    assert env.worker.store.owners(env.crm) == []


def _owner_with_open_deals(env: Env) -> tuple[str, str, int]:
    """(id, e-mail, open deal count) of a seeded owner holding open deals."""
    deals = [d for d in env.view.deals().values() if d["open"] and d["owner"]]
    owner = str(deals[0]["owner"])
    return owner, seeded_owners(env)[owner][1], sum(1 for d in deals if d["owner"] == owner)


def test_sync_owner_takes_an_email_in_any_case(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """An e-mail no cache knows yet: the owners are read once, then the run resyncs that owner's deals."""
    owner, email, count = _owner_with_open_deals(env)
    env.sb.reset_requests()
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--owner", email.upper(), "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["mode"], summary["scope"], summary["status"]) == ("owner", owner, "succeeded")
    assert summary["deals"]["read"] == count
    reads = owner_reads(env)
    assert reads >= 1
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--owner", email, "--json")
    assert code == 0 and json.loads(out)["scope"] == owner, err
    assert owner_reads(env) == reads, "a cached e-mail reads no owners"


def test_an_unknown_owner_email_names_the_closest_one(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """A mistyped e-mail: one read of the owners, then one usage message naming the close match."""
    _owner, email, _count = _owner_with_open_deals(env)
    typo = email.replace("@", "x@", 1)
    code, out, err = cli(env, capsys, "sync", "--connection", env.crm, "--owner", typo)
    assert code == exit_codes.USAGE
    assert "Traceback" not in out + err
    assert typo in err and f"did you mean {email.lower()!r}" in err, err
    assert env.worker.store.list_runs(env.crm) == [], "a typo starts no run"


def test_status_shows_unqualified_deals_by_owner_name(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    """Before any full sweep status shows owner ids; after one, names (and e-mails in --json)."""
    assert env.run("incremental").status == "succeeded"
    known = seeded_owners(env)
    code, out, _err = cli(env, capsys, "status", "--connection", env.crm, "--json")
    rows = json.loads(out)["connections"][0]["unqualified_by_owner"]
    assert code == 0 and rows and all(r["name"] is None and r["email"] is None for r in rows)
    code, text, _err = cli(env, capsys, "status", "--connection", env.crm)
    assert f"unqualified by owner: {rows[0]['owner_id']} {rows[0]['unqualified']}" in text

    assert env.run("full").status == "succeeded"
    code, out, _err = cli(env, capsys, "status", "--connection", env.crm, "--json")
    named = json.loads(out)["connections"][0]["unqualified_by_owner"]
    assert [r["unqualified"] for r in named] == sorted((r["unqualified"] for r in named), reverse=True)
    for row in named:
        assert (row["name"], row["email"]) == known[row["owner_id"]]
    code, text, _err = cli(env, capsys, "status", "--connection", env.crm)
    top = named[0]
    assert f"unqualified by owner: {top['name']} {top['unqualified']}" in text
    assert top["owner_id"] not in text.split("unqualified by owner:")[1].splitlines()[0]
