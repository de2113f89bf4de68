"""A run's bookkeeping: each flush of writes becomes counters, rejections, audit rows, deal states and one
fenced checkpoint in the state store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from connectors.model import UnreadableDeal
from rules import Assessment, Deal
from worker.state import Lease, Rejection, StateStore, StatusChange
from worker.sync.audit_recovery import observed_changes
from worker.sync.follow_up import snooze_line
from worker.sync.run_model import READ_OPERATION, RunRequest, RunTally, flat_counts, rejections_of
from worker.sync.write_buffer import Flushed

log = structlog.get_logger()


class Bookkeeper:
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
        self.unsaved: list[Rejection] = []
        """Quarantined deals' rejections, for the next checkpoint."""
        self.snooze_notes: dict[str, tuple[str, str | None]] = {}
        """(note, who) of each deal whose snooze changed, for the audit row of its status write."""

    def note_snoozes(self, shown: Sequence[Deal], assessments: Sequence[Assessment]) -> None:
        """Remember, for the audit log, each deal whose snooze line differs from the one the CRM shows: a
        snooze taken, ignored or ended (with the CRM's last modifier of the deal: who set it)."""
        for deal, assessment in zip(shown, assessments, strict=True):
            snooze = assessment.snooze
            if snooze is not None and snooze.note != snooze_line(deal.flags.reasons):
                self.snooze_notes[deal.id] = (snooze.note, snooze.by)

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

    def quarantine(self, unreadable: Sequence[UnreadableDeal]) -> None:
        """Report each deal a value of which could not be read: one rejection (operation "read") naming the
        field, kept with the next checkpoint; the deal is not judged and nothing is written for it."""
        at = self.now or datetime.now(UTC)
        for bad in unreadable:
            log.warning(
                "deal quarantined: a value cannot be read",
                deal_id=bad.deal_id,
                field=bad.field,
                crm_field=bad.crm_field,
                reason=bad.reason,
            )
            rejection = Rejection(bad.deal_id, READ_OPERATION, "UNREADABLE_VALUE", bad.message, at)
            self.unsaved.append(rejection)
            self.tally.rejections.append(rejection)
            self.tally.deals["unreadable"] += 1

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
        rejected = [*self.unsaved, *rejected]
        written = flushed.written_status()
        changes = list(self.observed)
        for write in plan.status_writes:
            old = self.old_status.pop(write.deal_id, None)
            note, actor = self.snooze_notes.pop(write.deal_id, (None, None))
            if write.deal_id in written and (old != write.status.value or note is not None):
                changes.append(
                    StatusChange(
                        write.deal_id,
                        old,
                        write.status.value,
                        write.missing,
                        write.checked_at,
                        actor=actor,
                        note=note,
                    )
                )
        cursors = [p.cursor for p in flushed.done if p.cursor is not None]
        states = [state for page in flushed.done for state in page.states] + flushed.landed_states
        if not (plan.is_empty and not flushed.done and not changes):
            self.store.checkpoint(
                self.lease,
                cursors[-1] if cursors else None,
                changes,
                states,
                flat_counts(self.tally.deals, self.tally.tasks, self.tally.statuses),
                rejected,
            )
            self.observed.clear()
            self.unsaved.clear()
            self.tally.rejections_saved = len(self.tally.rejections)
        if flushed.error is not None:
            raise flushed.error
