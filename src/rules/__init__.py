"""Pure qualification rules: deals, criteria, frameworks and assessments. No I/O, no clock reads."""

from rules.checks import DEFAULT_PLACEHOLDERS, Check, CheckKind
from rules.evaluate import evaluate
from rules.framework import Criterion, Framework, FrameworkError, PocMatcher, Scope, build_framework
from rules.framework_loader import framework_from_mapping, parse_check
from rules.model import CANONICAL_FIELDS, Assessment, Deal, DealFlags, Status, Value

__all__ = [
    "CANONICAL_FIELDS",
    "DEFAULT_PLACEHOLDERS",
    "Assessment",
    "Check",
    "CheckKind",
    "Criterion",
    "Deal",
    "DealFlags",
    "Framework",
    "FrameworkError",
    "PocMatcher",
    "Scope",
    "Status",
    "Value",
    "build_framework",
    "evaluate",
    "framework_from_mapping",
    "parse_check",
]
