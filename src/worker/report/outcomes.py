"""Closed deals judged as they stood at their entry point, and the win-rate cohorts that follow. Pure.

A closed deal's qualification at entry comes from the best source there is for it, and every cohort says
which it used:

1. **field history**: the CRM's history gave every criterion field's value at entry;
2. **bant-sync audit log**: history was incomplete, but bant-sync itself assessed the deal at or before the
   entry point, and the audit log's last verdict before it stands (exact: the log records every change);
3. **values at close**: neither; the fields' values at close stand in, which flatters the unqualified
   cohort when reps fill in BANT during the deal, so the report labels it plainly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from connectors.model import ClosedDeal
from rules import Framework, Status, evaluate
from worker.report.cohorts import compare, win_rate
from worker.report.model import CohortSection, Judged, Source

QUALIFIED = "qualified at entry"
UNQUALIFIED = "unqualified at entry"


def judge(closed: ClosedDeal, framework: Framework, audited_status: str | None = None) -> Judged:
    """The verdict on `closed` at its entry point. `audited_status` is the status bant-sync recorded for the
    deal at or before that moment, if any; it is used only when the CRM's history was incomplete."""
    deal = closed.deal
    base = Judged(
        deal.id, deal.name, deal.owner_id, False, None, closed.won, closed.closed_on, Source.HISTORY
    )
    if closed.entered_at is None:
        return replace(base, is_poc=framework.poc.matches(deal))
    assessment = evaluate(deal, framework, closed.entered_at.date())
    status: Status = assessment.status
    source = Source.HISTORY
    if closed.fallback_fields:
        known = _status(audited_status)
        if known is not None:
            status, source = known, Source.AUDIT
        else:
            source = Source.AT_CLOSE
    qualified = None if status == Status.NOT_EVALUATED else status == Status.QUALIFIED
    return replace(base, is_poc=assessment.is_poc, qualified=qualified, source=source)


def _status(text: str | None) -> Status | None:
    try:
        return Status(text) if text else None
    except ValueError:
        return None


def judge_all(
    closed: Iterable[ClosedDeal], framework: Framework, audited: Mapping[str, str] | None = None
) -> list[Judged]:
    """Every closed deal judged; `audited` maps deal id → bant-sync's status at its entry point."""
    known = audited or {}
    return [judge(deal, framework, known.get(deal.deal.id)) for deal in closed]


def cohorts(judged: Iterable[Judged]) -> tuple[CohortSection, ...]:
    """POCs, then all deals (when some closed deals were not POCs; otherwise it would repeat the POCs):
    qualified at entry against unqualified at entry, won against lost."""
    deals = [j for j in judged if j.qualified is not None]
    pocs = [j for j in deals if j.is_poc]
    sections = [_cohort("pocs", "POCs: qualified before they started, or not", pocs)]
    if len(pocs) < len(deals):
        sections.append(_cohort("all_deals", "All deals: qualified at entry, or not", deals))
    return tuple(sections)


def _cohort(key: str, title: str, deals: list[Judged]) -> CohortSection:
    qualified = [j for j in deals if j.qualified]
    unqualified = [j for j in deals if not j.qualified]
    first = win_rate(QUALIFIED, sum(j.won for j in qualified), sum(not j.won for j in qualified))
    second = win_rate(UNQUALIFIED, sum(j.won for j in unqualified), sum(not j.won for j in unqualified))
    return CohortSection(key, title, compare(first, second), source_label(deals))


def source_label(deals: Iterable[Judged]) -> str:
    """Where the statuses at entry came from: one source, or each source's share."""
    counts: dict[Source, int] = {}
    for deal in deals:
        counts[deal.source] = counts.get(deal.source, 0) + 1
    if not counts:
        return Source.HISTORY.value
    if len(counts) == 1:
        return next(iter(counts)).value
    total = sum(counts.values())
    return ", ".join(f"{source.value} for {n} of {total}" for source, n in sorted(counts.items()))
