"""Log lines of whole sandbox runs: one line per mid-run re-login and no secret in any line; task
reconciliation counts per page; every line with the run's context."""

from __future__ import annotations

from sandbox import FaultRule
from tests.integration.conftest import Env
from tests.log_sink import Sink


def _relogging(env: Env) -> list[str]:
    """Switch the connection to a mode that can log in again (Salesforce client credentials, HubSpot
    OAuth) and restart the worker; the secrets it now holds are returned."""
    info = env.sb.info[env.crm]
    assert isinstance(info, dict)
    secrets_path = env.config.with_name(f"{env.config.stem}.secrets.toml")
    config, secrets = env.config.read_text(encoding="utf-8"), secrets_path.read_text(encoding="utf-8")
    if env.crm == "salesforce":
        config = config.replace(
            'auth = "token"', f'auth = "client_credentials"\nclient_id = "{info["client_id"]}"'
        )
        added = {"client_secret": info["client_secret"]}
    else:
        config = config.replace(
            'crm = "hubspot"\n', f'crm = "hubspot"\nauth = "oauth"\nclient_id = "{info["client_id"]}"\n'
        )
        added = {"client_secret": info["client_secret"], "refresh_token": info["refresh_token"]}
    extra = "".join(f'{key} = "{value}"\n' for key, value in added.items())
    secrets = secrets.replace(f"[connections.{env.crm}]\n", f"[connections.{env.crm}]\n{extra}")
    env.config.write_text(config, encoding="utf-8")
    secrets_path.write_text(secrets, encoding="utf-8")
    env.restart()
    return [info["access_token"], *added.values()]


def test_a_mid_run_session_expiry_logs_one_relogin_line_and_no_secret(env: Env, sink: Sink) -> None:
    """The CRM expires the session after 4 calls: the run still succeeds, the re-login is logged once at
    info with the run's context, and no configured secret appears in any line."""
    secrets = _relogging(env)
    env.sb.add_fault(FaultRule(kind="session_expiry", crm=env.crm, after_calls=4))
    summary = env.run(mode="full")
    assert summary.status == "succeeded", summary.error
    assert any(r["status"] == 401 for r in env.sb.requests())
    if env.crm == "salesforce":
        (line,) = sink.events("salesforce session expired (INVALID_SESSION_ID); logged in again")
        assert line["auth"] == "client_credentials"
    else:
        (line,) = sink.events("hubspot access token refreshed")
        assert line["expires_in_s"] > 0
    assert line["level"] == "info"
    assert (line["run_id"], line["connection"]) == (summary.run_id, env.crm)
    text = sink.text()
    assert "run finished" in text
    for secret in secrets:
        assert secret and secret not in text


def _unqualified_deals_with_tasks(env: Env, count: int) -> list[str]:
    open_by_deal = {t["deal_id"]: t for t in env.view.tasks() if t["open"]}
    deals = sorted(d for d, deal in env.view.deals().items() if deal["open"] and d in open_by_deal)
    assert len(deals) >= count, "the seed should give enough unqualified deals a task"
    return deals[:count]


def test_a_full_sweep_after_tasks_were_deleted_logs_the_repair_counts(env: Env, sink: Sink) -> None:
    """Reps delete three tasks: the next full sweep logs the ledger rows it forgot and the tasks it
    recreated (counts summed over pages), each line with the run's context."""
    env.run("full")
    deleted = _unqualified_deals_with_tasks(env, 3)
    for deal_id in deleted:
        for task in env.view.open_tasks_of(deal_id):
            env.view.delete_task(task["id"])
    sink.lines.clear()
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    corrected = sink.events("task ledger corrected")
    planned = sink.events("task reconciliation")
    assert sum(line["forgotten"] for line in corrected) == 3
    assert sum(line["recreated"] for line in planned) == 3
    assert all(line["level"] == "info" for line in corrected + planned)
    assert {(line["run_id"], line["connection"]) for line in corrected + planned} == {
        (summary.run_id, env.crm)
    }
    assert sink.events("task creates refused as existing") == []


def test_a_task_completed_too_early_logs_one_reopen(env: Env, sink: Sink) -> None:
    """A rep completes the task of a still-unqualified deal: the next full sweep logs reopened=1."""
    env.run("full")
    (deal_id,) = _unqualified_deals_with_tasks(env, 1)
    (task,) = env.view.open_tasks_of(deal_id)
    env.view.complete_task(task["id"])
    sink.lines.clear()
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    planned = sink.events("task reconciliation")
    assert sum(line["reopened"] for line in planned) == 1
    assert sum(line["recreated"] for line in planned) == 0


def test_a_quiet_rerun_logs_no_reconciliation(env: Env, sink: Sink) -> None:
    """A second full sweep with nothing changed logs no reconciliation or ledger-correction line."""
    env.run("full")
    sink.lines.clear()
    assert env.run("full").status == "succeeded"
    assert sink.events("task reconciliation") == sink.events("task ledger corrected") == []
