"""The ops HTTP API: bearer auth, request validation, the lease-backed 202/409, run history and metrics."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from connectors.model import Owner
from tests.unit.serve_support import T0, TOKEN, TTL, FakeWorker, connection, make_worker, reset_structlog
from worker.serve.ops_api import RunLauncher, create_app
from worker.state import Rejection, RunRecord

AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMIT = 256


default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"), connection("off", enabled=False))
    yield w
    w.close()


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    app = create_app(worker, TOKEN, LIMIT)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client
    launcher(test_client).join(10)


def launcher(client: TestClient) -> RunLauncher:
    found: RunLauncher = client.app.state.launcher  # type: ignore[attr-defined]
    return found


def assert_no_run(worker: FakeWorker) -> None:
    assert worker.store.list_runs() == []
    assert worker.store.lease_holder("main", T0) is None


def chunks(size: int) -> Iterator[bytes]:
    sent = 0
    while sent < size:
        yield b" " * 64
        sent += 64


REFUSED: list[Any] = [
    pytest.param({}, {"json": {}}, 401, id="no-token"),
    pytest.param({"Authorization": "Bearer nope"}, {"json": {}}, 401, id="wrong-token"),
    pytest.param({"Authorization": f"Basic {TOKEN}"}, {"json": {}}, 401, id="wrong-scheme"),
    pytest.param(AUTH, {"json": {}, "params": {"token": TOKEN}}, 400, id="token-in-query"),
    pytest.param({}, {"json": {}, "params": {"access_token": TOKEN}}, 400, id="access-token-in-query"),
    pytest.param(AUTH, {"content": b"{" + b" " * LIMIT + b"}"}, 413, id="oversized-content-length"),
    pytest.param(AUTH, {"content": chunks(LIMIT * 2)}, 413, id="oversized-streamed"),
    pytest.param(AUTH, {"content": b"full=true"}, 400, id="not-json"),
    pytest.param(AUTH, {"json": ["full"]}, 422, id="not-an-object"),
    pytest.param(AUTH, {"json": {"fulll": True}}, 422, id="unknown-option"),
    pytest.param(AUTH, {"json": {"full": "yes"}}, 422, id="wrong-type-bool"),
    pytest.param(AUTH, {"json": {"deal": 42}}, 422, id="wrong-type-str"),
    pytest.param(AUTH, {"json": {"deal": ""}}, 422, id="empty-deal"),
    pytest.param(AUTH, {"json": {"deal": "D1", "owner": "U1"}}, 422, id="deal-and-owner"),
    pytest.param(AUTH, {"json": {"full": True, "deal": "D1"}}, 422, id="full-and-deal"),
    pytest.param(AUTH, {"json": {"connection": "nosuch"}}, 404, id="unknown-connection"),
    pytest.param(AUTH, {"json": {"connection": "off"}}, 422, id="disabled-connection"),
    pytest.param(AUTH, {"json": {"connection": "main", "full": True}}, None, id="accepted-control"),
]


@pytest.mark.parametrize(("headers", "request_kw", "status"), REFUSED)
def test_resync_refusals_start_no_run(
    client: TestClient,
    worker: FakeWorker,
    headers: dict[str, str],
    request_kw: dict[str, Any],
    status: int | None,
) -> None:
    """Each bad request gets its 4xx, names no secret, and starts no run (the control case is accepted)."""
    with capture_logs() as logs:
        response = client.post("/resync", headers=headers, **request_kw)
    if status is None:
        assert response.status_code == 202
        launcher(client).join(10)
        assert [r.run_id for r in worker.store.list_runs()] == [response.json()["run_id"]]
        return
    assert response.status_code == status, response.text
    assert TOKEN not in response.text and TOKEN not in repr(logs)
    assert response.json()["error"]
    assert_no_run(worker)


def test_missing_token_asks_for_bearer(client: TestClient) -> None:
    """401 without credentials carries WWW-Authenticate: Bearer, on every endpoint but /health."""
    for path in ("/runs", "/runs/x", "/metrics"):
        response = client.get(path)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/health").status_code == 200


def test_connection_required_when_several(client: TestClient, worker: FakeWorker) -> None:
    """With several connections configured, a resync must name one (like `sync --connection`)."""
    body = client.post("/resync", headers=AUTH, json={"full": True}).json()
    assert "main" in body["error"] and "off" in body["error"]
    assert_no_run(worker)


def test_unknown_option_is_named(client: TestClient) -> None:
    """The 422 for an unknown key names the key and the allowed options."""
    body = client.post("/resync", headers=AUTH, json={"dryrun": True}).json()
    assert "'dryrun'" in body["error"] and "dry_run" in body["error"]


def test_busy_lease_is_409_naming_holder(client: TestClient, worker: FakeWorker) -> None:
    """A lease held in the store (another process's run) is a 409 naming the holder; no run starts."""
    worker.store.acquire_lease("main", "holder-run-1", T0, TTL)
    response = client.post("/resync", headers=AUTH, json={"connection": "main", "full": True})
    assert response.status_code == 409
    assert response.json()["holder_run_id"] == "holder-run-1"
    assert "holder-run-1" in response.json()["error"]
    assert worker.store.list_runs() == []


def test_accepted_run_is_visible_then_finishes(client: TestClient, worker: FakeWorker) -> None:
    """202 reserves the lease at once (a second trigger is 409 naming it); GET /runs/{id} follows the run."""
    worker.gate = threading.Event()
    response = client.post(
        "/resync", headers=AUTH, json={"connection": "main", "deal": "D-7", "dry_run": True}
    )
    assert response.status_code == 202
    body = response.json()
    run_id = body["run_id"]
    assert body == {"run_id": run_id, "connection": "main", "mode": "deal", "status_url": f"/runs/{run_id}"}
    assert client.get(body["status_url"], headers=AUTH).json()["status"] == "starting"
    second = client.post("/resync", headers=AUTH, json={"connection": "main"})
    assert second.status_code == 409 and second.json()["holder_run_id"] == run_id
    worker.gate.set()
    launcher(client).join(10)
    run = client.get(f"/runs/{run_id}", headers=AUTH).json()
    assert (run["status"], run["trigger"], run["mode"], run["scope"], run["dry_run"]) == (
        "succeeded",
        "http",
        "deal",
        "D-7",
        True,
    )
    assert run["deals"]["read"] == 0
    assert worker.store.lease_holder("main", T0) is None


def test_runs_listing_and_unknown_run(client: TestClient, worker: FakeWorker) -> None:
    """GET /runs lists newest first and filters by connection; bad limits are 422; unknown ids are 404."""
    ids = []
    for body in ({"connection": "main", "full": True}, {"connection": "main", "owner": "U-1"}):
        ids.append(client.post("/resync", headers=AUTH, json=body).json()["run_id"])
        launcher(client).join(10)
    listed = client.get("/runs", headers=AUTH, params={"connection": "main", "limit": "5"}).json()["runs"]
    assert {r["run_id"] for r in listed} == set(ids)
    assert client.get("/runs", headers=AUTH, params={"connection": "off"}).json() == {"runs": []}
    assert len(client.get("/runs", headers=AUTH, params={"limit": "1"}).json()["runs"]) == 1
    for bad in ("0", "x", "501"):
        assert client.get("/runs", headers=AUTH, params={"limit": bad}).status_code == 422
    assert client.get("/runs/nope", headers=AUTH).status_code == 404


def test_health_names_lease_holders_without_auth(client: TestClient, worker: FakeWorker) -> None:
    """/health needs no token and shows each connection's lease holder."""
    worker.store.acquire_lease("main", "holder-run-2", T0, TTL)
    body = client.get("/health").json()
    assert body["status"] == "ok"
    holders = {name: c["lease_holder"] for name, c in body["connections"].items()}
    assert holders == {"main": "holder-run-2", "off": None}
    assert {c["status"] for c in body["connections"].values()} == {"ok"}


def test_shutting_down_refuses_resync(client: TestClient, worker: FakeWorker) -> None:
    """Once stop is set (SIGTERM), a resync is 503 and starts nothing."""
    worker.stop.set()
    assert client.post("/resync", headers=AUTH, json={}).status_code == 503
    assert_no_run(worker)


METRIC_LINE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_]\w*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+)$'
)


