"""The sandbox's HubSpot webhook delivery: the payload HubSpot sends, a v3 signature bant-sync's check
accepts, retries with a rising attemptNumber, and the duplicate and out-of-order faults. A local receiver
answers with statuses the test chooses; `flush_webhooks` waits for deliveries, so nothing sleeps."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from sandbox import Sandbox
from sandbox.hubspot.portal import PORTAL_ID
from sandbox.hubspot.webhooks import APP_ID, WebhookSubscription
from tests.sandbox.conftest import Factory
from worker.serve.webhooks import check_v3


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def events(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = json.loads(self.body)
        return found


@dataclass
class Receiver:
    """An HTTP endpoint that records every POST and answers the next of `statuses` (then 204)."""

    server: ThreadingHTTPServer
    got: list[Received] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/hubspot/hs"

    def events(self) -> list[dict[str, Any]]:
        return [event for request in self.got for event in request.events]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            box = holder[0]
            with box.lock:
                box.got.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status = box.statuses.pop(0) if box.statuses else 204
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


def subscribed(make_sandbox: Factory, receiver: Receiver, **settings: Any) -> Sandbox:
    sb = make_sandbox()
    sb.clock.freeze()
    sb.subscribe_hubspot_webhooks(receiver.url, **{"retry_delays": (0.0, 0.0, 0.0), **settings})
    return sb


def open_deal(sb: Sandbox) -> str:
    return next(d for d, info in sb.people("hubspot").deals().items() if info["open"])


def test_a_reps_edit_is_delivered_in_hubspots_shape_and_signature(
    make_sandbox: Factory, receiver: Receiver
) -> None:
    sb = subscribed(make_sandbox, receiver)
    rep = sb.people("hubspot")
    deal = open_deal(sb)
    owner = rep.deals()[deal]["owner"]
    rep.set_deal_fields(deal, {"budget": "250000", "amount": "999"})
    sb.hubspot.flush_webhooks()

    assert len(receiver.got) == 1
    request = receiver.got[0]
    assert request.path == "/webhooks/hubspot/hs"
    (event,) = request.events  # amount is not subscribed
    assert event == {
        "eventId": event["eventId"],
        "subscriptionId": event["subscriptionId"],
        "portalId": PORTAL_ID,
        "appId": APP_ID,
        "occurredAt": int(sb.clock.now().timestamp() * 1000),
        "subscriptionType": "deal.propertyChange",
        "attemptNumber": 0,
        "objectId": int(deal),
        "propertyName": "bant_budget",
        "propertyValue": "250000",
        "changeSource": "CRM_UI",
        "sourceId": f"userId:{rep.user_of(str(owner))}",
    }
    assert isinstance(event["eventId"], int) and isinstance(event["subscriptionId"], int)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-hubspot-signature-version"] == "v3"
    secret = str(sb.info["hubspot"]["client_secret"])  # type: ignore[index]
    headers = request.headers
    signature, stamp = headers["x-hubspot-signature-v3"], headers["x-hubspot-request-timestamp"]
    now = sb.clock.now()
    assert check_v3(secret, "POST", receiver.url, request.body, signature, stamp, now) is None
    assert check_v3("other", "POST", receiver.url, request.body, signature, stamp, now) is not None
    assert check_v3(secret, "POST", receiver.url, request.body + b" ", signature, stamp, now) is not None


def test_creation_and_api_writes_name_their_source(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = subscribed(make_sandbox, receiver, properties=("bant_budget", "bant_status"))
    owner = sb.people("hubspot").owners()[0]
    created = sb.hubspot.create_deal(
        {
            "dealname": "Webhook Co",
            "dealtype": "poc",
            "dealstage": "appointmentscheduled",
            "hubspot_owner_id": owner,
        }
    )
    deal = next(d for d, i in sb.people("hubspot").deals().items() if i["status"] != "needs_qualification")
    with sb.hubspot.lock:
        sb.hubspot.update("deals", deal, {"bant_status": "needs_qualification"})  # bant-sync's own API write
    sb.hubspot.flush_webhooks()
    creation, write = receiver.events()
    assert creation["subscriptionType"] == "deal.creation"
    assert creation["objectId"] == int(str(created["id"]))
    assert creation["changeFlag"] == "CREATED"
    assert creation["changeSource"] == "CRM_UI"
    assert creation["sourceId"] == f"userId:{sb.people('hubspot').user_of(owner)}"
    assert "propertyName" not in creation
    assert write["propertyName"] == "bant_status"
    assert (write["changeSource"], write["sourceId"]) == ("INTEGRATION", str(APP_ID))
    assert creation["eventId"] != write["eventId"]


def test_an_unchanged_value_and_an_unsubscribed_property_send_nothing(
    make_sandbox: Factory, receiver: Receiver
) -> None:
    sb = subscribed(make_sandbox, receiver)
    rep = sb.people("hubspot")
    deal = open_deal(sb)
    current = rep.deal_field(deal, "need")
    rep.set_deal_fields(deal, {"need": current, "amount": "12"})
    sb.hubspot.flush_webhooks()
    assert receiver.got == []


def test_failed_deliveries_are_retried_with_a_rising_attempt_number_and_a_fresh_signature(
    make_sandbox: Factory, receiver: Receiver
) -> None:
    sb = subscribed(make_sandbox, receiver)
    receiver.statuses = [500, 429]
    deal = open_deal(sb)
    sb.people("hubspot").set_deal_field(deal, "timing", "2099-01-31")
    sb.clock.advance(1)
    sb.hubspot.flush_webhooks()
    assert [r.events[0]["attemptNumber"] for r in receiver.got] == [0, 1, 2]
    assert len({r.events[0]["eventId"] for r in receiver.got}) == 1
    secret = str(sb.info["hubspot"]["client_secret"])  # type: ignore[index]
    for request in receiver.got:
        headers = request.headers
        problem = check_v3(
            secret,
            "POST",
            receiver.url,
            request.body,
            headers["x-hubspot-signature-v3"],
            headers["x-hubspot-request-timestamp"],
            sb.clock.now(),
        )
        assert problem is None
    assert [a.status for a in sb.hubspot.webhook_attempts()] == [500, 429, 204]


def test_hubspots_final_answers_are_not_retried_and_retries_end(
    make_sandbox: Factory, receiver: Receiver
) -> None:
    sb = subscribed(make_sandbox, receiver)
    receiver.statuses = [401, 413, 503, 409, 503]
    rep = sb.people("hubspot")
    deal = open_deal(sb)
    rep.set_deal_field(deal, "need", "First need")
    sb.hubspot.flush_webhooks()
    rep.set_deal_field(deal, "need", "Second need")
    sb.hubspot.flush_webhooks()
    attempts = sb.hubspot.webhook_attempts()
    assert [(a.attempt, a.status) for a in attempts] == [(0, 401), (0, 413), (1, 503), (2, 409), (3, 503)]


def test_an_unreachable_target_is_retried_then_given_up(make_sandbox: Factory) -> None:
    sb = make_sandbox()
    sb.subscribe_hubspot_webhooks("http://127.0.0.1:9/nothing", retry_delays=(0.0, 0.0))
    sb.people("hubspot").set_deal_field(open_deal(sb), "need", "Anything")
    sb.hubspot.flush_webhooks()
    attempts = sb.hubspot.webhook_attempts()
    assert [(a.attempt, a.status) for a in attempts] == [(0, None), (1, None), (2, None)]
    assert all(a.error for a in attempts)


def test_the_duplicate_fault_sends_every_request_twice(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = subscribed(make_sandbox, receiver, faults=frozenset({"duplicate"}))
    sb.people("hubspot").set_deal_field(open_deal(sb), "budget", "10")
    sb.hubspot.flush_webhooks()
    assert len(receiver.got) == 2
    assert receiver.got[0].events == receiver.got[1].events


def test_redeliver_sends_the_same_events_again_later(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = subscribed(make_sandbox, receiver)
    sb.people("hubspot").set_deal_field(open_deal(sb), "budget", "10")
    sb.hubspot.flush_webhooks()
    sb.clock.advance(60)
    sb.webhooks.redeliver(sb.hubspot.webhook_attempts())
    sb.hubspot.flush_webhooks()
    first, again = receiver.got
    assert first.events == again.events
    assert (
        int(again.headers["x-hubspot-request-timestamp"]) - int(first.headers["x-hubspot-request-timestamp"])
        == 60_000
    )


def test_the_out_of_order_fault_sends_the_newest_first(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = subscribed(make_sandbox, receiver, faults=frozenset({"out_of_order"}), batch_size=2)
    rep = sb.people("hubspot")
    deal = open_deal(sb)
    sb.webhooks.hold()
    for value in ("1", "2", "3"):
        rep.set_deal_field(deal, "budget", value)
        sb.clock.advance(1)
    sb.webhooks.release()
    sb.hubspot.flush_webhooks()
    assert [[e["propertyValue"] for e in r.events] for r in receiver.got] == [["3", "2"], ["1"]]
    times = [e["occurredAt"] for e in receiver.events()]
    assert times == sorted(times, reverse=True)


def test_held_events_go_out_in_batches_in_order(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = subscribed(make_sandbox, receiver, batch_size=2)
    rep = sb.people("hubspot")
    deal = open_deal(sb)
    sb.webhooks.hold()
    for value in ("1", "2", "3"):
        rep.set_deal_field(deal, "budget", value)
    assert not sb.webhooks.flush(timeout=0.05)
    sb.webhooks.release()
    sb.hubspot.flush_webhooks()
    assert [[e["propertyValue"] for e in r.events] for r in receiver.got] == [["1", "2"], ["3"]]


def test_a_reset_keeps_the_subscription_and_seeding_sends_nothing(
    make_sandbox: Factory, receiver: Receiver
) -> None:
    sb = subscribed(make_sandbox, receiver)
    sb.reset()
    sb.hubspot.flush_webhooks()
    assert receiver.got == []
    sb.people("hubspot").set_deal_field(open_deal(sb), "authority", "The CFO")
    sb.hubspot.flush_webhooks()
    assert [e["propertyName"] for e in receiver.events()] == ["bant_authority"]


def test_subscription_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="http"):
        WebhookSubscription("ftp://x", "secret")
    with pytest.raises(ValueError, match="client secret"):
        WebhookSubscription("http://x", "")
    with pytest.raises(ValueError, match="unknown webhook faults"):
        WebhookSubscription("http://x", "s", faults=frozenset({"lost"}))


def test_the_start_option_subscribes_with_the_apps_secret(make_sandbox: Factory, receiver: Receiver) -> None:
    sb = make_sandbox(hubspot_webhook_url=receiver.url)
    sb.clock.freeze()
    subscription = sb.webhooks.subscription
    assert subscription is not None and subscription.target_url == receiver.url
    sb.people("hubspot").set_deal_field(open_deal(sb), "snooze_reason", "Waiting for the board")
    sb.hubspot.flush_webhooks()
    (request,) = receiver.got
    assert [e["propertyName"] for e in request.events] == ["bant_snooze_reason"]
    secret = str(sb.info["hubspot"]["client_secret"])  # type: ignore[index]
    headers = request.headers
    problem = check_v3(
        secret,
        "POST",
        receiver.url,
        request.body,
        headers["x-hubspot-signature-v3"],
        headers["x-hubspot-request-timestamp"],
        sb.clock.now(),
    )
    assert problem is None
    assert sb.info["hubspot"]["app_id"] == str(APP_ID)  # type: ignore[index]
