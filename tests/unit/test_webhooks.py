"""HubSpot webhooks on the ops API: the v3 signature, its timestamp window, replays, size, echoes, the
portal check and unknown connections, over a real state store. A refused delivery records nothing and
notifies nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from connectors.errors import ConfigurationError
from connectors.hubspot.settings import HubSpotSettings
from tests.unit.serve_support import T0, TOKEN, FakeWorker, connection, make_worker, reset_structlog
from worker.config.secrets import Secret
from worker.config.settings import ConnectionSettings, ScheduleSettings
from worker.serve import webhooks
from worker.serve.ops_api import create_app

SECRET = "hs-client-secret-5f0c2b7e"
APP_ID = "4242"
PORTAL = 24681357
BASE = "https://hooks.example.com"
PATH = "/webhooks/hubspot/hs"
URL = BASE + PATH

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


class Recorder:
    def __init__(self) -> None:
        self.notified: list[str] = []

    def notify(self, connection: str) -> None:
        self.notified.append(connection)


def hubspot(name: str, *, webhooks_on: bool = True, secret: str | None = SECRET, enabled: bool = True) -> Any:
    settings = HubSpotSettings(webhooks=webhooks_on, app_id=APP_ID)
    secrets = {"client_secret": Secret(secret, "test")} if secret is not None else {}
    return ConnectionSettings(
        name=name,
        crm="hubspot",
        enabled=enabled,
        framework="bant",
        schedule=ScheduleSettings(),
        crm_settings=settings,
        secrets=secrets,
    )


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(
        tmp_path,
        hubspot("hs"),
        hubspot("quiet", webhooks_on=False),
        hubspot("nosecret", secret=None),
        hubspot("off", enabled=False),
        hubspot("fresh"),
        connection("other"),
    )
    for name in ("hs", "quiet", "nosecret", "off"):
        w.store.record_identity(name, "hubspot", f"hubspot:{PORTAL}", T0)
    yield w
    w.close()


@pytest.fixture
def notes() -> Recorder:
    return Recorder()


@pytest.fixture
def client(worker: FakeWorker, notes: Recorder) -> Iterator[TestClient]:
    app = create_app(worker, TOKEN, 256, events=notes)
    with TestClient(app, base_url=BASE) as test_client:
        yield test_client


def event(event_id: int, deal: int = 101, **fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "eventId": event_id,
        "subscriptionId": 77,
        "portalId": PORTAL,
        "appId": int(APP_ID),
        "occurredAt": int(T0.timestamp() * 1000) - 500,
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": deal,
        "propertyName": "bant_budget",
        "propertyValue": "120000",
        "changeSource": "CRM_UI",
        "sourceId": "userId:901",
    }
    return {**base, **fields}


def signed(
    events: list[dict[str, Any]] | bytes,
    *,
    url: str = URL,
    secret: str = SECRET,
    at: timedelta = timedelta(0),
) -> dict[str, Any]:
    """The request HubSpot sends: body, v3 signature and timestamp, computed here independently."""
    body = events if isinstance(events, bytes) else json.dumps(events).encode()
    stamp = str(int((T0 + at).timestamp() * 1000))
    message = b"POST" + url.encode() + body + stamp.encode()
    signature = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()
    headers = {"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp}
    return {"content": body, "headers": {**headers, "Content-Type": "application/json"}}


def post(client: TestClient, request: dict[str, Any], path: str = PATH) -> Any:
    return client.post(path, **request)


def nothing_recorded(worker: FakeWorker, notes: Recorder, name: str = "hs") -> None:
    assert worker.store.event_counts(name) == {"received": 0, "duplicates": 0, "echoes": 0, "dirty": 0}
    assert worker.store.dirty_deals(name, 100) == []
    assert notes.notified == []


def assert_error_shape(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "kind", "problems", "hint"}
    assert SECRET not in response.text
    return body


def test_a_signed_delivery_marks_its_deals_and_notifies_without_a_bearer_token(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    creation = event(2, deal=102, subscriptionType="deal.creation", propertyName=None, propertyValue=None)
    response = post(client, signed([event(1), creation]))
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert sorted(worker.store.dirty_deals("hs", 100)) == ["101", "102"]
    assert worker.store.event_counts("hs")["received"] == 2
    assert notes.notified == ["hs"]


def test_the_signature_covers_the_query_string_and_the_listed_encodings_are_decoded(
    client: TestClient, worker: FakeWorker
) -> None:
    raw = PATH + "?from=hub%3Aspot"
    response = post(client, signed([event(1)], url=BASE + PATH + "?from=hub:spot"), path=raw)
    assert response.status_code == 204, response.text
    wrong = post(client, signed([event(2)], url=BASE + PATH + "?from=elsewhere"), path=raw)
    assert_error_shape(wrong, 401)


REFUSED: list[Any] = [
    pytest.param({"secret": "not-the-app-secret"}, "signature does not match", id="wrong-secret"),
    pytest.param({"url": "https://other.example.com" + PATH}, "signature does not match", id="other-host"),
    pytest.param({"url": "http://hooks.example.com" + PATH}, "signature does not match", id="other-scheme"),
    pytest.param({"at": -timedelta(minutes=5, milliseconds=1)}, "minutes old", id="older-than-5-minutes"),
    pytest.param({"at": timedelta(hours=-3)}, "minutes old", id="hours-old"),
    pytest.param({"at": timedelta(seconds=6)}, "future", id="future-beyond-skew"),
    pytest.param({"at": timedelta(days=1)}, "future", id="a-day-ahead"),
]


@pytest.mark.parametrize(("change", "reason"), REFUSED)
def test_a_bad_signature_or_timestamp_is_refused_and_nothing_is_recorded(
    client: TestClient, worker: FakeWorker, notes: Recorder, change: dict[str, Any], reason: str
) -> None:
    body = assert_error_shape(post(client, signed([event(1)], **change)), 401)
    assert reason in body["error"]
    nothing_recorded(worker, notes)


@pytest.mark.parametrize("at", [-timedelta(minutes=4, seconds=59), timedelta(seconds=4)], ids=["old", "skew"])
def test_timestamps_inside_the_window_pass(client: TestClient, worker: FakeWorker, at: timedelta) -> None:
    assert post(client, signed([event(1)], at=at)).status_code == 204
    assert worker.store.dirty_deals("hs", 10) == ["101"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-HubSpot-Request-Timestamp": str(int(T0.timestamp() * 1000))},
        {"X-HubSpot-Signature-v3": "c2ln"},
        {"X-HubSpot-Signature-v3": "c2ln", "X-HubSpot-Request-Timestamp": "yesterday"},
        {"X-HubSpot-Signature-v3": "c2ln", "X-HubSpot-Request-Timestamp": "9" * 16},
    ],
    ids=["none", "no-signature", "no-timestamp", "bad-timestamp", "year-300000"],
)
def test_missing_or_malformed_signature_headers_are_refused(
    client: TestClient, worker: FakeWorker, notes: Recorder, headers: dict[str, str]
) -> None:
    assert_error_shape(client.post(PATH, content=json.dumps([event(1)]), headers=headers), 401)
    nothing_recorded(worker, notes)


def test_a_tampered_body_fails_the_signature(client: TestClient, worker: FakeWorker, notes: Recorder) -> None:
    request = signed([event(1)])
    request["content"] = json.dumps([event(1, deal=999)]).encode()
    assert_error_shape(post(client, request), 401)
    nothing_recorded(worker, notes)


def test_a_replayed_event_id_is_a_duplicate_and_re_assesses_nothing(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    assert post(client, signed([event(1)])).status_code == 204
    assert worker.store.clear_dirty("hs", ["101"], T0 + timedelta(seconds=1)) == 1
    replay = post(client, signed([event(1)], at=timedelta(seconds=1)))
    assert replay.status_code == 204
    assert worker.store.dirty_deals("hs", 10) == []
    assert worker.store.event_counts("hs") == {"received": 2, "duplicates": 1, "echoes": 0, "dirty": 0}
    assert notes.notified == ["hs"]


def test_an_oversized_body_is_refused_declared_or_streamed(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    big = json.dumps([event(1, propertyValue="x" * webhooks.MAX_WEBHOOK_BODY)]).encode()
    assert_error_shape(post(client, signed(big)), 413)

    def chunks() -> Iterator[bytes]:
        for _ in range(webhooks.MAX_WEBHOOK_BODY // 4096 + 2):
            yield b" " * 4096

    request = signed(b"")
    assert_error_shape(client.post(PATH, content=chunks(), headers=request["headers"]), 413)
    nothing_recorded(worker, notes)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"{}",
        b"[]",
        b"[1, 2]",
        json.dumps([{"eventId": "x", "objectId": 1}]).encode(),
        json.dumps([event(1, occurredAt=2**62)]).encode(),
        json.dumps([event(1, objectId=1e300)]).encode(),
        json.dumps([event(1, eventId=True)]).encode(),
    ],
    ids=[
        "not-json",
        "object",
        "empty",
        "not-objects",
        "no-numbers",
        "occurred-past-9999",
        "huge-float",
        "bool",
    ],
)
def test_a_body_that_is_not_hubspots_event_array_is_a_400(
    client: TestClient, worker: FakeWorker, notes: Recorder, body: bytes
) -> None:
    assert_error_shape(post(client, signed(body)), 400)
    nothing_recorded(worker, notes)


def test_echoes_are_recorded_but_mark_nothing(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    own_output = event(1, deal=201, propertyName="bant_status", changeSource="CRM_UI")
    by_this_app = event(2, deal=202, changeSource="INTEGRATION", sourceId=APP_ID)
    assert post(client, signed([own_output, by_this_app])).status_code == 204
    assert worker.store.dirty_deals("hs", 10) == []
    assert worker.store.event_counts("hs") == {"received": 2, "duplicates": 0, "echoes": 2, "dirty": 0}
    assert notes.notified == []
    other_app = event(3, deal=203, changeSource="INTEGRATION", sourceId="5151")
    assert post(client, signed([other_app])).status_code == 204
    assert worker.store.dirty_deals("hs", 10) == ["203"]
    assert notes.notified == ["hs"]


def test_events_of_other_objects_are_acknowledged_and_ignored(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    contact = event(1, subscriptionType="contact.propertyChange", propertyName="firstname")
    assert post(client, signed([contact])).status_code == 204
    nothing_recorded(worker, notes)


def test_an_event_from_another_portal_is_refused_with_the_whole_delivery(
    client: TestClient, worker: FakeWorker, notes: Recorder
) -> None:
    body = assert_error_shape(post(client, signed([event(1), event(2, portalId=999)])), 403)
    assert "portal 999" in body["error"]
    nothing_recorded(worker, notes)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("nosuch", 404),
        ("quiet", 404),
        ("off", 404),
        ("other", 404),
        ("nosecret", 503),
        ("fresh", 503),
    ],
    ids=["unknown", "webhooks-off", "disabled", "not-hubspot", "no-client-secret", "never-ran"],
)
def test_a_connection_that_cannot_take_the_delivery_refuses_it(
    client: TestClient, worker: FakeWorker, notes: Recorder, name: str, status: int
) -> None:
    path = f"/webhooks/hubspot/{name}"
    assert_error_shape(post(client, signed([event(1)], url=BASE + path), path=path), status)
    nothing_recorded(worker, notes, name)


def test_the_endpoint_is_absent_without_a_coalescer(worker: FakeWorker) -> None:
    with TestClient(create_app(worker, TOKEN, 256), base_url=BASE) as plain:
        response = plain.post(PATH, headers={"Authorization": f"Bearer {TOKEN}"}, content=b"[]")
    assert_error_shape(response, 404)


def test_the_rest_of_the_api_still_needs_the_bearer_token(client: TestClient) -> None:
    assert_error_shape(client.get("/runs"), 401)
    assert_error_shape(client.get("/webhooks/../runs"), 401)


def test_sign_v3_matches_an_independent_computation() -> None:
    body = b'[{"eventId":1}]'
    expected = base64.b64encode(
        hmac.new(b"s3cret", b"POSThttps://a.example/h?x=1" + body + b"1700000000000", hashlib.sha256).digest()
    ).decode()
    assert webhooks.sign_v3("s3cret", "post", "https://a.example/h?x=1", body, "1700000000000") == expected
    assert webhooks.sign_v3("s3cret", "POST", "https://a.example/h?x%3D1", body, "1700000000000") != expected
    assert (
        webhooks.sign_v3("s3cret", "POST", "https%3A%2F%2Fa.example/h?x=1", body, "1700000000000") == expected
    )


def test_webhooks_need_a_numeric_app_id() -> None:
    with pytest.raises(ConfigurationError) as missing:
        HubSpotSettings(webhooks=True)
    assert any(p.startswith("app_id:") for p in missing.value.problems)
    with pytest.raises(ConfigurationError) as wrong:
        HubSpotSettings(app_id="my-app")
    assert any("numeric" in p for p in wrong.value.problems)
    assert HubSpotSettings(webhooks=True, app_id="4242").webhooks
