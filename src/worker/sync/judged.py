"""Telling a deal bant-sync already judged from one a person changed: the judgement key.

An incremental run reads every deal modified since its cursor, and bant-sync's own write-backs modify the
deals they write: the run after a big write reads them all again. Neither CRM can leave them out of the
read without also leaving out a rep's edit made between bant-sync's read and its write (the write makes
bant-sync the last modifier: Salesforce's LastModifiedById, HubSpot's change source), so the read stays.
What is skipped is the rest: a deal read again whose judgement key is the one stored when it was last
judged, whose CRM fields already show the verdict (no status write planned) and whose task the ledger says
is as that verdict left it, gets no task lookup and no task write.

The key is a hash of everything the verdict and the task depend on: the deal's fields as read (not the
last-modified stamp and modifier, not bant-sync's own output fields: those are compared by the planner),
bant-sync's own clocks for it (flagged since, snoozed on), the day (a verdict can change overnight: a
close date passes, a snooze ends) and the framework (a config change re-judges everything). Equal keys mean
an equal assessment, because `rules.evaluate` is pure.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import fields
from datetime import date

from rules import Assessment, Deal
from rules.framework import Framework
from worker.state.ledger import LedgerEntry, LedgerState

_IGNORED = frozenset({"modified_at", "modified_by", "flags"})
"""Deal fields outside the key: the stamp and modifier bant-sync's own write changes, and its outputs."""


def framework_key(framework: Framework) -> str:
    """A digest of the framework's definition (a frozen dataclass: its repr is its value)."""
    return hashlib.sha256(repr(framework).encode()).hexdigest()[:16]


def judgement_key(deal: Deal, today: date, framework: str) -> str:
    """The deal's judgement key for `today` under the framework digest `framework`. Pass the deal with the
    qualify-out clock its assessment settled on (`flagged_since`): that is the clock the next run reads
    back from the store, so an unchanged deal gets the same key although its first judgement started the
    clock."""
    parts = [framework, today.isoformat()]
    for spec in fields(deal):
        if spec.name in _IGNORED:
            continue
        name, value = spec.name, getattr(deal, spec.name)
        if isinstance(value, Mapping):
            value = sorted(value.items())
        parts.append(f"{name}={value!r}")
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def task_as_left(assessment: Assessment, entries: Sequence[LedgerEntry], key: str) -> bool:
    """The ledger says the deal's task is as this verdict leaves it: an unqualified deal has its one open
    task under its current key, written with this verdict; any other deal has no open task. A create whose
    answer was lost (intended) is never "as left": it must be looked up."""
    if any(entry.state == LedgerState.INTENDED for entry in entries):
        return False
    open_entries = [entry for entry in entries if entry.state == LedgerState.OPEN]
    if not assessment.status.is_unqualified:
        return not open_entries
    return (
        len(open_entries) == 1
        and open_entries[0].sync_key == key
        and open_entries[0].status == assessment.status.value
        and tuple(open_entries[0].missing) == tuple(assessment.missing)
    )
