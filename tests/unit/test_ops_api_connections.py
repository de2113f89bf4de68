"""The ops API's /connections routes: list, add, show, disable, enable, remove, behind the bearer token,
every refusal in the one JSON error shape, no secret ever stored or echoed."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.unit.serve_support import T0, TOKEN, FakeWorker, connection, reset_structlog
from worker.config.secrets import Secret
from worker.config.settings import Settings, StateSettings
from worker.serve.ops_api import create_app
from worker.state import StateStore

AUTH = {"Authorization": f"Bearer {TOKEN}"}
SECRET = "pat-na1-0123456789abcdef"
SHAPE = {"error", "kind", "problems", "hint"}

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    main = replace(connection("main"), crm="hubspot")
    settings = Settings(
        state=StateSettings(dir=str(tmp_path), connections_table=True),
        connections={"main": main},
        ops_token=Secret(TOKEN, "test"),
    )
    store = StateStore.open(settings.state.database_url())
    worker = FakeWorker(settings, store, clock=lambda: T0, sleep=lambda seconds: None)
    with TestClient(create_app(worker, TOKEN, 4096), base_url="http://127.0.0.1") as test_client:
        yield test_client
    worker.close()


def test_the_routes_need_the_bearer_token(client: TestClient) -> None:
    for method, path in (("GET", "/connections"), ("POST", "/connections"), ("DELETE", "/connections/x")):
        answer = client.request(method, path)
        assert answer.status_code == 401 and set(answer.json()) >= SHAPE


def test_add_list_disable_enable_remove(client: TestClient) -> None:
    body = {"name": "acme", "crm": "hubspot", "tenant": "Acme", "settings": {"incremental_every_minutes": 10}}
    added = client.post("/connections", json=body, headers=AUTH)
    assert added.status_code == 201, added.text
    assert added.json()["settings"] == {"incremental_every_minutes": 10}
    listed = client.get("/connections", headers=AUTH).json()["connections"]
    assert [(c["name"], c["tenant"], c["enabled"]) for c in listed] == [("acme", "Acme", True)]
    disabled = client.post("/connections/acme/disable", headers=AUTH)
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    assert disabled.json()["disabled_at"] == T0.isoformat()
    assert client.post("/connections/acme/enable", headers=AUTH).json()["enabled"] is True
    assert client.get("/connections/acme", headers=AUTH).json()["crm"] == "hubspot"
    assert client.delete("/connections/acme", headers=AUTH).json() == {"removed": "acme"}
    assert client.get("/connections", headers=AUTH).json() == {"connections": []}


def test_refusals_are_in_the_one_error_shape(client: TestClient) -> None:
    invalid = client.post(
        "/connections",
        json={"name": "acme", "crm": "hubspot", "settings": {"access_token": SECRET, "hots": "x"}},
        headers=AUTH,
    )
    assert invalid.status_code == 422 and set(invalid.json()) >= SHAPE
    assert invalid.json()["kind"] == "ConfigError"
    problems = " ".join(invalid.json()["problems"])
    assert "connections.acme.access_token: looks like a secret" in problems
    assert "connections.acme.hots: unknown key" in problems
    assert SECRET not in invalid.text
    assert client.get("/connections", headers=AUTH).json() == {"connections": []}
    clash = client.post("/connections", json={"name": "main", "crm": "hubspot"}, headers=AUTH)
    assert clash.status_code == 422 and "already defined in the config" in clash.text
    assert (
        client.post("/connections", json={"name": "acme", "crm": "hubspot"}, headers=AUTH).status_code == 201
    )
    taken = client.post("/connections", json={"name": "acme", "crm": "hubspot"}, headers=AUTH)
    assert taken.status_code == 409 and set(taken.json()) >= SHAPE
    for answer in (
        client.post("/connections/nope/disable", headers=AUTH),
        client.delete("/connections/nope", headers=AUTH),
        client.get("/connections/nope", headers=AUTH),
    ):
        assert answer.status_code == 404 and set(answer.json()) >= SHAPE
    assert client.post("/connections", content=b"[1]", headers=AUTH).status_code == 400
    assert client.post("/connections", json={"name": "x"}, headers=AUTH).status_code == 422
    assert client.post("/connections", json={"name": "x", "crm": 1}, headers=AUTH).status_code == 422
