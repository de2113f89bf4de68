"""Settings: layering, validation with every problem reported, secrets that never print."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors.registry import ConnectorContext, ConnectorSettings
from worker.config import loader as settings_loader
from worker.config.loader import load_settings
from worker.errors import ConfigError


@dataclass(frozen=True)
class FakeCrmSettings:
    host: str = "https://crm.example"
    page_size: int = 200
    properties: dict[str, str] | None = None

    def problems(self) -> list[str]:
        return [] if self.page_size > 0 else ["page_size: must be positive"]


@dataclass(frozen=True)
class FakeFactory:
    name: str = "fakecrm"
    settings_type: type[ConnectorSettings] = FakeCrmSettings
    secret_names: tuple[str, ...] = ("access_token",)

    def create(self, settings: Any, context: ConnectorContext) -> Any:
        raise NotImplementedError


@pytest.fixture(autouse=True)
def fake_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    def factory_for(crm: str) -> FakeFactory:
        if crm != "fakecrm":
            from connectors.errors import ConfigurationError

            raise ConfigurationError(f"no connector named {crm!r} is installed")
        return FakeFactory()

    monkeypatch.setattr(settings_loader, "factory_for", factory_for)


def write(tmp_path: Path, text: str, name: str = "bant.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_user_file() -> None:
    """With no user file the shipped defaults apply."""
    settings = load_settings(None, environ={})
    assert settings.rules.framework == "bant"
    assert settings.ops_api.host == "127.0.0.1"
    assert settings.state.database_url().endswith("state.db")
    assert settings.connections == {}


def test_user_file_then_env_override(tmp_path: Path) -> None:
    """The user file overrides defaults and BANT_SYNC_* env overrides the file; paths resolve beside it."""
    config = write(
        tmp_path, '[logging]\nlevel = "debug"\n[state]\ndir = "st"\n[run]\ndeadline_minutes = 10\n'
    )
    settings = load_settings(str(config), environ={"BANT_SYNC_RUN__DEADLINE_MINUTES": "99"})
    assert settings.logging.level == "debug"
    assert settings.run.deadline_minutes == 99
    assert settings.state.dir == str(tmp_path / "st")


def test_config_from_env_variable(tmp_path: Path) -> None:
    """BANT_SYNC_CONFIG names the user file when --config is not given."""
    config = write(tmp_path, '[rules]\nframework = "meddic"\n')
    assert load_settings(None, environ={"BANT_SYNC_CONFIG": str(config)}).rules.framework == "meddic"


def test_every_problem_is_reported_with_did_you_mean(tmp_path: Path) -> None:
    """Unknown keys, wrong types and bad values are all listed at once, with suggestions."""
    config = write(
        tmp_path,
        '[loging]\nlevel = "x"\n[run]\ndeadline_minuts = 3\nlease_ttl_seconds = "five"\n'
        '[logging]\nlevel = "loud"\n',
    )
    with pytest.raises(ConfigError) as info:
        load_settings(str(config), environ={"BANT_SYNC_STAET__URL": "x"})
    text = str(info.value)
    assert "loging: unknown key (did you mean 'logging'?)" in text
    assert "run.deadline_minuts: unknown key (did you mean 'deadline_minutes'?)" in text
    assert "run.lease_ttl_seconds: must be a whole number" in text
    assert "logging.level must be one of" in text
    assert "env BANT_SYNC_STAET__URL: unknown setting 'staet' (did you mean 'state'?)" in text


@pytest.mark.parametrize(
    ("text", "message"),
    [("not [toml", "not valid TOML"), (None, "file not found")],
    ids=["bad-toml", "missing-file"],
)
def test_unreadable_config_file(tmp_path: Path, text: str | None, message: str) -> None:
    """A broken or missing config file is one clear error naming the file."""
    path = write(tmp_path, text) if text is not None else tmp_path / "absent.toml"
    with pytest.raises(ConfigError, match=message):
        load_settings(str(path), environ={})


def test_connection_with_secret_from_env(tmp_path: Path) -> None:
    """A connection's secret comes from the environment and never shows in repr."""
    config = write(tmp_path, '[connections.main]\ncrm = "fakecrm"\npage_size = 50\n')
    settings = load_settings(
        str(config), environ={"BANT_SYNC_CONNECTIONS__MAIN__ACCESS_TOKEN": "s3cr3t-token-value"}
    )
    connection = settings.connection(None)
    assert connection.crm_settings == FakeCrmSettings(page_size=50)
    assert connection.revealed_secrets() == {"access_token": "s3cr3t-token-value"}
    assert "s3cr3t" not in repr(settings)
    assert "s3cr3t" not in str(connection.secrets)


def test_secret_from_secrets_file_and_from_file_env(tmp_path: Path) -> None:
    """Secrets also come from the secrets file, or from a file named by *_FILE."""
    write(tmp_path, '[connections.main]\naccess_token = "from-secrets-file"\n', "secrets.toml").chmod(0o600)
    config = write(tmp_path, 'secrets_file = "secrets.toml"\n[connections.main]\ncrm = "fakecrm"\n')
    assert load_settings(str(config), environ={}).connection("main").revealed_secrets() == {
        "access_token": "from-secrets-file"
    }
    token_file = write(tmp_path, "from-file-env\n", "token.txt")
    token_file.chmod(0o600)
    env = {"BANT_SYNC_CONNECTIONS__MAIN__ACCESS_TOKEN_FILE": str(token_file)}
    assert load_settings(str(config), environ=env).connection("main").revealed_secrets() == {
        "access_token": "from-file-env"
    }


