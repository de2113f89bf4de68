"""Rows the CRM refuses are visible (issue item 6): deal id, operation, CRM code and message in the run's
summary (`sync --json`), the state store, `status`, `GET /runs/{id}`, and one WARNING log line each."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from sandbox.faults import FaultRule
from tests.integration.conftest import Env
from worker import exit_codes
from worker.cli.app import main
from worker.serve.ops_api import create_app

CODE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
MESSAGE = "Close Date must be in the future"
TOKEN = "ops-token-for-rejection-tests-0123456789"


def _status_path(crm: str) -> str:
    return r"/composite/sobjects$" if crm == "salesforce" else r"/deals/batch/update$"


def _task_create_path(crm: str) -> str:
    return r"/composite/sobjects/Task/" if crm == "salesforce" else r"/tasks/batch/create$"


def _refuse(env: Env, path: str, rows: tuple[int, ...]) -> None:
    """The CRM refuses `rows` of the next write batch on `path` with a validation rule."""
    env.sb.add_fault(
        FaultRule(
            kind="partial_batch",
            crm=env.crm,
            path=path,
            rows=rows,
            times=1,
            error_code=CODE,
            message=MESSAGE,
        )
    )


def _unwritten(env: Env) -> set[str]:
    return {i for i, d in env.view.deals().items() if d["open"] and d["status"] is None}


def test_refused_status_writes_are_named_everywhere(env: Env) -> None:
    """Two status writes refused by a validation rule: the summary, the store and the WARNING log each name
    the two deals with operation `status` and the CRM's code and message; the run's counts agree."""
    _refuse(env, _status_path(env.crm), (1, 3))
    with capture_logs() as logs:
        summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    refused = _unwritten(env)
    assert len(refused) == 2
    expected = [{"deal_id": d, "operation": "status", "code": CODE, "message": MESSAGE} for d in refused]
    assert sorted(summary.rejections, key=lambda r: str(r["deal_id"])) == sorted(
        expected, key=lambda r: str(r["deal_id"])
    )
    assert summary.as_json()["rejections"] == summary.rejections
    assert summary.deals["rejected"] == 2
    stored = env.worker.store.run_rejections(summary.run_id)
    assert [r.as_json() for r in stored] == summary.rejections
    warned = [e for e in logs if e["event"] == "row rejected by the CRM"]
    assert all(e["log_level"] == "warning" for e in warned)
    assert sorted((e["deal_id"], e["operation"], e["code"], e["message"]) for e in warned) == sorted(
        (d, "status", CODE, MESSAGE) for d in refused
    )


def test_a_refused_task_create_is_named_with_its_action(env: Env) -> None:
    """A task create the CRM refuses is a rejection with operation `task_create` and the CRM's words."""
    _refuse(env, _task_create_path(env.crm), (0,))
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    tasks = [r for r in summary.rejections if r["operation"] != "status"]
    assert [(r["operation"], r["code"], r["message"]) for r in tasks] == [("task_create", CODE, MESSAGE)]
    deal_id = tasks[0]["deal_id"]
    assert not [t for t in env.view.tasks() if t["deal_id"] == deal_id]
    assert [r.as_json() for r in env.worker.store.run_rejections(summary.run_id)] == summary.rejections


def test_a_clean_rerun_has_no_rejections(env: Env) -> None:
    """Refused rows are retried by the next run, which then reports none."""
    _refuse(env, _status_path(env.crm), (0,))
    assert len(env.run("full").rejections) == 1
    again = env.run("full")
    assert again.status == "succeeded", again.error
    assert again.rejections == []
    assert _unwritten(env) == set()


def _cli(capsys: pytest.CaptureFixture[str], env: Env, *args: str) -> tuple[int, str]:
    code = main(["--config", str(env.config), "--log-level", "error", *args])
    return code, capsys.readouterr().out


def test_sync_json_status_and_the_ops_api_show_rejections(
    env: Env, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sync --json` lists the refused rows and exits 7; human `sync` and `status` list them; `status
    --json` gives the last run's count and first rows; `GET /runs/{id}` returns them all."""
    _refuse(env, _status_path(env.crm), (0, 2, 4))
    code, out = _cli(capsys, env, "sync", "--connection", env.crm, "--full", "--json")
    assert code == exit_codes.ROWS_REJECTED
    body = json.loads(out)
    refused = _unwritten(env)
    assert sorted(r["deal_id"] for r in body["rejections"]) == sorted(refused)
    assert {(r["operation"], r["code"], r["message"]) for r in body["rejections"]} == {
        ("status", CODE, MESSAGE)
    }

    code, out = _cli(capsys, env, "status", "--connection", env.crm, "--json")
    assert code == exit_codes.OK
    (report,) = json.loads(out)["connections"]
    last: dict[str, Any] = report["last_run_rejections"]
    assert (last["run_id"], last["count"]) == (body["run_id"], 3)
    assert last["first"] == body["rejections"]

    code, out = _cli(capsys, env, "status", "--connection", env.crm)
    assert f"rejected in run {body['run_id']} (3):" in out
    assert all(deal_id in out for deal_id in refused) and MESSAGE in out

    with TestClient(create_app(env.worker, TOKEN, 1024), base_url="http://127.0.0.1") as client:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        run = client.get(f"/runs/{body['run_id']}", headers=auth)
        assert run.status_code == 200
        assert run.json()["rejections"] == body["rejections"]
        missing = client.get("/runs/no-such-run", headers=auth)
        assert missing.status_code == 404 and "error" in missing.json()
