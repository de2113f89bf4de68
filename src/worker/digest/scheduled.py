"""The digest as `serve` sends it: the weekly firing (every enabled connection, this week) and the retry
job that sends again, later the same week, only the deliveries that failed. A job never raises: what
happened is logged per recipient, and the next firing still happens."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from worker.digest.run import FAILED_NOW, IN_DOUBT, DigestReport, DigestRequest, Senders, run_digest
from worker.digest.week import IsoWeek
from worker.service import Worker

log = structlog.get_logger()


def _waiter(worker: Worker) -> Callable[[float], None]:
    """A retry's wait that a stop (serve shutting down) cuts short."""

    def wait(seconds: float) -> None:
        worker.stop.wait(seconds)

    return wait


def run_scheduled_digest(worker: Worker, *, failed_only: bool = False) -> list[DigestReport]:
    """Send this week's digest of every enabled connection (with `failed_only`, retry the week's failed
    deliveries only); returns the reports of the connections that ran."""
    settings = worker.settings
    week = IsoWeek.of(worker.today())
    senders = Senders(settings, worker.clock)
    reports = []
    for name, conn in settings.connections.items():
        if not conn.enabled or worker.stop.is_set():
            continue
        request = DigestRequest(name, week, settings.digest.channels, failed_only=failed_only)
        try:
            report = run_digest(worker, request, senders, sleep=_waiter(worker))
        except Exception:
            log.exception("scheduled digest crashed; the next firing will try again", connection=name)
            continue
        reports.append(report)
        failed = [o for o in report.outcomes if o.result in (FAILED_NOW, IN_DOUBT)]
        (log.warning if failed else log.info)(
            "scheduled digest finished",
            connection=name,
            week=str(week),
            delivered=sum(1 for o in report.outcomes if o.result == "sent"),
            failed=len(failed),
            retry=failed_only,
        )
    return reports
