"""Environment overrides: every BANT_SYNC_* variable sets its setting or is refused naming itself.

Each override is checked twice: in the loaded settings, and in what the worker then does with them (the
scheduler's jobs, `sync` without --connection, the ops API's resync, the framework and connector built).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker import exit_codes
from worker.cli.app import main
from worker.config.loader import load_settings
from worker.config.settings import Settings
from worker.errors import ConfigError
from worker.serve.ops_api import ApiError, parse_resync
from worker.serve.scheduler import build_scheduler
from worker.service import Worker

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TOKEN_VAR = "BANT_SYNC_CONNECTIONS__PORTAL__ACCESS_TOKEN"


def config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "bant.toml"
    path.write_text(
        f'[state]\ndir = "state"\n[connections.portal]\ncrm = "hubspot"\nhost = "http://127.0.0.1:9"\n{extra}',
        encoding="utf-8",
    )
    return path


def load(tmp_path: Path, **env: str) -> Settings:
    return load_settings(str(config(tmp_path)), environ={TOKEN_VAR: "pat-test", **env})


@pytest.fixture
def worker_for(tmp_path: Path) -> Iterator[list[Worker]]:
    made: list[Worker] = []
    yield made
    for worker in made:
        worker.close()


def open_worker(settings: Settings, made: list[Worker]) -> Worker:
    worker = Worker(settings, clock=lambda: T0)
    made.append(worker)
    return worker


def test_enabled_from_env_disables_the_connection_everywhere(
    tmp_path: Path, worker_for: list[Worker]
) -> None:
    """ENABLED=false from systemd's Environment= stops the connection: no scheduled job, no resync."""
    settings = load(tmp_path, BANT_SYNC_CONNECTIONS__PORTAL__ENABLED="false")
    assert settings.connection("portal").enabled is False
    worker = open_worker(settings, worker_for)
    assert build_scheduler(worker, now=T0).get_jobs() == []
    with pytest.raises(ApiError, match="disabled") as refused:
        parse_resync(b"{}", worker)
    assert refused.value.status == 422


