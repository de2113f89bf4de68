"""Errors a user can cause end in one clear message with what to do and a non-zero exit code; logs at
INFO never carry secrets or deal free text."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import structlog

from sandbox import Sandbox, SandboxOptions
from tests.conftest import ROOT
from tests.timing import FakeTime
from worker import exit_codes
from worker.cli.app import main
from worker.config.loader import load_settings
from worker.errors import ConfigError
from worker.service import Worker
from worker.sync.run_model import RunRequest


@contextmanager
def _sandbox(tmp_path: Path) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox without rate limits and a config file pointing at it."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        yield sb, config


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sync(capsys: pytest.CaptureFixture[str], config: Path, crm: str) -> tuple[int, str]:
    code = main(["--config", str(config), "--log-level", "error", "sync", "--connection", crm])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_revoked_credentials(tmp_path: Path, capsys: pytest.CaptureFixture[str], crm: str) -> None:
    """A token the CRM no longer accepts: the run fails, says to check the credentials, and hides them."""
    with _sandbox(tmp_path) as (_sb, config):
        secrets = tmp_path / "sandbox.secrets.toml"
        secrets.write_text(f'[connections.{crm}]\naccess_token = "revoked-token-abc123"\n', encoding="utf-8")
        code, output = _sync(capsys, config, crm)
    assert code == exit_codes.FAILURE
    assert "revoked-token-abc123" not in output
    assert "Traceback" not in output
    assert any(word in output.lower() for word in ("credential", "token", "authenticat")), output


def _run_with(config: Path, replace: dict[str, str], crm: str) -> tuple[str, str | None]:
    text = config.read_text(encoding="utf-8")
    for old, new in replace.items():
        text = text.replace(old, new)
    config.write_text(text, encoding="utf-8")
    time = FakeTime()
    worker = Worker(load_settings(str(config), environ={}), clock=time.now, sleep=time.sleep)
    try:
        summary = worker.run(RunRequest(crm))
    finally:
        worker.close()
    return summary.status, summary.error


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_unreachable_crm(tmp_path: Path, crm: str) -> None:
    """Nothing listens at the configured address: a failed run whose error says the CRM is unreachable."""
    with _sandbox(tmp_path) as (sb, config):
        port = _free_port()
        status, error = _run_with(
            config,
            {
                sb.info["hubspot"]["host"]: f"http://127.0.0.1:{port}",
                sb.info["salesforce"]["instance_url"]: f"https://127.0.0.1:{port}",
            },
            crm,
        )
    assert status == "failed"
    assert error and any(w in error.lower() for w in ("connect", "reach", "refused")), error


def test_missing_ca_bundle_is_a_configuration_error(tmp_path: Path) -> None:
    """A `ca_bundle` path that does not exist is named in a configuration error, not a traceback."""
    with _sandbox(tmp_path) as (sb, config):
        status, error = _run_with(config, {sb.info["ca_bundle"]: str(tmp_path / "nope.pem")}, "salesforce")
    assert status == "failed"
    assert error and "ca_bundle" in error and "nope.pem" in error


@pytest.mark.parametrize(("crm", "field"), [("salesforce", "BANT_Need__c"), ("hubspot", "bant_need")])
def test_missing_field_stops_the_connection_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], crm: str, field: str
) -> None:
    """A BANT field deleted in the CRM: exit 1 naming the field, and no deal is flagged."""
    with _sandbox(tmp_path) as (sb, config):
        if crm == "salesforce":
            sb.salesforce.delete_field("Opportunity", field)
        else:
            sb.hubspot.delete_property("deals", field)
        code, output = _sync(capsys, config, crm)
        if crm == "salesforce":
            flagged = [r for r in sb.salesforce.records("Opportunity") if r.get("BANT_Status__c")]
        else:
            flagged = [d for d in sb.hubspot.deals() if d["properties"].get("bant_status")]  # type: ignore[union-attr]
    assert code == exit_codes.FAILURE
    assert field in output
    assert flagged == []


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_info_logs_carry_no_secret_and_no_deal_text(tmp_path: Path, crm: str) -> None:
    """A whole run at INFO logs run context and counts, never a token or a deal's name or BANT text."""
    with _sandbox(tmp_path) as (sb, config):
        time = FakeTime()
        worker = Worker(load_settings(str(config), environ={}), clock=time.now, sleep=time.sleep)
        with structlog.testing.capture_logs() as logs:
            summary = worker.run(RunRequest(crm, mode="full"))
        worker.close()
        token = sb.info[crm]["access_token"]
        texts = {str(d["properties"].get("dealname")) for d in sb.hubspot.deals()}  # type: ignore[union-attr]
        texts |= {
            str(r.get("BANT_Need__c")) for r in sb.salesforce.records("Opportunity") if r.get("BANT_Need__c")
        }
    assert summary.status == "succeeded"
    rendered = "\n".join(repr(entry) for entry in logs)
    assert token not in rendered
    assert [t for t in texts if len(t) > 8 and t in rendered] == []
    assert all(entry.get("run_id") == summary.run_id for entry in logs if entry["log_level"] == "info")


