"""The control API under /_sandbox/ (plain requests) and Sandbox.write_config."""

from __future__ import annotations

import stat
import tomllib
from datetime import datetime
from pathlib import Path

import pytest
import requests
from hubspot.crm.deals.exceptions import ServiceException

from sandbox import Sandbox
from tests.sandbox.clients import control, hs_client, sf_client
from tests.sandbox.conftest import Factory


def _open_opportunity(sb: Sandbox) -> str:
    return str(next(r["Id"] for r in sb.salesforce.records("Opportunity") if not r["IsClosed"]))


def test_the_request_log_records_crm_calls_but_not_control_calls(sb: Sandbox) -> None:
    """Each CRM call is logged with crm, method, path, query, body, status; control calls never are."""
    sf_client(sb).query("SELECT Id FROM User LIMIT 1")
    hs_client(sb).crm.deals.basic_api.get_page(limit=2, properties=["dealname", "amount"])
    requests.get(control(sb, "snapshot"), timeout=10)
    entries = requests.get(control(sb, "requests"), timeout=10).json()
    assert [(e["crm"], e["method"], e["path"], e["status"]) for e in entries] == [
        ("salesforce", "GET", "/services/data/v59.0/query/", 200),
        ("hubspot", "GET", "/crm/v3/objects/deals", 200),
    ]
    assert entries[0]["query"] == {"q": "SELECT Id FROM User LIMIT 1"}
    assert entries[1]["query"]["properties"] == "dealname,amount" and entries[1]["body"] is None
    assert entries[0]["ts"].endswith("Z")
    only_hubspot = requests.get(control(sb, "requests"), params={"crm": "hubspot"}, timeout=10).json()
    assert [e["crm"] for e in only_hubspot] == ["hubspot"]
    assert requests.delete(control(sb, "requests"), timeout=10).json() == {"cleared": 2}
    assert sb.requests() == []


def test_write_bodies_are_logged_parsed(sb: Sandbox) -> None:
    """A JSON request body appears in the log as parsed JSON."""
    record_id = _open_opportunity(sb)
    sf_client(sb).Opportunity.update(record_id, {"BANT_Score__c": 50})
    assert sb.requests()[-1]["body"] == {"BANT_Score__c": 50}


def test_faults_can_be_added_listed_and_cleared_at_runtime(sb: Sandbox) -> None:
    """POST a rule (or a list), GET lists them, DELETE clears them; a bad rule is a 400 naming the problem."""
    rule = {"kind": "status", "crm": "hubspot", "status": 502, "times": 1}
    assert requests.post(control(sb, "faults"), json=[rule], timeout=10).json() == {"added": 1}
    assert requests.get(control(sb, "faults"), timeout=10).json() == [rule]
    with pytest.raises(ServiceException) as caught:
        hs_client(sb).crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 502
    bad = requests.post(control(sb, "faults"), json={"kind": "status", "statuss": 500}, timeout=10)
    assert bad.status_code == 400 and "statuss" in bad.json()["error"]
    assert requests.delete(control(sb, "faults"), timeout=10).status_code == 204
    assert requests.get(control(sb, "faults"), timeout=10).json() == []


def test_snapshot_holds_every_record_of_both_crms(sb: Sandbox) -> None:
    """GET snapshot: Salesforce records by object (JSON values) and HubSpot deals, tasks, owners."""
    snapshot = requests.get(control(sb, "snapshot"), timeout=10).json()
    assert len(snapshot["salesforce"]["Opportunity"]) == len(sb.salesforce.records("Opportunity"))
    assert len(snapshot["hubspot"]["deals"]) == len(sb.hubspot.deals())
    assert isinstance(snapshot["salesforce"]["Opportunity"][0]["SystemModstamp"], str)
    assert len(snapshot["hubspot"]["owners"]) == 6


def test_the_clock_moves_by_advance_or_set(sb: Sandbox) -> None:
    """POST clock {"advance": s} moves it forward; {"set": iso} jumps; a naive time is refused."""
    sb.clock.freeze()
    before = sb.clock.now()
    moved = requests.post(control(sb, "clock"), json={"advance": 86400}, timeout=10).json()
    assert datetime.fromisoformat(moved["now"].replace("Z", "+00:00")) - before == (sb.clock.now() - before)
    assert (sb.clock.now() - before).total_seconds() == 86400
    jumped = requests.post(control(sb, "clock"), json={"set": "2027-01-01T00:00:00Z"}, timeout=10).json()
    assert jumped["now"] == "2027-01-01T00:00:00.000Z"
    naive = requests.post(control(sb, "clock"), json={"set": "2027-01-01T00:00:00"}, timeout=10)
    assert naive.status_code == 400


