"""`bant-sync unlock` end to end through the CLI: exit 5 naming a live holder, exit 0 releasing a dead
one (a real process that has exited), and `unlock` in the help."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker import exit_codes
from worker.cli.app import main
from worker.state import StateStore
from worker.state.leases import this_process
from worker.state.model import Holder

TTL = timedelta(seconds=60)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[state]\ndir = "{tmp_path}"\n\n[connections.portal]\ncrm = "hubspot"\nauth = "private_app"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("BANT_SYNC_CONNECTIONS__PORTAL__ACCESS_TOKEN", "pat-test")
    return path


def _store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path}/state.db")


def test_unlock_refuses_a_live_holder_and_names_it(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """This test process holds the lease: unlock exits 5 naming run, host and pid, and the lease stays."""
    store = _store(tmp_path)
    try:
        store.acquire_lease("portal", "run-live", datetime.now(UTC), TTL)
        assert main(["--config", str(config), "unlock", "portal"]) == exit_codes.LEASE_HELD
        err = capsys.readouterr().err
        assert "refusing to unlock connection 'portal': run run-live" in err
        assert f"host {socket.gethostname()}, pid {os.getpid()}" in err
        assert store.lease_holder("portal", datetime.now(UTC)) is not None
    finally:
        store.close()


def test_unlock_releases_the_lease_of_a_process_that_died(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The holder is a real process of this host that has exited: unlock exits 0 and the lease is free."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    here = this_process()
    store = _store(tmp_path)
    try:
        dead = Holder(here.host, gone.pid, here.namespace, "dead-process")
        store.acquire_lease("portal", "run-dead", datetime.now(UTC), TTL, me=dead)
        assert main(["--config", str(config), "unlock", "portal"]) == exit_codes.OK
        out = capsys.readouterr().out
        assert f"held by run run-dead (host {here.host}, pid {gone.pid}" in out
        assert store.recorded_lease("portal") is None
        assert main(["--config", str(config), "unlock", "portal"]) == exit_codes.OK
        assert "the lease is free" in capsys.readouterr().out
    finally:
        store.close()


def test_unlock_is_listed_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "unlock" in capsys.readouterr().out


def test_status_names_the_lease_holders_process_and_heartbeat(
    tmp_path: Path, config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`status` (and `status --json`) show who holds the lease: run, host, pid and last heartbeat, so a
    person can tell a live run from a dead one before reaching for `unlock`."""
    store = _store(tmp_path)
    try:
        store.acquire_lease("portal", "run-live", datetime.now(UTC), TTL)
        assert main(["--config", str(config), "status"]) == exit_codes.OK
        out = capsys.readouterr().out
        assert f"held by run run-live on {socket.gethostname()} pid {os.getpid()} until " in out
        assert "last heartbeat " in out
        assert main(["--config", str(config), "status", "--json"]) == exit_codes.OK
        text = capsys.readouterr().out
        [report] = [c for c in json.loads(text)["connections"] if c["connection"] == "portal"]
        holder = report["lease_holder"]
        assert (holder["run_id"], holder["host"], holder["pid"]) == (
            "run-live",
            socket.gethostname(),
            os.getpid(),
        )
        assert holder["heartbeat_at"] is not None
    finally:
        store.close()
