"""evaluate(deal, framework, today): which criteria a deal is missing, and what that makes its status."""

from __future__ import annotations

from datetime import date

from rules.framework import Framework
from rules.model import Assessment, Deal, Gap, Status, new_assessment
from rules.snooze import SnoozeState, judge_snooze


def evaluate(deal: Deal, framework: Framework, today: date) -> Assessment:
    """Assess one deal. Pure and deterministic: the same deal, framework and date give the same result.

    Precedence among unqualified statuses: qualify_out > poc_unqualified > needs_qualification. A deal out
    of the framework's scope, or at a stage where nothing is required yet, is not_evaluated. An unqualified
    deal whose snooze holds (rules.snooze) is snoozed, still listing what it misses.
    """
    is_poc = framework.poc.matches(deal)
    criteria = framework.criteria
    met_weight = 0.0
    failed: list[Gap] = []
    for criterion in criteria:
        verdict = criterion.judge(criterion.read(deal), today)
        if verdict is None:
            met_weight += criterion.weight
        else:
            failed.append(criterion.gap(verdict))
    total_weight = framework.total_weight or sum(c.weight for c in criteria)
    score = round(100 * met_weight / total_weight) if total_weight else 100

    if framework.scope.excludes(deal):
        return new_assessment(deal.id, Status.NOT_EVALUATED, (), score, (), is_poc, None)
    required = criteria if is_poc and framework.poc_requires_all else framework.required_at(deal.stage)
    if not required:
        return new_assessment(deal.id, Status.NOT_EVALUATED, (), score, (), is_poc, None)
    if len(required) != len(criteria):
        names = {c.name for c in required}
        failed = [gap for gap in failed if gap.criterion in names]
    if not failed:
        return new_assessment(deal.id, Status.QUALIFIED, (), score, (), is_poc, None)

    flagged_since = deal.flagged_since if deal.flagged_since and deal.flagged_since <= today else today
    if (today - flagged_since).days > framework.qualify_out_after_days:
        status = Status.QUALIFY_OUT
    elif is_poc:
        status = Status.POC_UNQUALIFIED
    else:
        status = Status.NEEDS_QUALIFICATION
    gaps = tuple(failed)
    missing = tuple([gap.criterion for gap in gaps])
    reasons = tuple([gap.reason for gap in gaps])
    snooze = None
    if deal.snooze_until is not None or deal.snooze_reason is not None:
        snooze = judge_snooze(deal, framework.snooze, is_poc, today)
    if snooze is not None and snooze.state is SnoozeState.ACTIVE:
        status = Status.SNOOZED
    return new_assessment(deal.id, status, missing, score, reasons, is_poc, flagged_since, gaps, snooze)
