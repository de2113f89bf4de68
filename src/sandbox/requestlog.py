"""The request log: one entry per CRM call, for assertions and call counting."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime

from sandbox.http import BodyError, Request

_MAX_ENTRIES = 500_000


class RequestLog:
    """Thread-safe, bounded, in arrival order. Control-API calls never reach it."""

    def __init__(self, max_entries: int = _MAX_ENTRIES) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, object]] = deque(maxlen=max_entries)

    def record(
        self, crm: str, request: Request, status: int | None, when: datetime, faults: list[str] | None = None
    ) -> None:
        try:
            form = (request.header("content-type") or "").startswith("application/x-www-form-urlencoded")
            body = None if form else request.json()
        except BodyError:
            body = None
        entry: dict[str, object] = {
            "crm": crm,
            "method": request.method,
            "path": request.path,
            "query": request.log_query(),
            "body": body,
            "status": status,
            "ts": when.isoformat().replace("+00:00", "Z"),
        }
        if faults:
            entry["faults"] = list(faults)
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, object]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> int:
        with self._lock:
            count = len(self._entries)
            self._entries.clear()
            return count
