"""The ops console: server-rendered pages under `/ui` of the ops API, behind a session cookie.

Pages: connections (`/ui/`), runs (`/ui/runs`, `/ui/runs/{id}` with live progress), deals by status and
compliance per owner (`/ui/deals`), and resync actions (`/ui/actions`, dry run first). Two JSON reads feed
the live updates (`/ui/api/runs/{id}`, `/ui/api/running`); the static script polls them.

Security (see docs/console.md):
- `POST /ui/login` exchanges the ops token (compared in constant time) for a server-side session; the
  cookie is HttpOnly, SameSite=Strict, Path=/ui, and Secure when the request came over TLS (scheme https:
  uvicorn takes it from X-Forwarded-Proto only when the peer is a trusted proxy, FORWARDED_ALLOW_IPS,
  loopback by default). Sessions live in memory: a restart logs everyone out.
- A session ends after `[ops_api] session_minutes` without a request, or at logout.
- Every POST but the login carries the session's CSRF token (hidden field `csrf` or header X-CSRF-Token);
  without it the answer is 403, without a session a redirect to the login (401 JSON for a script's
  request, one sending `X-Requested-With` or accepting only JSON).
- Failed logins wait LOGIN_DELAY_SECONDS and a client with MAX_LOGIN_FAILURES within the window is locked
  out (429) for the window. The token is never echoed, put in a URL, or logged.
- Every answer forbids framing and caching and allows scripts and styles from the console itself only.

The resync action reuses the ops API's machinery: `accept_resync` validates the request and takes the
lease (as `POST /resync` does), the API's RunLauncher runs it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import structlog
from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.serve.console.sessions import LoginThrottle, Session, SessionStore, csrf_ok, token_ok
from worker.serve.console.views import (
    RUNNING_SHOWN,
    DealLinks,
    compliance,
    connection_views,
    duration_seconds,
    owners_by_id,
    progress_of,
    rejection_rows,
    run_json,
    status_table,
)
from worker.serve.ops_health import HealthCheck
from worker.service import Worker
from worker.state.model import RunMode, RunStatus
from worker.sync.run_model import RunSummary

if TYPE_CHECKING:
    from worker.serve.ops_api import RunLauncher

log = structlog.get_logger()

COOKIE = "bant_console"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
LOGIN_DELAY_SECONDS = 0.5
"""How long a failed login waits before it is answered."""
RUN_HISTORY = 50
MAX_REJECTIONS_SHOWN = 200
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    """Adds SECURITY_HEADERS to every answer of the console."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in SECURITY_HEADERS if n not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _templates() -> Environment:
    env = Environment(
        loader=PackageLoader("worker.serve.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    env.filters["percent"] = lambda v: "–" if v is None else f"{v * 100:.0f}%"
    return env


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    seconds = round(value)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return (
        request.headers.get("x-requested-with", "").lower() == "xmlhttprequest"
        or ("application/json" in accept and "text/html" not in accept)
        or request.url.path.startswith(f"{_base(request)}/api/")
    )


def _base(request: Request) -> str:
    """The console's path prefix (`/ui` where the ops API mounts it)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _is_tls(request: Request) -> bool:
    return request.url.scheme == "https"


Handler = Callable[[Request, Session], Awaitable[Response]]


def console_app(
    worker: Worker,
    launcher: RunLauncher,
    token: str,
    max_body_bytes: int,
    *,
    clock: Callable[[], float] = time.monotonic,
    login_delay: float | None = None,
) -> ASGIApp:
    """The console over `worker`, resyncing through the ops API's `launcher` (a RunLauncher); `token` is
    the ops token a login must give; `clock` (monotonic seconds) times sessions and the login lockout;
    a failed login is answered after `login_delay` seconds (default LOGIN_DELAY_SECONDS)."""
    from worker.serve.ops_api import ApiError, accept_resync, error_body, read_body

    sessions = SessionStore(worker.settings.ops_api.session_minutes * 60.0, clock)
    throttle = LoginThrottle(clock)
    templates = _templates()
    links = DealLinks(worker, clock)
    checker = HealthCheck(worker, started_at=worker.clock())
    delay = LOGIN_DELAY_SECONDS if login_delay is None else login_delay

    def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        session: Session | None = context.pop("session", None)
        html = templates.get_template(name).render(
            base=_base(request),
            csrf=session.csrf if session else None,
            csrf_field=CSRF_FIELD,
            nav=name.removesuffix(".html.j2"),
            **context,
        )
        return HTMLResponse(html, status_code=status)

    def json_error(status: int, message: str) -> JSONResponse:
        return JSONResponse(error_body(status, message), status_code=status)

    def no_session(request: Request) -> Response:
        if _wants_json(request):
            return json_error(401, "log in first: the console's session ended or was never opened")
        return RedirectResponse(f"{_base(request)}/login", status_code=303)

    def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return no_session(request)
            return await handler(request, session)

        return endpoint

    async def form_of(request: Request) -> dict[str, str]:
        raw = await read_body(request, max_body_bytes)
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def changes_state(
        handler: Callable[[Request, Session, dict[str, str]], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A POST: a session first, then its CSRF token (field or header), then the handler."""

        async def endpoint(request: Request) -> Response:
            session = sessions.get(request.cookies.get(COOKIE))
            if session is None:
                return no_session(request)
            try:
                form = await form_of(request)
            except ApiError as exc:
                return JSONResponse(exc.body, status_code=exc.status)
            given = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD)
            if not csrf_ok(session, given):
                log.warning("console request refused: no valid CSRF token", path=request.url.path)
                message = "this form is stale or did not come from the console: reload the page and retry"
                if _wants_json(request):
                    return json_error(403, message)
                return page(request, "error.html.j2", 403, session=session, message=message)
            return await handler(request, session, form)

        return endpoint

    def set_cookie(request: Request, response: Response, session: Session) -> None:
        response.set_cookie(
            COOKIE,
            session.id,
            path=_base(request) or "/",
            httponly=True,
            samesite="strict",
            secure=_is_tls(request),
        )

    async def login_form(request: Request) -> Response:
        if sessions.get(request.cookies.get(COOKIE)) is not None:
            return RedirectResponse(f"{_base(request)}/", status_code=303)
        return page(request, "login.html.j2", error=None)

    async def login(request: Request) -> Response:
        client = _client(request)
        wait = throttle.locked_for(client)
        if wait > 0:
            log.warning("console login refused: too many failures", client=client)
            message = f"too many failed logins: try again in {int(wait) + 1} s"
            return page(request, "login.html.j2", 429, error=message)
        try:
            form = await form_of(request)
        except ApiError as exc:
            return page(request, "login.html.j2", exc.status, error=str(exc.body["error"]))
        if not token_ok(form.get("token", ""), token):
            throttle.failed(client)
            log.warning("console login failed", client=client)
            if delay > 0:
                await asyncio.sleep(delay)
            error = "that is not the ops token (BANT_SYNC_OPS_TOKEN the service was started with)"
            return page(request, "login.html.j2", 401, error=error)
        throttle.succeeded(client)
        old = request.cookies.get(COOKIE)
        if old:
            sessions.delete(old)
        session = sessions.create()
        log.info("console login", client=client)
        response = RedirectResponse(f"{_base(request)}/", status_code=303)
        set_cookie(request, response, session)
        return response

    async def logout(request: Request, session: Session, form: dict[str, str]) -> Response:
        sessions.delete(session.id)
        log.info("console logout", client=_client(request))
        response = RedirectResponse(f"{_base(request)}/login", status_code=303)
        response.delete_cookie(COOKIE, path=_base(request) or "/", httponly=True, samesite="strict")
        return response

    def _connections_page(request: Request, session: Session) -> Response:
        now = worker.clock()
        views = connection_views(worker, checker, now)
        progress = {r.run_id: progress_of(worker, r, now) for v in views for r in v.running}
        return page(request, "connections.html.j2", session=session, connections=views, progress=progress)

    async def connections(request: Request, session: Session) -> Response:
        return await run_in_threadpool(_connections_page, request, session)

    def _runs_page(request: Request, session: Session) -> Response:
        now = worker.clock()
        name = request.query_params.get("connection") or None
        if name is not None and name not in worker.settings.connections:
            return page(request, "error.html.j2", 404, session=session, message=f"no connection {name!r}")
        records = worker.store.list_runs(name, RUN_HISTORY)
        running = [r for r in records if r.status == RunStatus.RUNNING]
        return page(
            request,
            "runs.html.j2",
            session=session,
            connection=name,
            connection_names=list(worker.settings.connections),
            running=running,
            progress={r.run_id: progress_of(worker, r, now) for r in running},
            runs=[(r, RunSummary.of_record(r), duration_seconds(r, now)) for r in records],
            rejected={r.run_id: worker.store.rejection_count(r.run_id) for r in records},
            owner_names=owners_by_id(worker, {r.connection for r in records if r.mode == RunMode.OWNER}),
        )

    async def runs(request: Request, session: Session) -> Response:
        return await run_in_threadpool(_runs_page, request, session)

    def _run_page(request: Request, session: Session) -> Response:
        run_id = request.path_params["run_id"]
        now = worker.clock()
        record = worker.store.get_run(run_id)
        if record is None:
            pending = launcher.pending(run_id)
            if pending is None:
                return page(request, "error.html.j2", 404, session=session, message=f"no run {run_id!r}")
            return page(request, "pending.html.j2", session=session, run=pending)
        rejections = worker.store.run_rejections(run_id, MAX_REJECTIONS_SHOWN)
        total_rejections = worker.store.rejection_count(run_id)
        rows = rejection_rows(worker, links, record.connection, rejections) if rejections else []
        running = record.status == RunStatus.RUNNING
        return page(
            request,
            "run.html.j2",
            session=session,
            run=record,
            summary=RunSummary.of_record(record),
            duration=duration_seconds(record, now),
            progress=progress_of(worker, record, now) if running else None,
            rejections=rows,
            total_rejections=total_rejections,
            owner_names=owners_by_id(worker, [record.connection])[record.connection],
            again=_again(record.mode, record.scope),
        )

    async def run(request: Request, session: Session) -> Response:
        return await run_in_threadpool(_run_page, request, session)

    def _deals_page(request: Request, session: Session) -> Response:
        names = list(worker.settings.connections)
        name = request.query_params.get("connection") or (names[0] if names else None)
        if name is None or name not in worker.settings.connections:
            return page(request, "error.html.j2", 404, session=session, message=f"no connection {name!r}")
        counts = worker.store.status_counts(name)
        return page(
            request,
            "deals.html.j2",
            session=session,
            connection=name,
            connection_names=names,
            statuses=status_table(counts),
            known=sum(counts.values()),
            owners=compliance(worker, name),
        )

    async def deals(request: Request, session: Session) -> Response:
        return await run_in_threadpool(_deals_page, request, session)

    def _actions_page(
        request: Request,
        session: Session,
        status: int = 200,
        error: str | None = None,
        holder: str | None = None,
        **chosen: str,
    ) -> Response:
        enabled = [n for n, c in worker.settings.connections.items() if c.enabled]
        emails = sorted({o.email for n in enabled for o in worker.store.owners(n) if o.email})
        return page(
            request,
            "actions.html.j2",
            status,
            session=session,
            connection_names=enabled,
            owner_emails=emails,
            error=error,
            holder=holder,
            chosen=chosen,
        )

    async def actions(request: Request, session: Session) -> Response:
        chosen = {k: v for k, v in request.query_params.items() if k in ACTION_FIELDS}
        return await run_in_threadpool(_actions_page, request, session, 200, None, None, **chosen)

    async def resync(request: Request, session: Session, form: dict[str, str]) -> Response:
        chosen = {k: v for k, v in form.items() if k in ACTION_FIELDS}
        body: dict[str, Any] = {"connection": form.get("connection") or None}
        target = form.get("target", "connection")
        if target == "deal":
            body["deal"] = form.get("deal", "").strip()
        elif target == "owner":
            body["owner"] = form.get("owner", "").strip()
        elif form.get("sweep") == "full":
            body["full"] = True
        body["dry_run"] = form.get("run", "dry") != "real"
        try:
            request_, lease = await accept_resync(worker, json.dumps(body).encode())
        except ApiError as exc:
            log.info("console resync refused", status=exc.status, reason=exc.body["error"])
            holder = exc.body.get("holder_run_id")
            return await run_in_threadpool(
                _actions_page, request, session, exc.status, str(exc.body["error"]), holder, **chosen
            )
        launcher.launch(request_, lease)
        log.info(
            "resync accepted",
            run_id=lease.run_id,
            connection=request_.connection,
            mode=request_.mode,
            dry_run=request_.dry_run,
            source="console",
        )
        return RedirectResponse(f"{_base(request)}/runs/{lease.run_id}", status_code=303)

    async def api_run(request: Request, session: Session) -> Response:
        run_id = request.path_params["run_id"]

        def read() -> Response:
            record = worker.store.get_run(run_id)
            if record is None:
                pending = launcher.pending(run_id)
                if pending is None:
                    return json_error(404, f"no run {run_id!r}")
                return JSONResponse({**pending, "finished": False, "progress": None})
            return JSONResponse(run_json(worker, record, worker.clock()))

        return await run_in_threadpool(read)

    async def api_running(request: Request, session: Session) -> Response:
        def read() -> Response:
            now = worker.clock()
            found: dict[str, Any] = {}
            for name in worker.settings.connections:
                latest = worker.store.list_runs(name, RUNNING_SHOWN)
                running = [r for r in latest if r.status == RunStatus.RUNNING]
                lease = worker.store.lease_holder(name, now)
                found[name] = {
                    "lease_holder": lease.run_id if lease else None,
                    "running": [run_json(worker, r, now) for r in running],
                }
            return JSONResponse({"connections": found})

        return await run_in_threadpool(read)

    async def http_error(request: Request, exc: Exception) -> Response:
        """Starlette's own refusals (no such page: 404; a method a page does not take: 405) as the
        console's error page, or the ops API's error shape for a script."""
        assert isinstance(exc, HTTPException)
        path = request.url.path[:200]
        if exc.status_code == 404:
            message = f"no page {path!r} in the console"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {path!r}"
        else:
            message = str(exc.detail)
        if _wants_json(request):
            response: Response = json_error(exc.status_code, message)
        else:
            response = page(request, "error.html.j2", exc.status_code, message=message)
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    app = Starlette(
        exception_handlers={HTTPException: http_error},
        routes=[
            Route("/", signed_in(connections), methods=["GET"]),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", changes_state(logout), methods=["POST"]),
            Route("/runs", signed_in(runs), methods=["GET"]),
            Route("/runs/{run_id}", signed_in(run), methods=["GET"]),
            Route("/deals", signed_in(deals), methods=["GET"]),
            Route("/actions", signed_in(actions), methods=["GET"]),
            Route("/actions/resync", changes_state(resync), methods=["POST"]),
            Route("/api/runs/{run_id}", signed_in(api_run), methods=["GET"]),
            Route("/api/running", signed_in(api_running), methods=["GET"]),
            Mount("/static", app=StaticFiles(packages=[("worker.serve.console", "static")]), name="static"),
        ],
    )
    app.state.sessions = sessions
    app.state.links = links
    return SecurityHeaders(app)


ACTION_FIELDS = ("connection", "target", "deal", "owner", "sweep", "run")
"""The resync form's fields, kept when the form is shown again with an error."""


def _again(mode: str, scope: str | None) -> dict[str, str]:
    """The resync form's choices that repeat a run (for "run it for real" after a dry run)."""
    if mode == RunMode.DEAL and scope:
        return {"target": "deal", "deal": scope}
    if mode == RunMode.OWNER and scope:
        return {"target": "owner", "owner": scope}
    return {"target": "connection", "sweep": "full" if mode == RunMode.FULL else "incremental"}
