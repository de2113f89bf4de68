"""The ops HTTP API `serve` exposes: trigger a resync, read run history, health and Prometheus metrics.

`GET /runs/{id}` is one run as `sync --json` reports it, with every row the CRM rejected in it
(`rejections`: deal id, operation, CRM error code and message); `GET /runs` lists runs without them.

Every endpoint but `/health`, the console under `/ui` (its own session) and HubSpot's webhook deliveries
under `/webhooks/` (their signature: `worker.serve.webhooks`) needs `Authorization: Bearer <token>`
(BANT_SYNC_OPS_TOKEN, at least 32 characters). Any query parameter named like a credential (`token`,
`api_key`, `auth`, `key`, `password`, ...) is refused even when correct: URLs end up in proxy logs and
shell history. A resync takes the connection's lease before answering, so 202 always means a run will
happen and 409 names the run that holds it. A body nested deeper than MAX_JSON_DEPTH is refused before it
is parsed, so no body can exhaust the parser's recursion. An unknown connection is 404 everywhere
(`/runs?connection=`, `POST /resync`). `/connections` manages the connections kept in the state store
(worker.serve.ops_connections).

The HTTP server's own limits (connections, timeouts, head size) are in `worker.serve.ops_server`.

Every error answer, whatever refused the request (the auth middleware, validation, Starlette's own 404
and 405, a `BantSyncError`, a bug), is one JSON object of one shape, `error_body`:
`{"error": message, "kind": ..., "problems": [...], "hint": ... or null}` (plus `holder_run_id` on a 409),
the shape of `BantSyncError.as_json()`. `kind` is the error class's name for a `BantSyncError` (answered
with its `http_status`) and otherwise names the HTTP refusal (KINDS: `NotFound`, `InvalidRequest`, ...).
Anything unexpected answers 500 `InternalError` and is logged with its traceback on the server, never in
the answer. No answer ever echoes a secret.
"""

from __future__ import annotations

import hmac
import json
import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from rules.errors import BantSyncError
from worker.config.secrets import MIN_TOKEN_LENGTH
from worker.errors import UsageError
from worker.serve.console import console_app
from worker.serve.ops_health import HealthCheck
from worker.serve.ops_metrics import CONTENT_TYPE, metrics_registry, render_metrics
from worker.service import Worker
from worker.state import Lease, LeaseHeldError, Rejection, RunRecord
from worker.state.model import RunMode, Trigger
from worker.sync.owners import resolve_owner
from worker.sync.run_model import RunRequest, RunSummary

if TYPE_CHECKING:
    from worker.serve.webhooks import Notifier

log = structlog.get_logger()

RESYNC_OPTIONS: dict[str, type] = {
    "connection": str,
    "full": bool,
    "deal": str,
    "owner": str,
    "dry_run": bool,
}
"""The body of POST /resync: exactly the options of `bant-sync sync`."""
CREDENTIAL_QUERY_NAMES = frozenset(
    {"key", "auth", "authorization", "pwd", "pass", "jwt", "sig", "signature", "session", "sessionid"}
)
"""Query parameter names refused outright (compared lower-case, without `-` and `_`)."""
CREDENTIAL_QUERY_WORDS = ("token", "secret", "passw", "apikey", "bearer", "credential", "privatekey")
"""A query parameter whose name contains any of these (lower-case, without `-` and `_`) is refused too."""
MAX_JSON_DEPTH = 32
OPEN_PATHS = frozenset({"/health"})
CONSOLE_PATH = "/ui"
"""The web console (worker.serve.console): BearerAuth lets its paths through; it checks its own session."""
WEBHOOK_PREFIX = "/webhooks/"
"""CRM webhook deliveries (worker.serve.webhooks): BearerAuth lets them through; each is authenticated by
the CRM's signature instead (HubSpot cannot send a bearer token)."""
MAX_LIST = 500


KINDS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    422: "InvalidRequest",
    500: "InternalError",
    503: "Unavailable",
}
"""The `kind` of an error answer by HTTP status, for refusals that are not a BantSyncError."""


