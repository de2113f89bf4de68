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
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import structlog

from connectors.errors import ConnectorError, QuotaExhaustedError, SchemaDriftError
from connectors.model import OutcomeKind, Page, RowOutcome, TaskWrite, WritePlan, WriteTarget
from connectors.protocol import Connector
from rules import Deal, Framework, evaluate
from worker.audit_recovery import observed_changes
from worker.errors import BantSyncError, ConfigError, RunStopped
from worker.planner import PlanContext, plan_closing, plan_statuses
from worker.prefetch import read_ahead
from worker.run_model import RunRequest, RunSummary, RunTally, rejections_of
from worker.state import DealState, Lease, LeaseLostError, RunRecord, StateStore, StatusChange
from worker.state.ledger import LedgerEntry
from worker.task_sync import TaskSync
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
    completed_tasks: str = "reopen"
    configured: frozenset[str] = frozenset()
    """The connection names of the current config (two of them on one CRM account are refused)."""
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
            self._check_identity(request.connection, connector)
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

    def _check_identity(self, connection: str, connector: Connector) -> None:
        """Record which CRM account this connection reaches; refuse when another enabled connection of this
        config reaches the same one (their runs would fight over the same deals and tasks). A connection of
        the same CRM whose account is not known yet is asked for it (one light call, once)."""
        env = self.env
        identity = connector.identity
        env.store.record_identity(connection, connector.name, identity, env.clock())
        known = set(env.store.connections_of(identity))
        for other in sorted(env.configured - {connection}):
            if env.store.identity_of(other) is not None:
                continue
            peer = env.connector_for(other)
            try:
                if peer.name != connector.name:
                    continue
                env.store.record_identity(other, peer.name, peer.identity, env.clock())
                if peer.identity == identity:
                    known.add(other)
            except ConnectorError as exc:
                log.info("could not read the CRM account of another connection", other=other, error=str(exc))
            finally:
                peer.close()
        others = sorted(c for c in known if c != connection and c in env.configured)
        if others:
            raise ConfigError(
                [
                    f"connections {connection!r} and {others[0]!r} both point at the same CRM account "
                    f"({identity}): keep one of them (remove the other or set `enabled = false` on it)"
                ]
            )

    def _context(self, today: date, connector: Connector) -> PlanContext:
        env = self.env
        return PlanContext(
            today,
            env.clock(),
            env.task_due_business_days,
            env.completed_tasks,
            connector.field_names,
        )

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
        identity = connector.identity
        if not request.dry_run and env.store.rehome_ledger(request.connection, identity):
            log.info("task ledger filed under the CRM account", identity=identity)
        ledger = env.store.ledger(identity)
        tasks = TaskSync(connector, ledger, dry_run=request.dry_run)
        writer = OrderedApply(connector, tasks)
        buffer = WriteBuffer(writer.apply, *batch_sizes(connector))
        pages = _pages(connector, request, env.store)
        if getattr(connector, "supports_prefetch", False):
            pages = read_ahead(pages)
        with closing(pages):
            status = self._run_pages(request, framework, pages, book, buffer, seen, today, deadline, tasks)
        if status != "succeeded":
            return status
        book.settle(buffer.flush(final=True))
        if seen is not None:
            leftover = {d: e for d, e in ledger.unsettled().items() if d not in seen}
            self._complete_orphans(request, tasks, writer, leftover, today, book)
            self._forget_closed(request, book.lease, started, None)
        elif request.mode == "deal" and tally.deals["read"] == 0:
            leftover = ledger.entries_for([request.deal_id or ""])
            self._complete_orphans(request, tasks, writer, leftover, today, book)
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
        tasks: TaskSync,
    ) -> str:
        """Every page in turn; "stopped" (after a final flush) on a stop signal or past the deadline."""
        env = self.env
        tally = book.tally
        for page in _until_drift(pages, lambda: book.settle(buffer.flush(final=True))):
            ctx = self._context(today, tasks.connector)
            self._page(page, request, framework, ctx, buffer, book, tasks)
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

    def _clocked(self, connection: str, deals: Sequence[Deal]) -> list[Deal]:
        """The deals with bant-sync's own qualify-out clock in `flagged_since`: the state store's date when
        it knows the deal, else (a store that never saw it) the date the CRM shows. A person who blanks or
        edits the CRM field changes nothing; the next write puts the store's date back."""
        ids = [deal.id for deal in deals]
        known = self.env.store.deal_states_for(connection, ids)
        clocks = self.env.store.flag_clocks(connection, ids)
        return [
            replace(deal, flagged_since=clocks.get(deal.id) if deal.id in known else deal.flagged_since)
            for deal in deals
        ]

    def _page(
        self,
        page: Page,
        request: RunRequest,
        framework: Framework,
        ctx: PlanContext,
        buffer: WriteBuffer,
        book: _Bookkeeper,
        tasks: TaskSync,
    ) -> None:
        shown = page.deals
        deals = self._clocked(request.connection, shown)
        assessments = [evaluate(deal, framework, ctx.today) for deal in deals]
        tally = book.tally
        tally.deals["read"] += len(deals)
        tally.deals["assessed"] += len(deals)
        tally.statuses.update(a.status.value for a in assessments)
        book.observe(page.deals, ctx.now)
        facts = tasks.facts(deals, assessments)
        tally.tasks["checked"] = tasks.checked
        plan = WritePlan(
            plan_statuses(deals, shown, assessments, ctx), tuple(tasks.plan(deals, assessments, facts, ctx))
        )
        if request.dry_run:
            tally.record_dry_run(plan, len(deals), {d.id: d.flags.status for d in shown})
            return
        tally.deals["unchanged"] += len(deals) - len(plan.status_writes)
        by_id = {deal.id: deal for deal in shown}
        book.old_status.update((w.deal_id, by_id[w.deal_id].flags.status) for w in plan.status_writes)
        states = [
            DealState(
                deal.id, deal.owner_id, a.status.value, a.missing, ctx.now, flagged_since=a.flagged_since
            )
            for deal, a in zip(deals, assessments, strict=True)
        ]
        cursor = page.cursor if request.mode in ("incremental", "full") else None
        buffer.add(PendingPage(cursor, states), plan)
        if buffer.ready():
            book.settle(buffer.flush())

    def _complete_orphans(
        self,
        request: RunRequest,
        tasks: TaskSync,
        writer: OrderedApply,
        leftover: Mapping[str, list[LedgerEntry]],
        today: date,
        book: _Bookkeeper,
    ) -> None:
        """Complete, in the CRM, the open tasks of deals that are no longer open (closed, deleted, out of
        the query): looked up by every key the ledger knows for them and by their current key."""
        if not leftover:
            return
        deal_of = {tasks.key(deal_id): deal_id for deal_id in leftover}
        deal_of.update((e.sync_key, d) for d, entries in leftover.items() for e in entries)
        found = tasks.connector.find_tasks(sorted(deal_of))
        tasks.correct_ledger(leftover, found)
        plan: WritePlan = plan_closing(found, deal_of, self._context(today, tasks.connector))
        if request.dry_run:
            book.tally.record_dry_run(plan, 0, {})
            return
        if plan.is_empty:
            return
        buffer = WriteBuffer(writer.apply, *batch_sizes(tasks.connector))
        buffer.add(PendingPage(None, []), plan)
        book.settle(buffer.flush(final=True))