def test_a_misspelt_framework_is_a_configuration_problem_at_load(tmp_path: Path) -> None:
    """A connection naming a framework that does not exist is reported with the settings' problems."""
    with _sandbox(tmp_path) as (_sb, config):
        text = config.read_text(encoding="utf-8").replace(
            'crm = "hubspot"\n', 'crm = "hubspot"\nframework = "spiced"\n'
        )
        config.write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError) as raised:
            load_settings(str(config), environ={})
    assert [p for p in raised.value.problems if "spiced" in p] == [
        "connections.hubspot.framework: framework 'spiced' not found (available: bant, meddic); "
        "give a name or a path to a .toml file"
    ]


def test_a_framework_broken_after_load_is_a_config_error_recorded_in_run_history(tmp_path: Path) -> None:
    """A framework file that breaks while the service runs (someone edits it): the run is recorded as failed
    with the message, and the configuration error reaches the caller (the CLI exits 3 with it)."""
    framework = tmp_path / "ours.toml"
    framework.write_text((ROOT / "config" / "frameworks" / "bant.toml").read_text(encoding="utf-8"))
    with _sandbox(tmp_path) as (_sb, config):
        text = config.read_text(encoding="utf-8").replace(
            'crm = "hubspot"\n', f'crm = "hubspot"\nframework = "{framework}"\n'
        )
        config.write_text(text, encoding="utf-8")
        time = FakeTime()
        worker = Worker(load_settings(str(config), environ={}), clock=time.now, sleep=time.sleep)
        framework.unlink()
        try:
            with pytest.raises(ConfigError, match=r"ours\.toml does not exist"):
                worker.run(RunRequest("hubspot"))
            runs = worker.store.list_runs("hubspot")
        finally:
            worker.close()
    assert [(r.status, "ours.toml" in (r.error or "")) for r in runs] == [("failed", True)]


def _cli(capsys: pytest.CaptureFixture[str], config: Path, *command: str) -> tuple[int, str]:
    code = main(["--config", str(config), "--log-level", "error", *command])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _one_message(output: str) -> str:
    """The one error or PROBLEM line of `output` (asserting there is exactly one, and no traceback)."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if "error:" in line or "PROBLEM:" in line]
    assert len(lines) == 1, output
    return lines[0]


def _edit(config: Path, old: str, new: str) -> None:
    text = config.read_text(encoding="utf-8")
    assert old in text
    config.write_text(text.replace(old, new), encoding="utf-8")


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
@pytest.mark.parametrize("check", [False, True])
def test_setup_with_a_wrong_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], crm: str, check: bool
) -> None:
    """`setup` / `setup --check` with a token the CRM refuses: one PROBLEM naming the token, exit 1."""
    with _sandbox(tmp_path) as (_sb, config):
        secrets = tmp_path / "sandbox.secrets.toml"
        secrets.write_text(f'[connections.{crm}]\naccess_token = "wrong-token-xyz"\n', encoding="utf-8")
        code, output = _cli(capsys, config, "setup", "--connection", crm, *(["--check"] if check else []))
    assert code == exit_codes.FAILURE
    message = _one_message(output)
    assert message.startswith(f"{crm}: PROBLEM:") and "token" in message.lower()
    assert "wrong-token-xyz" not in output


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_setup_check_with_a_missing_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], crm: str
) -> None:
    """`setup --check` when the connection's secret is not set anywhere: one PROBLEM naming it."""
    with _sandbox(tmp_path) as (_sb, config):
        (tmp_path / "sandbox.secrets.toml").write_text("", encoding="utf-8")
        code, output = _cli(capsys, config, "setup", "--check", "--connection", crm)
    assert code == exit_codes.FAILURE
    assert "access_token" in _one_message(output)


