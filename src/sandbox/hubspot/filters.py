"""Compiling HubSpot search filter groups into fast predicates over ``(properties, modstamp_ms, id_num)``.

Filter groups are ORed, filters inside a group ANDed; at most 5 groups of 6 filters, 18 in all (HubSpot
docs, "CRM search: filter search results"). String comparisons are case-insensitive; datetimes compare as
epoch milliseconds (ISO or millisecond values are both accepted).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from sandbox.hubspot.errors import HsError
from sandbox.hubspot.properties import PropertyDef, epoch_ms, parse_instant
from sandbox.hubspot.schema import MODIFIED
from sandbox.hubspot.store import ObjectStore, Props

Predicate = Callable[[Props, int, int], bool]
Getter = Callable[[Props, int, int], object]
_TEXT_FIELDS = {"deals": ("dealname",), "tasks": ("hs_task_subject", "hs_task_body")}
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "LT": operator.lt,
    "LTE": operator.le,
    "GT": operator.gt,
    "GTE": operator.ge,
}


def bad_request(message: str) -> HsError:
    return HsError("VALIDATION_ERROR", message)


def converter(prop: PropertyDef | None, name: str) -> Callable[[str], object]:
    kind = "number" if name == "hs_object_id" else (prop.type if prop else "string")
    if kind == "number":
        return float
    if kind in {"datetime", "date"}:
        return lambda text: epoch_ms(parse_instant(text))
    return str.lower


def getter(name: str, convert: Callable[[str], object]) -> Getter:
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
    op = str(spec.get("operator", "")).upper()
    if not isinstance(name, str) or not name:
        raise bad_request("Each filter needs a propertyName.")
    prop = store.registry.properties.get(name)
    if prop is None:
        raise bad_request(
            f"There was a problem with the request: property {name} does not exist on {store.type}."
        )
    convert = converter(prop, name)
    get = getter(name, convert)

    def value(key: str) -> object:
        raw = spec.get(key)
        if raw is None or isinstance(raw, dict | list):
            raise bad_request(f"Filter on {name} with operator {op} needs '{key}'.")
        try:
            return convert(str(raw).lower() if isinstance(raw, bool) else str(raw))
        except ValueError as exc:
            raise bad_request(f"Filter value {raw!r} is not valid for {name}.") from exc

    if op in {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}:
        want = op == "HAS_PROPERTY"
        return lambda p, m, n: (get(p, m, n) is not None) is want
    if op in {"IN", "NOT_IN"}:
        raw_values = spec.get("values")
        if not isinstance(raw_values, list):
            raise bad_request(f"Filter on {name} with operator {op} needs 'values'.")
        members = {convert(str(v)) for v in raw_values}
        if op == "IN":
            return lambda p, m, n: get(p, m, n) in members
        return lambda p, m, n: get(p, m, n) not in members
    if op in {"CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"}:
        token = str(spec.get("value", "")).strip("*").lower()
        want = op == "CONTAINS_TOKEN"
        return lambda p, m, n: (token in str(p.get(name) or "").lower()) is want
    if op == "BETWEEN":
        low, high = value("value"), value("highValue")
        return lambda p, m, n: (v := get(p, m, n)) is not None and low <= v <= high  # type: ignore[operator]
    target = value("value")
    if name == MODIFIED and op in _ORDER and isinstance(target, int):
        compare = _ORDER[op]
        return lambda p, m, n: compare(m, target)
    if op == "EQ":
        return lambda p, m, n: get(p, m, n) == target
    if op == "NEQ":
        return lambda p, m, n: get(p, m, n) != target
    if op in _ORDER:
        ordered = _ORDER[op]
        return lambda p, m, n: (v := get(p, m, n)) is not None and ordered(v, target)
    raise bad_request(f"Unknown filter operator {op!r}.")


def _all(parts: list[Predicate]) -> Predicate:
    if not parts:
        return lambda p, m, n: True
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        first, second = parts
        return lambda p, m, n: first(p, m, n) and second(p, m, n)
    return lambda p, m, n: all(f(p, m, n) for f in parts)


def compile_search(store: ObjectStore, body: Mapping[str, object]) -> Predicate:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise bad_request("filterGroups must be a list.")
    if len(groups) > 5:
        raise bad_request("Too many filter groups: the limit is 5.")
    compiled: list[Predicate] = []
    total = 0
    for group in groups:
        filters = group.get("filters") if isinstance(group, Mapping) else None
        if not isinstance(filters, list):
            raise bad_request("Each filter group needs a list of filters.")
        if len(filters) > 6:
            raise bad_request("Too many filters in a group: the limit is 6.")
        total += len(filters)
        compiled.append(_all([_compile_filter(store, f) for f in filters if isinstance(f, Mapping)]))
    if total > 18:
        raise bad_request("Too many filters: the limit is 18 in all.")
    if len(compiled) <= 1:
        matches = compiled[0] if compiled else _all([])
    else:
        matches = lambda p, m, n: any(g(p, m, n) for g in compiled)  # noqa: E731
    query = str(body.get("query") or "").strip().lower()
    if not query:
        return matches
    fields = _TEXT_FIELDS.get(store.type, ())
    return lambda p, m, n: matches(p, m, n) and any(query in (p.get(f) or "").lower() for f in fields)
