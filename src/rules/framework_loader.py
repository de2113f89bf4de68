"""Validate a parsed framework definition (a TOML document as a mapping) into a Framework.

Pure: the caller reads the file; this names `source` in every problem so the user knows where to look.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from rules.checks import Check, CheckKind
from rules.dates import DEFAULT_DATE_RULES, DateForm, DateRules, SlashOrder
from rules.errors import did_you_mean
from rules.framework import Criterion, Framework, FrameworkError, PocMatcher, Scope, build_framework
from rules.snooze import DEFAULT_SNOOZE_RULES, SnoozeRules
from rules.text import DEFAULT_TEXT_RULES, TextRules, normalise

_TOP_KEYS = (
    "name",
    "description",
    "stage_order",
    "qualify_out_after_days",
    "placeholders",
    "poc_requires_all",
    "poc",
    "scope",
    "text",
    "dates",
    "snooze",
    "criteria",
)
_CRITERION_KEYS = ("name", "label", "field", "checks", "required_from_stage", "weight", "hint")
_POC_KEYS = ("deal_types", "stages", "name_pattern")
_SCOPE_KEYS = ("pipelines", "exclude_stages", "exclude_deal_types")
_TEXT_KEYS = (
    "placeholders",
    "extra_placeholders",
    "negations",
    "extra_negations",
    "fillers",
    "extra_fillers",
    "reject_repeated_characters",
    "require_letters",
)
_DATES_KEYS = ("formats", "slash_order")
_SNOOZE_KEYS = ("enabled", "max_days", "allow_poc", "min_reason_length")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CHECK = re.compile(r"^(?P<kind>[a-z_]+)(:(?P<arg>.*))?$", re.DOTALL)


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


def _phrase_list(value: Any, key: str, problems: _Problems, symbols_ok: bool) -> tuple[str, ...]:
    """A list of phrases; a blank one, or (unless `symbols_ok`) one with no letter or digit, is reported."""
    phrases = problems.strings(value, key)
    for position, phrase in enumerate(phrases):
        if not phrase.strip():
            problems.add(f"{key}[{position}]", "is blank")
        elif not symbols_ok and not normalise(phrase):
            problems.add(
                f"{key}[{position}]",
                f"{phrase!r} has no letter or digit to match; list it under placeholders",
            )
    return tuple(p.strip() for p in phrases if p.strip())


def _phrases(
    table: Mapping[str, Any],
    name: str,
    default: Iterable[str],
    problems: _Problems,
    *,
    key: str,
    symbols_ok: bool = False,
) -> frozenset[str]:
    """`name` replaces the default list when set ([] empties it); `extra_<name>` adds to the list."""
    replaced = table.get(name)
    listed = default if replaced is None else _phrase_list(replaced, key, problems, symbols_ok)
    extra = _phrase_list(table.get(f"extra_{name}"), f"text.extra_{name}", problems, symbols_ok)
    return frozenset(listed) | frozenset(extra)


def _flag(table: Mapping[str, Any], key: str, problems: _Problems) -> bool:
    value = table.get(key.removeprefix("text."), True)
    if not isinstance(value, bool):
        problems.add(key, "must be true or false")
        return True
    return value


def _text_rules(data: Mapping[str, Any], problems: _Problems) -> TextRules:
    """The `[text]` table over the defaults. A top-level `placeholders` list (the older spelling) still
    replaces the default placeholders."""
    table = _table(data, "text", _TEXT_KEYS, problems)
    placeholders_key = "text.placeholders"
    if data.get("placeholders") is not None:
        if table.get("placeholders") is not None:
            problems.add("placeholders", "set both here and in [text]: keep the one in [text]")
        else:
            table = {**table, "placeholders": data["placeholders"]}
            placeholders_key = "placeholders"
    default = DEFAULT_TEXT_RULES
    return TextRules(
        placeholders=_phrases(
            table, "placeholders", default.placeholders, problems, key=placeholders_key, symbols_ok=True
        ),
        negations=_phrases(table, "negations", default.negations, problems, key="text.negations"),
        fillers=_phrases(table, "fillers", default.fillers, problems, key="text.fillers"),
        reject_repeated_characters=_flag(table, "text.reject_repeated_characters", problems),
        require_letters=_flag(table, "text.require_letters", problems),
    )


def _date_rules(data: Mapping[str, Any], problems: _Problems) -> DateRules:
    """The `[dates]` table: which forms besides ISO `date_not_past` reads, and how to read a/b/yyyy."""
    table = _table(data, "dates", _DATES_KEYS, problems)
    known = tuple(form.value for form in DateForm)
    formats = set(DEFAULT_DATE_RULES.formats)
    if table.get("formats") is not None:
        formats = set()
        for position, name in enumerate(problems.strings(table.get("formats"), "dates.formats")):
            if name == "iso":
                continue  # always read; accepted so a list can spell every form out
            if name not in known:
                problems.add(
                    f"dates.formats[{position}]",
                    f"unknown date form {name!r}{did_you_mean(name, known)} (known: iso, {', '.join(known)})",
                )
                continue
            formats.add(DateForm(name))
    order = table.get("slash_order", DEFAULT_DATE_RULES.slash_order.value)
    orders = tuple(o.value for o in SlashOrder)
    if order not in orders:
        hint = did_you_mean(order, orders) if isinstance(order, str) else ""
        problems.add("dates.slash_order", f"must be 'month_first' or 'day_first'{hint}")
        order = DEFAULT_DATE_RULES.slash_order.value
    return DateRules(formats=frozenset(formats), slash_order=SlashOrder(order))


def _snooze_rules(data: Mapping[str, Any], problems: _Problems) -> SnoozeRules:
    """The `[snooze]` table over the defaults (30 days at most, no POCs, a reason of 10 characters)."""
    table = _table(data, "snooze", _SNOOZE_KEYS, problems)
    default = DEFAULT_SNOOZE_RULES
    flags: dict[str, bool] = {}
    for key in ("enabled", "allow_poc"):
        value = table.get(key, getattr(default, key))
        if not isinstance(value, bool):
            problems.add(f"snooze.{key}", "must be true or false")
            value = getattr(default, key)
        flags[key] = value
    numbers: dict[str, int] = {}
    for key, least in (("max_days", 1), ("min_reason_length", 0)):
        value = table.get(key, getattr(default, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            problems.add(f"snooze.{key}", f"must be a whole number, at least {least}")
            value = getattr(default, key)
        numbers[key] = value
    return SnoozeRules(
        enabled=flags["enabled"],
        max_days=numbers["max_days"],
        allow_poc=flags["allow_poc"],
        min_reason_length=numbers["min_reason_length"],
    )


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
    text_rules = _text_rules(data, problems)
    date_rules = _date_rules(data, problems)
    snooze_rules = _snooze_rules(data, problems)
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
        text=text_rules,
        dates=date_rules,
        description=description if isinstance(description, str) else "",
        snooze=snooze_rules,
    )
