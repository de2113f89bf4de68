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
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Protocol, runtime_checkable

import structlog

from connectors.errors import ConnectorError, QuotaExhaustedError, SchemaDriftError
from connectors.fieldtable import UnreadableValue
from connectors.model import Owner, Page, StatusWrite, WritePlan
from connectors.protocol import Connector, CountsDeals
from rules import Assessment, Deal, Framework, evaluate
from worker.errors import BantSyncError, RunStopped
from worker.state import DealState, Lease, LeaseLostError, RunRecord, StateStore
from worker.state.heartbeat import Heartbeats
from worker.state.ledger import LedgerEntry
from worker.state.model import RunMode, RunStatus
from worker.sync.bookkeeper import Bookkeeper
from worker.sync.crm_identity import check_identity
from worker.sync.judged import framework_key, judgement_key, task_as_left
from worker.sync.ordered_apply import OrderedApply
from worker.sync.owners import refresh_if_stale
from worker.sync.planner import PlanContext, plan_closing, plan_statuses
from worker.sync.prefetch import read_ahead
from worker.sync.run_model import RunRequest, RunSummary, RunTally
from worker.sync.task_sync import TaskSync
from worker.sync.write_buffer import PendingPage, WriteBuffer, batch_sizes

log = structlog.get_logger()
ProgressHook = Callable[[int, int], None]
"""Called after every page with the deals read and written (or, in a dry run, that would be) so far."""


@runtime_checkable
class ProgressDisplay(Protocol):
    """A ProgressHook that is also told, once after preflight, how many deals the run expects to read.

    Only with `wants_total` does the run ask the connector (`CountsDeals.expected_total`), which may cost
    an API call (Salesforce's `SELECT COUNT()`); otherwise, and when the CRM cannot say, `start(None)`.
    A plain callable hook (scheduled and API runs) is never started and costs nothing."""

    wants_total: bool

    def __call__(self, read: int, written: int) -> None: ...

    def start(self, total: int | None) -> None: ...


@dataclass
class RunEnvironment:
    """Everything a run needs besides the request; `stop` is set by SIGTERM/SIGINT to end after a page."""

    store: StateStore
    connector_for: Callable[[str], Connector]
    framework_for: Callable[[str], Framework]
    clock: Callable[[], datetime]
    today: Callable[[], date]
    lease_ttl: timedelta = timedelta(seconds=60)
    deadline: timedelta = timedelta(hours=2)
    task_due_business_days: int = 3
    completed_tasks: str = "reopen"
    configured: frozenset[str] = frozenset()
    """The connection names of the current config (two of them on one CRM account are refused)."""
    stop: threading.Event | None = None
    progress: ProgressHook | None = None
    heartbeats: Heartbeats = field(default_factory=Heartbeats)
    """Where each run's lease heartbeat is started (and found by the waits of its connector)."""


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


EVENT_RUN_CAP = 10_000
"""The most dirty deals one EVENTS run re-reads (oldest marks first); the rest wait for the next one."""


def _pages(
    connector: Connector,
    request: RunRequest,
    store: StateStore,
    today: date,
    dirty: Sequence[str] = (),
    read: set[str] | None = None,
) -> Generator[Page, None, None]:
    """The run's pages. For an EVENTS run, `dirty` are the deals to re-read; the ids of every deal a page
    brought (read or unreadable) are added to `read`, so what is missing afterwards is no longer open."""
    if request.mode == RunMode.EVENTS:
        for page in connector.fetch_many(dirty):
            if read is not None:
                read.update(deal.id for deal in page.deals)
                read.update(bad.deal_id for bad in page.unreadable)
            yield page
    elif request.mode == RunMode.DEAL:
        try:
            deal = connector.fetch_one(request.deal_id or "")
        except UnreadableValue as exc:
            yield Page((), None, (exc.for_deal(request.deal_id or ""),))
            return
        yield Page((deal,) if deal is not None else (), None)
    elif request.mode == RunMode.OWNER:
        yield from connector.fetch_by_owner(request.owner_id or "")
    elif request.mode == RunMode.FULL:
        yield from connector.fetch_changed(None, full=True)
    else:
        changed: set[str] = set()
        for page in connector.fetch_changed(store.get_cursor(request.connection)):
            changed.update(deal.id for deal in page.deals)
            yield page
        expired = [d for d in store.expired_snoozes(request.connection, today) if d not in changed]
        yield from _expired_snoozes(connector, expired)


