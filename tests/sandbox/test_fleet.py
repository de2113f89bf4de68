"""Many accounts in one process (`SandboxFleet`, `SandboxOptions.account`): distinct orgs and portals with
their own tokens, data, request logs and rate limits, one bant-sync config for all, and a sync over it."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from sandbox import Sandbox, SandboxFleet, SandboxOptions
from sandbox.accounts import Account
from sandbox.cli import main as sandbox_main
from sandbox.hubspot.portal import PORTAL_ID
from sandbox.hubspot.webhooks import APP_ID
from sandbox.salesforce.ids import make_id
from tests.sandbox.clients import START, hs_client, sf_client, sf_session
from worker.cli.app import main
from worker.config.loader import load_settings
from worker.state import StateStore


@pytest.fixture
def fleet() -> Iterator[SandboxFleet]:
    """Two accounts of 20 synthetic deals each, rate limits on (5 HubSpot calls a 10-second window) and a
    Salesforce daily allocation of 8 calls."""
    options = SandboxOptions(
        deals=20, start_time=START, hubspot_burst_per_10s=5, salesforce_daily_api_limit=8
    )
    with SandboxFleet.start(accounts=2, options=options) as started:
        yield started
        assert started.server_errors() == []


def _portal_id(sb: Sandbox, token: str | None = None) -> requests.Response:
    info = sb.info["hubspot"]
    assert isinstance(info, dict)
    headers = {"Authorization": f"Bearer {token or info['access_token']}"}
    return requests.get(f"{info['host']}/account-info/v3/details", headers=headers, timeout=10)


def _sf_get(sb: Sandbox, path: str, token: str) -> requests.Response:
    info = sb.info["salesforce"]
    assert isinstance(info, dict)
    headers = {"Authorization": f"Bearer {token}"}
    return sf_session(sb).get(f"{info['instance_url']}{path}", headers=headers, timeout=10)


def test_account_1_keeps_the_ids_every_single_sandbox_test_uses() -> None:
    """The default account is today's org, portal and app, with today's data."""
    one = Account(1)
    assert (one.org_id, one.portal_id, one.app_id) == (make_id("00D", 1), PORTAL_ID, APP_ID)
    assert one.seed_value(7) == 7 and one.username == "integration@bant-sync.sandbox"
    with pytest.raises(ValueError, match="at least 1"):
        SandboxOptions(account=0)


def test_two_accounts_are_two_orgs_and_two_portals(fleet: SandboxFleet) -> None:
    """Org ids (as Salesforce answers them), portal ids (account details), app ids and tokens all differ."""
    first, second = fleet.accounts
    org_ids = [
        sf_client(sb).query("SELECT Id FROM Organization LIMIT 1")["records"][0]["Id"]
        for sb in (first, second)
    ]
    assert org_ids == [make_id("00D", 1), make_id("00D", 2)]
    assert org_ids[0][:15] != org_ids[1][:15]
    assert [_portal_id(sb).json()["portalId"] for sb in (first, second)] == [PORTAL_ID, PORTAL_ID + 1]
    infos = [sb.info for sb in (first, second)]
    for crm in ("salesforce", "hubspot"):
        values = [info[crm] for info in infos]
        assert isinstance(values[0], dict) and isinstance(values[1], dict)
        assert values[0]["access_token"] != values[1]["access_token"]
        assert values[0]["client_secret"] != values[1]["client_secret"]
    assert [info["hubspot"]["app_id"] for info in infos] == [str(APP_ID), str(APP_ID + 1)]  # type: ignore[index]
    assert infos[0]["ca_bundle"] != infos[1]["ca_bundle"]


def test_a_token_of_one_account_is_refused_by_the_other(fleet: SandboxFleet) -> None:
    """Each account knows only its own tokens: 401 from the other one, in both CRMs."""
    first, second = fleet.accounts
    hs_token = first.info["hubspot"]["access_token"]  # type: ignore[index]
    sf_token = first.info["salesforce"]["access_token"]  # type: ignore[index]
    assert _portal_id(first, hs_token).status_code == 200
    assert _portal_id(second, hs_token).status_code == 401
    assert _sf_get(first, "/services/data/v61.0/limits", sf_token).status_code == 200
    refused = _sf_get(second, "/services/data/v61.0/limits", sf_token)
    assert refused.status_code == 401
    assert refused.json()[0]["errorCode"] == "INVALID_SESSION_ID"


def _deal_names(sb: Sandbox) -> list[str]:
    return [d["properties"]["dealname"] for d in sorted(sb.hubspot.deals(), key=lambda d: int(d["id"]))]


def test_data_and_request_logs_are_per_account(fleet: SandboxFleet) -> None:
    """Seeded data differs between accounts and is the same on every start of an account; an edit in one
    account stays there (though record ids repeat); a call shows in its own account's request log only."""
    first, second = fleet.accounts
    assert len(_deal_names(first)) == len(_deal_names(second)) == 20
    assert _deal_names(first) != _deal_names(second)
    with Sandbox.start(SandboxOptions(deals=20, start_time=START, account=2)) as again:
        assert _deal_names(again) == _deal_names(second)
    deal_id = first.hubspot.deals()[0]["id"]
    first.hubspot.update_deal(deal_id, {"bant_need": "SOC2 for the fleet"})
    twin = next(d for d in second.hubspot.deals() if d["id"] == deal_id)
    assert twin["properties"].get("bant_need") != "SOC2 for the fleet"
    first.reset_requests()
    second.reset_requests()
    hs_client(first).crm.deals.basic_api.get_page(limit=5)
    assert [r["crm"] for r in first.requests()] == ["hubspot"]
    assert second.requests() == []


