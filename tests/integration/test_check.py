"""`bant-sync check` against the sandbox: ready, not ready, and configuration problems, all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import Sandbox, SandboxOptions
from worker import exit_codes
from worker.cli.app import main


def _check(capsys: pytest.CaptureFixture[str], config: Path) -> tuple[int, str]:
    code = main(["--config", str(config), "--log-level", "error", "check"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    return code, captured.out + captured.err


def _problems(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("PROBLEM: ")]


def test_a_ready_sandbox_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Configuration, state store and both CRMs ready: exit 0, each named as ready."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        code, output = _check(capsys, config)
    assert code == exit_codes.OK, output
    assert _problems(output) == []
    assert "salesforce: ready" in output and "hubspot: ready" in output
    assert "state store sqlite:///" in output and "all ready" in output


def test_a_fresh_org_and_portal_list_every_missing_field_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without bant-sync's fields and properties: exit 1, the Salesforce fields and HubSpot properties."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False, bare=True)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        code, output = _check(capsys, config)
    problems = _problems(output)
    assert code == exit_codes.FAILURE
    assert {p.split(":")[1].strip() for p in problems} == {"salesforce", "hubspot"}
    assert any("BANT_Status__c" in p for p in problems)
    assert any("bant_status" in p and "bant-sync setup" in p for p in problems)


def test_missing_secret_and_rejected_token_are_both_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One connection without its secret (configuration, exit 3) and one with a rejected token: both."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        secrets = tmp_path / "sandbox.secrets.toml"
        secrets.write_text('[connections.hubspot]\naccess_token = "wrong-token"\n', encoding="utf-8")
        code, output = _check(capsys, config)
    problems = _problems(output)
    assert code == exit_codes.CONFIG
    assert len(problems) == 2, output
    assert any(p.startswith("PROBLEM: salesforce:") and "access_token" in p for p in problems)
    assert any(p.startswith("PROBLEM: hubspot:") and "401" in p for p in problems)
    assert "wrong-token" not in output


def _with_change_events(config: Path, endpoint: str | None = None) -> None:
    """Turn the sandbox config's Salesforce change stream on (at `endpoint`: the sandbox's by default)."""
    lines = config.read_text(encoding="utf-8").splitlines()
    at = lines.index("[connections.salesforce]") + 1
    lines.insert(at, "change_events = true")
    if endpoint is not None:
        lines = [
            f'pubsub_endpoint = "{endpoint}"' if line.startswith("pubsub_endpoint") else line
            for line in lines
        ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_salesforce_change_stream_is_checked_when_it_is_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With change_events = true, check also asks the Pub/Sub API for the topic and its schema: ready names
    the endpoint; an endpoint nothing answers on is a problem naming pubsub_endpoint, the rest still ready."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        _with_change_events(config)
        code, output = _check(capsys, config)
        assert code == exit_codes.OK, output
        endpoint = str(sb.info["salesforce"]["pubsub_endpoint"])  # type: ignore[index]
        assert f"salesforce: change stream ready ({endpoint}, schema " in output
        sb.write_config(config)
        _with_change_events(config, "127.0.0.1:9")
        code, output = _check(capsys, config)
    problems = _problems(output)
    assert code == exit_codes.FAILURE, output
    assert len(problems) == 1 and problems[0].startswith("PROBLEM: salesforce: ")
    assert "127.0.0.1:9" in problems[0], problems
    assert "salesforce: ready (salesforce)" in output and "hubspot: ready" in output
