"""The request log: one entry per CRM call, for assertions and call counting.

Every call gets an entry, so counts stay exact (up to ``max_entries``, 500,000 by default). Bodies are
what made the log grow without bound (a 100,000-deal sync sends thousands of 100-row batches), so they are
kept only where a test looks at them: a body of at most ``body_bytes`` is kept parsed, a larger one only as
its first ``body_bytes`` characters (``body_head``), and only the newest ``bodies_kept`` entries keep either;
``body_bytes_total`` (the body's size) is on every entry.
"""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime

from sandbox.http import BodyError, Request

_MAX_ENTRIES = 500_000
BODY_BYTES = 4096
BODIES_KEPT = 2000


class RequestLog:
    """Thread-safe, bounded, in arrival order. Control-API calls never reach it."""

    def __init__(
        self, max_entries: int = _MAX_ENTRIES, body_bytes: int = BODY_BYTES, bodies_kept: int = BODIES_KEPT
    ) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, object]] = deque(maxlen=max_entries)
        self._with_body: deque[dict[str, object]] = deque()
        self._body_bytes = body_bytes
        self._bodies_kept = bodies_kept

    def record(
        self, crm: str, request: Request, status: int | None, when: datetime, faults: list[str] | None = None
    ) -> None:
        entry: dict[str, object] = {
            "crm": crm,
            "method": request.method,
            "path": request.path,
            "query": request.log_query(),
            "body": None,
            "status": status,
            "ts": when.isoformat().replace("+00:00", "Z"),
        }
        size = len(request.body)
        if size:
            entry["body_bytes_total"] = size
        kept = self._kept_body(request) if size and self._bodies_kept > 0 else {}
        entry.update(kept)
        if faults:
            entry["faults"] = list(faults)
        with self._lock:
            self._entries.append(entry)
            if kept:
                self._with_body.append(entry)
                while len(self._with_body) > self._bodies_kept:
                    old = self._with_body.popleft()
                    old["body"] = None
                    old.pop("body_head", None)

    def _kept_body(self, request: Request) -> dict[str, object]:
        """The parsed body when small, else its head as text; nothing for a form (it carries secrets)."""
        if (request.header("content-type") or "").startswith("application/x-www-form-urlencoded"):
            return {}
        if len(request.body) > self._body_bytes:
            head = request.body[: self._body_bytes].decode("utf-8", errors="replace")
            return {"body_head": head}
        try:
            body = request.json()
        except BodyError:
            return {}
        return {"body": body} if body is not None else {}

    def entries(self) -> list[dict[str, object]]:
        """Copies of the entries, so a body dropped later does not change a list already handed out."""
        with self._lock:
            return [dict(entry) for entry in self._entries]

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            self._with_body.clear()
            return count
