"""The change stream's settings on a Salesforce connection, and the sandbox config that turns it on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from connectors.errors import ConfigurationError
from connectors.salesforce.settings import SalesforceSettings
from sandbox.configfile import write_config


def _settings(**kw: object) -> SalesforceSettings:
    return SalesforceSettings(auth="token", instance_url="https://example.my.salesforce.com", **kw)  # type: ignore[arg-type]


def test_change_events_are_off_by_default_on_salesforces_endpoint() -> None:
    settings = _settings()
    assert settings.change_events is False
    assert settings.pubsub_endpoint == "api.pubsub.salesforce.com:7443"
    assert settings.change_events_batch == 100
    assert settings.problems() == []


@pytest.mark.parametrize("batch", [0, -1, 101, 1000])
def test_a_batch_outside_1_to_100_is_a_problem(batch: int) -> None:
    problems = _settings(change_events_batch=batch).problems()
    assert problems == [
        "change_events_batch: must be between 1 and 100 (the most events the Pub/Sub API sends for one "
        "request)"
    ]


@pytest.mark.parametrize("batch", [1, 50, 100])
def test_a_batch_within_1_to_100_is_accepted(batch: int) -> None:
    assert _settings(change_events=True, change_events_batch=batch).problems() == []


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://api.pubsub.salesforce.com:7443",
        "api.pubsub.salesforce.com",
        ":7443",
        "host:0",
        "host:99999",
        "",
    ],
)
def test_an_endpoint_that_is_not_host_port_is_a_problem_that_says_the_form(endpoint: str) -> None:
    (problem,) = _settings(pubsub_endpoint=endpoint).problems()
    assert problem.startswith("pubsub_endpoint: ")
    assert "host:port without a scheme" in problem


def test_validate_lists_the_stream_problems_with_the_others() -> None:
    with pytest.raises(ConfigurationError) as raised:
        _settings(change_events_batch=0, pubsub_endpoint="nowhere", overlap_minutes=-1).validate()
    assert [p.split(":")[0] for p in raised.value.problems] == [
        "overlap_minutes",
        "change_events_batch",
        "pubsub_endpoint",
    ]


def _info(pubsub: str | None) -> dict[str, object]:
    salesforce = {
        "instance_url": "https://127.0.0.1:1",
        "login_url": "https://127.0.0.1:1",
        "access_token": "00D!token",
    }
    if pubsub is not None:
        salesforce["pubsub_endpoint"] = pubsub
    return {
        "salesforce": salesforce,
        "hubspot": {"host": "https://127.0.0.1:2", "access_token": "pat"},
        "ca_bundle": "/tmp/ca.pem",
    }


def test_the_sandbox_config_points_the_salesforce_connection_at_its_pubsub_endpoint(tmp_path: Path) -> None:
    path = write_config(tmp_path / "sb.toml", _info("127.0.0.1:4711"))  # type: ignore[arg-type]
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    assert config["connections"]["salesforce"]["pubsub_endpoint"] == "127.0.0.1:4711"
    assert "pubsub_endpoint" not in config["connections"]["hubspot"]


def test_a_sandbox_without_a_pubsub_endpoint_leaves_the_default(tmp_path: Path) -> None:
    path = write_config(tmp_path / "sb.toml", _info(None))  # type: ignore[arg-type]
    config = tomllib.loads(path.read_text(encoding="utf-8"))
    assert "pubsub_endpoint" not in config["connections"]["salesforce"]
