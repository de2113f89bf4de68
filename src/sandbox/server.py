"""Threaded HTTP(S) servers with raw socket control.

The standard library server is used on purpose: faults need to hold a connection open without answering
(``hang``) and to close it after the write was applied but before any byte of the answer
(``commit_then_drop``), which a web framework would hide. TLS is negotiated in the connection's own
thread so a slow client never blocks ``accept``.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import socketserver
import ssl
import sys
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from sandbox.http import Request, Response, json_response

App = Callable[[Request], Response]

_IDLE_TIMEOUT_S = 300.0
_HANDSHAKE_TIMEOUT_S = 10.0


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    """TCP_NODELAY: a response's head and body go out in two sends, and with Nagle's algorithm the body
    waited for the client's delayed ACK of the head, about 40 ms per keep-alive request."""
    timeout = _IDLE_TIMEOUT_S
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        raw_path, _, query = self.path.partition("?")
        request = Request(
            method=self.command,
            path=unquote(raw_path),
            query_string=query,
            headers={key.lower(): value for key, value in self.headers.items()},
            body=body,
        )
        response = self.server.dispatch(request)
        if response.action == "hang":
            self._hang()
            self.close_connection = True
            return
        if response.action == "drop":
            self.close_connection = True
            return
        try:
            self.send_response(response.status)
            for key, value in response.headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if response.body:
                self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True

    def _hang(self) -> None:
        """Say nothing until the client gives up (closes the socket) or the sandbox stops."""
        sock = self.connection
        while not self.server.stop_event.is_set():
            try:
                readable, _, _ = select.select([sock], [], [], 0.05)
                if readable and not sock.recv(4096):
                    return
            except (OSError, ValueError):
                return


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], app: App, ssl_context: ssl.SSLContext | None, stop: threading.Event
    ) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.stop_event = stop
        self.errors: list[str] = []
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind calls getfqdn(), a reverse DNS lookup that can stall start-up.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def dispatch(self, request: Request) -> Response:
        try:
            return self.app(request)
        except Exception:
            detail = traceback.format_exc()
            self.errors.append(detail)
            print(f"sandbox: internal error on {request.method} {request.path}\n{detail}", file=sys.stderr)
            return json_response(500, {"error": "sandbox internal error", "path": request.path})

    def finish_request(self, request: Any, client_address: Any) -> None:
        self._track(request, add=True)
        try:
            if self.ssl_context is None:
                _Handler(request, client_address, self)
                return
            request.settimeout(_HANDSHAKE_TIMEOUT_S)
            try:
                secure = self.ssl_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            self._track(secure, add=True)
            try:
                secure.settimeout(None)
                _Handler(secure, client_address, self)
            finally:
                self._track(secure, add=False)
                with contextlib.suppress(OSError):
                    secure.close()
        except (ConnectionResetError, BrokenPipeError, TimeoutError, ssl.SSLError):
            return
        finally:
            self._track(request, add=False)

    def _track(self, sock: socket.socket, *, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def drop_open_connections(self) -> None:
        """Shut every live connection so keep-alive threads end and clients see the sandbox is gone."""
        with self._open_lock:
            fds = [sock.fileno() for sock in self._open]
        for fd in fds:
            if fd < 0:
                continue
            try:
                dup = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            with contextlib.suppress(OSError):
                dup.shutdown(socket.SHUT_RDWR)
            dup.close()


class HttpServer:
    """One listening port served by daemon threads until :meth:`stop`."""

    def __init__(self, host: str, port: int, app: App, ssl_context: ssl.SSLContext | None = None) -> None:
        self._stop = threading.Event()
        self._server = _Server((host, port), app, ssl_context, self._stop)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"sandbox-{port}",
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def errors(self) -> list[str]:
        """Tracebacks of handler crashes (a sandbox bug, never a CRM behaviour)."""
        return list(self._server.errors)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Idempotent; safe on a server that never started (shutdown() would wait forever there)."""
        self._stop.set()
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()
        self._server.drop_open_connections()
