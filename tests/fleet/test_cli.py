"""`bant-sync worker`'s user errors: one message and a documented exit code, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
import structlog

from sandbox.fleet import SandboxFleet
from tests.fleet.conftest import fleet_config
from worker import exit_codes
from worker.cli.app import main


def run(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    saved = structlog.get_config()
    try:
        code = main(["--config", str(config), "--log-level", "error", "worker", *args])
    finally:
        structlog.configure(**saved)
    return code, capsys.readouterr().err


def test_sqlite_state_store_is_a_config_error(
    sandbox_fleet: SandboxFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(fleet_config(sandbox_fleet, tmp_path / "fleet.toml"), capsys)
    assert code == exit_codes.CONFIG
    assert "set state.url to a PostgreSQL URL" in err and "Traceback" not in err


def test_bad_options_are_usage_errors(
    sandbox_fleet: SandboxFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = fleet_config(sandbox_fleet, tmp_path / "fleet.toml", state_url="postgresql://127.0.0.1:1/none")
    code, err = run(config, capsys, "--tick-seconds", "7")
    assert code == exit_codes.USAGE and "--tick-seconds: tick seconds must divide 60, not 7" in err
    code, err = run(config, capsys, "--concurrency", "0")
    assert code == exit_codes.USAGE and "--concurrency must be at least 1" in err
