"""Connections kept in the state store join Settings.connections like file ones (`[state]
connections_table = true`), validated by the same code, with their secrets from the same places."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from worker.config.loader import check_new_connection, load_settings
from worker.errors import ConfigError
from worker.state import StateStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
TOKEN = "pat-na1-0123456789abcdef"


def _config(tmp_path: Path, extra: str = "", *, table: bool = True) -> Path:
    path = tmp_path / "bant.toml"
    flag = "connections_table = true\n" if table else ""
    path.write_text(f'[state]\ndir = "{tmp_path}"\n{flag}{extra}', encoding="utf-8")
    return path


def _store(tmp_path: Path) -> StateStore:
    return StateStore.open(f"sqlite:///{tmp_path}/state.db")


def _add(tmp_path: Path, name: str, settings: dict[str, object], **kwargs: object) -> None:
    store = _store(tmp_path)
    try:
        assert store.add_connection(name, "hubspot", settings, T0, **kwargs)  # type: ignore[arg-type]
    finally:
        store.close()


def test_a_stored_connection_loads_with_its_secret_from_the_environment(tmp_path: Path) -> None:
    _add(tmp_path, "acme", {"host": "http://127.0.0.1:9", "incremental_every_minutes": 5}, tenant="Acme")
    env = {"BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN": TOKEN}
    settings = load_settings(str(_config(tmp_path)), environ=env)
    acme = settings.connection("acme")
    assert (acme.crm, acme.tenant, acme.source, acme.enabled) == ("hubspot", "Acme", "state store", True)
    assert acme.crm_settings.host == "http://127.0.0.1:9"
    assert acme.schedule.incremental_every_minutes == 5
    assert acme.revealed_secrets() == {"access_token": TOKEN}
    assert TOKEN not in repr(settings)


def test_a_stored_connection_takes_its_secret_from_the_secrets_file(tmp_path: Path) -> None:
    _add(tmp_path, "acme", {}, enabled=False)
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[connections.acme]\naccess_token = "{TOKEN}"\n', encoding="utf-8")
    secrets.chmod(0o600)
    settings = load_settings(str(_config(tmp_path)), environ={"BANT_SYNC_SECRETS_FILE": str(secrets)})
    acme = settings.connection("acme")
    assert acme.revealed_secrets() == {"access_token": TOKEN}
    assert acme.enabled is False


def test_without_the_setting_the_store_is_not_read(tmp_path: Path) -> None:
    """Off by default: loading the configuration neither opens nor creates the state store."""
    settings = load_settings(str(_config(tmp_path, table=False)), environ={})
    assert settings.connections == {}
    assert not (tmp_path / "state.db").exists()


def test_a_name_in_both_the_file_and_the_table_is_a_config_error(tmp_path: Path) -> None:
    _add(tmp_path, "acme", {})
    config = _config(tmp_path, '[connections.Acme]\ncrm = "hubspot"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(str(config), environ={})
    message = str(info.value)
    assert "connections.acme: defined twice: as [connections.Acme] in the config" in message
    assert str(config) in message and "state store" in message
    assert "bant-sync connections remove acme" in message
    assert info.value.exit_code == 3


def test_a_stored_connection_is_validated_like_a_file_one(tmp_path: Path) -> None:
    """Every problem, worded as for a `[connections.NAME]` table."""
    _add(tmp_path, "acme", {"hots": "x", "incremental_every_minutes": 0})
    with pytest.raises(ConfigError) as info:
        load_settings(str(_config(tmp_path)), environ={})
    assert "connections.acme.hots: unknown key (did you mean 'host'?)" in str(info.value)
    assert "connections.acme.incremental_every_minutes: must be at least 1" in str(info.value)


def test_a_secret_written_into_the_table_is_refused_without_echoing_it(tmp_path: Path) -> None:
    _add(tmp_path, "acme", {"access_token": TOKEN, "api_key": TOKEN})
    with pytest.raises(ConfigError) as info:
        load_settings(str(_config(tmp_path)), environ={})
    message = str(info.value)
    assert TOKEN not in message
    assert "connections.acme.access_token: looks like a secret" in message
    assert "connections.acme.api_key: looks like a secret" in message
    assert "BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN" in message


def test_env_overrides_apply_to_a_stored_connection(tmp_path: Path) -> None:
    """BANT_SYNC_CONNECTIONS__NAME__ENABLED=false disables it, as it would a file connection."""
    _add(tmp_path, "acme", {})
    env = {"BANT_SYNC_CONNECTIONS__ACME__ENABLED": "false"}
    assert load_settings(str(_config(tmp_path)), environ=env).connection("acme").enabled is False


def test_a_new_connection_is_checked_before_it_is_stored(tmp_path: Path) -> None:
    settings = load_settings(str(_config(tmp_path, '[connections.main]\ncrm = "hubspot"\n')), environ={})
    built = check_new_connection(settings, "acme", "hubspot", {"host": "http://127.0.0.1:9"})
    assert built.crm_settings.host == "http://127.0.0.1:9"
    with pytest.raises(ConfigError) as info:
        check_new_connection(
            settings, "MAIN", "hubspot", {"client_secret": TOKEN, "hots": "x", "crm": "salesforce"}
        )
    message = str(info.value)
    assert TOKEN not in message
    assert "connections.MAIN: a connection 'main' is already defined in the config" in message
    assert "connections.MAIN.client_secret: looks like a secret" in message
    assert "connections.MAIN.hots: unknown key" in message
    assert "connections.MAIN.crm: is not a setting here" in message
    with pytest.raises(ConfigError, match="not a usable connection name"):
        check_new_connection(settings, "a__b", "hubspot", {})


def test_a_stored_secret_file_reference_is_read_like_the_file_variable(tmp_path: Path) -> None:
    """`access_token_file` (a path, not a secret) may be stored; the environment still wins."""
    token_file = tmp_path / "acme.token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    token_file.chmod(0o600)
    _add(tmp_path, "acme", {"access_token_file": str(token_file)})
    acme = load_settings(str(_config(tmp_path)), environ={}).connection("acme")
    assert acme.revealed_secrets() == {"access_token": TOKEN}
    assert "from env BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN_FILE" in repr(acme.secrets["access_token"])
    env = {"BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN": "from-env-instead"}
    acme = load_settings(str(_config(tmp_path)), environ=env).connection("acme")
    assert acme.revealed_secrets() == {"access_token": "from-env-instead"}
    token_file.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_settings(str(_config(tmp_path)), environ={})


def test_a_secret_file_reference_must_be_an_absolute_path(tmp_path: Path) -> None:
    settings = load_settings(str(_config(tmp_path)), environ={})
    with pytest.raises(ConfigError, match=r"access_token_file: must be the absolute path"):
        check_new_connection(settings, "acme", "hubspot", {"access_token_file": "acme.token"})
    check_new_connection(settings, "acme", "hubspot", {"access_token_file": "/run/secrets/acme"})