def test_setup_check_on_a_fresh_hubspot_portal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`setup --check` on a portal without bant-sync's properties lists them and says to run `setup`."""
    with Sandbox.start(SandboxOptions(enforce_rate_limits=False, bare=True)) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        code, output = _cli(capsys, config, "setup", "--check", "--connection", "hubspot")
    assert code == exit_codes.FAILURE
    message = _one_message(output)
    assert "bant_status" in message and "bant-sync setup" in message


def test_hubspot_auth_with_a_dash(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """HubSpot `auth = "private-app"`: a configuration error with the spelling to use, exit 3."""
    with _sandbox(tmp_path) as (_sb, config):
        _edit(config, 'crm = "hubspot"\n', 'crm = "hubspot"\nauth = "private-app"\n')
        code, output = _cli(capsys, config, "status")
    assert code == exit_codes.CONFIG
    assert "connections.hubspot.auth" in output and "did you mean 'private_app'" in output
    assert output.count("bant-sync: error:") == 1 and "Traceback" not in output


def test_misspelt_timezone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A misspelt rules.timezone: a configuration error with the zone meant, exit 3, before any CRM call."""
    with _sandbox(tmp_path) as (_sb, config):
        _edit(config, "[state]\n", '[rules]\ntimezone = "Europe/Berln"\n\n[state]\n')
        code, output = _cli(capsys, config, "setup", "--check")
    assert code == exit_codes.CONFIG
    assert "did you mean 'Europe/Berlin'" in output
    assert output.count("bant-sync: error:") == 1 and "Traceback" not in output


def test_https_against_an_http_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`https://` for a host that speaks http: one PROBLEM saying the CRM cannot be reached over TLS."""
    with _sandbox(tmp_path) as (sb, config):
        host = sb.info["hubspot"]["host"]
        _edit(config, host, host.replace("http://", "https://"))
        code, output = _cli(capsys, config, "setup", "--check", "--connection", "hubspot")
    assert code == exit_codes.FAILURE
    assert "check `host`" in _one_message(output)


def test_unreachable_postgresql(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A PostgreSQL state store nobody answers at: one message naming the server and what to do, exit 1."""
    with _sandbox(tmp_path) as (_sb, config):
        _edit(config, 'dir = "sandbox.state"', f'url = "postgresql://bant@127.0.0.1:{_free_port()}/bant"')
        code, output = _cli(capsys, config, "status")
    assert code == exit_codes.FAILURE
    assert "refused" in _one_message(output).lower()
    assert "what to do: check that the state database is running" in output


def test_salesforce_typo_fails_at_load_not_as_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Salesforce value typo stops `status` (which never calls the CRM) with a configuration error."""
    with _sandbox(tmp_path) as (_sb, config):
        _edit(config, 'auth = "token"', 'auth = "tokn"')
        code, output = _cli(capsys, config, "status")
    assert code == exit_codes.CONFIG
    assert "connections.salesforce.auth" in output and "did you mean 'token'" in output
    assert output.count("bant-sync: error:") == 1 and "Traceback" not in output


def test_ops_api_answers_a_user_error_as_one_json_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint meeting a state store that went away answers one JSON error with 503, no stack trace."""
    from starlette.testclient import TestClient

    from tests.unit.serve_support import TOKEN, connection, make_worker
    from worker.serve.ops_api import create_app
    from worker.state import StateUnavailableError

    worker = make_worker(tmp_path, connection("main"))
    try:

        def down(*args: object) -> None:
            raise StateUnavailableError("the state store at db failed (refused)")

        monkeypatch.setattr(worker.store, "list_runs", down)
        with TestClient(create_app(worker, TOKEN, 1024), base_url="http://127.0.0.1") as client:
            response = client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    finally:
        worker.close()
    assert response.status_code == 503
    body = response.json()
    assert body["error"] == "the state store at db failed (refused)"
    assert body["kind"] == "StateUnavailableError" and body["hint"]
    assert "Traceback" not in response.text
