"""``POST /crm/v3/objects/{type}/search``: one sort, offset paging, at most 200 a page, and no paging past
10,000 results (HTTP 400) (HubSpot docs, "CRM search: limitations"). Results may lag recent writes (the
``search_lag`` fault / setting).

The common query — sorted by ``hs_lastmodifieddate`` ascending with no lag — keeps its match list (for
the filters other than a modified-date range) between calls and catches up from the store's write log;
the range is bisected. So paging through 100,000 deals while writing to them, by offset or by re-anchored
windows, costs a full scan only once per distinct filter.

A query sorted by another property (``closedate``, ``amount``, …), or by ``hs_object_id`` with range
filters on such a property, is served from a sorted index (``_Sorted``): the matches of its fixed filters
(every filter but the range on the sort property and the ``hs_object_id`` / modified-date ones) ordered by
the sort key ``_sort_key`` uses, equal keys in store order, records with no value last — exactly the plain
scan's stable sort (``scan_search``, the reference the tests compare every path with). It is kept like the
match lists and caught up from the write log (rebuilt after a new epoch or many writes); the range is
bisected, ``NOT_IN`` ids are counted by lookup and other ``hs_object_id`` filters checked on the records in
range only. So a closed-deal sweep by close date (re-anchored on the last one seen, paging a tied date by
id) scans the store once, not once per page.

A keyset walk by id (``hs_object_id GT last``, sorted by id or not, the other filters fixed: the outcome
report's closed-deal read) is served from an id index (``_ById``): the fixed filters' matches in id order,
kept until the next write, the id range bisected. A lagging search scans.
"""

from __future__ import annotations

import bisect
import itertools
import json
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox.hubspot.filters import Predicate, bad_request, compile_search, converter, getter
from sandbox.hubspot.properties import iso_millis
from sandbox.hubspot.schema import ALWAYS, DEFAULTS, MODIFIED
from sandbox.hubspot.store import HsObject, ObjectStore, Props

MAX_LIMIT = 200
RESULT_CAP = 10_000
_MAX_CACHED = 8

Version = tuple[HsObject, Props, int]


@dataclass(frozen=True)
class SearchPage:
    total: int
    rows: list[Version]
    next_after: int | None


@dataclass
class _Matches:
    """Matches in modification order; an entry is live while ``members[id]`` still holds its stamp.
    Superseded entries stay in place until they are half the list; their stamps are kept sorted in
    ``stale_stamps`` so a range's live count is two bisections, whatever was written since.

    An entry is a position in two parallel lists (``objects``, ``stamps``) rather than an (object, stamp)
    tuple: a tuple per entry was 6.4 MB per kept list at 100,000 deals."""

    epoch: int
    log_position: int
    objects: list[HsObject] = field(default_factory=list)
    stamps: list[int] = field(default_factory=list)
    """The entries' stamps, ascending (the store is ordered), for bisecting a modified-date range."""
    members: dict[str, int] = field(default_factory=dict)
    stale_stamps: list[int] = field(default_factory=list)

    def add(self, obj: HsObject) -> None:
        self.objects.append(obj)
        self.stamps.append(obj.modstamp_ms)
        self.members[obj.id] = obj.modstamp_ms

    def catch_up(self, store: ObjectStore, predicate: Predicate) -> None:
        written = store.writes[self.log_position :]
        self.log_position = len(store.writes)
        last = {object_id: index for index, object_id in enumerate(written)}
        for object_id in sorted(last, key=last.__getitem__):
            old = self.members.pop(object_id, None)
            if old is not None:
                bisect.insort(self.stale_stamps, old)
            obj = store.objects.get(object_id)
            if obj is not None and predicate(obj.properties, obj.modstamp_ms, obj.num):
                self.add(obj)
        if len(self.stale_stamps) > len(self.objects) // 2:
            members = self.members
            live = [
                i
                for i, (o, s) in enumerate(zip(self.objects, self.stamps, strict=True))
                if members.get(o.id) == s
            ]
            self.objects = [self.objects[i] for i in live]
            self.stamps = [self.stamps[i] for i in live]
            self.stale_stamps = []

    def _bounds(self, low: int | None, high: int | None) -> tuple[int, int, int]:
        """Entry positions of the range, and how many live entries it holds."""
        start = bisect.bisect_left(self.stamps, low) if low is not None else 0
        stop = bisect.bisect_right(self.stamps, high) if high is not None else len(self.stamps)
        stale_from = bisect.bisect_left(self.stale_stamps, low) if low is not None else 0
        stale_to = (
            bisect.bisect_right(self.stale_stamps, high) if high is not None else len(self.stale_stamps)
        )
        return start, stop, (stop - start) - (stale_to - stale_from)

    def _live(self, start: int, stop: int) -> Iterator[tuple[HsObject, int]]:
        members, objects, stamps = self.members, self.objects, self.stamps
        for index in range(start, stop):
            obj, stamp = objects[index], stamps[index]
            if members.get(obj.id) == stamp:
                yield obj, stamp

    def in_range(self, low: int | None, high: int | None) -> list[tuple[HsObject, int]]:
        """Live entries with `low <= stamp <= high`, in modification order."""
        start, stop, _ = self._bounds(low, high)
        return list(self._live(start, stop))

    def page(
        self, after: int, end: int, low: int | None, high: int | None, excluded: frozenset[int] = frozenset()
    ) -> tuple[int, list[Version]]:
        """Live matches with `low <= stamp <= high` (either bound optional) whose id number is not in
        `excluded`: their count, and rows `after`..`end` of them. Bisects to the range and counts the
        excluded ids by lookup, so a keyset query costs a page, not the table."""
        start, stop, total = self._bounds(low, high)
        for num in excluded:
            stamp = self.members.get(str(num))
            if stamp is not None and (low is None or stamp >= low) and (high is None or stamp <= high):
                total -= 1
        rows: list[Version] = []
        position = 0
        for obj, stamp in self._live(start, stop):
            if obj.num in excluded:
                continue
            if position >= end:
                break
            if position >= after:
                rows.append((obj, obj.properties, stamp))
            position += 1
        return total, rows


