"""serve's digest job body: a failure is logged with its connection and never escapes (the next firing
must still happen); the retry job sends nobody new."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from connectors.model import Owner
from tests.log_sink import Sink
from tests.unit.serve_support import T0, FakeWorker, connection, make_worker
from worker.config.settings import SmtpSettings
from worker.digest.scheduled import run_scheduled_digest
from worker.state import DealState


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("sf"), connection("off", enabled=False))
    lease = w.store.acquire_lease("sf", "r1", T0, timedelta(minutes=5))
    w.store.checkpoint(
        lease, None, [], [DealState("006A", "005A", "needs_qualification", ("budget",), T0)], {}
    )
    yield w
    w.close()


def test_a_crashing_digest_is_logged_and_swallowed(worker: FakeWorker, sink: Sink) -> None:
    """A digest that cannot run (no mail server configured, no owners cached): the job logs the error
    for its connection and returns."""
    assert run_scheduled_digest(worker) == []
    [crash] = sink.events("scheduled digest crashed; the next firing will try again")
    assert crash["connection"] == "sf" and crash["level"] == "error"
    assert crash.get("exc_info") is True


def test_the_retry_job_sends_nobody_new(worker: FakeWorker, sink: Sink) -> None:
    """failed_only: with no failed delivery in the ledger this week, nothing is sent or claimed (the mail
    server's port is closed: a send would fail)."""
    worker.settings = dataclasses.replace(
        worker.settings, smtp=SmtpSettings(host="127.0.0.1", port=9, tls="none", from_address="bs@x.io")
    )
    worker.store.replace_owners("sf", [Owner("005A", "Ann", "ann@x.io", None, True)], T0)
    [report] = run_scheduled_digest(worker, failed_only=True)
    assert report.outcomes == () and worker.store.deliveries("sf", report.week) == []
    [done] = sink.events("scheduled digest finished")
    assert done["retry"] is True and done["failed"] == 0
