"""HubSpot webhooks: `POST /webhooks/hubspot/{connection}` on the ops server.

HubSpot delivers a JSON array of events (`deal.creation`, `deal.propertyChange`) signed with the app's
client secret. This endpoint only records them (`StateStore.record_events`: deduplicated by event id,
deals marked dirty) and, when a deal was marked, tells the coalescer (`notify(connection)`), which
re-assesses the dirty deals in one debounced EVENTS run: no CRM call is made while HubSpot waits for the
answer (204).

Authentication is the v3 signature alone (the bearer token is not asked: HubSpot cannot send one):
`X-HubSpot-Signature-v3` = base64(HMAC-SHA256(client secret, method + URI + body + timestamp)) with the
timestamp from `X-HubSpot-Request-Timestamp` (epoch milliseconds). The URI is the full URL HubSpot called
(scheme, host, path and query), with the characters HubSpot's instructions list URL-decoded. Behind a
reverse proxy the proxy must pass the original `Host` and set `X-Forwarded-Proto`, and uvicorn must trust
it for that header (`--forwarded-allow-ips`), so the URL rebuilt here is the one HubSpot signed.

Refused, recording nothing: 401 a missing or wrong signature, a timestamp older than MAX_AGE (5 minutes)
or more than FUTURE_SKEW (5 seconds of clock skew) ahead of this server's clock; 413 a body over
MAX_WEBHOOK_BODY; 400 a body that is not a JSON array of events; 403 an event from another portal than the
connection's (its identity, known after its first run; 503 before that, so HubSpot retries later); 404 an
unknown connection or one without `webhooks = true`; 503 a connection without the `client_secret` secret.

An event is an echo, recorded but re-assessing nothing, when it is a change to one of bant-sync's own
output properties (status, missing, score, ...) or when its change source is this app (`changeSource`
INTEGRATION with `sourceId` the connection's `app_id`). Events of other types (a contact's, a deletion)
are acknowledged and ignored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.hubspot.settings import OUTPUT_KEYS, HubSpotSettings
from worker.config.settings import ConnectionSettings
from worker.serve.ops_api import ApiError, read_body
from worker.state.model import InboundEvent

log = structlog.get_logger()

PATH = "/webhooks/hubspot/{connection}"
PREFIX = "/webhooks/"
SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
MAX_AGE = timedelta(minutes=5)
"""HubSpot's own rule: a request whose timestamp is older than this is refused (a replayed request)."""
FUTURE_SKEW = timedelta(seconds=5)
"""How far ahead of this server's clock a timestamp may be (clock skew); further is refused."""
MAX_WEBHOOK_BODY = 1_048_576
"""1 MB: HubSpot sends at most 100 events a request, far below this."""
MAX_EVENTS = 1000
MAX_OCCURRED_MS = 253_402_300_799_999
"""The last millisecond of year 9999: a later occurredAt is not a time."""
DEAL_EVENTS = frozenset({"deal.creation", "deal.propertyChange"})
URI_DECODED = {
    "%3A": ":",
    "%2F": "/",
    "%3F": "?",
    "%40": "@",
    "%21": "!",
    "%24": "$",
    "%27": "'",
    "%28": "(",
    "%29": ")",
    "%2A": "*",
    "%2C": ",",
    "%3B": ";",
}
"""The percent-encodings HubSpot's v3 instructions decode in the URI before signing."""


class Notifier(Protocol):
    """What the endpoint tells after recording (worker.events.coalescer.EventCoalescer)."""

    def notify(self, connection: str) -> None: ...


class EventStore(Protocol):
    def record_events(self, connection: str, events: Sequence[InboundEvent], now: datetime) -> Any: ...

    def identity_of(self, connection: str) -> str | None: ...


def signed_uri(uri: str) -> str:
    """The URI as HubSpot signs it: the listed percent-encodings decoded (either case)."""
    out = uri
    for encoded, plain in URI_DECODED.items():
        out = out.replace(encoded, plain).replace(encoded.lower(), plain)
    return out


def sign_v3(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """base64(HMAC-SHA256(secret, method + URI + body + timestamp)), as HubSpot computes it."""
    message = method.upper().encode() + signed_uri(uri).encode() + body + timestamp.encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def check_v3(
    secret: str,
    method: str,
    uri: str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
) -> str | None:
    """Why the request fails the v3 check (a message), or None when it passes. Both the age and the
    signature are checked; the signature in constant time."""
    if not signature or not timestamp:
        return f"missing {SIGNATURE_HEADER} or {TIMESTAMP_HEADER}: only signed HubSpot deliveries are taken"
    if not timestamp.isdigit() or len(timestamp) > 16:
        return f"{TIMESTAMP_HEADER} must be epoch milliseconds"
    sent_ms, now_ms = int(timestamp), _ms(now)
    if sent_ms < now_ms - _ms_of(MAX_AGE):
        return f"the request timestamp is more than {MAX_AGE.seconds // 60} minutes old"
    if sent_ms > now_ms + _ms_of(FUTURE_SKEW):
        return "the request timestamp is in the future"
    expected = sign_v3(secret, method, uri, body, timestamp)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()):
        return "the signature does not match: check the connection's client_secret is the app's"
    return None