def _sort(body: Mapping[str, object]) -> tuple[str | None, bool]:
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise bad_request("sorts must be a list.")
    if len(sorts) > 1:
        raise bad_request("Only one sort is supported.")
    if not sorts:
        return None, False
    first = sorts[0]
    if isinstance(first, str):
        return first.lstrip("-"), first.startswith("-")
    if isinstance(first, Mapping) and isinstance(first.get("propertyName"), str):
        return str(first["propertyName"]), str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
    raise bad_request("Each sort needs a propertyName.")


def _paging(body: Mapping[str, object]) -> tuple[int, int]:
    try:
        limit = int(body.get("limit") or 10)  # type: ignore[call-overload]
        after = int(body.get("after") or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise bad_request("limit and after must be integers.") from exc
    if limit < 1 or limit > MAX_LIMIT:
        raise bad_request(f"limit must be between 1 and {MAX_LIMIT}; got {limit}.")
    if after >= RESULT_CAP:
        raise bad_request(
            f"There was a problem with the request. Paging past {RESULT_CAP} results is not supported "
            f"(after={after}); narrow the filters instead."
        )
    return limit, after


def _versions(store: ObjectStore, lag_ms: int, now_ms: int) -> Iterator[Version]:
    cutoff = now_ms - lag_ms
    for obj in store.objects.values():
        if lag_ms <= 0 or obj.modstamp_ms <= cutoff:
            yield obj, obj.properties, obj.modstamp_ms
            continue
        for stamp, props in reversed(obj.history or ()):
            if stamp <= cutoff:
                yield obj, props, stamp
                break


_RANGE_OPERATORS = frozenset({"GT", "GTE", "LT", "LTE", "EQ"})
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "GT": operator.gt,
    "GTE": operator.ge,
    "LT": operator.lt,
    "LTE": operator.le,
    "EQ": operator.eq,
}


@dataclass(frozen=True)
class _Window:
    """A search split for the kept match list: `base` (the filters it is kept for: a stable cache key),
    `excluded` (the id numbers of `hs_object_id NOT_IN` filters: a re-anchored window's already-seen ids),
    `narrow` (other `hs_object_id` filters, applied to the candidates), and the modified range, inclusive."""

    base: dict[str, object]
    excluded: frozenset[int]
    narrow: dict[str, object] | None
    low: int | None
    high: int | None


