"""evaluate(deal, framework, today): which criteria a deal is missing, and what that makes its status."""

from __future__ import annotations

from datetime import date

from rules.framework import Framework
from rules.model import Assessment, Deal, Status


def evaluate(deal: Deal, framework: Framework, today: date) -> Assessment:
    """Assess one deal. Pure and deterministic: the same deal, framework and date give the same result.

    Precedence among unqualified statuses: qualify_out > poc_unqualified > needs_qualification. A deal out
    of the framework's scope, or at a stage where nothing is required yet, is not_evaluated.
    """
    is_poc = framework.poc.matches(deal)
    criteria = framework.criteria
    met_weight = 0.0
    total_weight = 0.0
    failures: dict[str, str] = {}
    for criterion in criteria:
        total_weight += criterion.weight
        verdict = criterion.judge(deal.value(criterion.field), today)
        if verdict is None:
            met_weight += criterion.weight
        else:
            failures[criterion.name] = f"{criterion.label}: {verdict}"
    score = round(100 * met_weight / total_weight) if total_weight else 100

    if framework.scope.excludes(deal):
        return Assessment(deal.id, Status.NOT_EVALUATED, (), score, (), is_poc, None)
    required = criteria if is_poc and framework.poc_requires_all else framework.required_at(deal.stage)
    if not required:
        return Assessment(deal.id, Status.NOT_EVALUATED, (), score, (), is_poc, None)

    missing = tuple(c.name for c in required if c.name in failures)
    if not missing:
        return Assessment(deal.id, Status.QUALIFIED, (), score, (), is_poc, None)

    flagged_since = deal.flagged_since if deal.flagged_since and deal.flagged_since <= today else today
    if (today - flagged_since).days > framework.qualify_out_after_days:
        status = Status.QUALIFY_OUT
    elif is_poc:
        status = Status.POC_UNQUALIFIED
    else:
        status = Status.NEEDS_QUALIFICATION
    reasons = tuple(failures[name] for name in missing)
    return Assessment(deal.id, status, missing, score, reasons, is_poc, flagged_since)
