"""End to end: a connection added with `bant-sync connections add` (its token in the secrets file, never
in the state store) is synced by `bant-sync sync`, against the second account of a sandbox fleet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import SandboxOptions
from sandbox.configfile import ConnectionPair, write_connections
from sandbox.fleet import SandboxFleet
from worker.cli.app import main


@pytest.fixture(scope="module")
def fleet() -> Iterator[SandboxFleet]:
    with SandboxFleet.start(accounts=2, options=SandboxOptions(deals=20)) as started:
        yield started


def _cli(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    code = main(["--config", str(config), "--log-level", "error", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_connections_added_with_the_cli_are_synced(
    fleet: SandboxFleet, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BANT_SYNC_CONFIG", "BANT_SYNC_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)
    first, second = fleet.accounts
    config = write_connections(
        tmp_path / "bant.toml", [ConnectionPair(*fleet.connection_names(first), first.info)]
    )
    config.write_text(
        config.read_text(encoding="utf-8").replace("[state]\n", "[state]\nconnections_table = true\n"),
        encoding="utf-8",
    )
    sf_name, hs_name = fleet.connection_names(second)
    salesforce, hubspot = second.info["salesforce"], second.info["hubspot"]
    assert isinstance(salesforce, dict) and isinstance(hubspot, dict)
    secrets = tmp_path / "bant.secrets.toml"
    with secrets.open("a", encoding="utf-8") as handle:
        for name, token in ((sf_name, salesforce["access_token"]), (hs_name, hubspot["access_token"])):
            handle.write(f'\n[connections.{name}]\naccess_token = "{token}"\n')
    add_hs = ("connections", "add", hs_name, "--crm", "hubspot", "--tenant", "Account 2")
    code, _, err = _cli(capsys, config, *add_hs, "--set", f"host={hubspot['host']}")
    assert code == 0, err
    sf_settings = [
        f"instance_url={salesforce['instance_url']}",
        f"login_url={salesforce['login_url']}",
        "auth=token",
        f"ca_bundle={second.info['ca_bundle']}",
    ]
    add_sf = ["connections", "add", sf_name, "--crm", "salesforce", "--tenant", "Account 2"]
    for setting in sf_settings:
        add_sf += ["--set", setting]
    code, _, err = _cli(capsys, config, *add_sf)
    assert code == 0, err
    stored = (tmp_path / "bant.state" / "state.db").read_bytes()
    for token in (salesforce["access_token"], hubspot["access_token"]):
        assert token.encode() not in stored
    for name in (hs_name, sf_name):
        code, out, err = _cli(capsys, config, "sync", "--connection", name, "--full", "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["status"] == "succeeded" and report["connection"] == name
    code, out, _ = _cli(capsys, config, "connections", "list", "--json")
    listed = {row["name"]: row for row in json.loads(out)["connections"]}
    assert listed[hs_name]["identity"] and listed[sf_name]["identity"]
    code, out, err = _cli(capsys, config, "connections", "disable", hs_name)
    assert code == 0, err
    code, _, err = _cli(capsys, config, "sync", "--connection", hs_name)
    assert code != 0 and "disabled" in err
