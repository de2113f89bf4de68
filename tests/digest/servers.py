"""Real local servers the digest tests deliver to: an SMTP server (aiosmtpd) with STARTTLS, implicit TLS
or plain, that can refuse chosen recipients; and a stand-in for Slack's Web API (users.lookupByEmail,
chat.postMessage) that speaks what slack_sdk's WebClient expects, including one 429 `ratelimited`."""

from __future__ import annotations

import email
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from sandbox.tls import TlsMaterial, make_tls_material


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class MailHandler:
    """Keeps every accepted message; answers 550 to the addresses in `refuse`, 451 once to `defer`."""

    user: str
    password: str
    refuse: set[str] = field(default_factory=set)
    defer: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)
    logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        if address.lower() in self.defer:
            self.defer.discard(address.lower())
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(parsed)
        return "250 Message accepted"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.user
            and auth_data.password.decode() == self.password
        )
        if ok:
            self.logins += 1
        return AuthResult(success=ok)

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


@dataclass
class SmtpServer:
    host: str
    port: int
    tls: str
    ca_file: Path
    handler: MailHandler


@contextmanager
def smtp_server(directory: Path, tls: str, user: str, password: str) -> Iterator[SmtpServer]:
    """An SMTP server on 127.0.0.1 with a certificate from a throw-away CA: `tls` "starttls" (STARTTLS
    required before AUTH and mail), "implicit" (SMTPS) or "none"."""
    directory.mkdir(parents=True, exist_ok=True)
    material: TlsMaterial = make_tls_material(directory)
    handler = MailHandler(user, password)
    port = free_port()
    context = material.server_context()
    options: dict[str, Any] = {"authenticator": handler.authenticate, "auth_required": tls == "starttls"}
    if tls == "starttls":
        controller = Controller(
            handler, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True, **options
        )
    elif tls == "implicit":
        controller = ImplicitTlsController(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            client_ca=material.ca_path,
            auth_require_tls=False,  # aiosmtpd does not count an SMTPS connection as TLS: it is one
            **options,
        )
    else:
        controller = Controller(handler, hostname="127.0.0.1", port=port, auth_require_tls=False, **options)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, tls, material.ca_path, handler)
    finally:
        controller.stop()


class ImplicitTlsController(Controller):
    """aiosmtpd's Controller checks it is up by connecting in plain text, which an SMTPS port never
    answers: check it over TLS, trusting the test CA."""

    def __init__(self, *args: Any, client_ca: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._client_ca = client_ca

    def _trigger_server(self) -> None:
        context = ssl.create_default_context(cafile=str(self._client_ca))
        with (
            socket.create_connection((self.hostname, self.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=self.hostname) as tls,
        ):
            tls.recv(1024)


@dataclass
class SlackApi:
    """What the Slack stand-in knows and saw: users by e-mail, posted messages, calls per method."""

    token: str
    users: dict[str, str] = field(default_factory=dict)
    """e-mail (lower case) -> user id."""
    posts: list[dict[str, Any]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    ratelimit_once: set[str] = field(default_factory=set)
    """API methods whose next call answers 429 `ratelimited` with Retry-After (then work again)."""
    retry_after: int = 3
    lock: threading.Lock = field(default_factory=threading.Lock)

    def posts_to(self, address: str) -> list[dict[str, Any]]:
        user = self.users.get(address.lower())
        with self.lock:
            return [p for p in self.posts if user is not None and p.get("channel") == user]


def _slack_handler(api: SlackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _params(self) -> dict[str, Any]:
            split = urlsplit(self.path)
            params: dict[str, Any] = {k: v[0] for k, v in parse_qs(split.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            kind = self.headers.get("Content-Type") or ""
            if raw and kind.startswith("application/json"):
                params.update(json.loads(raw))
            elif raw:
                params.update({k: v[0] for k, v in parse_qs(raw.decode()).items()})
            return params

        def do_GET(self) -> None:
            self.do_POST()

        def do_POST(self) -> None:
            method = urlsplit(self.path).path.rsplit("/", 1)[-1]
            params = self._params()
            with api.lock:
                api.calls.append(method)
                limited = method in api.ratelimit_once
                api.ratelimit_once.discard(method)
            if self.headers.get("Authorization") != f"Bearer {api.token}":
                self._answer(200, {"ok": False, "error": "invalid_auth"})
            elif limited:
                self._answer(
                    429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(api.retry_after)}
                )
            elif method == "users.lookupByEmail":
                user = api.users.get(str(params.get("email", "")).lower())
                if user is None:
                    self._answer(200, {"ok": False, "error": "users_not_found"})
                else:
                    self._answer(
                        200, {"ok": True, "user": {"id": user, "profile": {"email": params["email"]}}}
                    )
            elif method == "chat.postMessage":
                blocks = params.get("blocks")
                if isinstance(blocks, str):
                    params["blocks"] = json.loads(blocks)
                if not params.get("channel") or not (params.get("text") or params.get("blocks")):
                    self._answer(200, {"ok": False, "error": "no_text"})
                    return
                with api.lock:
                    api.posts.append(params)
                    ts = f"1700000000.{len(api.posts):06d}"
                self._answer(200, {"ok": True, "channel": params["channel"], "ts": ts, "message": {"ts": ts}})
            else:
                self._answer(200, {"ok": False, "error": "unknown_method"})

    return Handler


@contextmanager
def slack_api(token: str) -> Iterator[tuple[SlackApi, str]]:
    """The Slack stand-in on 127.0.0.1 and its base URL (http://127.0.0.1:PORT/api/)."""
    api = SlackApi(token)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _slack_handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}/api/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
