"""HubSpot webhook delivery: an app's subscriptions to deal events, sent to its target URL as HubSpot does.

HubSpot (Webhooks API, "Webhook payloads" and "Validating requests") POSTs a JSON array of events, up to
100 a request, to the app's target URL, each event with `eventId`, `subscriptionId`, `portalId`, `appId`,
`occurredAt` (epoch ms), `subscriptionType`, `attemptNumber` (0 on the first try), `objectId`, and for a
property change `propertyName`, `propertyValue`, plus `changeSource` (`CRM_UI` for a person, with `sourceId`
`userId:<id>`; `INTEGRATION` for an app's API write, with `sourceId` the app id) and for a creation
`changeFlag: CREATED`. Every request is signed: `X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client
secret, method + URL + body + timestamp)) with `X-HubSpot-Request-Timestamp` (epoch ms, of the sandbox
clock), plus the older `X-HubSpot-Signature-Version`.

A delivery is retried, re-signed with the attempt number raised, when the target cannot be reached, times
out, or answers anything but 2xx and FINAL (400, 401, 403, 404, 405: HubSpot's list of answers it does not
retry), after `retry_delays` seconds (a few attempts here; HubSpot makes up to ten, backing off).

Deliveries run on one background thread in the order the changes happened; `flush()` waits until every
queued event was delivered or given up, so tests never sleep, and `hold()`/`release()` queue events unsent
meanwhile, so a test decides how they are batched.

Faults (`WebhookSubscription.faults`): `duplicate` sends every request twice (the same event ids);
`out_of_order` sends the newest queued events first, newest first within a request. `redeliver` sends
earlier requests again at any later moment (a late duplicate).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import threading
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sandbox.clock import SandboxClock
from sandbox.hubspot.properties import epoch_ms

APP_ID = 1357911
"""The sandbox's HubSpot app (the one whose OAuth client id and secret the sandbox hands out), account 1's;
`sandbox.accounts` numbers the others."""
BANT_INPUTS = (
    "bant_budget",
    "bant_authority",
    "bant_need",
    "bant_timing",
    "bant_snooze_until",
    "bant_snooze_reason",
)
"""The deal properties a bant-sync app subscribes to by default (docs/hubspot.md)."""
FAULTS = frozenset({"duplicate", "out_of_order"})
MAX_BATCH = 100
"""HubSpot sends at most 100 events a request."""
FINAL = frozenset({400, 401, 403, 404, 405})
"""The answers HubSpot does not retry; any other non-2xx answer (429, 413, 5xx, ...) is retried."""


@dataclass(frozen=True)
class WebhookSubscription:
    """An app's webhook settings: where to send, the secret to sign with, what to send."""

    target_url: str
    client_secret: str
    app_id: int = APP_ID
    properties: tuple[str, ...] = BANT_INPUTS
    """`deal.propertyChange` subscriptions, one per property."""
    creation: bool = True
    """A `deal.creation` subscription."""
    batch_size: int = MAX_BATCH
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0)
    """Seconds before each retry: len(retry_delays) + 1 attempts in all."""
    timeout_s: float = 5.0
    """HubSpot waits 5 seconds for an answer."""
    faults: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.target_url.startswith(("http://", "https://")):
            raise ValueError(f"a webhook target URL must be http(s): {self.target_url!r}")
        if not self.client_secret:
            raise ValueError("a webhook subscription needs the app's client secret to sign with")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        if any(delay < 0 for delay in self.retry_delays):
            raise ValueError("retry_delays must be 0 or more seconds")
        unknown = set(self.faults) - FAULTS
        if unknown:
            raise ValueError(f"unknown webhook faults {sorted(unknown)}: choose from {sorted(FAULTS)}")
        object.__setattr__(self, "faults", frozenset(self.faults))


@dataclass
class Attempt:
    """One request sent: its events, attempt number and the answer (status, or None: no answer)."""

    events: list[dict[str, Any]]
    attempt: int
    status: int | None
    error: str | None = None

    @property
    def event_ids(self) -> list[int]:
        return [int(event["eventId"]) for event in self.events]