def _until_drift(pages: Iterator[Page], settle: Callable[[], None]) -> Iterator[Page]:
    """The pages; when reading the next one finds schema drift, the pages read before it are written and
    checkpointed first (they were read with every field present), then the drift ends the run."""
    try:
        yield from pages
    except SchemaDriftError:
        settle()
        raise


class OrderedApply:
    """The write step of a run: status writes, then task writes through TaskSync. A deal whose status
    write the CRM rejected in this run gets no task write (its task and its status field must never
    contradict each other); its task rows are reported unchanged, code `HELD`."""

    def __init__(self, connector: Connector, tasks: TaskSync) -> None:
        self.connector = connector
        self.tasks = tasks
        self.rejected_status: set[str] = set()

    def apply(self, plan: WritePlan) -> list[RowOutcome]:
        outcomes: list[RowOutcome] = []
        if plan.status_writes:
            outcomes = self.connector.apply(WritePlan(status_writes=plan.status_writes))
            self.rejected_status.update(
                o.deal_id for o in outcomes if o.kind in (OutcomeKind.REJECTED, OutcomeKind.INVALID)
            )
        send = [w for w in plan.task_writes if w.deal_id not in self.rejected_status]
        try:
            sent = iter(self.tasks.apply(send))
        except ConnectorError as exc:
            exc.landed[:0] = outcomes
            raise
        outcomes.extend(
            next(sent) if write.deal_id not in self.rejected_status else _held(write)
            for write in plan.task_writes
        )
        return outcomes


def _held(write: TaskWrite) -> RowOutcome:
    return RowOutcome(
        write.deal_id,
        WriteTarget.TASK,
        OutcomeKind.UNCHANGED,
        "HELD",
        "not written: the CRM rejected this deal's status write in this run",
        write.task_id,
        write.sync_key,
    )


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
