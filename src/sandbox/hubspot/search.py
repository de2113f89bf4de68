"""``POST /crm/v3/objects/{type}/search``: one sort, offset paging, at most 200 a page, and no paging past
10,000 results (HTTP 400) (HubSpot docs, "CRM search: limitations"). Results may lag recent writes (the
``search_lag`` fault / setting).

The common query — sorted by ``hs_lastmodifieddate`` ascending with no lag — keeps its match list (for
the filters other than a modified-date range) between calls and catches up from the store's write log;
the range is bisected. So paging through 100,000 deals while writing to them, by offset or by re-anchored
windows, costs a full scan only once per distinct filter.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

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


def run_search(store: ObjectStore, body: Mapping[str, object], lag_ms: int, now_ms: int) -> SearchPage:
    """Evaluate a search body against ``store`` (the caller holds the state lock)."""
    predicate = compile_search(store, body)
    sort_name, descending = _sort(body)
    limit, after = _paging(body)
    end = min(after + limit, RESULT_CAP)
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
    matches = [v for v in candidates if predicate(v[1], v[2], v[0].num)]
    if sort_name is None:
        matches.sort(key=lambda v: v[0].num)
    elif sort_name == MODIFIED:
        matches.sort(key=lambda v: v[2], reverse=descending)
    else:
        key = _sort_key(store, sort_name)
        present = [v for v in matches if key(v) is not None]
        present.sort(key=key, reverse=descending)  # type: ignore[arg-type]
        matches = present + [v for v in matches if key(v) is None]
    return SearchPage(len(matches), matches[after:end], end if end < len(matches) else None)


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