def _window(store: ObjectStore, body: Mapping[str, object]) -> _Window | None:
    """For one filter group: split out its `hs_lastmodifieddate` range (or EQ) and its `hs_object_id`
    filters. None when the body has another shape (the slow path serves it). Call it after the body
    compiled, so its values are known to be valid."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) != 1 or not isinstance(groups[0], Mapping):
        return None
    convert = converter(store.registry.properties.get(MODIFIED), MODIFIED)
    low: int | None = None
    high: int | None = None
    base, narrow = [], []
    excluded: set[int] = set()
    for spec in groups[0].get("filters") or []:
        op = str(spec.get("operator", "")).upper() if isinstance(spec, Mapping) else ""
        if isinstance(spec, Mapping) and spec.get("propertyName") == MODIFIED and op in _RANGE_OPERATORS:
            bound = convert(str(spec.get("value")))
            if not isinstance(bound, int):
                return None
            if op in {"GT", "GTE", "EQ"}:
                start = bound + (op == "GT")
                low = start if low is None else max(low, start)
            if op in {"LT", "LTE", "EQ"}:
                stop = bound - (op == "LT")
                high = stop if high is None else min(high, stop)
        elif isinstance(spec, Mapping) and spec.get("propertyName") == "hs_object_id":
            values = spec.get("values")
            if op == "NOT_IN" and isinstance(values, list):
                excluded.update(_id_numbers(values))
            else:
                narrow.append(spec)
        else:
            base.append(spec)
    narrowing: dict[str, object] | None = {"filterGroups": [{"filters": narrow}]} if narrow else None
    return _Window({**body, "filterGroups": [{"filters": base}]}, frozenset(excluded), narrowing, low, high)


def _id_numbers(values: list[object]) -> Iterator[int]:
    """The whole numbers among `NOT_IN` values (others can match no id, so excluding them changes nothing)."""
    for value in values:
        number = float(str(value))
        if number.is_integer():
            yield int(number)


def _cached(store: ObjectStore, body: Mapping[str, object], predicate: Predicate) -> _Matches:
    key = json.dumps([body.get("filterGroups"), body.get("query")], sort_keys=True, default=str)
    found = store.search_cache.pop(key, None)
    if not isinstance(found, _Matches) or found.epoch != store.epoch:
        found = _Matches(store.epoch, len(store.writes))
        for obj in store.objects.values():
            if predicate(obj.properties, obj.modstamp_ms, obj.num):
                found.add(obj)
    else:
        found.catch_up(store, predicate)
    store.search_cache[key] = found
    while len(store.search_cache) > _MAX_CACHED:
        store.search_cache.pop(next(iter(store.search_cache)))
    return found


_ID = "hs_object_id"
_REBUILD_AFTER = 2_000
"""Writes since a sorted index was kept beyond which it is rebuilt rather than caught up (each catch-up
insertion moves the list's tail)."""


@dataclass
class _Sorted:
    """The base's matches with a value for one property, ascending by that property's search key (`keys`,
    parallel to `objects`: no tuple per entry), equal keys in store order; the matches with no value
    (`missing`) in store order. That is the slow path's order: a stable sort of the matches in store order,
    records without a value last.

    A write moves its record to the end of the store, so catching up drops the written records and inserts
    each that still matches after its equal keys, in the order they were last written."""

    epoch: int
    log_position: int
    name: str
    keys: list[Any] = field(default_factory=list)
    objects: list[HsObject] = field(default_factory=list)
    missing: list[HsObject] = field(default_factory=list)
    usable: bool = True
    """False once a key is NaN (float properties): no total order to bisect, so the scan serves."""

    def build(self, store: ObjectStore, predicate: Predicate) -> None:
        key = _object_key(store, self.name)
        present: list[HsObject] = []
        keys: list[Any] = []
        for obj in store.objects.values():
            if predicate(obj.properties, obj.modstamp_ms, obj.num):
                value = key(obj)
                if value is None:
                    self.missing.append(obj)
                else:
                    present.append(obj)
                    keys.append(value)
        self.usable = all(value == value for value in keys)
        order = sorted(range(len(keys)), key=keys.__getitem__) if self.usable else []
        self.objects = [present[i] for i in order]
        self.keys = [keys[i] for i in order]

    def catch_up(self, store: ObjectStore, predicate: Predicate) -> None:
        written = store.writes[self.log_position :]
        self.log_position = len(store.writes)
        if not written:
            return
        last = {object_id: index for index, object_id in enumerate(written)}
        gone = set(last)
        drop = [i for i, obj in enumerate(self.objects) if obj.id in gone]
        if len(drop) > 64:
            kept = [i for i, obj in enumerate(self.objects) if obj.id not in gone]
            self.objects = [self.objects[i] for i in kept]
            self.keys = [self.keys[i] for i in kept]
        else:
            for i in reversed(drop):
                del self.objects[i]
                del self.keys[i]
        if any(obj.id in gone for obj in self.missing):
            self.missing = [obj for obj in self.missing if obj.id not in gone]
        key = _object_key(store, self.name)
        for object_id in sorted(last, key=last.__getitem__):
            obj = store.objects.get(object_id)
            if obj is None or not predicate(obj.properties, obj.modstamp_ms, obj.num):
                continue
            value = key(obj)
            if value is None:
                self.missing.append(obj)
            elif value != value:
                self.usable = False
            else:
                at = bisect.bisect_right(self.keys, value)
                self.keys.insert(at, value)
                self.objects.insert(at, obj)

    def span(self, bounds: Iterable[tuple[str, Any]]) -> tuple[int, int]:
        """Positions `start:stop` of the keys every range filter `(operator, key)` accepts."""
        keys = self.keys
        start, stop = 0, len(keys)
        for op, target in bounds:
            if op in {"GT", "GTE", "EQ"}:
                start = max(start, (bisect.bisect_right if op == "GT" else bisect.bisect_left)(keys, target))
            if op in {"LT", "LTE", "EQ"}:
                stop = min(stop, (bisect.bisect_left if op == "LT" else bisect.bisect_right)(keys, target))
        return start, max(start, stop)

    def walk(self, start: int, stop: int, descending: bool, with_missing: bool) -> Iterator[HsObject]:
        """Entries `start:stop` in the sort's order (descending: groups of equal keys from the highest,
        each still in store order, as a stable reversed sort leaves them), then `missing` if asked."""
        objects, keys = self.objects, self.keys
        if not descending:
            for i in range(start, stop):
                yield objects[i]
        else:
            top = stop
            while top > start:
                first = bisect.bisect_left(keys, keys[top - 1], start, top)
                for i in range(first, top):
                    yield objects[i]
                top = first
        if with_missing:
            yield from self.missing


def _object_key(store: ObjectStore, name: str) -> Callable[[HsObject], Any]:
    """The search key of `name` for a record (`_sort_key`'s and the filters' getter), each distinct raw
    value converted once: close dates repeat, and one key object per value keeps the index small."""
    convert = converter(store.registry.properties.get(name), name)
    memo: dict[str, object] = {}

    def remembered(raw: str) -> object:
        found = memo.get(raw, memo)
        if found is memo:
            try:
                found = convert(raw)
            except ValueError as exc:
                found = exc
            memo[raw] = found
        if isinstance(found, ValueError):
            raise found
        return found

    get = getter(name, remembered)
    return lambda obj: get(obj.properties, obj.modstamp_ms, obj.num)


@dataclass(frozen=True)
class _Ranged:
    """A search split for a sorted index: `base` (the filters it is kept for), the indexed property `name`
    and its range filters `bounds` as (operator, key), `excluded` (`hs_object_id NOT_IN` id numbers) and
    whether other filters remain (`narrow`: other `hs_object_id` or `hs_lastmodifieddate` filters), which
    are then checked on each candidate in range."""

    base: dict[str, object]
    name: str
    bounds: tuple[tuple[str, Any], ...]
    excluded: frozenset[int]
    narrow: bool


def _ranged(store: ObjectStore, body: Mapping[str, object], sort_name: str | None) -> _Ranged | None:
    """For at most one filter group, sorted by a property other than `hs_lastmodifieddate` and
    `hs_object_id` (indexed on it), or by `hs_object_id` (or not sorted) with range filters on one such
    property (indexed on that: a tie sweep's `EQ` date). None for other shapes (the other paths serve).
    Call it after the body compiled, so its values are known to be valid."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > 1:
        return None
    specs: object = []
    if groups:
        if not isinstance(groups[0], Mapping):
            return None
        specs = groups[0].get("filters") or []
    if not isinstance(specs, list):
        return None
    if sort_name == MODIFIED:
        return None
    name = sort_name if sort_name is not None and sort_name != _ID else _range_property(store, specs)
    if name is None:
        return None
    convert = converter(store.registry.properties.get(name), name)
    base: list[object] = []
    bounds: list[tuple[str, Any]] = []
    excluded: set[int] = set()
    narrow = False
    for spec in specs:
        if not isinstance(spec, Mapping):
            base.append(spec)
            continue
        op = str(spec.get("operator", "")).upper()
        prop = spec.get("propertyName")
        if prop == name and op in _RANGE_OPERATORS:
            raw = spec.get("value")
            target = convert(str(raw).lower() if isinstance(raw, bool) else str(raw))
            if target != target:
                return None
            bounds.append((op, target))
        elif prop == _ID and op == "NOT_IN" and isinstance(spec.get("values"), list):
            excluded.update(_id_numbers(spec["values"]))
        elif prop in {MODIFIED, _ID}:
            narrow = True
        else:
            base.append(spec)
    if not bounds and name != sort_name:
        return None
    base_body = {"filterGroups": [{"filters": base}], "query": body.get("query")}
    return _Ranged(base_body, name, tuple(bounds), frozenset(excluded), narrow)


def _range_property(store: ObjectStore, specs: list[object]) -> str | None:
    """The property to index a search sorted by id on: the one with range filters, preferring one bounded
    by GT/GTE/LT/LTE over EQ only, then a date or number over text (a tie sweep's close date before its
    `hs_is_closed EQ true`); None when that leaves no single property."""
    ranks: dict[str, tuple[bool, bool]] = {}
    for spec in specs:
        if not isinstance(spec, Mapping):
            continue
        prop, op = spec.get("propertyName"), str(spec.get("operator", "")).upper()
        if not isinstance(prop, str) or prop in {MODIFIED, _ID} or op not in _RANGE_OPERATORS:
            continue
        known = store.registry.properties.get(prop)
        ordered = ranks.get(prop, (False, False))[0] or op != "EQ"
        ranks[prop] = (ordered, known is not None and known.type in {"datetime", "date", "number"})
    if not ranks:
        return None
    best = max(ranks.values())
    chosen = [prop for prop, rank in ranks.items() if rank == best]
    return chosen[0] if len(chosen) == 1 else None


def _sorted_index(store: ObjectStore, ranged: _Ranged) -> _Sorted:
    """The base's sorted index, kept in the store's search cache; rebuilt after a new epoch or many writes,
    else caught up from the write log."""
    key = json.dumps(
        ["sorted", ranged.name, ranged.base.get("filterGroups"), ranged.base.get("query")],
        sort_keys=True,
        default=str,
    )
    predicate = compile_search(store, ranged.base)
    found = store.search_cache.pop(key, None)
    if (
        not isinstance(found, _Sorted)
        or found.epoch != store.epoch
        or len(store.writes) - found.log_position > max(_REBUILD_AFTER, len(found.objects) // 2)
    ):
        found = _Sorted(store.epoch, len(store.writes), ranged.name)
        found.build(store, predicate)
    else:
        found.catch_up(store, predicate)
    store.search_cache[key] = found
    while len(store.search_cache) > _MAX_CACHED:
        store.search_cache.pop(next(iter(store.search_cache)))
    return found


def _sorted_search(
    store: ObjectStore,
    body: Mapping[str, object],
    predicate: Predicate,
    sort_name: str | None,
    descending: bool,
    after: int,
    end: int,
) -> SearchPage | None:
    """The page from a sorted index (None when the body has another shape or the index cannot serve):
    bisect the range, then either count it and walk to the page (only `NOT_IN` ids left to apply, looked
    up one by one), or check the candidates in range with the whole filter."""
    ranged = _ranged(store, body, sort_name)
    if ranged is None:
        return None
    index = _sorted_index(store, ranged)
    if not index.usable:
        return None
    start, stop = index.span(ranged.bounds)
    with_missing = not ranged.bounds
    walk = index.walk(start, stop, descending, with_missing)
    if ranged.name != sort_name or ranged.narrow:
        found = [(obj, obj.properties, obj.modstamp_ms) for obj in walk]
        matches = [v for v in found if predicate(v[1], v[2], v[0].num)]
        if ranged.name != sort_name:
            matches.sort(key=lambda v: v[0].num, reverse=descending)
        return SearchPage(len(matches), matches[after:end], end if end < len(matches) else None)
    total = stop - start + (len(index.missing) if with_missing else 0)
    if ranged.excluded:
        base = compile_search(store, ranged.base)
        key = _object_key(store, ranged.name)
        for num in ranged.excluded:
            obj = store.objects.get(str(num))
            if obj is None or obj.num != num or not base(obj.properties, obj.modstamp_ms, obj.num):
                continue
            value = key(obj)
            if value is None:
                total -= with_missing
            elif all(_ORDER[op](value, target) for op, target in ranged.bounds):
                total -= 1
    return _page(walk, ranged.excluded, total, after, end)


def _page(
    objects: Iterable[HsObject], excluded: frozenset[int] | set[int], total: int, after: int, end: int
) -> SearchPage:
    """Rows `after`..`end` of `objects` in order, leaving out the `excluded` id numbers."""
    rows: list[Version] = []
    position = 0
    for obj in objects:
        if obj.num in excluded:
            continue
        if position >= end:
            break
        if position >= after:
            rows.append((obj, obj.properties, obj.modstamp_ms))
        position += 1
    return SearchPage(total, rows, end if end < total else None)


@dataclass
class _ById:
    """A base's matches in id order, for a keyset walk by `hs_object_id` (valid until the next write)."""

    epoch: int
    log_position: int
    nums: list[int]
    objects: list[HsObject]


def _id_bounds(specs: list[object]) -> tuple[list[object], int | None, int | None, set[int]] | None:
    """A filter group split for the id index: the other filters, the inclusive id range of its
    `hs_object_id` GT/GTE/LT/LTE/EQ filters, and its `NOT_IN` ids. None for another shape (no id range, a
    modified-date filter, an id that is not a whole number)."""
    base: list[object] = []
    low: int | None = None
    high: int | None = None
    excluded: set[int] = set()
    ranged = False
    for spec in specs:
        if not isinstance(spec, Mapping):
            return None
        prop, op = spec.get("propertyName"), str(spec.get("operator", "")).upper()
        if prop == _ID and op in _RANGE_OPERATORS:
            try:
                number = float(str(spec.get("value")))
            except ValueError:
                return None
            if not number.is_integer():
                return None
            n, ranged = int(number), True
            if op in {"GT", "GTE", "EQ"}:
                start = n + (op == "GT")
                low = start if low is None else max(low, start)
            if op in {"LT", "LTE", "EQ"}:
                stop = n - (op == "LT")
                high = stop if high is None else min(high, stop)
        elif prop == _ID and op == "NOT_IN" and isinstance(spec.get("values"), list):
            excluded.update(_id_numbers(spec["values"]))
        elif prop in {MODIFIED, _ID}:
            return None
        else:
            base.append(spec)
    return (base, low, high, excluded) if ranged else None


def _pins_an_ordered_value(store: ObjectStore, spec: object) -> bool:
    """An `EQ` on a date or number (a tie sweep's `closedate EQ` next to its id keyset): it changes from
    page to page, so an id index kept per base would be rebuilt each time; the sorted index serves it."""
    if not isinstance(spec, Mapping) or str(spec.get("operator", "")).upper() != "EQ":
        return False
    known = store.registry.properties.get(str(spec.get("propertyName")))
    return known is not None and known.type in {"datetime", "date", "number"}


def _id_keyed_search(
    store: ObjectStore,
    body: Mapping[str, object],
    sort_name: str | None,
    descending: bool,
    after: int,
    end: int,
) -> SearchPage | None:
    """A keyset walk by id (sorted by `hs_object_id`, or not sorted, ascending, with an id range such as
    `hs_object_id GT last`): the base's matches kept in id order, the range bisected, so each page costs a
    page, not the table (the outcome report's closed-deal read). None for another shape."""
    groups = body.get("filterGroups") or []
    if sort_name not in {None, _ID} or descending or not isinstance(groups, list) or len(groups) != 1:
        return None
    specs = groups[0].get("filters") if isinstance(groups[0], Mapping) else None
    split = _id_bounds(specs) if isinstance(specs, list) else None
    if split is None:
        return None
    base, low, high, excluded = split
    if any(_pins_an_ordered_value(store, spec) for spec in base):
        return None
    base_body = {"filterGroups": [{"filters": base}], "query": body.get("query")}
    key = json.dumps(["by-id", base, body.get("query")], sort_keys=True, default=str)
    found = store.search_cache.pop(key, None)
    if not isinstance(found, _ById) or (found.epoch, found.log_position) != (store.epoch, len(store.writes)):
        predicate = compile_search(store, base_body)
        kept = sorted(
            (o for o in store.objects.values() if predicate(o.properties, o.modstamp_ms, o.num)),
            key=lambda o: o.num,
        )
        found = _ById(store.epoch, len(store.writes), [o.num for o in kept], kept)
    store.search_cache[key] = found
    while len(store.search_cache) > _MAX_CACHED:
        store.search_cache.pop(next(iter(store.search_cache)))
    start = bisect.bisect_left(found.nums, low) if low is not None else 0
    stop = bisect.bisect_right(found.nums, high) if high is not None else len(found.nums)
    total = stop - start
    for num in excluded:
        at = bisect.bisect_left(found.nums, num, start, stop)
        total -= at < stop and found.nums[at] == num
    return _page(itertools.islice(found.objects, start, stop), excluded, total, after, end)


def run_search(store: ObjectStore, body: Mapping[str, object], lag_ms: int, now_ms: int) -> SearchPage:
    """Evaluate a search body against ``store`` (the caller holds the state lock)."""
    predicate = compile_search(store, body)
    sort_name, descending = _sort(body)
    limit, after = _paging(body)
    end = min(after + limit, RESULT_CAP)
    if lag_ms <= 0:
        by_id = _id_keyed_search(store, body, sort_name, descending, after, end)
        if by_id is not None:
            return by_id
        found = _sorted_search(store, body, predicate, sort_name, descending, after, end)
        if found is not None:
            return found
    window = _window(store, body) if store.ordered and lag_ms <= 0 else None
    if window is not None:
        kept = _cached(store, window.base, compile_search(store, window.base))
        if sort_name == MODIFIED and not descending and window.narrow is None:
            total, rows = kept.page(after, end, window.low, window.high, window.excluded)
            return SearchPage(total, rows, end if end < total else None)
        candidates: Iterable[Version] = (
            (obj, obj.properties, stamp) for obj, stamp in kept.in_range(window.low, window.high)
        )
    else:
        candidates = _versions(store, lag_ms, now_ms)
    matches = _ordered(
        store, [v for v in candidates if predicate(v[1], v[2], v[0].num)], sort_name, descending
    )
    return SearchPage(len(matches), matches[after:end], end if end < len(matches) else None)


def scan_search(store: ObjectStore, body: Mapping[str, object], lag_ms: int, now_ms: int) -> SearchPage:
    """The reference answer, with no kept list: every record (as of the lag) through the filters, sorted.
    The kept lists and sorted indexes must answer exactly this (tests compare them)."""
    predicate = compile_search(store, body)
    sort_name, descending = _sort(body)
    limit, after = _paging(body)
    end = min(after + limit, RESULT_CAP)
    matches = [v for v in _versions(store, lag_ms, now_ms) if predicate(v[1], v[2], v[0].num)]
    matches = _ordered(store, matches, sort_name, descending)
    return SearchPage(len(matches), matches[after:end], end if end < len(matches) else None)


def _ordered(
    store: ObjectStore, matches: list[Version], sort_name: str | None, descending: bool
) -> list[Version]:
    """`matches` (in store order) in the sort's order: a stable sort, so ties keep store order even when
    descending; records with no value for the sort property come last, in store order, either way."""
    if sort_name is None:
        matches.sort(key=lambda v: v[0].num)
    elif sort_name == MODIFIED:
        matches.sort(key=lambda v: v[2], reverse=descending)
    else:
        key = _sort_key(store, sort_name)
        present = [v for v in matches if key(v) is not None]
        present.sort(key=key, reverse=descending)  # type: ignore[arg-type]
        matches = present + [v for v in matches if key(v) is None]
    return matches


def _sort_key(store: ObjectStore, name: str) -> Callable[[Version], object]:
    get = getter(name, converter(store.registry.properties.get(name), name))
    return lambda v: get(v[1], v[2], v[0].num)


def render_row(store: ObjectStore, version: Version, wanted: list[str]) -> dict[str, object]:
    obj, props, _ = version
    names = [n for n in wanted if n in store.registry.properties] if wanted else list(DEFAULTS[store.type])
    selected = {name: props.get(name) for name in (*names, *ALWAYS[store.type])}
    return {
        "id": obj.id,
        "properties": selected,
        "createdAt": iso_millis(obj.created_at),
        "updatedAt": props.get(MODIFIED) or iso_millis(obj.updated_at),
        "archived": False,
    }