def is_echo(event: dict[str, Any], settings: HubSpotSettings) -> bool:
    """bant-sync's own write coming back: a change to one of its output properties, or a change this app
    made (`changeSource` INTEGRATION with `sourceId` the app id)."""
    if event.get("subscriptionType") == "deal.propertyChange":
        own = {settings.prop(key) for key in OUTPUT_KEYS}
        if event.get("propertyName") in own:
            return True
    return bool(settings.app_id) and (
        event.get("changeSource") == "INTEGRATION" and str(event.get("sourceId") or "") == settings.app_id
    )


@dataclass(frozen=True)
class Parsed:
    events: list[InboundEvent]
    portals: set[str]
    ignored: int


def parse_events(raw: bytes, settings: HubSpotSettings) -> Parsed:
    """The deal events of a delivery body (ApiError 400 when it is not HubSpot's JSON array)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "the body is not JSON: HubSpot sends a JSON array of events") from None
    if not isinstance(body, list) or not body or len(body) > MAX_EVENTS:
        raise ApiError(400, f"the body must be a JSON array of 1 to {MAX_EVENTS} events")
    events: list[InboundEvent] = []
    portals: set[str] = set()
    ignored = 0
    for item in body:
        if not isinstance(item, dict):
            raise ApiError(400, "every event must be a JSON object")
        event_id, object_id, occurred = item.get("eventId"), item.get("objectId"), item.get("occurredAt")
        portal = item.get("portalId")
        if not _whole(event_id) or not _whole(object_id) or not _whole(occurred) or not _whole(portal):
            raise ApiError(400, "every event needs whole numbers eventId, objectId, occurredAt and portalId")
        if int(occurred or 0) > MAX_OCCURRED_MS:
            raise ApiError(400, "an event's occurredAt is not a time (epoch milliseconds)")
        portals.add(str(portal))
        if item.get("subscriptionType") not in DEAL_EVENTS:
            ignored += 1
            continue
        events.append(
            InboundEvent(
                event_id=str(event_id),
                deal_id=str(object_id),
                occurred_at=datetime.fromtimestamp(int(occurred or 0) / 1000, UTC),
                echo=is_echo(item, settings),
            )
        )
    return Parsed(events, portals, ignored)


def _whole(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0 <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value) and value.is_integer() and 0 <= value < 2**63
    return False


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _ms_of(span: timedelta) -> int:
    return int(span.total_seconds() * 1000)


def hubspot_webhook_route(
    connections: Callable[[], dict[str, ConnectionSettings]],
    store: EventStore,
    notifier: Notifier,
    clock: Callable[[], datetime],
) -> Route:
    """The route `create_app` mounts. `connections` reads the configured connections at each request."""

    async def receive(request: Request) -> Response:
        name = request.path_params["connection"]
        try:
            tally = await _accept(request, name)
        except ApiError as exc:
            log.warning(
                "hubspot webhook refused", connection=name[:100], status=exc.status, reason=exc.body["error"]
            )
            return JSONResponse(exc.body, status_code=exc.status)
        log.info("hubspot webhook recorded", connection=name, **tally)
        return Response(status_code=204)

    async def _accept(request: Request, name: str) -> dict[str, int]:
        conn = connections().get(name)
        settings = conn.crm_settings if conn is not None else None
        if (
            conn is None
            or not conn.enabled
            or not isinstance(settings, HubSpotSettings)
            or not settings.webhooks
        ):
            raise ApiError(404, f"no HubSpot connection {name[:100]!r} takes webhooks (webhooks = true)")
        secret = conn.secrets.get("client_secret")
        if secret is None or not secret.reveal():
            raise ApiError(503, f"connection {name!r} has no client_secret secret to check signatures with")
        raw = await read_body(request, MAX_WEBHOOK_BODY)
        problem = check_v3(
            secret.reveal(),
            request.method,
            str(request.url),
            raw,
            request.headers.get(SIGNATURE_HEADER),
            request.headers.get(TIMESTAMP_HEADER),
            clock(),
        )
        if problem is not None:
            raise ApiError(401, problem)
        parsed = parse_events(raw, settings)
        identity = await run_in_threadpool(store.identity_of, name)
        if identity is None:
            raise ApiError(
                503, f"connection {name!r} has not run yet, so its portal is unknown: events are taken after"
            )
        others = {p for p in parsed.portals if f"hubspot:{p}" != identity}
        if others:
            raise ApiError(403, f"events from portal {sorted(others)[0]} are not connection {name!r}'s")
        tally = await run_in_threadpool(store.record_events, name, parsed.events, clock())
        if tally.marked:
            notifier.notify(name)
        return {
            "received": tally.received,
            "duplicates": tally.duplicates,
            "echoes": tally.echoes,
            "marked": tally.marked,
            "ignored": parsed.ignored,
        }

    return Route(PATH, receive, methods=["POST"])
