"""One sync run: lease -> preflight -> page by page (assess, diff, apply, checkpoint) -> run record.

Memory stays flat: one page at a time (a full sweep also keeps the set of deal ids it saw, to complete the
tasks of deals that closed). The cursor moves only after a page's writes, inside the checkpoint
transaction that also verifies the lease's fencing token, so a killed run resumes where it stopped and a
run that lost its lease can write nothing more to the state.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import structlog

from connectors.errors import ConnectorError, QuotaExhaustedError
from connectors.model import Page, WritePlan
from connectors.protocol import Connector
from connectors.registry import LedgerEntry
from rules import Deal, Framework, evaluate
from worker.audit_recovery import observed_changes
from worker.errors import BantSyncError, RunStopped
from worker.planner import PlanContext, plan_closing, plan_page
from worker.prefetch import read_ahead
from worker.run_model import RunRequest, RunSummary, RunTally, rejections_of
from worker.state import DealState, Lease, LeaseLostError, RunRecord, StateStore, StatusChange
from worker.write_buffer import Flushed, PendingPage, WriteBuffer, batch_sizes

log = structlog.get_logger()
ProgressHook = Callable[[int, int], None]


@dataclass
class RunEnvironment:
    """Everything a run needs besides the request; `stop` is set by SIGTERM/SIGINT to end after a page."""

    store: StateStore
    connector_for: Callable[[str], Connector]
    framework_for: Callable[[str], Framework]
    clock: Callable[[], datetime]
    today: Callable[[], date]
    lease_ttl: timedelta = timedelta(minutes=15)
    deadline: timedelta = timedelta(hours=2)
    task_due_business_days: int = 3
    stop: threading.Event | None = None
    progress: ProgressHook | None = None


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def _pages(connector: Connector, request: RunRequest, store: StateStore) -> Generator[Page, None, None]:
    if request.mode == "deal":
        deal = connector.fetch_one(request.deal_id or "")
        yield Page((deal,) if deal is not None else (), None)
    elif request.mode == "owner":
        yield from connector.fetch_by_owner(request.owner_id or "")
    elif request.mode == "full":
        yield from connector.fetch_changed(None, full=True)
    else:
        yield from connector.fetch_changed(store.get_cursor(request.connection))


class SyncRun:
    """Executes one RunRequest. Use `SyncRun(env).execute(request)`; it never raises for CRM failures
    (they end up in the summary's status and error) but raises LeaseHeldError when another run holds the
    connection."""

    def __init__(self, env: RunEnvironment) -> None:
        self.env = env

    def acquire(self, connection: str, run_id: str) -> Lease:
        """Take the connection's lease now (the ops API does this before answering, so a busy connection
        is a 409 and an accepted trigger always becomes a run). Raises LeaseHeldError naming the holder."""
        return self.env.store.acquire_lease(connection, run_id, self.env.clock(), self.env.lease_ttl)

    def execute(
        self, request: RunRequest, run_id: str | None = None, lease: Lease | None = None
    ) -> RunSummary:
        env = self.env
        run_id = lease.run_id if lease is not None else (run_id or new_run_id())
        lease = lease or self.acquire(request.connection, run_id)
        started = env.clock()
        summary = RunSummary(
            run_id, request.connection, request.mode, "running", request.dry_run, started.isoformat()
        )
        tally = RunTally()
        connector: Connector | None = None
        structlog.contextvars.bind_contextvars(run_id=run_id, connection=request.connection)
        try:
            env.store.start_run(
                RunRecord(
                    run_id=run_id,
                    connection=request.connection,
                    trigger=request.trigger,
                    mode=request.mode,
                    started_at=started,
                    dry_run=request.dry_run,
                    scope=request.scope,
                )
            )
            log.info("run started", mode=request.mode, dry_run=request.dry_run, trigger=request.trigger)
            connector = env.connector_for(request.connection)
            connection_framework = env.framework_for(request.connection)
            connector.preflight()
            summary.status = self._pages(request, connector, connection_framework, lease, tally, started)
        except QuotaExhaustedError as exc:
            summary.status, summary.error = "quota_stopped", str(exc)
        except RunStopped:
            log.info("stopping: a wait was cut short; the next run resumes from the last checkpoint")
            summary.status = "stopped"
        except LeaseLostError as exc:
            summary.status, summary.error = "failed", f"lease lost mid-run: {exc}"
        except ConnectorError as exc:
            summary.status, summary.error = "failed", str(exc)
        except BantSyncError as exc:
            summary.status, summary.error = "failed", str(exc)
            raise
        finally:
            summary.api_calls = connector.api_calls if connector is not None else 0
            summary.deals = dict(tally.deals)
            summary.tasks = dict(tally.tasks)
            summary.statuses = dict(tally.statuses)
            summary.planned = tally.planned
            if summary.status == "running":
                summary.status, summary.error = (
                    "failed",
                    summary.error or "interrupted by an unexpected error",
                )
            summary.rejections = [rejection.as_json() for rejection in tally.rejections]
            finished = env.clock()
            summary.finished_at = finished.isoformat()
            env.store.finish_run(
                run_id,
                finished,
                summary.status,
                _prefixed(summary.deals, summary.tasks),
                summary.api_calls,
                summary.error,
                tally.rejections[tally.rejections_saved :],
            )
            env.store.release_lease(lease)
            if connector is not None:
                connector.close()
            log.info(
                "run finished",
                status=summary.status,
                api_calls=summary.api_calls,
                error=summary.error,
                rejections=len(summary.rejections),
                **{f"deals_{k}": v for k, v in summary.deals.items()},
            )
            structlog.contextvars.unbind_contextvars("run_id", "connection")
        return summary

    def _pages(
        self,
        request: RunRequest,
        connector: Connector,
        framework: Framework,
        lease: Lease,
        tally: RunTally,
        started: datetime,
    ) -> str:
        env = self.env
        today, deadline = env.today(), env.clock() + env.deadline
        seen: set[str] | None = set() if request.mode == "full" else None
        book = _Bookkeeper(env.store, request, lease, tally)
        buffer = WriteBuffer(connector.apply, *batch_sizes(connector))
        pages = _pages(connector, request, env.store)
        if getattr(connector, "supports_prefetch", False):
            pages = read_ahead(pages)
        with closing(pages):
            status = self._run_pages(request, framework, pages, book, buffer, seen, today, deadline)
        if status != "succeeded":
            return status
        book.settle(buffer.flush(final=True))
        ledger = env.store.ledger(request.connection)
        if seen is not None:
            orphans = {d: e for d, e in ledger.open_tasks().items() if d not in seen}
            self._complete_orphans(request, connector, orphans, today, book)
            self._forget_closed(request, book.lease, started, None)
        elif request.mode == "deal" and tally.deals["read"] == 0:
            orphans = ledger.open_tasks_for([request.deal_id or ""])
            self._complete_orphans(request, connector, orphans, today, book)
            self._forget_closed(request, book.lease, started, request.deal_id or "")
        return "succeeded"

    def _forget_closed(
        self, request: RunRequest, lease: Lease, started: datetime, deal_id: str | None
    ) -> None:
        """After a sweep that saw every open deal (or found one deal no longer open), the states it did not
        refresh belong to deals that closed: they leave the status counts and owner gauges."""
        if request.dry_run:
            return
        dropped = self.env.store.forget_deal_states(lease, started, deal_id)
        if dropped:
            log.info("forgot deals no longer open", deals=dropped)

    def _run_pages(
        self,
        request: RunRequest,
        framework: Framework,
        pages: Iterator[Page],
        book: _Bookkeeper,
        buffer: WriteBuffer,
        seen: set[str] | None,
        today: date,
        deadline: datetime,
    ) -> str:
        """Every page in turn; "stopped" (after a final flush) on a stop signal or past the deadline."""
        env = self.env
        tally = book.tally
        for page in pages:
            ctx = PlanContext(request.connection, today, env.clock(), env.task_due_business_days)
            self._page(page, request, framework, ctx, buffer, book)
            if seen is not None:
                seen.update(deal.id for deal in page.deals)
            book.lease = env.store.renew_lease(book.lease, env.clock(), env.lease_ttl)
            if env.progress is not None:
                env.progress(tally.deals["read"], tally.deals["written"] + tally.deals.get("would_write", 0))
            if env.stop is not None and env.stop.is_set():
                book.settle(buffer.flush(final=True))
                return "stopped"
            if env.clock() > deadline:
                log.warning("run deadline reached; stopping after a checkpoint", deadline=str(env.deadline))
                book.settle(buffer.flush(final=True))
                return "stopped"
        return "succeeded"

    def _page(
        self,
        page: Page,
        request: RunRequest,
        framework: Framework,
        ctx: PlanContext,
        buffer: WriteBuffer,
        book: _Bookkeeper,
    ) -> None:
        deals = page.deals
        assessments = [evaluate(deal, framework, ctx.today) for deal in deals]
        tally = book.tally
        tally.deals["read"] += len(deals)
        tally.deals["assessed"] += len(deals)
        tally.statuses.update(a.status.value for a in assessments)
        book.observe(page.deals, ctx.now)
        open_tasks = self.env.store.ledger(request.connection).open_tasks_for(deal.id for deal in deals)
        plan = plan_page(deals, assessments, open_tasks, ctx)
        if request.dry_run:
            tally.record_dry_run(plan, len(deals), {d.id: d.flags.status for d in deals})
            return
        tally.deals["unchanged"] += len(deals) - len(plan.status_writes)
        by_id = {deal.id: deal for deal in deals}
        book.old_status.update((w.deal_id, by_id[w.deal_id].flags.status) for w in plan.status_writes)
        states = [
            DealState(deal.id, deal.owner_id, a.status.value, a.missing, ctx.now)
            for deal, a in zip(deals, assessments, strict=True)
        ]
        cursor = page.cursor if request.mode in ("incremental", "full") else None
        buffer.add(PendingPage(cursor, states), plan)
        if buffer.ready():
            book.settle(buffer.flush())

    def _complete_orphans(
        self,
        request: RunRequest,
        connector: Connector,
        orphans: Mapping[str, LedgerEntry],
        today: date,
        book: _Bookkeeper,
    ) -> None:
        """Complete the open tasks of deals that are no longer open (closed, deleted, out of the query)."""
        if not orphans:
            return
        ctx = PlanContext(request.connection, today, self.env.clock(), self.env.task_due_business_days)
        plan: WritePlan = plan_closing(orphans, ctx)
        if request.dry_run:
            book.tally.record_dry_run(plan, 0, {})
            return
        buffer = WriteBuffer(connector.apply, *batch_sizes(connector))
        buffer.add(PendingPage(None, []), plan)
        book.settle(buffer.flush(final=True))


class _Bookkeeper:
    """Turns each flush into counters, audit rows, rejections, deal states and one fenced checkpoint."""

    def __init__(self, store: StateStore, request: RunRequest, lease: Lease, tally: RunTally) -> None:
        self.store = store
        self.request = request
        self.lease = lease
        self.tally = tally
        self.old_status: dict[str, str | None] = {}
        """What the CRM showed before, for each deal with a status write not yet sent."""
        self.observed: list[StatusChange] = []
        """Statuses the CRM shows that the audit log does not end with, for the next checkpoint."""
        self.now: datetime | None = None
        """The time of the page in hand (rejections are dated with it)."""

    def observe(self, deals: Sequence[Deal], now: datetime) -> None:
        """Queue an "observed" audit row for each deal whose shown status is not the one its audit log ends
        with: a write whose run died before its checkpoint, or an edit made in the CRM. Not in dry runs."""
        self.now = now
        if self.request.dry_run or not deals:
            return
        known: dict[str, str | None] = {}
        known.update(self.store.last_audited_status(self.request.connection, [d.id for d in deals]))
        known.update((change.deal_id, change.new_status) for change in self.observed)
        self.observed.extend(observed_changes(deals, known, now))

    def settle(self, flushed: Flushed) -> None:
        """Count, audit and checkpoint one flush. A flush whose CRM call failed part-way has its landed rows
        recorded the same way (without moving the cursor), then its error is raised."""
        plan, outcomes = flushed.plan, flushed.outcomes
        self.tally.count_outcomes(plan, outcomes)
        rejected = rejections_of(plan, outcomes, self.now or datetime.now(UTC))
        for rejection in rejected:
            log.warning(
                "row rejected by the CRM",
                deal_id=rejection.deal_id,
                operation=rejection.operation,
                code=rejection.code,
                message=rejection.message,
            )
        self.tally.rejections.extend(rejected)
        written = flushed.written_status()
        changes = list(self.observed)
        for write in plan.status_writes:
            old = self.old_status.pop(write.deal_id, None)
            if write.deal_id in written and old != write.status.value:
                changes.append(
                    StatusChange(write.deal_id, old, write.status.value, write.missing, write.checked_at)
                )
        cursors = [p.cursor for p in flushed.done if p.cursor is not None]
        states = [state for page in flushed.done for state in page.states] + flushed.landed_states
        if not (plan.is_empty and not flushed.done and not changes):
            self.store.checkpoint(
                self.lease,
                cursors[-1] if cursors else None,
                changes,
                states,
                _prefixed(self.tally.deals, self.tally.tasks),
                rejected,
            )
            self.observed.clear()
            self.tally.rejections_saved = len(self.tally.rejections)
        if flushed.error is not None:
            raise flushed.error


def _prefixed(deals: Mapping[str, int], tasks: Mapping[str, int]) -> dict[str, int]:
    """Run counters as the state store keeps them: `deals_written`, `tasks_created`, …"""
    return {**{f"deals_{k}": v for k, v in deals.items()}, **{f"tasks_{k}": v for k, v in tasks.items()}}