def test_rate_limits_are_per_account(fleet: SandboxFleet) -> None:
    """One portal's spent 10-second burst window answers 429; the other portal still answers."""
    first, second = fleet.accounts
    first.clock.freeze()
    second.clock.freeze()
    statuses = [_portal_id(first).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    assert _portal_id(second).status_code == 200


def test_the_salesforce_daily_allocation_is_per_org(fleet: SandboxFleet) -> None:
    """One org's spent daily allocation answers REQUEST_LIMIT_EXCEEDED; the other org still answers."""
    first, second = fleet.accounts
    token = first.info["salesforce"]["access_token"]  # type: ignore[index]
    statuses = [_sf_get(first, "/services/data/v61.0/limits", token).status_code for _ in range(9)]
    assert statuses == [200] * 8 + [403]
    other = second.info["salesforce"]["access_token"]  # type: ignore[index]
    assert _sf_get(second, "/services/data/v61.0/limits", other).status_code == 200


def test_fleet_config_has_two_connections_an_account_and_one_state_dir(
    fleet: SandboxFleet, tmp_path: Path
) -> None:
    """`sf-001`, `sf-002`, `hs-001`, `hs-002`, each at its own account, tokens in one 0600 secrets file."""
    path = fleet.write_config(tmp_path / "fleet.toml")
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    secrets_path = tmp_path / "fleet.secrets.toml"
    secrets = tomllib.loads(secrets_path.read_text(encoding="utf-8"))
    assert sorted(config["connections"]) == ["hs-001", "hs-002", "sf-001", "sf-002"]
    assert config["state"]["dir"] == "fleet.state" and (tmp_path / "fleet.state").is_dir()
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    for sb in fleet.accounts:
        sf_name, hs_name = fleet.connection_names(sb)
        sf, hs = sb.info["salesforce"], sb.info["hubspot"]
        assert isinstance(sf, dict) and isinstance(hs, dict)
        assert config["connections"][sf_name]["instance_url"] == sf["instance_url"]
        assert config["connections"][sf_name]["ca_bundle"] == sb.info["ca_bundle"]
        assert config["connections"][hs_name]["host"] == hs["host"]
        assert secrets["connections"][sf_name]["access_token"] == sf["access_token"]
        assert secrets["connections"][hs_name]["access_token"] == hs["access_token"]
    assert [entry["connections"] for entry in fleet.info] == [["sf-001", "hs-001"], ["sf-002", "hs-002"]]


def test_fixed_ports_are_refused_for_more_than_one_account() -> None:
    with pytest.raises(ValueError, match="free ports"):
        SandboxFleet.start(accounts=2, options=SandboxOptions(port=8443))


def test_bant_sync_syncs_every_connection_of_a_two_account_fleet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bant-sync sync` over the fleet's config: every connection succeeds, each under its own account's
    identity in the state store, and each account got its own tasks."""
    options = SandboxOptions(deals=30, start_time=START, enforce_rate_limits=False)
    with SandboxFleet.start(accounts=2, options=options) as fleet:
        config = fleet.write_config(tmp_path / "fleet.toml")
        code = main(["--config", str(config), "--log-level", "error", "sync"])
        output = capsys.readouterr()
        assert code == 0, output.out + output.err
        assert fleet.server_errors() == []
        store = StateStore.open(load_settings(str(config), environ={}).state.database_url())
        try:
            identities = {name: store.identity_of(name) for name in ("sf-001", "sf-002", "hs-001", "hs-002")}
        finally:
            store.close()
        tasks = [(len(sb.salesforce.records("Task")), len(sb.hubspot.tasks())) for sb in fleet.accounts]
    assert identities == {
        "sf-001": f"salesforce:{make_id('00D', 1)[:15]}",
        "sf-002": f"salesforce:{make_id('00D', 2)[:15]}",
        "hs-001": f"hubspot:{PORTAL_ID}",
        "hs-002": f"hubspot:{PORTAL_ID + 1}",
    }
    assert all(sf > 0 and hs > 0 for sf, hs in tasks), tasks


def test_the_cli_serves_a_fleet_and_prints_each_account(tmp_path: Path) -> None:
    """`bant-sync sandbox --accounts 2`: one JSON line an account, each answering with its own portal id,
    and the fleet's config written."""
    config = tmp_path / "fleet.toml"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--seed",
            "empty",
            "--accounts",
            "2",
            "--write-config",
            str(config),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [json.loads(process.stdout.readline()) for _ in range(2)]
        assert [line["account"] for line in lines] == [1, 2]
        assert [line["connections"] for line in lines] == [["sf-001", "hs-001"], ["sf-002", "hs-002"]]
        for line, portal in zip(lines, (PORTAL_ID, PORTAL_ID + 1), strict=True):
            headers = {"Authorization": f"Bearer {line['hubspot']['access_token']}"}
            details = requests.get(
                f"{line['hubspot']['host']}/account-info/v3/details", headers=headers, timeout=10
            )
            assert details.json()["portalId"] == portal
        assert sorted(tomllib.loads(config.read_text())["connections"]) == [
            "hs-001",
            "hs-002",
            "sf-001",
            "sf-002",
        ]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0


def test_each_portal_sends_its_webhooks_to_its_own_connection() -> None:
    """`{connection}` in `hubspot_webhook_url` becomes each account's HubSpot connection name (bant-sync's
    `/webhooks/hubspot/{connection}`), signed with that portal's own app secret and app id."""
    options = SandboxOptions(
        deals=5, start_time=START, hubspot_webhook_url="http://127.0.0.1:9/webhooks/hubspot/{connection}"
    )
    with SandboxFleet.start(accounts=2, options=options) as fleet:
        subscriptions = [sb.webhooks.subscription for sb in fleet.accounts]
        secrets = [sb.info["hubspot"]["client_secret"] for sb in fleet.accounts]  # type: ignore[index]
    assert [s.target_url.rsplit("/", 1)[1] for s in subscriptions if s] == ["hs-001", "hs-002"]
    assert [s.client_secret for s in subscriptions if s] == secrets
    assert [s.app_id for s in subscriptions if s] == [APP_ID, APP_ID + 1]


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["--accounts", "0"], "at least 1 account"),
        (["--accounts", "2", "--port", "8443"], "free ports"),
        (["--account", "0"], "account must be at least 1"),
    ],
    ids=["no-accounts", "fixed-port", "account-0"],
)
def test_bad_fleet_options_are_one_line_on_stderr_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    assert sandbox_main(["--seed", "empty", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and fragment in captured.err
