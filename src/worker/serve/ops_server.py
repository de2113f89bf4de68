"""The HTTP server under the ops API: uvicorn over h11, with every limit set here rather than left to
uvicorn's defaults (no connection limit, a 2048 backlog, no deadline for a request's head).

What one client can hold:
- MAX_CONNECTIONS open connections, idle keep-alive ones included; the next is answered 503 and closed;
- HEAD_TIMEOUT_SECONDS to send a request's line and headers, on a new connection and between requests on
  a kept-alive one, else the connection is closed (uvicorn only times out idle keep-alive connections, so
  a client that connects and sends nothing, or dribbles its headers, would hold a slot for good);
- KEEP_ALIVE_SECONDS idle between requests;
- MAX_HEAD_BYTES of request line and headers (h11's incomplete-event limit);
- BACKLOG connections waiting in the kernel's accept queue.
"""

from __future__ import annotations

import asyncio

import uvicorn
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol

MAX_CONNECTIONS = 64
HEAD_TIMEOUT_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_HEAD_BYTES = 16_384
BACKLOG = 128
GRACEFUL_SHUTDOWN_SECONDS = 10


class HeadDeadlineProtocol(H11Protocol):
    """uvicorn's h11 protocol plus a deadline for each request's head (`head_timeout` seconds)."""

    head_timeout: float = HEAD_TIMEOUT_SECONDS
    _deadline: asyncio.TimerHandle | None = None
    _cycle_seen: object = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._cycle_seen:
            self._cycle_seen = self.cycle
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_timed_out(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()


def server_config(
    app: ASGIApp,
    host: str,
    port: int,
    max_connections: int = MAX_CONNECTIONS,
    head_timeout: float = HEAD_TIMEOUT_SECONDS,
) -> uvicorn.Config:
    """The uvicorn settings `serve` runs the ops API with (the limits above)."""
    protocol = type("OpsHttpProtocol", (HeadDeadlineProtocol,), {"head_timeout": head_timeout})
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        log_config=None,
        access_log=False,
        lifespan="off",
        limit_concurrency=max_connections + 1,  # uvicorn counts the connection it is judging
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEAD_BYTES,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
