"""A thread-safe structlog sink for tests that log from worker threads (`capture_logs` is not thread-safe)."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import structlog


class Sink:
    """A structlog processor keeping every event dict; it drops the event so nothing is printed."""

    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            self.lines.append(dict(event))
        raise structlog.DropEvent

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["event"] == name]

    def text(self) -> str:
        return "\n".join(json.dumps(line, default=str) for line in self.lines)


@pytest.fixture
def sink() -> Iterator[Sink]:
    """Every log line of the test, at every level, with the bound context variables."""
    collected = Sink()
    structlog.reset_defaults()  # an earlier test may have configured a level filter (`--log-level error`)
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, structlog.processors.add_log_level, collected],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=False,
    )
    try:
        yield collected
    finally:
        structlog.reset_defaults()
        structlog.contextvars.clear_contextvars()
