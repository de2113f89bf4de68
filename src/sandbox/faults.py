"""Fault rules: what can go wrong, on which calls, how often.

A rule matches CRM calls by ``crm``, ``method`` and ``path`` (a regex searched in the URL path). Among the
matching calls it fires from the ``nth`` one (default the first) for ``times`` calls (default: unlimited, but
once when ``nth`` is given and for the one-shot kinds ``session_expiry`` and ``schema_change``), each time
with ``probability`` (seeded, so runs repeat). Kinds and their parameters:

=================  ==========================================================================================
``status``         answer ``status`` with ``body`` (default: the CRM's envelope for it) and ``headers``
``error_code``     answer with the CRM error ``error_code`` (+ ``message``) at its usual HTTP status
``latency``        wait ``latency_ms`` before handling
``hang``           never answer; hold the socket until the client gives up or the sandbox stops
``partial_batch``  rows ``rows`` (0-based indexes) of a collection/batch write fail with ``error_code``
``locked_rows``    record ``ids`` fail with UNABLE_TO_LOCK_ROW (or HubSpot's 409) for ``attempts`` writes
``commit_then_drop`` apply the call, then close the socket without answering
``search_lag``     HubSpot search sees changes only ``seconds`` (sandbox clock) after they happen
``session_expiry`` after ``after_calls`` matching calls, revoke every token until a new login / refresh
``schema_change``  delete ``field_name`` of ``object_name`` (or rename it to ``rename_to``)
=================  ==========================================================================================
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path

KINDS = (
    "status",
    "error_code",
    "latency",
    "hang",
    "partial_batch",
    "locked_rows",
    "commit_then_drop",
    "search_lag",
    "session_expiry",
    "schema_change",
)
ONE_SHOT_KINDS = frozenset({"session_expiry", "schema_change"})
CRMS = ("salesforce", "hubspot")

_WRITE_PATHS = (
    r"/composite/sobjects|/sobjects/[^/]+(/[^/]+){0,2}$"
    r"|/batch/(update|create|upsert)$|/crm/v3/objects/[^/]+(/[^/]+)?$"
)
DEFAULT_PATHS: Mapping[str, str] = {
    "partial_batch": r"/composite/sobjects|/batch/(update|create|upsert)$",
    "locked_rows": _WRITE_PATHS,
    "search_lag": r"/search$",
}
DEFAULT_METHODS: Mapping[str, str] = {"locked_rows": "WRITE", "partial_batch": "WRITE"}


class FaultConfigError(ValueError):
    """A fault rule is malformed; the message names the rule and the problem."""


@dataclass(frozen=True)
class FaultRule:
    kind: str
    crm: str | None = None
    method: str | None = None
    path: str | None = None
    nth: int | None = None
    times: int | None = None
    probability: float = 1.0
    status: int | None = None
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)
    error_code: str | None = None
    message: str | None = None
    latency_ms: int = 0
    rows: tuple[int, ...] = ()
    ids: tuple[str, ...] = ()
    attempts: int = 1
    seconds: float = 0.0
    after_calls: int | None = None
    object_name: str | None = None
    field_name: str | None = None
    rename_to: str | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise FaultConfigError(f"fault rule {self.kind!r}: {problem}")
        if self.path is not None:
            try:
                re.compile(self.path)
            except re.error as exc:
                raise FaultConfigError(
                    f"fault rule {self.kind!r}: path {self.path!r} is not a regex: {exc}"
                ) from exc

    def _problem(self) -> str | None:
        checks: list[tuple[bool, str]] = [
            (self.kind not in KINDS, f"unknown kind (expected one of {', '.join(KINDS)})"),
            (self.crm is not None and self.crm not in CRMS, f"crm must be one of {', '.join(CRMS)}"),
            (self.nth is not None and self.nth < 1, "nth counts matching calls from 1"),
            (self.times is not None and self.times < 1, "times must be at least 1"),
            (not 0.0 <= self.probability <= 1.0, "probability must be between 0 and 1"),
            (
                self.kind == "status" and not (self.status and 100 <= self.status <= 599),
                "needs status 100..599",
            ),
            (self.kind == "error_code" and not self.error_code, "needs error_code"),
            (self.kind == "latency" and self.latency_ms <= 0, "needs latency_ms > 0"),
            (self.kind == "partial_batch" and not self.rows, "needs rows (0-based indexes that fail)"),
            (self.kind == "locked_rows" and not self.ids, "needs ids (record ids to lock)"),
            (self.attempts < 1, "attempts must be at least 1"),
            (self.kind == "search_lag" and self.seconds <= 0, "needs seconds > 0"),
            (self.kind == "search_lag" and self.crm == "salesforce", "search_lag is a HubSpot fault"),
            (self.kind == "session_expiry" and (self.after_calls or 0) < 0, "after_calls must be >= 0"),
            (
                self.kind == "schema_change" and not (self.crm and self.object_name and self.field_name),
                "needs crm, object_name and field_name",
            ),
        ]
        return next((message for failed, message in checks if failed), None)

    @property
    def first_call(self) -> int:
        """The 1-based matching call from which the rule fires."""
        if self.nth is not None:
            return self.nth
        if self.kind == "session_expiry":
            return (self.after_calls or 0) + 1
        return 1

    @property
    def max_fires(self) -> int | None:
        """How many times the rule fires; None is unlimited."""
        if self.times is not None:
            return self.times
        if self.nth is not None or self.kind in ONE_SHOT_KINDS:
            return 1
        return None

    @property
    def path_pattern(self) -> str | None:
        return self.path if self.path is not None else DEFAULT_PATHS.get(self.kind)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value != spec.default and not (spec.name == "headers" and not value):
                out[spec.name] = list(value) if isinstance(value, tuple) else value
        out["kind"] = self.kind
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object], where: str = "fault rule") -> FaultRule:
        """Build a rule from JSON/TOML data, naming unknown keys and wrong types."""
        known = {spec.name for spec in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FaultConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
        if "kind" not in data:
            raise FaultConfigError(f"{where}: missing 'kind'")
        values = dict(data)
        for name in ("rows", "ids"):
            if name in values:
                raw = values[name]
                if not isinstance(raw, list | tuple):
                    raise FaultConfigError(f"{where}: {name} must be a list")
                values[name] = tuple(int(v) if name == "rows" else str(v) for v in raw)
        try:
            rule = cls(**values)  # type: ignore[arg-type]
        except FaultConfigError as exc:
            raise FaultConfigError(f"{where}: {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise FaultConfigError(f"{where}: {exc}") from exc
        return rule


def parse_rules(data: object, where: str = "faults") -> tuple[FaultRule, ...]:
    """Rules from a list, a single rule object, or ``{"faults": [...]}``."""
    if isinstance(data, Mapping) and "faults" in data:
        data = data["faults"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, Sequence) or isinstance(data, str | bytes):
        raise FaultConfigError(f"{where}: expected a list of fault rules")
    rules = []
    for index, item in enumerate(data, start=1):
        if not isinstance(item, Mapping):
            raise FaultConfigError(f"{where}: rule {index} is not an object")
        rules.append(FaultRule.from_dict(item, where=f"{where}: rule {index}"))
    return tuple(rules)


def load_fault_file(path: Path) -> tuple[FaultRule, ...]:
    """Read a JSON list of rules, or TOML with ``[[faults]]`` tables."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FaultConfigError(f"fault file {path}: cannot read it ({exc.strerror})") from exc
    try:
        data: object = tomllib.loads(text) if path.suffix.lower() == ".toml" else json.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if path.suffix.lower() == ".toml" else "JSON"
        raise FaultConfigError(f"fault file {path}: not valid {kind} ({exc})") from exc
    return parse_rules(data, where=f"fault file {path}")