def test_secret_in_config_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    """A secret written into the config file is an error that says where it belongs and hides the value."""
    config = write(tmp_path, '[connections.main]\ncrm = "fakecrm"\naccess_token = "pat-na1-leaked"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(config), environ={})
    assert "BANT_SYNC_CONNECTIONS__MAIN__ACCESS_TOKEN" in str(info.value)
    assert "pat-na1-leaked" not in str(info.value)


def test_connection_errors(tmp_path: Path) -> None:
    """Unknown CRM and unknown connection keys are reported with the connection named."""
    config = write(
        tmp_path, '[connections.a]\ncrm = "pipedrive"\n[connections.b]\ncrm = "fakecrm"\nhots = "x"\n'
    )
    with pytest.raises(ConfigError) as info:
        load_settings(str(config), environ={})
    assert "connections.a.crm: no connector named 'pipedrive'" in str(info.value)
    assert "connections.b.hots: unknown key (did you mean 'host'?)" in str(info.value)


def test_env_overrides_a_connection_setting(tmp_path: Path) -> None:
    """BANT_SYNC_CONNECTIONS__NAME__KEY overrides one connection setting."""
    config = write(tmp_path, '[connections.main]\ncrm = "fakecrm"\n')
    env = {"BANT_SYNC_CONNECTIONS__MAIN__HOST": "http://127.0.0.1:9"}
    assert (
        load_settings(str(config), environ=env).connection("main").crm_settings.host == "http://127.0.0.1:9"
    )


def test_settings_are_read_only() -> None:
    """Settings cannot be changed after loading."""
    settings = load_settings(None, environ={})
    with pytest.raises(AttributeError):
        settings.rules.framework = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"BANT_SYNC_RUN__COMPLETED_TASKS": "reopn"}, "run.completed_tasks must be one of reopen, new_task"),
        ({"BANT_SYNC_RUN__TASK_DUE_BUSINESS_DAYS": "-1"}, "run.task_due_business_days must be 0 or more"),
    ],
    ids=["completed-tasks-typo", "negative-due-days"],
)
def test_task_settings_are_checked_when_loaded(environ: dict[str, str], message: str) -> None:
    """A misspelt completed-tasks policy or a negative due delay is a configuration error naming the key,
    not a crash in every run."""
    with pytest.raises(ConfigError, match=message):
        load_settings(None, environ=environ)


def test_completed_tasks_policy_from_the_environment() -> None:
    """`[run] completed_tasks` defaults to reopen and takes new_task or leave (here from the environment)."""
    assert load_settings(None, environ={}).run.completed_tasks == "reopen"
    chosen = load_settings(None, environ={"BANT_SYNC_RUN__COMPLETED_TASKS": "leave"})
    assert chosen.run.completed_tasks == "leave"


@pytest.fixture
def real_connectors(monkeypatch: pytest.MonkeyPatch) -> None:
    """The installed Salesforce and HubSpot connectors instead of the fake one."""
    from connectors.registry import factory_for

    monkeypatch.setattr(settings_loader, "factory_for", factory_for)


def _problems(config: Path) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        load_settings(str(config), environ={})
    return caught.value.problems


@pytest.mark.usefixtures("real_connectors")
def test_salesforce_setting_mistakes_fail_at_load_all_together(tmp_path: Path) -> None:
    """Salesforce settings are validated when the configuration loads: every mistake, each under its key."""
    config = write(
        tmp_path,
        '[connections.sf]\ncrm = "salesforce"\nauth = "passwrd"\nclient_id = "c"\nusername = "u"\n'
        'login_url = "http://login.example"\nquery_batch_size = 50\nfields = { budgt = "B__c" }\n',
    )
    problems = _problems(config)
    assert [p.split(":")[0] for p in problems] == [
        "connections.sf.auth",
        "connections.sf.login_url",
        "connections.sf.fields.budgt",
        "connections.sf.query_batch_size",
    ]
    assert "did you mean 'password'" in problems[0]
    assert "did you mean 'budget'" in problems[2]


@pytest.mark.usefixtures("real_connectors")
def test_hubspot_setting_mistakes_fail_at_load_with_did_you_mean(tmp_path: Path) -> None:
    """A misspelt HubSpot auth mode is a ConfigError naming the key and the intended value, not a crash."""
    config = write(tmp_path, '[connections.hs]\ncrm = "hubspot"\nauth = "private-app"\npage_size = 500\n')
    problems = _problems(config)
    assert [p.split(":")[0] for p in problems] == ["connections.hs.auth", "connections.hs.page_size"]
    assert "did you mean 'private_app'" in problems[0]


def test_misspelt_timezone_schedule_and_state_url_fail_at_load(tmp_path: Path) -> None:
    """rules.timezone, a connection's cron, state.url and ops_api.port are checked when the config loads."""
    config = write(
        tmp_path,
        '[rules]\ntimezone = "America/New_Yrok"\n[state]\nurl = "mysql://x/y"\n[ops_api]\nport = 99999\n'
        '[connections.c]\ncrm = "fakecrm"\nfull_sweep_cron = "0 2 * *"\nincremental_every_minutes = 0\n',
    )
    text = "\n".join(_problems(config))
    assert "did you mean 'America/New_York'" in text
    assert "state.url: unsupported state store URL" in text
    assert "ops_api.port must be between 0 and 65535" in text
    assert "connections.c.full_sweep_cron" in text
    assert "connections.c.incremental_every_minutes: must be at least 1" in text


def test_enumerated_values_suggest_the_one_meant(tmp_path: Path) -> None:
    """A misspelt logging level, log format or completed-task policy names the value meant."""
    config = write(tmp_path, '[logging]\nlevel = "warn"\n[run]\ncompleted_tasks = "reopn"\n')
    text = "\n".join(_problems(config))
    assert "did you mean 'warning'" in text
    assert "did you mean 'reopen'" in text
