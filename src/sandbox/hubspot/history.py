"""Property history as HubSpot keeps it, stored lazily.

HubSpot keeps every value a property has held, with when and by what it was set, and returns it as
`propertiesWithHistory` (CRM objects API: `GET /crm/v3/objects/{type}/{id}`, the list endpoint and
`batch/read`; search does not offer it): per property a list of `{value, timestamp, sourceType,
sourceId?, updatedByUserId?}`, newest first, a cleared value being `""`.

100,000 seeded deals must not carry 100,000 history lists, so nothing is stored until a property changes:
a property never changed has one implicit entry, its current value at the record's creation (none when it
has no value). A change is kept as an `Edit` on the record — when, by what source, the names it changed and
the values they held before — and every entry is rebuilt from the edits and the current values. One write
call that changes several properties is one edit, and equal edits are one shared tuple (a bulk status
write of a hundred deals at the same millisecond keeps one), so a first sync run adds a one-item tuple per
deal it writes, not a list per property.

`hs_lastmodifieddate` is not recorded (every write changes it): its one entry is its current value at that
moment. A `forget` edit is the sandbox's stand-in for history HubSpot does not hold for a value (a value
written by a data migration, or history dropped): from it back, the property has no entries at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar, cast

from sandbox.hubspot.properties import iso_millis
from sandbox.hubspot.schema import MODIFIED
from sandbox.hubspot.store import Edit, HsObject, Props

FORGET = ""
"""The source of a `forget` edit: the history of its names ends there."""
API, CRM_UI, CALCULATED = "API", "CRM_UI", "CALCULATED"
DERIVED = frozenset({"hs_is_closed", "hs_is_closed_won"})
"""Properties HubSpot computes from others (their entries carry sourceType CALCULATED)."""

T = TypeVar("T", bound=tuple[object, ...])
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_shared: dict[tuple[object, ...], tuple[object, ...]] = {}
_SHARED_MAX = 4_096


def _one(value: T) -> T:
    """The tuple kept for this value (equal tuples share one object)."""
    found = _shared.get(value)
    if found is not None:
        return cast(T, found)
    if len(_shared) >= _SHARED_MAX:
        _shared.clear()
    _shared[value] = value
    return value


def shared(edit: Edit) -> Edit:
    """One tuple per distinct edit (a batch writing the same values at the same moment keeps one), its
    names and old values shared too (a run writes the same few names, and the same few old values)."""
    at_ms, source, names, olds, user = edit
    return _one((at_ms, source, _one(names), _one(olds), user))


def record(obj: HsObject, before: Props, at_ms: int, source: str, user_id: int | None = None) -> None:
    """Note the properties whose value `obj` no longer holds as in `before` (its values before a write)."""
    after = obj.properties
    names = tuple(
        sorted(
            name
            for name in before.keys() | after.keys()
            if name != MODIFIED and before.get(name) != after.get(name)
        )
    )
    if not names:
        return
    edit = shared((at_ms, source, names, tuple(before.get(n) for n in names), user_id))
    obj.edits = (*obj.edits, edit) if obj.edits else (edit,)


def forget(obj: HsObject, name: str, at_ms: int) -> None:
    """From now back, HubSpot holds no history for `name` on this record (its value stays)."""
    edit = shared((at_ms, FORGET, (name,), (obj.properties.get(name),), None))
    obj.edits = (*obj.edits, edit) if obj.edits else (edit,)


def rename(obj: HsObject, old: str, new: str) -> None:
    if obj.edits:
        obj.edits = tuple(
            shared((ms, src, tuple(new if n == old else n for n in names), olds, user))
            for ms, src, names, olds, user in obj.edits
        )


def entries(obj: HsObject, name: str) -> list[dict[str, object]]:
    """The property's history, newest first, as HubSpot's `ValueWithTimestamp` objects."""
    out: list[dict[str, object]] = []
    value = obj.properties.get(name)
    if name == MODIFIED:
        return [_entry(value, value or iso_millis(obj.updated_at), CALCULATED, None)] if value else []
    for at_ms, source, names, olds, user in reversed(obj.edits or ()):
        if name not in names:
            continue
        if source == FORGET:
            return out
        kind = CALCULATED if name in DERIVED else source
        out.append(_entry(value or "", _iso(at_ms), kind, user))
        value = olds[names.index(name)]
    if value is not None:
        source = CALCULATED if name in DERIVED else API
        out.append(_entry(value, iso_millis(obj.created_at), source, None))
    return out


def render_history(obj: HsObject, wanted: list[str], known: Mapping[str, object]) -> dict[str, object]:
    """`propertiesWithHistory` for the requested names that exist (HubSpot ignores the others)."""
    return {name: entries(obj, name) for name in dict.fromkeys(wanted) if name in known}


def _entry(value: str, timestamp: str, source: str, user: int | None) -> dict[str, object]:
    entry: dict[str, object] = {"value": value, "timestamp": timestamp, "sourceType": source}
    if user is not None:
        entry["updatedByUserId"] = user
    return entry


def _iso(at_ms: int) -> str:
    return iso_millis(_EPOCH + timedelta(milliseconds=at_ms))