def test_sync_without_connection_skips_a_connection_disabled_from_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sync` (every connection) runs nothing for a connection the environment disabled and records no run;
    `sync --connection` names it as disabled."""
    path = config(tmp_path)
    monkeypatch.setenv(TOKEN_VAR, "pat-test")
    monkeypatch.setenv("BANT_SYNC_CONNECTIONS__PORTAL__ENABLED", "false")
    assert main(["--config", str(path), "--log-level", "error", "sync"]) == exit_codes.OK
    assert "nothing to sync" in capsys.readouterr().err
    worker = Worker(load_settings(str(path)), clock=lambda: T0)
    try:
        assert worker.store.list_runs("portal", 10) == []
    finally:
        worker.close()
    one = ["--config", str(path), "--log-level", "error", "sync", "--connection", "portal"]
    assert main(one) == exit_codes.USAGE
    assert "disabled" in capsys.readouterr().err


def test_schedule_keys_from_env_reach_the_scheduler(tmp_path: Path, worker_for: list[Worker]) -> None:
    """incremental_every_minutes, full_sweep_cron and misfire_grace_seconds from the environment are the
    schedule the service runs."""
    settings = load(
        tmp_path,
        BANT_SYNC_CONNECTIONS__PORTAL__INCREMENTAL_EVERY_MINUTES="7",
        BANT_SYNC_CONNECTIONS__PORTAL__FULL_SWEEP_CRON="30 4 * * mon",
        BANT_SYNC_CONNECTIONS__PORTAL__MISFIRE_GRACE_SECONDS="1234",
    )
    schedule = settings.connection("portal").schedule
    assert (schedule.incremental_every_minutes, schedule.full_sweep_cron, schedule.misfire_grace_seconds) == (
        7,
        "30 4 * * mon",
        1234,
    )
    jobs = {job.id: job for job in build_scheduler(open_worker(settings, worker_for), now=T0).get_jobs()}
    assert jobs["portal:incremental"].trigger.interval.total_seconds() == 7 * 60
    cron = {f.name: str(f) for f in jobs["portal:full"].trigger.fields}
    assert (cron["minute"], cron["hour"], cron["day_of_week"]) == ("30", "4", "mon")
    assert {job.misfire_grace_time for job in jobs.values()} == {1234}


def test_framework_from_env_is_the_one_the_run_uses(tmp_path: Path, worker_for: list[Worker]) -> None:
    """A connection's framework from the environment is loaded for its runs."""
    settings = load(tmp_path, BANT_SYNC_CONNECTIONS__PORTAL__FRAMEWORK="meddic")
    assert settings.connection("portal").framework == "meddic"
    assert open_worker(settings, worker_for).framework("portal").name == "MEDDIC"


def test_connector_setting_from_env_reaches_the_connector(tmp_path: Path, worker_for: list[Worker]) -> None:
    """A connector's own setting (here HubSpot's page_size and host) from the environment is the one the
    connector is built with."""
    settings = load(
        tmp_path,
        BANT_SYNC_CONNECTIONS__PORTAL__PAGE_SIZE="37",
        BANT_SYNC_CONNECTIONS__PORTAL__HOST="http://127.0.0.1:8",
    )
    assert settings.connection("portal").crm_settings.page_size == 37
    connector = open_worker(settings, worker_for).connector("portal")
    try:
        assert connector.settings.page_size == 37  # type: ignore[attr-defined]
        assert connector.settings.host == "http://127.0.0.1:8"  # type: ignore[attr-defined]
    finally:
        connector.close()


def test_a_connection_defined_by_the_environment(tmp_path: Path) -> None:
    """A connection no file names can be defined from the environment by giving its `crm`."""
    settings = load(
        tmp_path,
        BANT_SYNC_CONNECTIONS__EXTRA__CRM="hubspot",
        BANT_SYNC_CONNECTIONS__EXTRA__ENABLED="false",
    )
    assert settings.connection("extra").crm == "hubspot"
    assert settings.connection("extra").enabled is False


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__ENABLED": "no"},
            "connections.portal.enabled: must be true or false "
            "(set by env BANT_SYNC_CONNECTIONS__PORTAL__ENABLED)",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__INCREMENTAL_EVERY_MINUTES": "0"},
            "connections.portal.incremental_every_minutes: must be at least 1 "
            "(set by env BANT_SYNC_CONNECTIONS__PORTAL__INCREMENTAL_EVERY_MINUTES)",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__FULL_SWEEP_CRON": "every night"},
            "(set by env BANT_SYNC_CONNECTIONS__PORTAL__FULL_SWEEP_CRON)",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__FRAMEWORK": "medic"},
            "connections.portal.framework:",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__HOTS": "http://x"},
            "env BANT_SYNC_CONNECTIONS__PORTAL__HOTS: unknown setting 'hots' (did you mean 'host'?)",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL__HOST_FILE": "/etc/host"},
            "env BANT_SYNC_CONNECTIONS__PORTAL__HOST_FILE: only secrets are read from a _FILE variable: "
            "set BANT_SYNC_CONNECTIONS__PORTAL__HOST instead",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__GHOST__ENABLED": "false"},
            "env BANT_SYNC_CONNECTIONS__GHOST__ENABLED: no connection 'ghost' is configured "
            "(configured: portal)",
        ),
        (
            {"BANT_SYNC_CONNECTIONS__PORTAL": "x"},
            "env BANT_SYNC_CONNECTIONS__PORTAL: name a connection's setting",
        ),
        (
            {"BANT_SYNC_STATE__URL_FILE": "/etc/url"},
            "env BANT_SYNC_STATE__URL_FILE: only secrets are read from a _FILE variable: "
            "set BANT_SYNC_STATE__URL",
        ),
        (
            {"BANT_SYNC_RUN__DEADLINE_MINUTS": "5"},
            "env BANT_SYNC_RUN__DEADLINE_MINUTS: unknown setting 'deadline_minuts' "
            "(did you mean 'deadline_minutes'?)",
        ),
        (
            {"BANT_SYNC_RUN__DEADLINE_MINUTES": "soon"},
            "run.deadline_minutes: must be a whole number, not 'soon' "
            "(set by env BANT_SYNC_RUN__DEADLINE_MINUTES)",
        ),
        ({"BANT_SYNC_LOGGING": "debug"}, "env BANT_SYNC_LOGGING: name one setting of [logging]"),
        (
            {"BANT_SYNC_OPS_API__PORT__X": "1"},
            "env BANT_SYNC_OPS_API__PORT__X: name one setting of [ops_api]",
        ),
    ],
    ids=[
        "enabled-not-bool",
        "interval-zero",
        "cron-bad",
        "framework-unknown",
        "connector-key-typo",
        "setting-as-file",
        "unconfigured-connection",
        "connection-without-key",
        "section-setting-as-file",
        "section-key-typo",
        "section-value-type",
        "section-alone",
        "too-deep",
    ],
)
def test_an_override_that_cannot_apply_is_refused_naming_the_variable(
    tmp_path: Path, env: dict[str, str], message: str
) -> None:
    """No BANT_SYNC_* variable is silently ignored: one that cannot apply is a ConfigError naming it."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, **env)
    assert info.value.exit_code == exit_codes.CONFIG
    assert message in str(info.value)


def test_secrets_from_env_are_not_settings(tmp_path: Path) -> None:
    """A connector's secret (and its _FILE form) in the environment is a secret, not an unknown setting."""
    token = tmp_path / "token"
    token.write_text("pat-from-file\n", encoding="utf-8")
    token.chmod(0o600)
    settings = load_settings(
        str(config(tmp_path)),
        environ={"BANT_SYNC_CONNECTIONS__PORTAL__ACCESS_TOKEN_FILE": str(token)},
    )
    assert settings.connection("portal").revealed_secrets() == {"access_token": "pat-from-file"}
    assert "pat-from-file" not in repr(settings)


def test_a_connection_named_in_mixed_case_takes_its_upper_case_variables(tmp_path: Path) -> None:
    """[connections.Sales] is BANT_SYNC_CONNECTIONS__SALES__*, for its settings as for its secrets."""
    path = tmp_path / "bant.toml"
    path.write_text('[connections.Sales]\ncrm = "hubspot"\n', encoding="utf-8")
    env = {
        "BANT_SYNC_CONNECTIONS__SALES__ENABLED": "false",
        "BANT_SYNC_CONNECTIONS__SALES__ACCESS_TOKEN": "t",
    }
    connection = load_settings(str(path), environ=env).connection("Sales")
    assert connection.enabled is False
    assert connection.revealed_secrets() == {"access_token": "t"}
