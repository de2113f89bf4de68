"""Gathering an outcome report: the CRM's closed deals with their history, bant-sync's own verdicts and audit
log, and the owners' names, turned into an OutcomeReport. The only part of `report` that does I/O.

The closed deals are read batch by batch and judged as they arrive, so a report over 100,000 closed deals
holds one batch of CRM records at a time, not all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

import structlog

from connectors.model import HistoryWindow
from connectors.protocol import Connector
from rules import Framework
from worker.config.frameworks import load_framework
from worker.report import compliance, outcomes, snoozes
from worker.report.model import Compliance, Judged, OutcomeReport, Source
from worker.service import Worker
from worker.state import StateStore
from worker.sync.owners import fresh_owners

log = structlog.get_logger()

Progress = Callable[[int], None]
"""Told the number of closed deals read so far, after each batch."""


@dataclass(frozen=True, slots=True)
class ReportRequest:
    connection: str
    since: date
    until: date
    framework_name: str
    entry_stage: str | None = None
    teams: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """Configured teams (`[[digest.teams]]`): a name and its members' e-mails."""


def report_on(worker: Worker, request: ReportRequest, progress: Progress | None = None) -> OutcomeReport:
    """`build_report` on one of the worker's connections: its connector (preflight first, closed after),
    the named framework, the worker's state store and clock."""
    framework = load_framework(request.framework_name, worker.settings.config_dir)
    connector = worker.connector(request.connection)
    try:
        connector.preflight()
        return build_report(request, connector, framework, worker.store, worker.clock, progress)
    finally:
        connector.close()


def build_report(
    request: ReportRequest,
    connector: Connector,
    framework: Framework,
    store: StateStore,
    clock: Callable[[], datetime],
    progress: Progress | None = None,
) -> OutcomeReport:
    """Read, judge and summarise; the connector must have passed preflight."""
    start, end = (
        datetime.combine(request.since, time.min, UTC),
        datetime.combine(request.until, time.max, UTC),
    )
    by_deal = compliance.audit_by_deal(store.audit_until(request.connection, end))
    judged: list[Judged] = []
    closed_total = not_entered = 0
    window = HistoryWindow(request.since, request.until, request.entry_stage)
    for batch in connector.closed_deals(window):
        moments = {c.deal.id: c.entered_at for c in batch if c.fallback_fields and c.entered_at}
        audited = compliance.status_at(by_deal, moments) if moments else {}
        judged.extend(outcomes.judge_all(batch, framework, audited))
        closed_total += len(batch)
        not_entered += sum(c.entered_at is None for c in batch)
        if progress is not None:
            progress(closed_total)
    owners = fresh_owners(store, request.connection, connector, clock)
    states = store.current_states(request.connection)
    criteria = tuple((c.name, c.label) for c in framework.criteria)
    names = [name for name, _ in criteria]
    open_now = [s.deal_id for s in states]
    report_compliance = Compliance(
        criteria=criteria,
        by_owner=tuple(compliance.by_owner(states, owners, names)),
        by_team=tuple(compliance.by_team(states, owners, names, request.teams)),
        trend=tuple(compliance.trend(by_deal, open_now, judged, names, request.since, request.until)),
        follow_through=compliance.follow_through(by_deal, judged, open_now, request.since, request.until),
        snoozes=snoozes.from_history(by_deal, states, owners, start, end),
    )
    return OutcomeReport(
        connection=request.connection,
        since=request.since,
        until=request.until,
        framework=request.framework_name,
        sections=outcomes.cohorts(judged),
        compliance=report_compliance,
        closed_deals=closed_total,
        not_entered=not_entered,
        api_calls=connector.api_calls,
        notes=_notes(judged, request, not_entered),
    )


def _notes(judged: list[Judged], request: ReportRequest, not_entered: int) -> tuple[str, ...]:
    notes = []
    at_close = sum(j.source == Source.AT_CLOSE for j in judged)
    if at_close:
        notes.append(
            f"{at_close} closed deal(s) had no field history for a criterion: their values at close stand "
            "in for their values at entry. Turn on field history tracking for the BANT fields (Salesforce: "
            "Object Manager > Opportunity > Fields & Relationships > Set History Tracking) to judge them at "
            "entry."
        )
    if not_entered and request.entry_stage:
        notes.append(
            f"{not_entered} closed deal(s) never entered the stage {request.entry_stage!r} and are in no "
            "cohort."
            + (
                " None did: check the stage's spelling (Salesforce: a StageName value such as 'Value "
                "Proposition'; HubSpot: a dealstage id such as 'presentationscheduled')."
                if not_entered == len(judged)
                else ""
            )
        )
    unjudged = sum(j.qualified is None for j in judged) - not_entered
    if unjudged > 0:
        notes.append(f"{unjudged} closed deal(s) were out of the framework's scope at entry: in no cohort.")
    return tuple(notes)
