"""Validate a parsed framework definition (a TOML document as a mapping) into a Framework.

Pure: the caller reads the file; this names `source` in every problem so the user knows where to look.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from rules.checks import DEFAULT_PLACEHOLDERS, Check, CheckKind
from rules.framework import Criterion, Framework, FrameworkError, PocMatcher, Scope, build_framework

_TOP_KEYS = (
    "name",
    "description",
    "stage_order",
    "qualify_out_after_days",
    "placeholders",
    "poc_requires_all",
    "poc",
    "scope",
    "criteria",
)
_CRITERION_KEYS = ("name", "label", "field", "checks", "required_from_stage", "weight", "hint")
_POC_KEYS = ("deal_types", "stages", "name_pattern")
_SCOPE_KEYS = ("pipelines", "exclude_stages", "exclude_deal_types")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CHECK = re.compile(r"^(?P<kind>[a-z_]+)(:(?P<arg>.*))?$", re.DOTALL)


def did_you_mean(key: str, known: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _Problems:
    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{key}: {message}")

    def unknown_keys(self, table: Mapping[str, Any], known: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in known:
                self.add(f"{prefix}{key}", f"unknown key{did_you_mean(key, known)}")

    def strings(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.add(key, "must be a list of strings")
            return ()
        return tuple(value)


def parse_check(text: str) -> Check:
    """Parse one check as written in a framework file: "present", "min_length:15", "one_of:[a, b]"."""
    match = _CHECK.match(text.strip())
    if not match:
        raise ValueError(f"cannot read check {text!r}")
    kind_name, arg = match["kind"], match["arg"]
    try:
        kind = CheckKind(kind_name)
    except ValueError:
        known = tuple(k.value for k in CheckKind)
        raise ValueError(f"unknown check {kind_name!r}{did_you_mean(kind_name, known)}") from None
    if kind is CheckKind.MIN_LENGTH:
        if arg is None or not arg.strip().isdigit() or int(arg) < 1:
            raise ValueError(f"{text!r}: min_length needs a positive whole number, e.g. 'min_length:15'")
        return Check(kind, length=int(arg))
    if kind is CheckKind.ONE_OF:
        inner = (arg or "").strip().removeprefix("[").removesuffix("]")
        choices = frozenset(c.strip().strip("'\"").lower() for c in inner.split(",") if c.strip())
        if not choices:
            raise ValueError(f"{text!r}: one_of needs choices, e.g. 'one_of:[yes, no]'")
        return Check(kind, choices=choices)
    if arg is not None:
        raise ValueError(f"{text!r}: {kind.value} takes no argument")
    return Check(kind)


def _criterion(raw: Any, index: int, stages: set[str], problems: _Problems) -> Criterion | None:
    key = f"criteria[{index}]"
    if not isinstance(raw, dict):
        problems.add(key, "must be a table with name, field and checks")
        return None
    problems.unknown_keys(raw, _CRITERION_KEYS, f"{key}.")
    name, field_name = raw.get("name"), raw.get("field")
    ok = True
    if not isinstance(name, str) or not _NAME.match(name):
        problems.add(f"{key}.name", "required: lower-case letters, digits and underscores, e.g. 'budget'")
        ok = False
    if not isinstance(field_name, str) or not field_name.strip():
        problems.add(f"{key}.field", "required: the deal field this criterion reads, e.g. 'budget'")
        ok = False
    checks: list[Check] = []
    raw_checks = raw.get("checks")
    if not isinstance(raw_checks, list) or not raw_checks:
        problems.add(f"{key}.checks", "required: a non-empty list such as ['present']")
        ok = False
    else:
        for position, text in enumerate(raw_checks):
            try:
                checks.append(parse_check(str(text)))
            except ValueError as exc:
                problems.add(f"{key}.checks[{position}]", str(exc))
                ok = False
    stage = raw.get("required_from_stage")
    if stage is not None and (not isinstance(stage, str) or stage.lower() not in stages):
        problems.add(f"{key}.required_from_stage", f"{stage!r} is not in stage_order")
        ok = False
    weight = raw.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
        problems.add(f"{key}.weight", "must be a number above 0")
        ok = False
    label, hint = raw.get("label", ""), raw.get("hint", "")
    if not isinstance(label, str) or not isinstance(hint, str):
        problems.add(key, "label and hint must be strings")
        ok = False
    if not ok:
        return None
    assert isinstance(name, str) and isinstance(field_name, str)
    return Criterion(
        name=name,
        label=label or name.replace("_", " ").capitalize(),
        field=field_name.strip(),
        checks=tuple(checks),
        required_from_stage=stage,
        weight=float(weight),
        hint=hint,
    )


def _table(data: Mapping[str, Any], key: str, known: tuple[str, ...], problems: _Problems) -> dict[str, Any]:
    raw = data.get(key, {})
    if not isinstance(raw, dict):
        problems.add(key, "must be a table")
        return {}
    problems.unknown_keys(raw, known, f"{key}.")
    return raw


def framework_from_mapping(data: Mapping[str, Any], source: str) -> Framework:
    """Build a Framework from a parsed definition, or raise FrameworkError listing every problem."""
    problems = _Problems(source)
    problems.unknown_keys(data, _TOP_KEYS, "")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        problems.add("name", "required: the framework's display name, e.g. 'BANT'")
    stage_order = problems.strings(data.get("stage_order"), "stage_order")
    stages = {s.lower() for s in stage_order}
    days = data.get("qualify_out_after_days", 30)
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        problems.add("qualify_out_after_days", "must be a whole number of days, at least 1")
    raw_placeholders = data.get("placeholders")
    placeholders = (
        DEFAULT_PLACEHOLDERS
        if raw_placeholders is None
        else frozenset(p.strip().lower() for p in problems.strings(raw_placeholders, "placeholders"))
    )
    poc_requires_all = data.get("poc_requires_all", True)
    if not isinstance(poc_requires_all, bool):
        problems.add("poc_requires_all", "must be true or false")
    poc_raw = _table(data, "poc", _POC_KEYS, problems)
    pattern = None
    if poc_raw.get("name_pattern"):
        try:
            pattern = re.compile(str(poc_raw["name_pattern"]), re.IGNORECASE)
        except re.error as exc:
            problems.add("poc.name_pattern", f"not a valid regular expression: {exc}")
    poc = PocMatcher(
        deal_types=frozenset(
            s.lower() for s in problems.strings(poc_raw.get("deal_types"), "poc.deal_types")
        ),
        stages=frozenset(s.lower() for s in problems.strings(poc_raw.get("stages"), "poc.stages")),
        name_pattern=pattern,
    )
    scope_raw = _table(data, "scope", _SCOPE_KEYS, problems)
    scope = Scope(
        **{
            key: frozenset(s.lower() for s in problems.strings(scope_raw.get(key), f"scope.{key}"))
            for key in _SCOPE_KEYS
        }
    )
    raw_criteria = data.get("criteria")
    criteria: list[Criterion] = []
    if not isinstance(raw_criteria, list) or not raw_criteria:
        problems.add("criteria", "required: at least one [[criteria]] table")
    else:
        for index, raw in enumerate(raw_criteria):
            criterion = _criterion(raw, index, stages, problems)
            if criterion is not None:
                criteria.append(criterion)
        seen: set[str] = set()
        for criterion in criteria:
            if criterion.name in seen:
                problems.add("criteria", f"name {criterion.name!r} is used twice")
            seen.add(criterion.name)
    if problems.items:
        raise FrameworkError(source, problems.items)
    assert isinstance(name, str) and isinstance(days, int)
    description = data.get("description", "")
    return build_framework(
        name.strip(),
        tuple(criteria),
        stage_order=stage_order,
        poc=poc,
        scope=scope,
        poc_requires_all=bool(poc_requires_all),
        qualify_out_after_days=days,
        placeholders=placeholders,
        description=description if isinstance(description, str) else "",
    )