def error_body(
    status: int,
    message: str,
    *,
    kind: str | None = None,
    hint: str | None = None,
    problems: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The one shape of every error answer: `{"error", "kind", "problems", "hint"}` (BantSyncError.as_json)
    and any `extra` keys (a 409's `holder_run_id`)."""
    kind = kind or KINDS.get(status, "HTTPError")
    return {"error": message, "kind": kind, "problems": list(problems or ()), "hint": hint, **extra}


class ApiError(Exception):
    def __init__(self, status: int, message: str, *, hint: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = error_body(status, message, hint=hint, **extra)


def _error(
    status: int, message: str, headers: dict[str, str] | None = None, *, hint: str | None = None
) -> JSONResponse:
    return JSONResponse(error_body(status, message, hint=hint), status_code=status, headers=headers)


def _user_error(request: Request, exc: Exception) -> Response:
    """The boundary for errors a user can cause: one JSON message with the error's status code."""
    assert isinstance(exc, BantSyncError)
    log.warning("ops api request failed", path=request.url.path, error=type(exc).__name__)
    return JSONResponse(exc.as_json(), status_code=exc.http_status)


def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such path: 404; a method the path does not take: 405, with `Allow`)
    in the one error shape."""
    assert isinstance(exc, HTTPException)
    path = request.url.path[:200]
    if exc.status_code == 404:
        message = (
            f"no endpoint {path!r}: the ops API has /health, /resync, /runs, /runs/{{run_id}}, /metrics, "
            f"/connections and the console under {CONSOLE_PATH}/"
        )
    elif exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        message = f"{request.method} is not allowed on {path!r}: use {allowed or 'another method'}"
    else:
        message = str(exc.detail)
    return JSONResponse(
        error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers
    )


def _bug(request: Request, exc: Exception) -> Response:
    """Anything else is a bug: logged with its traceback here, answered without one."""
    log.error("ops api request crashed", path=request.url.path, exc_info=exc)
    return _error(500, "internal error: this is a bug, please report it (the server log has the details)")


def looks_like_credential(name: str) -> bool:
    """Whether a query parameter's name says it carries a credential (`api_key`, `Bearer-Token`, `auth`)."""
    folded = name.lower().replace("-", "").replace("_", "")
    return folded in CREDENTIAL_QUERY_NAMES or any(word in folded for word in CREDENTIAL_QUERY_WORDS)


def json_depth_exceeds(raw: bytes, limit: int) -> bool:
    """Whether JSON text nests arrays/objects deeper than `limit`, found by one pass over the bytes (brackets
    inside strings do not count) without parsing, so a 6,000-deep body cannot exhaust the recursion."""
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return False


class BearerAuth:
    """ASGI middleware: refuse query-string tokens anywhere; require the bearer token off OPEN_PATHS."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response = self._refusal(scope)
        if response is not None:
            log.warning("ops api request refused", path=scope["path"], status=response.status_code)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refusal(self, scope: Scope) -> Response | None:
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        credential = next((name for name, _ in query if looks_like_credential(name)), None)
        if credential is not None:
            return _error(
                400,
                f"query parameter {credential[:40]!r} looks like a credential, and credentials in the query "
                "string are refused (URLs are logged): send the token in the header "
                "'Authorization: Bearer <token>' instead, and rotate a token that was sent in a URL",
            )
        path = scope["path"]
        if (
            path in OPEN_PATHS
            or path == CONSOLE_PATH
            or path.startswith((CONSOLE_PATH + "/", WEBHOOK_PREFIX))
        ):
            return None
        scheme, _, given = Headers(scope=scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return _error(
                401,
                "authentication required: send 'Authorization: Bearer <token>' "
                "(the BANT_SYNC_OPS_TOKEN value)",
                {"WWW-Authenticate": 'Bearer realm="bant-sync"'},
            )
        if not hmac.compare_digest(given.strip().encode(), self._token):
            return _error(
                401,
                "invalid bearer token: use the BANT_SYNC_OPS_TOKEN value the service was started with",
                {"WWW-Authenticate": 'Bearer realm="bant-sync", error="invalid_token"'},
            )
        return None


class RunLauncher:
    """Runs accepted resyncs in background threads; remembers them until the store has their record."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
        self._lock = threading.Lock()
        self._threads: dict[str, threading.Thread] = {}
        self._accepted: dict[str, tuple[RunRequest, datetime]] = {}

    def launch(self, request: RunRequest, lease: Lease) -> None:
        thread = threading.Thread(
            target=self._run, args=(request, lease), name=f"resync-{lease.run_id}", daemon=False
        )
        with self._lock:
            self._accepted[lease.run_id] = (request, self._worker.clock())
            self._threads[lease.run_id] = thread
        thread.start()

    def _run(self, request: RunRequest, lease: Lease) -> None:
        try:
            self._worker.run(request, run_id=lease.run_id, lease=lease)
        except Exception:
            log.exception("resync run crashed", run_id=lease.run_id, connection=request.connection)
        finally:
            with self._lock:
                self._accepted.pop(lease.run_id, None)
                self._threads.pop(lease.run_id, None)

    def pending(self, run_id: str) -> dict[str, Any] | None:
        """An accepted run whose thread has not yet recorded it in the store."""
        with self._lock:
            accepted = self._accepted.get(run_id)
        if accepted is None:
            return None
        request, at = accepted
        return {
            "run_id": run_id,
            "connection": request.connection,
            "trigger": request.trigger,
            "mode": request.mode,
            "dry_run": request.dry_run,
            "scope": request.scope,
            "status": "starting",
            "accepted_at": at.isoformat(),
        }

    def join(self, timeout: float | None = None) -> None:
        """Wait for every running resync (after `worker.stop` is set they end at their next page)."""
        with self._lock:
            threads = list(self._threads.values())
        for thread in threads:
            thread.join(timeout)


def run_json(record: RunRecord, rejections: list[Rejection] | None = None) -> dict[str, Any]:
    """A stored run as the API shows it: the one run report of `sync --json` (RunSummary.as_json); the
    rejected rows only when given (GET /runs/{id}), not in run lists."""
    return RunSummary.of_record(record, rejections).as_json(with_rejections=rejections is not None)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing (413) one over `limit` bytes whether it declares its length or streams."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise ApiError(413, f"request body over {limit} bytes")
    return bytes(body)


def parse_resync(raw: bytes, worker: Worker) -> RunRequest:
    """Validate a POST /resync body into a RunRequest (raises ApiError 400/404/422)."""
    if json_depth_exceeds(raw, MAX_JSON_DEPTH):
        raise ApiError(
            400,
            f"the body nests deeper than {MAX_JSON_DEPTH} levels: send a flat object such as "
            '{"full": true}',
        )
    try:
        body = json.loads(raw) if raw.strip() else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, 'the body is not JSON: send an object such as {"full": true}') from None
    if not isinstance(body, dict):
        raise ApiError(422, "the body must be a JSON object with any of: " + ", ".join(RESYNC_OPTIONS))
    for key, value in body.items():
        if key not in RESYNC_OPTIONS:
            raise ApiError(422, f"unknown option {key!r}; allowed: {', '.join(RESYNC_OPTIONS)}")
        expected = RESYNC_OPTIONS[key]
        if value is not None and (type(value) is not expected or (expected is str and not value)):
            kind = "true or false" if expected is bool else "a non-empty string"
            raise ApiError(422, f"option {key!r} must be {kind}")
    deal, owner, full = body.get("deal"), body.get("owner"), bool(body.get("full"))
    if deal and owner:
        raise ApiError(422, "give 'deal' or 'owner', not both")
    if full and (deal or owner):
        raise ApiError(422, "'full' sweeps every deal: do not combine it with 'deal' or 'owner'")
    name = body.get("connection")
    connections = worker.settings.connections
    if name is not None and name not in connections:
        raise ApiError(404, _unknown_connection(name, worker))
    if name is None:
        if len(connections) != 1:
            raise ApiError(422, f"choose a 'connection': {', '.join(connections) or 'none configured'}")
        name = next(iter(connections))
    if not connections[name].enabled:
        raise ApiError(422, f"connection {name!r} is disabled (enabled = false in its config)")
    mode = RunMode.DEAL if deal else RunMode.OWNER if owner else RunMode.FULL if full else RunMode.INCREMENTAL
    return RunRequest(name, mode, deal, owner, bool(body.get("dry_run")), trigger=Trigger.HTTP)


def _unknown_connection(name: str, worker: Worker) -> str:
    configured = ", ".join(worker.settings.connections) or "none"
    return f"no connection named {name[:100]!r}; configured: {configured}"


def _with_owner_id(worker: Worker, run: RunRequest) -> RunRequest:
    """`run` with its owner e-mail resolved to the owner's id, as `sync --owner` resolves one (the owners
    cache, then one read of the CRM's owners for an e-mail it does not know); an unknown e-mail is a 422
    naming the closest one. Runs in the threadpool: the read may reach the CRM."""
    try:
        owner_id = resolve_owner(
            worker.store, run.connection, run.owner_id or "", worker.connector, worker.clock
        )
    except UsageError as exc:
        raise ApiError(422, str(exc)) from None
    return RunRequest(run.connection, run.mode, None, owner_id, run.dry_run, trigger=run.trigger)


async def accept_resync(worker: Worker, raw: bytes) -> tuple[RunRequest, Lease]:
    """A resync request body (JSON, the options of `bant-sync sync`) made into a run with the connection's
    lease taken, so the caller can launch it and answer at once: what `POST /resync` and the console's
    resync form both do. ApiError (503 shutting down, 404/422 a bad body or owner, 409 the lease's holder)
    otherwise."""
    if worker.stop.is_set():
        raise ApiError(503, "the service is shutting down; try again once it is back")
    run = parse_resync(raw, worker)
    if run.owner_id is not None and "@" in run.owner_id:
        run = await run_in_threadpool(_with_owner_id, worker, run)
    try:
        lease = await run_in_threadpool(worker.reserve, run.connection)
    except LeaseHeldError as exc:
        raise ApiError(409, str(exc), holder_run_id=exc.holder_run_id) from None
    return run, lease


def create_app(worker: Worker, token: str, max_body_bytes: int, events: Notifier | None = None) -> Starlette:
    """The ops API over `worker`. `token` must have MIN_TOKEN_LENGTH characters (the loader refuses a
    shorter one with a message); `app.state.launcher` runs the resyncs. With `events` (the coalescer of
    `serve`, worker.events.EventCoalescer) the HubSpot webhook endpoint `POST /webhooks/hubspot/{name}` is
    mounted: it records the events and notifies `events`."""
    if not token:
        raise ValueError("the ops API needs a bearer token: set BANT_SYNC_OPS_TOKEN")
    if len(token) < MIN_TOKEN_LENGTH:
        raise ValueError(f"the ops API token must have at least {MIN_TOKEN_LENGTH} characters")
    launcher = RunLauncher(worker)
    checker = HealthCheck(worker, started_at=worker.clock())
    registry = metrics_registry(worker, checker)

    def health(request: Request) -> Response:
        return JSONResponse(checker.report())

    async def resync(request: Request) -> Response:
        try:
            run, lease = await accept_resync(worker, await read_body(request, max_body_bytes))
        except ApiError as exc:
            log.info("resync refused", status=exc.status, reason=exc.body["error"])
            return JSONResponse(exc.body, status_code=exc.status)
        launcher.launch(run, lease)
        log.info("resync accepted", run_id=lease.run_id, connection=run.connection, mode=run.mode)
        body = {"run_id": lease.run_id, "connection": run.connection, "mode": run.mode}
        return JSONResponse({**body, "status_url": f"/runs/{lease.run_id}"}, status_code=202)

    def list_runs(request: Request) -> Response:
        limit_text = request.query_params.get("limit", "20")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIST:
            return _error(422, f"limit must be a whole number from 1 to {MAX_LIST}")
        connection = request.query_params.get("connection") or None
        if connection is not None and connection not in worker.settings.connections:
            return _error(404, _unknown_connection(connection, worker))
        records = worker.store.list_runs(connection, int(limit_text))
        return JSONResponse({"runs": [run_json(r) for r in records]})

    def get_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = worker.store.get_run(run_id)
        if record is not None:
            return JSONResponse(run_json(record, worker.store.run_rejections(run_id)))
        pending = launcher.pending(run_id)
        if pending is not None:
            return JSONResponse(pending)
        return _error(404, f"no run {run_id!r}: list recent runs with GET /runs")

    def metrics(request: Request) -> Response:
        return Response(render_metrics(registry), media_type=CONTENT_TYPE)

    from worker.serve.ops_connections import connection_routes  # it imports ApiError and read_body from here

    routes: list[BaseRoute] = [
        Route("/health", health, methods=["GET"]),
        Route("/resync", resync, methods=["POST"]),
        Route("/runs", list_runs, methods=["GET"]),
        Route("/runs/{run_id}", get_run, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *connection_routes(worker, max_body_bytes),
        Mount(CONSOLE_PATH, app=console_app(worker, launcher, token, max_body_bytes)),
    ]
    if events is not None:
        from worker.serve.webhooks import hubspot_webhook_route  # it imports ApiError and read_body from here

        routes.append(
            hubspot_webhook_route(
                lambda: dict(worker.settings.connections), worker.store, events, worker.clock
            )
        )
    app = Starlette(
        routes=routes,
        middleware=[Middleware(BearerAuth, token=token)],
        exception_handlers={BantSyncError: _user_error, HTTPException: _http_error, Exception: _bug},
    )
    app.state.launcher = launcher
    app.state.health = checker
    return app