def parse_metrics(text: str) -> dict[str, float]:
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = METRIC_LINE.match(line)
        assert match, f"not in exposition format: {line!r}"
        samples[line.rsplit(" ", 1)[0]] = float(match.group(4))
    return samples


def test_metrics_exposition(client: TestClient, worker: FakeWorker) -> None:
    """/metrics is Prometheus text 0.0.4: every sample line parses; runs, leases and last-run figures show."""
    client.post("/resync", headers=AUTH, json={"connection": "main", "full": True})
    launcher(client).join(10)
    worker.store.acquire_lease("main", "holder-run-3", T0, TTL)
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    samples = parse_metrics(response.text)
    assert samples['bant_sync_runs_total{connection="main",status="succeeded"}'] == 1
    assert samples['bant_sync_lease_held{connection="main"}'] == 1
    assert samples['bant_sync_lease_held{connection="off"}'] == 0
    assert samples['bant_sync_connection_enabled{connection="main"}'] == 1
    assert samples['bant_sync_connection_enabled{connection="off"}'] == 0
    assert samples['bant_sync_last_run_finished_timestamp_seconds{connection="main"}'] == T0.timestamp()
    assert samples['bant_sync_api_calls_total{connection="main",crm="fake"}'] == 2
    assert "# TYPE bant_sync_deals gauge" in response.text


