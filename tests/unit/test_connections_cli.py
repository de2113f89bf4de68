"""`bant-sync connections add | list | show | disable | enable | remove` through worker.cli.app.main."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worker.cli.app import main
from worker.config.loader import load_settings

TOKEN = "pat-na1-0123456789abcdef"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("BANT_SYNC_CONFIG", "BANT_SYNC_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "bant.toml"
    path.write_text(
        f'[state]\ndir = "{tmp_path}"\nconnections_table = true\n[connections.main]\ncrm = "hubspot"\n',
        encoding="utf-8",
    )
    return path


def _run(config: Path, *args: str) -> int:
    return main(["--config", str(config), "connections", *args])


def test_add_list_disable_enable_remove(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(
        config, "add", "acme", "--crm", "hubspot", "--tenant", "Acme", "--set", "incremental_every_minutes=10"
    )
    assert code == 0, capsys.readouterr().err
    assert "added connection acme (hubspot, enabled)" in capsys.readouterr().out
    assert _run(config, "list", "--json") == 0
    [row] = json.loads(capsys.readouterr().out)["connections"]
    assert row["name"] == "acme" and row["tenant"] == "Acme" and row["enabled"] is True
    assert row["settings"] == {"incremental_every_minutes": 10}
    connection = load_settings(str(config), environ={}).connection("acme")
    assert connection.schedule.incremental_every_minutes == 10 and connection.source == "state store"
    assert _run(config, "disable", "acme") == 0
    assert load_settings(str(config), environ={}).connection("acme").enabled is False
    assert _run(config, "list") == 0
    assert "acme  hubspot  disabled  tenant Acme" in capsys.readouterr().out
    assert _run(config, "enable", "acme") == 0
    assert _run(config, "show", "acme") == 0
    assert '"disabled_at": null' in capsys.readouterr().out
    assert _run(config, "remove", "acme", "--yes") == 0
    assert "acme" not in load_settings(str(config), environ={}).connections


def test_an_invalid_connection_is_refused_with_every_problem(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(
        config,
        "add",
        "acme",
        "--crm",
        "hubspot",
        "--set",
        f"access_token={TOKEN}",
        "--set",
        "hots=x",
        "--set",
        "full_sweep_cron=never",
    )
    err = capsys.readouterr().err
    assert code == 3
    assert TOKEN not in err
    assert "connections.acme.access_token: looks like a secret" in err
    assert "BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN" in err and "secrets file" in err
    assert "connections.acme.hots: unknown key (did you mean 'host'?)" in err
    assert "connections.acme.full_sweep_cron" in err
    assert "Traceback" not in err
    assert _run(config, "list") == 0
    assert "no connections in the state store" in capsys.readouterr().out


def test_names_taken_in_the_file_or_the_store_are_refused(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(config, "add", "Main", "--crm", "hubspot") == 3
    assert "a connection 'main' is already defined in the config" in capsys.readouterr().err
    assert _run(config, "add", "acme", "--crm", "hubspot") == 0
    assert _run(config, "add", "ACME", "--crm", "hubspot") == 2
    assert "a connection 'acme' is already in the state store" in capsys.readouterr().err


def test_unknown_names_and_unconfirmed_removal(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(config, "disable", "nope") == 2
    assert "no connection named 'nope' in the state store" in capsys.readouterr().err
    assert _run(config, "remove", "nope", "--yes") == 2
    assert _run(config, "remove", "nope") == 2
    assert "add --yes" in capsys.readouterr().err


def test_an_invalid_stored_connection_can_still_be_removed(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The connections commands read the config without the stored connections, so a bad row (written
    by hand, or valid for an older bant-sync) does not lock the operator out of fixing it."""
    from worker.state import StateStore

    from .state.conftest import T0

    store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
    store.add_connection("bad", "hubspot", {"hots": "x"}, T0)
    store.close()
    assert main(["--config", str(config), "check"]) == 3
    capsys.readouterr()
    assert _run(config, "remove", "bad", "--yes") == 0


def test_add_is_refused_while_the_table_is_not_loaded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANT_SYNC_CONFIG", raising=False)
    path = tmp_path / "bant.toml"
    path.write_text(f'[state]\ndir = "{tmp_path}"\n', encoding="utf-8")
    assert _run(path, "add", "acme", "--crm", "hubspot") == 2
    assert "connections_table = true" in capsys.readouterr().err


def test_the_commands_work_with_a_stored_connection_s_secret_in_the_environment(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands leave the stored connections out of the config they read, but a variable holding a
    stored connection's secret is still not an unknown connection."""
    assert _run(config, "add", "acme", "--crm", "hubspot") == 0
    monkeypatch.setenv("BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN", TOKEN)
    assert _run(config, "list") == 0, capsys.readouterr().err
    assert "acme  hubspot  enabled" in capsys.readouterr().out
    assert load_settings(str(config)).connection("acme").revealed_secrets() == {"access_token": TOKEN}
    monkeypatch.setenv("BANT_SYNC_CONNECTIONS__GHOST__ACCESS_TOKEN", TOKEN)
    assert _run(config, "list") == 3
    assert "no connection 'ghost' is configured" in capsys.readouterr().err


def test_a_relative_ca_bundle_is_stored_absolute(
    config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "ca.pem").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    settings = ("auth=token", "instance_url=https://acme.my.salesforce.com", "ca_bundle=ca.pem")
    assert _run(config, "add", "acme", "--crm", "salesforce", *(f"--set={s}" for s in settings)) == 0
    stored = load_settings(str(config), environ={}).connection("acme").crm_settings
    assert stored.ca_bundle == str(tmp_path / "ca.pem")
