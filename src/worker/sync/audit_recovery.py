"""Audit what the CRM shows, not only what a run remembers writing (docs/design.md §6: the CRM is the truth).

A run audits its own status writes at the checkpoint after them. A run killed between a write and that
checkpoint leaves a status in the CRM that the audit log never recorded; so does anyone who edits bant-sync's
status field in the CRM. The next run that reads such a deal sees a status other than the one its audit
log ends with, and records the difference as an "observed" change, dated when the CRM says it was written
(the deal's checked-at) or, lacking that, when it was seen. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from rules.model import Deal, Status
from worker.state import OBSERVED_SOURCE, StatusChange

_STATUSES = frozenset(status.value for status in Status)


def observed_changes(
    deals: Iterable[Deal], last_known: Mapping[str, str | None], now: datetime
) -> list[StatusChange]:
    """A StatusChange (source "observed") for each deal whose shown status (`deal.flags.status`) differs from
    the last status the store knows for it (`last_known`; absent or None: none known), in deal order.

    An empty status field, or a value that is not a bant-sync status, is not a status change to audit (the
    run writes the right value back, and audits that write). A deal listed twice yields at most one change.
    """
    known = dict(last_known)
    changes: list[StatusChange] = []
    for deal in deals:
        shown = deal.flags.status
        if shown is None or shown not in _STATUSES or known.get(deal.id) == shown:
            continue
        checked = deal.flags.checked_at
        at = checked if checked is not None and checked.tzinfo is not None else now
        changes.append(
            StatusChange(
                deal.id, known.get(deal.id), shown, tuple(deal.flags.missing or ()), at, OBSERVED_SOURCE
            )
        )
        known[deal.id] = shown
    return changes