def test_empty_token_is_refused(worker: FakeWorker) -> None:
    """The app cannot be built without a token."""
    with pytest.raises(ValueError, match="BANT_SYNC_OPS_TOKEN"):
        create_app(worker, "", LIMIT)


def test_run_detail_lists_its_rejections(client: TestClient, worker: FakeWorker) -> None:
    """GET /runs/{id} carries every row the CRM refused in that run (deal, operation, code, message), in
    the order recorded; the listing does not, and a run without any has an empty list."""
    worker.store.start_run(RunRecord("run-r", "main", "cli", "full", T0))
    lease = worker.store.acquire_lease("main", "run-r", T0, TTL)
    refused = [
        Rejection(
            "006B", "status", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Close Date must be in the future", T0
        ),
        Rejection("006A", "task_create", "INVALID_CROSS_REFERENCE_KEY", "owner is inactive", T0),
    ]
    worker.store.checkpoint(lease, None, [], [], {"deals_rejected": 1}, refused[:1])
    worker.store.finish_run("run-r", T0, "succeeded", {"deals_rejected": 1}, 3, None, refused[1:])
    worker.store.release_lease(lease)
    body = client.get("/runs/run-r", headers=AUTH).json()
    assert body["rejections"] == [r.as_json() for r in refused]
    assert body["deals"]["rejected"] == 1 and body["statuses"] == {}
    assert "rejections" not in client.get("/runs", headers=AUTH).json()["runs"][0]
    run_id = client.post("/resync", headers=AUTH, json={"connection": "main", "full": True}).json()["run_id"]
    launcher(client).join(10)
    assert client.get(f"/runs/{run_id}", headers=AUTH).json()["rejections"] == []
    missing = client.get("/runs/run-unknown", headers=AUTH)
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"


def test_a_resync_by_owner_email_runs_for_that_owners_id(client: TestClient, worker: FakeWorker) -> None:
    """POST /resync {"owner": e-mail} resolves it like `sync --owner` (case-insensitively, from the owners
    cache, then one read of the CRM's owners); an e-mail the CRM does not know either is a 422 naming it,
    and starts no run."""
    worker.store.replace_owners("main", [Owner("005A", "Avery Rep", "avery@example.com", None, True)], T0)
    response = client.post(
        "/resync", headers=AUTH, json={"connection": "main", "owner": "Avery@Example.com", "dry_run": True}
    )
    assert response.status_code == 202, response.json()
    launcher(client).join(10)
    run = client.get(f"/runs/{response.json()['run_id']}", headers=AUTH).json()
    assert (run["mode"], run["scope"]) == ("owner", "005A")
    unknown = client.post("/resync", headers=AUTH, json={"connection": "main", "owner": "avery@exampel.com"})
    assert unknown.status_code == 422
    assert "avery@exampel.com: no owner of connection 'main' has this e-mail" in unknown.json()["error"]
    assert len(worker.store.list_runs("main", 10)) == 1
