"""Pure qualification rules: deals, criteria, frameworks and assessments. No I/O, no clock reads."""

from rules.checks import Check, CheckKind
from rules.dates import DEFAULT_DATE_RULES, DateForm, DateRules, SlashOrder
from rules.evaluate import evaluate
from rules.framework import Criterion, Framework, FrameworkError, PocMatcher, Scope, build_framework
from rules.framework_loader import framework_from_mapping, parse_check
from rules.model import CANONICAL_FIELDS, Assessment, Deal, DealFlags, Gap, Status, Value
from rules.snooze import Snooze, SnoozeRules, SnoozeState
from rules.text import DEFAULT_NEGATIONS, DEFAULT_PLACEHOLDERS, DEFAULT_TEXT_RULES, TextRules

__all__ = [
    "CANONICAL_FIELDS",
    "DEFAULT_DATE_RULES",
    "DEFAULT_NEGATIONS",
    "DEFAULT_PLACEHOLDERS",
    "DEFAULT_TEXT_RULES",
    "Assessment",
    "Check",
    "CheckKind",
    "Criterion",
    "DateForm",
    "DateRules",
    "Deal",
    "DealFlags",
    "Framework",
    "FrameworkError",
    "Gap",
    "PocMatcher",
    "Scope",
    "SlashOrder",
    "Snooze",
    "SnoozeRules",
    "SnoozeState",
    "Status",
    "TextRules",
    "Value",
    "build_framework",
    "evaluate",
    "framework_from_mapping",
    "parse_check",
]
