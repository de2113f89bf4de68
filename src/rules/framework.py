"""Frameworks: named criteria, the stage order that gates them, POC detection and the scope filter.

Frameworks are data (config/frameworks/*.toml); `framework_from_mapping` validates a parsed file and
reports every problem at once, each with its key, so a typo never ships a silently weaker rule set.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date

from rules.checks import FIXED_VERDICTS, Check, Verdict, compile_checks
from rules.dates import DEFAULT_DATE_RULES, DateRules
from rules.errors import CONFIG, BantSyncError
from rules.model import CANONICAL_FIELDS, Deal, Gap, Value, new_gap
from rules.snooze import DEFAULT_SNOOZE_RULES, SnoozeRules
from rules.text import DEFAULT_TEXT_RULES, TextRules


class FrameworkError(BantSyncError, ValueError):
    """A framework definition is invalid; `problems` lists every one as "<source>: <key>: <what>"."""

    exit_code = CONFIG
    http_status = 422
    hint = "fix the framework file (or choose another with `framework = ...`)"

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid framework {source} ({len(problems)} problem(s)):\n{lines}")


@dataclass(frozen=True, slots=True)
class Criterion:
    """One qualification criterion: reads `field` of the deal, met when any of `checks` passes."""

    name: str
    label: str
    field: str
    checks: tuple[Check, ...]
    required_from_stage: str | None = None
    weight: float = 1.0
    hint: str = ""
    judge: Callable[[Value, date], Verdict] = dataclasses.field(
        default=lambda value, today: None, compare=False, repr=False
    )
    read: Callable[[Deal], Value] = dataclasses.field(default=lambda deal: None, compare=False, repr=False)
    _fixed_gaps: Mapping[str, Gap] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def gap(self, verdict: str) -> Gap:
        """The Gap for a failed verdict. Those that do not depend on the value (the common "missing" and
        "blank") are built once per criterion: an assessment allocates only what it must."""
        fixed = self._fixed_gaps.get(verdict)
        if fixed is not None:
            return fixed
        return new_gap(self.name, self.label, self.hint, self.field, f"{self.label}: {verdict}")


def field_reader(field_name: str) -> Callable[[Deal], Value]:
    """`deal -> value of field_name` without deal.value()'s per-call dispatch (canonical or extra)."""
    if field_name in CANONICAL_FIELDS:
        getter: Callable[[Deal], Value] = operator.attrgetter(field_name)
        return getter

    def extra(deal: Deal) -> Value:
        return deal.extra.get(field_name)

    return extra


@dataclass(frozen=True, slots=True)
class PocMatcher:
    """A deal is a POC when any rule matches: its type, its stage, or its name."""

    deal_types: frozenset[str] = frozenset()
    stages: frozenset[str] = frozenset()
    name_pattern: re.Pattern[str] | None = None

    def matches(self, deal: Deal) -> bool:
        if deal.deal_type is not None and deal.deal_type.strip().lower() in self.deal_types:
            return True
        if deal.stage is not None and deal.stage.strip().lower() in self.stages:
            return True
        return bool(self.name_pattern and deal.name and self.name_pattern.search(deal.name))


@dataclass(frozen=True, slots=True)
class Scope:
    """Deals outside the scope are `not_evaluated`. Empty `pipelines` means every pipeline."""

    pipelines: frozenset[str] = frozenset()
    exclude_stages: frozenset[str] = frozenset()
    exclude_deal_types: frozenset[str] = frozenset()

    def excludes(self, deal: Deal) -> bool:
        if self.pipelines and (deal.pipeline or "").lower() not in self.pipelines:
            return True
        if deal.stage is not None and deal.stage.lower() in self.exclude_stages:
            return True
        return deal.deal_type is not None and deal.deal_type.lower() in self.exclude_deal_types