def test_records_endpoint_is_a_user_edit(sb: Sandbox) -> None:
    """POST records/<crm>/<object>/<id> edits like a user: values change and the modified stamp moves."""
    sb.clock.freeze()
    sb.clock.advance(5)
    record_id = _open_opportunity(sb)
    edited = requests.post(
        control(sb, f"records/salesforce/Opportunity/{record_id}"),
        json={"BANT_Budget__c": "$50k approved"},
        timeout=10,
    ).json()
    assert edited["BANT_Budget__c"] == "$50k approved"
    assert sb.salesforce.get("Opportunity", record_id)["SystemModstamp"] == sb.clock.now()
    deal_id = str(sb.hubspot.deals()[0]["id"])
    deal = requests.post(
        control(sb, f"records/hubspot/deals/{deal_id}"), json={"bant_need": "SOC2"}, timeout=10
    ).json()
    assert deal["properties"]["bant_need"] == "SOC2"
    invalid = requests.post(
        control(sb, f"records/salesforce/Opportunity/{record_id}"), json={"Nope": 1}, timeout=10
    )
    assert invalid.status_code == 400


def test_reset_reseeds_and_clears_the_log(sb: Sandbox) -> None:
    """POST reset restores the seeded data and empties the log."""
    record_id = _open_opportunity(sb)
    original = sb.salesforce.get("Opportunity", record_id)
    sf_client(sb).Opportunity.update(record_id, {"BANT_Score__c": 1})
    assert requests.post(control(sb, "reset"), timeout=10).json()["reset"] is True
    restored = sb.salesforce.get("Opportunity", record_id)
    assert restored is not None and original is not None
    assert restored["BANT_Score__c"] is None and restored["Name"] == original["Name"]
    assert sb.requests() == []
    assert sf_client(sb).query("SELECT COUNT() FROM Opportunity")["totalSize"] == len(
        sb.salesforce.records("Opportunity")
    )


def test_control_calls_are_not_rate_limited(make_sandbox: Factory) -> None:
    """With a burst limit of 1, the control API still answers every call."""
    sb = make_sandbox(enforce_rate_limits=True, hubspot_burst_per_10s=1)
    sb.clock.freeze()
    assert all(requests.get(control(sb, "info"), timeout=10).status_code == 200 for _ in range(5))


def test_write_config_writes_config_secrets_and_a_fresh_state_dir(sb: Sandbox, tmp_path: Path) -> None:
    """The config has the two connections, the secrets file is 0600 beside it, the state dir starts empty."""
    path = tmp_path / "demo.toml"
    (tmp_path / "demo.state").mkdir()
    (tmp_path / "demo.state" / "old-cursors.db").write_text("stale")
    sb.write_config(path)
    config = tomllib.loads(path.read_text())
    assert config["secrets_file"] == "demo.secrets.toml" and config["state"] == {"dir": "demo.state"}
    assert config["connections"]["salesforce"] == {
        "crm": "salesforce",
        "instance_url": sb.info["salesforce"]["instance_url"],
        "login_url": sb.info["salesforce"]["login_url"],
        "auth": "token",
        "ca_bundle": sb.info["ca_bundle"],
        "pubsub_endpoint": sb.info["salesforce"]["pubsub_endpoint"],
    }
    assert config["connections"]["hubspot"] == {"crm": "hubspot", "host": sb.info["hubspot"]["host"]}
    secrets_path = tmp_path / "demo.secrets.toml"
    assert stat.S_IMODE(secrets_path.stat().st_mode) == 0o600
    secrets = tomllib.loads(secrets_path.read_text())
    assert secrets["connections"]["salesforce"]["access_token"] == sb.info["salesforce"]["access_token"]
    assert secrets["connections"]["hubspot"]["access_token"] == sb.info["hubspot"]["access_token"]
    assert list((tmp_path / "demo.state").iterdir()) == []
    assert "access_token" not in path.read_text()