def _expired_snoozes(connector: Connector, deal_ids: Sequence[str]) -> Iterator[Page]:
    """The deals whose snooze ended since they were last judged, read again one by one: nobody edited
    them, so the change stream does not bring them back, yet they must be flagged again (or qualify)."""
    if deal_ids:
        log.info("reading deals whose snooze ended", deals=len(deal_ids))
    for deal_id in deal_ids:
        try:
            deal = connector.fetch_one(deal_id)
        except UnreadableValue as exc:
            yield Page((), None, (exc.for_deal(deal_id),))
            continue
        if deal is not None:
            yield Page((deal,), None)


def _people(owners: Sequence[Owner]) -> dict[str, str]:
    """CRM user id -> name, for saying who snoozed: an owner's id and, where it differs, its user's id."""
    people = {owner.id: owner.name for owner in owners}
    people.update((owner.user_id, owner.name) for owner in owners if owner.user_id)
    return people


class SyncRun:
    """Executes one RunRequest. Use `SyncRun(env).execute(request)`; it never raises for CRM failures
    (they end up in the summary's status and error) but raises LeaseHeldError when another run holds the
    connection."""

    def __init__(self, env: RunEnvironment) -> None:
        self.env = env
        self._people: Mapping[str, str] = {}
        self._framework_digest = ""
        """The run's framework digest (worker.sync.judged.framework_key), computed once per run."""

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
            run_id, request.connection, request.mode, RunStatus.RUNNING, request.dry_run, started.isoformat()
        )
        summary.trigger, summary.scope = request.trigger, request.scope
        tally = RunTally()
        connector: Connector | None = None
        structlog.contextvars.bind_contextvars(run_id=run_id, connection=request.connection)
        heartbeat = env.heartbeats.start(env.store, lease, env.lease_ttl, env.clock)
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
            if request.mode == RunMode.EVENTS and not env.store.dirty_deals(request.connection, 1):
                log.info("no deal is waiting any more (the run before this one read them): no CRM call")
                summary.status = RunStatus.SUCCEEDED
                return summary
            connector = env.connector_for(request.connection)
            connection_framework = env.framework_for(request.connection)
            connector.preflight()
            check_identity(
                env.store, request.connection, connector, env.configured, env.connector_for, env.clock()
            )
            if request.mode == RunMode.FULL:
                refresh_if_stale(env.store, request.connection, connector, env.clock)
            self._start_progress(request, connector)
            summary.status = self._pages(request, connector, connection_framework, lease, tally, started)
        except QuotaExhaustedError as exc:
            summary.status, summary.error = RunStatus.QUOTA_STOPPED, str(exc)
        except RunStopped:
            log.info("stopping: a wait was cut short; the next run resumes from the last checkpoint")
            summary.status = RunStatus.STOPPED
        except LeaseLostError as exc:
            summary.status, summary.error = RunStatus.FAILED, f"lease lost mid-run: {exc}"
        except ConnectorError as exc:
            summary.status, summary.error = RunStatus.FAILED, str(exc)
        except BantSyncError as exc:
            summary.status, summary.error = RunStatus.FAILED, str(exc)
            raise
        finally:
            env.heartbeats.stop(heartbeat)
            summary.api_calls = connector.api_calls if connector is not None else 0
            summary.deals = dict(tally.deals)
            summary.tasks = dict(tally.tasks)
            summary.statuses = dict(tally.statuses)
            summary.planned = tally.planned
            if summary.status == RunStatus.RUNNING:
                summary.status, summary.error = (
                    RunStatus.FAILED,
                    summary.error or "interrupted by an unexpected error",
                )
            summary.rejections = [rejection.as_json() for rejection in tally.rejections]
            finished = env.clock()
            summary.finished_at = finished.isoformat()
            env.store.finish_run(
                run_id,
                finished,
                summary.status,
                summary.stored_counts(),
                summary.api_calls,
                summary.error,
                tally.rejections[tally.rejections_saved :],
            )
            env.store.release_lease(lease)
            if connector is not None:
                connector.close()
            at_level = {RunStatus.FAILED: log.error, RunStatus.QUOTA_STOPPED: log.warning}.get(
                summary.status, log.info
            )
            at_level(
                "run finished",
                status=summary.status,
                api_calls=summary.api_calls,
                error=summary.error,
                rejections=len(summary.rejections),
                **{f"deals_{k}": v for k, v in summary.deals.items()},
            )
            structlog.contextvars.unbind_contextvars("run_id", "connection")
        return summary

    def _start_progress(self, request: RunRequest, connector: Connector) -> None:
        """Tell a ProgressDisplay the run's expected total: asked of the connector (with the cursor this run
        reads from) only when the display wants one, for an incremental run or a full sweep, and only
        when the connector can say (else None). A count that fails leaves the bar without a total."""
        progress = self.env.progress
        if not isinstance(progress, ProgressDisplay):
            return
        total: int | None = None
        counted = request.mode in (RunMode.INCREMENTAL, RunMode.FULL)
        if progress.wants_total and counted and isinstance(connector, CountsDeals):
            full = request.mode == RunMode.FULL
            cursor = None if full else self.env.store.get_cursor(request.connection)
            try:
                total = connector.expected_total(cursor, full=full)
            except (QuotaExhaustedError, SchemaDriftError):
                raise
            except ConnectorError as exc:
                log.warning("could not count the deals to read; progress shows no total", error=str(exc))
        progress.start(total)

    def _context(self, today: date, connector: Connector) -> PlanContext:
        env = self.env
        return PlanContext(
            today,
            env.clock(),
            env.task_due_business_days,
            env.completed_tasks,
            connector.field_names,
            self._people,
        )

    def _pages(
        self,
        request: RunRequest,
        connector: Connector,
        framework: Framework,
        lease: Lease,
        tally: RunTally,
        started: datetime,
    ) -> RunStatus:
        env = self.env
        today, deadline = env.today(), env.clock() + env.deadline
        seen: set[str] | None = set() if request.mode == RunMode.FULL else None
        book = Bookkeeper(env.store, request, lease, tally)
        identity = connector.identity
        if not request.dry_run and env.store.rehome_ledger(request.connection, identity):
            log.info("task ledger filed under the CRM account", identity=identity)
        ledger = env.store.ledger(identity)
        tasks = TaskSync(connector, ledger, dry_run=request.dry_run)
        writer = OrderedApply(connector, tasks)
        buffer = WriteBuffer(writer.apply, *batch_sizes(connector))
        self._people = _people(env.store.owners(request.connection))
        self._framework_digest = framework_key(framework)
        dirty: list[str] = []
        read: set[str] = set()
        listed = started
        if request.mode == RunMode.EVENTS:
            listed = env.clock()
            dirty = env.store.dirty_deals(request.connection, EVENT_RUN_CAP)
            log.info("re-reading the deals events marked", deals=len(dirty))
        pages = _pages(connector, request, env.store, today, dirty, read)
        if connector.capabilities.prefetch:
            pages = read_ahead(pages)
        with closing(pages):
            status = self._run_pages(request, framework, pages, book, buffer, seen, today, deadline, tasks)
        if status != RunStatus.SUCCEEDED:
            return status
        book.settle(buffer.flush(final=True))
        if seen is not None:
            leftover = {d: e for d, e in ledger.unsettled().items() if d not in seen}
            self._complete_orphans(request, tasks, writer, leftover, today, book)
            self._forget_closed(request, book.lease, started, None)
        elif request.mode == RunMode.DEAL and tally.deals["read"] == 0:
            leftover = ledger.entries_for([request.deal_id or ""])
            self._complete_orphans(request, tasks, writer, leftover, today, book)
            self._forget_closed(request, book.lease, started, request.deal_id or "")
        elif request.mode == RunMode.EVENTS:
            gone = [deal_id for deal_id in dirty if deal_id not in read]
            if gone:
                self._complete_orphans(request, tasks, writer, ledger.entries_for(gone), today, book)
                self._forget_closed(request, book.lease, started, gone)
            if not request.dry_run:
                cleared = env.store.clear_dirty(
                    request.connection, dirty, marked_before=listed, reassessed_at=env.clock()
                )
                log.info("cleared the marks of re-assessed deals", cleared=cleared, closed=len(gone))
        return RunStatus.SUCCEEDED

    def _forget_closed(
        self, request: RunRequest, lease: Lease, started: datetime, deal_id: str | Sequence[str] | None
    ) -> None:
        """After a sweep that saw every open deal (or found deals no longer open: one deal, or the dirty
        deals of an EVENTS run), the states it did not refresh belong to deals that closed: they leave the
        status counts and owner gauges."""
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
        book: Bookkeeper,
        buffer: WriteBuffer,
        seen: set[str] | None,
        today: date,
        deadline: datetime,
        tasks: TaskSync,
    ) -> RunStatus:
        """Every page in turn; "stopped" (after a final flush) on a stop signal or past the deadline."""
        env = self.env
        tally = book.tally
        for page in _until_drift(pages, lambda: book.settle(buffer.flush(final=True))):
            ctx = self._context(today, tasks.connector)
            self._page(page, request, framework, ctx, buffer, book, tasks)
            if seen is not None:
                seen.update(deal.id for deal in page.deals)
                seen.update(bad.deal_id for bad in page.unreadable)
            book.lease = env.store.renew_lease(book.lease, env.clock(), env.lease_ttl)
            if env.progress is not None:
                env.progress(tally.deals["read"], tally.deals["written"] + tally.deals.get("would_write", 0))
            if env.stop is not None and env.stop.is_set():
                book.settle(buffer.flush(final=True))
                return RunStatus.STOPPED
            if env.clock() > deadline:
                log.warning("run deadline reached; stopping after a checkpoint", deadline=str(env.deadline))
                book.settle(buffer.flush(final=True))
                return RunStatus.STOPPED
        return RunStatus.SUCCEEDED

    def _clocked(self, connection: str, deals: Sequence[Deal], today: date) -> list[Deal]:
        """The deals with bant-sync's own qualify-out clock in `flagged_since`: the state store's date when
        it knows the deal, else (a store that never saw it) the date the CRM shows. A person who blanks or
        edits the CRM field changes nothing; the next write puts the store's date back. A deal with a
        snooze date gets `snoozed_on`, the day the store first saw that date (today when it is new)."""
        ids = [deal.id for deal in deals]
        known, clocks = self.env.store.known_and_clocks(connection, ids)
        snoozed = [deal.id for deal in deals if deal.snooze_until is not None]
        seen = self.env.store.snooze_days(connection, snoozed) if snoozed else {}
        clocked = []
        for deal in deals:
            flagged = clocks.get(deal.id) if deal.id in known else deal.flagged_since
            if deal.snooze_until is None:
                clocked.append(replace(deal, flagged_since=flagged))
                continue
            until, first = seen.get(deal.id, (None, today))
            snoozed_on = first if until == deal.snooze_until else today
            clocked.append(replace(deal, flagged_since=flagged, snoozed_on=snoozed_on))
        return clocked

    def _page(
        self,
        page: Page,
        request: RunRequest,
        framework: Framework,
        ctx: PlanContext,
        buffer: WriteBuffer,
        book: Bookkeeper,
        tasks: TaskSync,
    ) -> None:
        shown = page.deals
        deals = self._clocked(request.connection, shown, ctx.today)
        assessments = [evaluate(deal, framework, ctx.today) for deal in deals]
        tally = book.tally
        tally.deals["read"] += len(deals)
        tally.deals["assessed"] += len(deals)
        tally.statuses.update(a.status.value for a in assessments)
        book.observe(page.deals, ctx.now)
        book.quarantine(page.unreadable)
        keys = [
            judgement_key(replace(deal, flagged_since=a.flagged_since), ctx.today, self._framework_digest)
            for deal, a in zip(deals, assessments, strict=True)
        ]
        status_writes = plan_statuses(deals, shown, assessments, ctx)
        judged = self._already_judged(request, deals, assessments, keys, status_writes, tasks)
        tally.deals["already_judged"] += len(judged)
        rest = [(d, a) for d, a in zip(deals, assessments, strict=True) if d.id not in judged]
        rest_deals, rest_assessments = [d for d, _ in rest], [a for _, a in rest]
        facts = tasks.facts(rest_deals, rest_assessments)
        tally.tasks["checked"] = tasks.checked
        plan = WritePlan(status_writes, tuple(tasks.plan(rest_deals, rest_assessments, facts, ctx)))
        if request.dry_run:
            tally.record_dry_run(plan, len(deals), {d.id: d.flags.status for d in shown})
            return
        tally.deals["unchanged"] += len(deals) - len(plan.status_writes)
        by_id = {deal.id: deal for deal in shown}
        book.old_status.update((w.deal_id, by_id[w.deal_id].flags.status) for w in plan.status_writes)
        book.note_snoozes(shown, assessments)
        states = [
            DealState(
                deal.id,
                deal.owner_id,
                a.status.value,
                a.missing,
                ctx.now,
                flagged_since=a.flagged_since,
                deal_name=deal.name,
                snooze_until=deal.snooze_until,
                snoozed_on=deal.snoozed_on,
                judged=key,
            )
            for deal, a, key in zip(deals, assessments, keys, strict=True)
        ]
        cursor = page.cursor if request.mode in (RunMode.INCREMENTAL, RunMode.FULL) else None
        buffer.add(PendingPage(cursor, states), plan)
        if buffer.ready():
            book.settle(buffer.flush())

    def _already_judged(
        self,
        request: RunRequest,
        deals: Sequence[Deal],
        assessments: Sequence[Assessment],
        keys: Sequence[str],
        status_writes: Sequence[StatusWrite],
        tasks: TaskSync,
    ) -> set[str]:
        """The deals of an incremental page that are back only because bant-sync wrote them (worker.sync
        .judged): judged before with the same key, their CRM fields already right, their task as that
        verdict left it. Other modes judge every deal they read: a full sweep is the reconciliation pass,
        and events and single-deal runs are asked for."""
        if request.mode != RunMode.INCREMENTAL or not deals:
            return set()
        writing = {write.deal_id for write in status_writes}
        stored = self.env.store.deal_states_for(request.connection, [deal.id for deal in deals])
        candidates = [
            (deal, assessment)
            for deal, assessment, key in zip(deals, assessments, keys, strict=True)
            if deal.id not in writing and deal.id in stored and stored[deal.id].judged == key
        ]
        if not candidates:
            return set()
        entries = tasks.ledger.entries_for(deal.id for deal, _ in candidates)
        return {
            deal.id
            for deal, assessment in candidates
            if task_as_left(assessment, entries.get(deal.id, []), tasks.key(deal.id))
        }

    def _complete_orphans(
        self,
        request: RunRequest,
        tasks: TaskSync,
        writer: OrderedApply,
        leftover: Mapping[str, list[LedgerEntry]],
        today: date,
        book: Bookkeeper,
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
