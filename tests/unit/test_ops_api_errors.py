"""Every error answer of the ops API is JSON of one shape `{"error", "kind", "problems", "hint"}`: the auth
refusals, validation, unknown connections (404 everywhere), Starlette's own 404 and 405, a BantSyncError and
a bug."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.unit.serve_support import T0, TOKEN, TTL, FakeWorker, connection, make_worker
from worker.serve.ops_api import create_app
from worker.state import StateUnavailableError

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SHAPE = {"error", "kind", "problems", "hint"}


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"), connection("off", enabled=False))
    yield w
    w.close()


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    app = create_app(worker, TOKEN, 64)
    with TestClient(app, base_url="http://127.0.0.1", raise_server_exceptions=False) as test_client:
        yield test_client
    test_client.app.state.launcher.join(10)  # type: ignore[attr-defined]


def error_of(response: Any, status: int, kind: str) -> dict[str, Any]:
    """The body of an error answer, checked for its status, JSON content type, shape and kind."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) >= SHAPE, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["problems"], list)
    assert body["kind"] == kind
    return body


CASES: list[Any] = [
    pytest.param("GET", "/nope", AUTH, None, 404, "NotFound", id="unknown-path"),
    pytest.param("GET", "/nope", {}, None, 401, "Unauthorized", id="unknown-path-no-token"),
    pytest.param("DELETE", "/runs", AUTH, None, 405, "MethodNotAllowed", id="method"),
    pytest.param("POST", "/health", {}, None, 405, "MethodNotAllowed", id="method-on-health"),
    pytest.param("GET", "/runs", {}, None, 401, "Unauthorized", id="no-token"),
    pytest.param(
        "GET", "/runs", {"Authorization": "Bearer wrong"}, None, 401, "Unauthorized", id="bad-token"
    ),
    pytest.param("GET", "/health?api_key=x", {}, None, 400, "BadRequest", id="credential-query"),
    pytest.param("GET", "/runs?connection=nope", AUTH, None, 404, "NotFound", id="runs-unknown-connection"),
    pytest.param("GET", "/runs?limit=0", AUTH, None, 422, "InvalidRequest", id="runs-bad-limit"),
    pytest.param("GET", "/runs/abc", AUTH, None, 404, "NotFound", id="unknown-run"),
    pytest.param("POST", "/resync", AUTH, {"connection": "nope"}, 404, "NotFound", id="resync-unknown"),
    pytest.param("POST", "/resync", AUTH, {"connection": "off"}, 422, "InvalidRequest", id="resync-disabled"),
    pytest.param("POST", "/resync", AUTH, {"x": 1}, 422, "InvalidRequest", id="resync-unknown-option"),
    pytest.param("POST", "/resync", AUTH, {"deal": "a" * 100}, 413, "PayloadTooLarge", id="resync-too-big"),
]


@pytest.mark.parametrize(("method", "path", "headers", "body", "status", "kind"), CASES)
def test_every_refusal_has_the_one_shape(
    client: TestClient,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    kind: str,
) -> None:
    response = client.request(method, path, headers=headers, json=body)
    error_of(response, status, kind)


def test_unknown_connection_is_named_with_the_configured_ones(client: TestClient) -> None:
    """404 for an unknown connection says which are configured; a known one lists (disabled or not)."""
    body = error_of(client.get("/runs", headers=AUTH, params={"connection": "nope"}), 404, "NotFound")
    assert body["error"] == "no connection named 'nope'; configured: main, off"
    resync = client.post("/resync", headers=AUTH, json={"connection": "nope"})
    assert error_of(resync, 404, "NotFound")["error"] == body["error"]
    assert client.get("/runs", headers=AUTH, params={"connection": "off"}).json() == {"runs": []}


def test_405_keeps_allow_and_401_keeps_www_authenticate(client: TestClient) -> None:
    response = client.put("/resync", headers=AUTH)
    assert "POST" in response.headers["allow"]
    assert "use POST" in error_of(response, 405, "MethodNotAllowed")["error"]
    refused = client.get("/metrics")
    assert refused.headers["www-authenticate"].startswith("Bearer")
    error_of(refused, 401, "Unauthorized")


def test_busy_lease_409_names_the_holder(client: TestClient, worker: FakeWorker) -> None:
    worker.store.acquire_lease("main", "holder-7", T0, TTL)
    body = error_of(client.post("/resync", headers=AUTH, json={"connection": "main"}), 409, "Conflict")
    assert body["holder_run_id"] == "holder-7"


def test_shutting_down_is_503(client: TestClient, worker: FakeWorker) -> None:
    worker.stop.set()
    error_of(client.post("/resync", headers=AUTH, json={}), 503, "Unavailable")


def test_a_state_error_answers_its_kind_and_hint(
    client: TestClient, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A BantSyncError answers its own http_status with its class name as kind and its hint."""

    def down(*args: object) -> None:
        raise StateUnavailableError("the state database did not answer")

    monkeypatch.setattr(worker.store, "list_runs", down)
    response = client.get("/runs", headers=AUTH)
    body = error_of(response, response.status_code, "StateUnavailableError")
    assert response.status_code >= 500
    assert body["hint"] == StateUnavailableError.hint


def test_a_bug_is_a_500_without_its_details(
    client: TestClient, worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("secret internals /etc/passwd")

    monkeypatch.setattr(worker.store, "get_run", broken)
    body = error_of(client.get("/runs/x", headers=AUTH), 500, "InternalError")
    assert "secret internals" not in body["error"]