@dataclass
class _Pending:
    events: list[dict[str, Any]]
    attempt: int = 0


@dataclass
class _Queue:
    events: deque[dict[str, Any]] = field(default_factory=deque)
    retries: deque[_Pending] = field(default_factory=deque)
    busy: int = 0


def sign_v3(secret: str, method: str, url: str, body: bytes, timestamp: str) -> str:
    message = method.encode() + url.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


Post = Callable[[str, bytes, Mapping[str, str], float], int]
"""(url, body, headers, timeout) -> HTTP status; raises OSError when there is no answer."""


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (http(s) checked)
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code


class WebhookDispatcher:
    """The portal's webhook deliveries; it outlives a sandbox reset (a refresh keeps the app's settings)."""

    def __init__(
        self,
        clock: SandboxClock,
        portal_id: int,
        post: Post = http_post,
        wait: Callable[[float], object] | None = None,
    ) -> None:
        self._clock = clock
        self._portal_id = portal_id
        self._post = post
        self._cond = threading.Condition()
        self._queue = _Queue()
        self._subscription: WebhookSubscription | None = None
        self._attempts: list[Attempt] = []
        self._ids = itertools.count(1_000_000_001)
        self._stopping = threading.Event()
        self._wait = wait or self._stopping.wait
        self._thread: threading.Thread | None = None
        self._held = False

    # ----- settings -----------------------------------------------------------------------------------------
    def subscribe(self, subscription: WebhookSubscription) -> None:
        with self._cond:
            self._subscription = subscription

    def unsubscribe(self) -> None:
        with self._cond:
            self._subscription = None

    @property
    def subscription(self) -> WebhookSubscription | None:
        return self._subscription

    # ----- what the portal tells it (under the state's lock: only queues) -----------------------------------
    def property_changes(
        self,
        deal_id: str,
        before: Mapping[str, object],
        after: Mapping[str, object],
        at: datetime,
        source: str,
        user_id: int | None,
    ) -> None:
        sub = self._subscription
        if sub is None:
            return
        changed = [n for n in sub.properties if n in after and before.get(n) != after.get(n)]
        events = [
            self._event(
                sub,
                "deal.propertyChange",
                deal_id,
                at,
                source,
                user_id,
                propertyName=name,
                propertyValue="" if after.get(name) is None else str(after.get(name)),
            )
            for name in changed
        ]
        self._enqueue(events)

    def created(self, deal_id: str, at: datetime, source: str, user_id: int | None) -> None:
        sub = self._subscription
        if sub is None or not sub.creation:
            return
        self._enqueue([self._event(sub, "deal.creation", deal_id, at, source, user_id, changeFlag="CREATED")])

    def _event(
        self,
        sub: WebhookSubscription,
        kind: str,
        deal_id: str,
        at: datetime,
        source: str,
        user_id: int | None,
        **extra: object,
    ) -> dict[str, Any]:
        person = source == "CRM_UI"
        return {
            "eventId": next(self._ids),
            "subscriptionId": _subscription_id(kind, str(extra.get("propertyName") or "")),
            "portalId": self._portal_id,
            "appId": sub.app_id,
            "occurredAt": epoch_ms(at),
            "subscriptionType": kind,
            "attemptNumber": 0,
            "objectId": int(deal_id),
            **extra,
            "changeSource": "CRM_UI" if person else "INTEGRATION",
            "sourceId": (f"userId:{user_id}" if user_id is not None else "") if person else str(sub.app_id),
        }

    def _enqueue(self, events: Iterable[dict[str, Any]]) -> None:
        events = list(events)
        if not events:
            return
        with self._cond:
            self._queue.events.extend(events)
            self._start()
            self._cond.notify_all()

    # ----- what tests read ----------------------------------------------------------------------------------
    def attempts(self) -> list[Attempt]:
        """Every request sent so far, in order."""
        with self._cond:
            return list(self._attempts)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued event was delivered (or given up); False when `timeout` ran out first."""
        with self._cond:
            return self._cond.wait_for(
                lambda: not self._queue.events and not self._queue.retries and not self._queue.busy, timeout
            )

    def redeliver(self, attempts: Iterable[Attempt]) -> None:
        """Send these requests' events again, as they were (HubSpot may deliver an event more than once,
        at any later time)."""
        with self._cond:
            self._queue.retries.extend(_Pending(list(a.events), a.attempt) for a in attempts)
            self._start()
            self._cond.notify_all()

    def hold(self) -> None:
        """Queue events without sending them until `release` (to make a test's batches deterministic)."""
        with self._cond:
            self._held = True

    def release(self) -> None:
        with self._cond:
            self._held = False
            self._cond.notify_all()

    def discard(self) -> None:
        """Drop whatever is queued (a sandbox reset)."""
        with self._cond:
            self._queue.events.clear()
            self._queue.retries.clear()
            self._cond.notify_all()

    def stop(self) -> None:
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    # ----- the delivery thread ------------------------------------------------------------------------------
    def _start(self) -> None:
        if self._thread is None and not self._stopping.is_set():
            self._thread = threading.Thread(target=self._loop, name="sandbox-hubspot-webhooks", daemon=True)
            self._thread.start()

    def _take(self) -> tuple[_Pending, WebhookSubscription] | None:
        with self._cond:
            while not self._stopping.is_set():
                sub = self._subscription
                queue = self._queue
                if self._held:
                    self._cond.wait()
                    continue
                if sub is not None and queue.retries:
                    queue.busy += 1
                    return queue.retries.popleft(), sub
                if sub is not None and queue.events:
                    count = min(sub.batch_size, len(queue.events))
                    if "out_of_order" in sub.faults:
                        batch = [queue.events.pop() for _ in range(count)]
                    else:
                        batch = [queue.events.popleft() for _ in range(count)]
                    queue.busy += 1
                    return _Pending(batch), sub
                if sub is None and (queue.events or queue.retries):
                    queue.events.clear()
                    queue.retries.clear()
                    self._cond.notify_all()
                self._cond.wait()
        return None

    def _loop(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            pending, sub = taken
            try:
                retry = self._send(pending, sub)
                copies = 1 if retry or "duplicate" not in sub.faults else 2
                for _ in range(copies - 1):
                    self._send(pending, sub)
                if retry and pending.attempt < len(sub.retry_delays):
                    self._wait(sub.retry_delays[pending.attempt])
                    with self._cond:
                        self._queue.retries.append(_Pending(pending.events, pending.attempt + 1))
            finally:
                with self._cond:
                    self._queue.busy -= 1
                    self._cond.notify_all()

    def _send(self, pending: _Pending, sub: WebhookSubscription) -> bool:
        """POST one request; whether it should be retried."""
        events = [{**event, "attemptNumber": pending.attempt} for event in pending.events]
        body = json.dumps(events, separators=(",", ":")).encode()
        stamp = str(epoch_ms(self._clock.now()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - sandbox",
            "X-HubSpot-Signature-v3": sign_v3(sub.client_secret, "POST", sub.target_url, body, stamp),
            "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-Version": "v3",
            "X-HubSpot-Timeout-Millis": str(int(sub.timeout_s * 1000)),
        }
        try:
            status: int | None = self._post(sub.target_url, body, headers, sub.timeout_s)
            error = None
        except OSError as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"
        with self._cond:
            self._attempts.append(Attempt(pending.events, pending.attempt, status, error))
        return status is None or not (200 <= status < 300 or status in FINAL)


def _subscription_id(kind: str, prop: str) -> int:
    """A stable id per subscription (type and property), as HubSpot numbers an app's subscriptions."""
    digest = hashlib.sha256(f"{kind}:{prop}".encode()).digest()
    return 100_000 + int.from_bytes(digest[:3], "big")
