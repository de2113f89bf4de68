"""Logging setup: lines go to the stderr of the moment they are written."""

from __future__ import annotations

import io
import json

import pytest
import structlog

from worker.logging_setup import configure_logging


def test_lines_follow_stderr_after_it_was_replaced_and_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Configured while one stderr was in place, a warning logged after that stream was closed and replaced
    lands on the new stderr (a closed stream used to raise "I/O operation on closed file")."""
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    try:
        configure_logging("info", "json")
        first.close()
        second = io.StringIO()
        monkeypatch.setattr("sys.stderr", second)
        structlog.get_logger().warning("row rejected", deal_id="d1")
        (line,) = second.getvalue().splitlines()
        assert json.loads(line)["event"] == "row rejected"
    finally:
        structlog.reset_defaults()
