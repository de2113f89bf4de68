"""``POST /crm/v3/objects/{type}/search``: filter groups (OR of ANDs), one sort, paging by offset.

HubSpot's limits (docs, "CRM search: limitations"): at most 200 results a page, 5 filter groups of at most
6 filters (18 in all), one sort, and no paging past 10,000 results (HTTP 400). String comparisons are
case-insensitive. Results may lag recent writes (see ``search_lag``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from sandbox.hubspot.errors import HsError
from sandbox.hubspot.properties import PropertyDef, epoch_ms, iso_millis, parse_instant
from sandbox.hubspot.schema import ALWAYS, DEFAULTS, MODIFIED
from sandbox.hubspot.state import HsObject, ObjectStore, Props

MAX_LIMIT = 200
RESULT_CAP = 10_000
_TEXT_FIELDS = {"deals": ("dealname",), "tasks": ("hs_task_subject", "hs_task_body")}

Version = tuple[HsObject, Props, int]
Predicate = Callable[[Props, int, int], bool]


def _bad(message: str) -> HsError:
    return HsError("VALIDATION_ERROR", message)


def _converter(prop: PropertyDef | None, name: str) -> Callable[[str], object]:
    kind = "number" if name == "hs_object_id" else (prop.type if prop else "string")
    if kind == "number":
        return float
    if kind in {"datetime", "date"}:
        return lambda text: epoch_ms(parse_instant(text))
    return str.lower


def _getter(name: str, convert: Callable[[str], object]) -> Callable[[Props, int, int], object]:
    if name == MODIFIED:
        return lambda props, modstamp, num: modstamp
    if name == "hs_object_id":
        return lambda props, modstamp, num: num

    def get(props: Props, modstamp: int, num: int) -> object:
        raw = props.get(name)
        if raw is None:
            return None
        try:
            return convert(raw)
        except ValueError:
            return None

    return get


def _compile_filter(store: ObjectStore, spec: Mapping[str, object]) -> Predicate:
    name = spec.get("propertyName")
    operator = str(spec.get("operator", "")).upper()
    if not isinstance(name, str) or not name:
        raise _bad("Each filter needs a propertyName.")
    prop = store.registry.properties.get(name)
    if prop is None:
        raise _bad(f"There was a problem with the request: property {name} does not exist on {store.type}.")
    convert = _converter(prop, name)
    get = _getter(name, convert)

    def value(key: str) -> object:
        raw = spec.get(key)
        if raw is None or isinstance(raw, dict | list):
            raise _bad(f"Filter on {name} with operator {operator} needs '{key}'.")
        try:
            return convert(str(raw).lower() if isinstance(raw, bool) else str(raw))
        except ValueError as exc:
            raise _bad(f"Filter value {raw!r} is not valid for {name}.") from exc

    if operator in {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}:
        want = operator == "HAS_PROPERTY"
        return lambda props, modstamp, num: (get(props, modstamp, num) is not None) is want
    if operator in {"IN", "NOT_IN"}:
        raw_values = spec.get("values")
        if not isinstance(raw_values, list):
            raise _bad(f"Filter on {name} with operator {operator} needs 'values'.")
        members = {convert(str(v)) for v in raw_values}
        if operator == "IN":
            return lambda props, modstamp, num: get(props, modstamp, num) in members
        return lambda props, modstamp, num: get(props, modstamp, num) not in members
    if operator in {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}:
        token = str(spec.get("value", "")).strip("*").lower()
        want = operator == "CONTAINS_TOKEN"
        return lambda props, modstamp, num: (token in str(props.get(name) or "").lower()) is want
    if operator == "BETWEEN":
        low, high = value("value"), value("highValue")
        return lambda props, modstamp, num: (v := get(props, modstamp, num)) is not None and low <= v <= high  # type: ignore[operator]
    compare = value("value")
    tests: dict[str, Callable[[object], bool]] = {
        "EQ": lambda v: v is not None and v == compare,
        "NEQ": lambda v: v is None or v != compare,
        "LT": lambda v: v is not None and v < compare,  # type: ignore[operator]
        "LTE": lambda v: v is not None and v <= compare,  # type: ignore[operator]
        "GT": lambda v: v is not None and v > compare,  # type: ignore[operator]
        "GTE": lambda v: v is not None and v >= compare,  # type: ignore[operator]
    }
    test = tests.get(operator)
    if test is None:
        raise _bad(f"Unknown filter operator {operator!r}.")
    return lambda props, modstamp, num: test(get(props, modstamp, num))


def _compile(store: ObjectStore, body: Mapping[str, object]) -> Predicate:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise _bad("filterGroups must be a list.")
    if len(groups) > 5:
        raise _bad("Too many filter groups: the limit is 5.")
    compiled: list[list[Predicate]] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise _bad("Each filter group needs a list of filters.")
        if len(filters) > 6:
            raise _bad("Too many filters in a group: the limit is 6.")
        compiled.append([_compile_filter(store, f) for f in filters if isinstance(f, Mapping)])
    if sum(len(group) for group in compiled) > 18:
        raise _bad("Too many filters: the limit is 18 in all.")
    query = str(body.get("query") or "").strip().lower()
    text_fields = _TEXT_FIELDS.get(store.type, ())
    groups_ok: Predicate
    if not compiled:
        groups_ok = lambda props, modstamp, num: True  # noqa: E731
    elif len(compiled) == 1 and len(compiled[0]) == 1:
        groups_ok = compiled[0][0]
    else:
        groups_ok = lambda props, modstamp, num: any(  # noqa: E731
            all(f(props, modstamp, num) for f in group) for group in compiled
        )
    if not query:
        return groups_ok
    return lambda props, modstamp, num: (
        groups_ok(props, modstamp, num) and any(query in (props.get(f) or "").lower() for f in text_fields)
    )


def _sort(store: ObjectStore, body: Mapping[str, object]) -> tuple[str | None, bool]:
    sorts = body.get("sorts") or []
    if not isinstance(sorts, list):
        raise _bad("sorts must be a list.")
    if len(sorts) > 1:
        raise _bad("Only one sort is supported.")
    if not sorts:
        return None, False
    first = sorts[0]
    if isinstance(first, str):
        return first.lstrip("-"), first.startswith("-")
    if isinstance(first, Mapping) and isinstance(first.get("propertyName"), str):
        return str(first["propertyName"]), str(first.get("direction", "ASCENDING")).upper() == "DESCENDING"
    raise _bad("Each sort needs a propertyName.")


def _versions(store: ObjectStore, lag_ms: int, now_ms: int) -> Iterator[Version]:
    if lag_ms <= 0:
        for obj in store.objects.values():
            yield obj, obj.properties, obj.modstamp_ms
        return
    cutoff = now_ms - lag_ms
    for obj in store.objects.values():
        if obj.modstamp_ms <= cutoff:
            yield obj, obj.properties, obj.modstamp_ms
            continue
        for stamp, props in reversed(obj.history):
            if stamp <= cutoff:
                yield obj, props, stamp
                break


@dataclass(frozen=True)
class SearchPage:
    total: int
    rows: list[Version]
    next_after: int | None


def run_search(store: ObjectStore, body: Mapping[str, object], lag_ms: int, now_ms: int) -> SearchPage:
    """Evaluate a search body against ``store`` (caller holds the state lock)."""
    predicate = _compile(store, body)
    sort_name, descending = _sort(store, body)
    limit_raw, after_raw = body.get("limit", 10), body.get("after", 0)
    try:
        limit, after = int(limit_raw or 10), int(after_raw or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError) as exc:
        raise _bad("limit and after must be integers.") from exc
    if limit < 1 or limit > MAX_LIMIT:
        raise _bad(f"limit must be between 1 and {MAX_LIMIT}; got {limit}.")
    if after >= RESULT_CAP:
        raise _bad(
            f"There was a problem with the request. Paging past {RESULT_CAP} results is not supported "
            f"(after={after}); narrow the filters instead."
        )
    end = min(after + limit, RESULT_CAP)
    candidates = _versions(store, lag_ms, now_ms)
    if sort_name == MODIFIED and not descending and store.ordered and lag_ms <= 0:
        total, rows = 0, []
        for version in candidates:
            if predicate(version[1], version[2], version[0].num):
                if after <= total < end:
                    rows.append(version)
                total += 1
    else:
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
        total, rows = len(matches), matches[after:end]
    return SearchPage(total=total, rows=rows, next_after=end if end < total else None)


def _sort_key(store: ObjectStore, name: str) -> Callable[[Version], object]:
    prop = store.registry.properties.get(name)
    get = _getter(name, _converter(prop, name))
    return lambda v: get(v[1], v[2], v[0].num)


def render_row(store: ObjectStore, version: Version, wanted: list[str]) -> dict[str, object]:
    obj, props, _ = version
    names = [n for n in wanted if n in store.registry.properties] if wanted else list(DEFAULTS[store.type])
    selected = {name: props.get(name) for name in (*names, *ALWAYS[store.type])}
    selected[MODIFIED] = props.get(MODIFIED)
    return {
        "id": obj.id,
        "properties": selected,
        "createdAt": iso_millis(obj.created_at),
        "updatedAt": selected.get(MODIFIED) or iso_millis(obj.updated_at),
        "archived": False,
    }