@dataclass(frozen=True, slots=True)
class Framework:
    """A qualification framework. `stage_order` lists stages in pipeline order (compared case-insensitively);
    a deal at a stage not in the order is held to every criterion, so a missing stage never weakens rules."""

    name: str
    criteria: tuple[Criterion, ...]
    stage_order: tuple[str, ...] = ()
    poc: PocMatcher = PocMatcher()
    scope: Scope = Scope()
    poc_requires_all: bool = True
    qualify_out_after_days: int = 30
    text: TextRules = DEFAULT_TEXT_RULES
    dates: DateRules = DEFAULT_DATE_RULES
    description: str = ""
    snooze: SnoozeRules = DEFAULT_SNOOZE_RULES
    _required_by_stage: Mapping[str, tuple[Criterion, ...]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )
    total_weight: float = dataclasses.field(default=0.0, compare=False, repr=False)

    def __post_init__(self) -> None:
        """Compile every criterion's checks with this framework's text and date rules, and the per-stage
        requirement table, however the Framework was built: one built directly (not through
        build_framework) used to judge every criterion met."""
        compiled = tuple(_compiled(c, self.text, self.dates) for c in self.criteria)
        positions = {stage.lower(): index for index, stage in enumerate(self.stage_order)}
        required: dict[str, tuple[Criterion, ...]] = {}
        for stage, position in positions.items():
            required[stage] = tuple(
                c
                for c in compiled
                if c.required_from_stage is None
                or positions.get(c.required_from_stage.lower(), -1) <= position
            )
        object.__setattr__(self, "criteria", compiled)
        object.__setattr__(self, "_required_by_stage", required)
        object.__setattr__(self, "total_weight", sum(c.weight for c in compiled))

    def required_at(self, stage: str | None) -> tuple[Criterion, ...]:
        """Criteria required for an ordinary deal at `stage`."""
        if stage is None:
            return self.criteria
        return self._required_by_stage.get(stage.strip().lower(), self.criteria)

    @property
    def placeholders(self) -> frozenset[str]:
        return self.text.placeholders

    def criterion(self, name: str) -> Criterion:
        for criterion in self.criteria:
            if criterion.name == name:
                return criterion
        raise KeyError(name)


def build_framework(
    name: str,
    criteria: tuple[Criterion, ...],
    *,
    stage_order: tuple[str, ...] = (),
    poc: PocMatcher | None = None,
    scope: Scope | None = None,
    poc_requires_all: bool = True,
    qualify_out_after_days: int = 30,
    text: TextRules = DEFAULT_TEXT_RULES,
    dates: DateRules = DEFAULT_DATE_RULES,
    placeholders: frozenset[str] | None = None,
    description: str = "",
    snooze: SnoozeRules = DEFAULT_SNOOZE_RULES,
) -> Framework:
    """Assemble a Framework, compiling each criterion's checks and the per-stage requirement table once.
    `placeholders`, when given, replaces the placeholder list of `text`."""
    if placeholders is not None:
        text = dataclasses.replace(text, placeholders=placeholders)
    return Framework(
        name=name,
        criteria=criteria,
        stage_order=stage_order,
        poc=poc or PocMatcher(),
        scope=scope or Scope(),
        poc_requires_all=poc_requires_all,
        qualify_out_after_days=qualify_out_after_days,
        text=text,
        dates=dates,
        description=description,
        snooze=snooze,
    )


def _compiled(c: Criterion, text: TextRules, dates: DateRules) -> Criterion:
    """The criterion with its checks compiled under these rules, its field reader and its fixed gaps."""
    return Criterion(
        name=c.name,
        label=c.label,
        field=c.field,
        checks=c.checks,
        required_from_stage=c.required_from_stage,
        weight=c.weight,
        hint=c.hint,
        judge=compile_checks(c.checks, text, dates),
        read=field_reader(c.field),
        _fixed_gaps={v: Gap(c.name, c.label, c.hint, c.field, f"{c.label}: {v}") for v in FIXED_VERDICTS},
    )
