"""Which runs a tick defers: a pure function of the settings and the tick's timestamp."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandbox.fleet import SandboxFleet
from tests.fleet.conftest import fleet_config
from worker.config.loader import load_settings
from worker.errors import ConfigError
from worker.fleet.due import DueRun, check_schedules, due_runs
from worker.state.model import RunMode


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


def test_incremental_every_n_minutes_and_the_nightly_sweep(
    sandbox_fleet: SandboxFleet, tmp_path: Path
) -> None:
    config = fleet_config(
        sandbox_fleet, tmp_path / "fleet.toml", every_minutes=15, full_sweep_cron="0 2 * * *"
    )
    settings = load_settings(str(config), environ={})
    names = list(settings.connections)
    assert due_runs(settings, ts("2026-12-01 10:15:00")) == [DueRun(n, RunMode.INCREMENTAL) for n in names]
    assert due_runs(settings, ts("2026-12-01 10:16:00")) == []
    assert due_runs(settings, ts("2026-12-01 10:29:00")) == []
    # 02:00 is both an incremental minute and the sweep: the sweep alone is deferred.
    assert due_runs(settings, ts("2026-12-01 02:00:00")) == [DueRun(n, RunMode.FULL) for n in names]


def test_a_shortened_minute_for_tests(sandbox_fleet: SandboxFleet, tmp_path: Path) -> None:
    config = fleet_config(sandbox_fleet, tmp_path / "fleet.toml", every_minutes=2)
    settings = load_settings(str(config), environ={})
    due = [bool(due_runs(settings, t, minute_seconds=5)) for t in range(1_000_000_000, 1_000_000_030, 5)]
    assert due == [True, False, True, False, True, False]


def test_a_bad_cron_line_is_a_config_error_at_start(sandbox_fleet: SandboxFleet, tmp_path: Path) -> None:
    config = fleet_config(sandbox_fleet, tmp_path / "fleet.toml", full_sweep_cron="every night")
    with pytest.raises(ConfigError, match="full_sweep_cron"):
        check_schedules(load_settings(str(config), environ={}))
