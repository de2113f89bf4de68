"""The live fault rules: counting matching calls, deciding which rules fire, tracking locked rows."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from sandbox.faults import DEFAULT_METHODS, FaultRule

WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
RESPONSE_KINDS = ("hang", "status", "error_code")


@dataclass
class _Armed:
    rule: FaultRule
    pattern: re.Pattern[str] | None
    matched: int = 0
    fired: int = 0
    locks_left: dict[str, int] = field(default_factory=dict)

    def matches(self, crm: str, method: str, path: str) -> bool:
        rule = self.rule
        if rule.crm is not None and rule.crm != crm:
            return False
        wanted = rule.method.upper() if rule.method else DEFAULT_METHODS.get(rule.kind)
        if wanted == "WRITE":
            if method not in WRITE_METHODS:
                return False
        elif wanted is not None and wanted != method:
            return False
        return self.pattern is None or self.pattern.search(path) is not None


@dataclass
class Firing:
    """The rules that fired for one call, grouped by what they do to it."""

    crm: str
    response: FaultRule | None = None
    latency_ms: int = 0
    commit_then_drop: bool = False
    partial: list[FaultRule] = field(default_factory=list)
    effects: list[FaultRule] = field(default_factory=list)
    search_lag_s: float = 0.0
    kinds: list[str] = field(default_factory=list)
    _locks: list[_Armed] = field(default_factory=list)
    _lock: threading.Lock | None = None

    def failing_rows(self) -> dict[int, FaultRule]:
        """Row index -> the partial_batch rule that makes it fail."""
        out: dict[int, FaultRule] = {}
        for rule in self.partial:
            for row in rule.rows:
                out.setdefault(row, rule)
        return out

    def take_lock(self, record_id: str) -> bool:
        """True when the record is locked for this write attempt (spending one of its locked attempts)."""
        if not self._locks or self._lock is None:
            return False
        with self._lock:
            for armed in self._locks:
                left = armed.locks_left.get(record_id, 0)
                if left > 0:
                    armed.locks_left[record_id] = left - 1
                    if "locked_rows" not in self.kinds:
                        self.kinds.append("locked_rows")
                    return True
        return False


class FaultBook:
    """Thread-safe store of armed rules; ``consult`` is called once per CRM call."""

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def add(self, rules: Iterable[FaultRule]) -> None:
        with self._lock:
            for rule in rules:
                pattern = rule.path_pattern
                armed = _Armed(rule=rule, pattern=re.compile(pattern) if pattern else None)
                if rule.kind == "locked_rows":
                    armed.locks_left = dict.fromkeys(rule.ids, rule.attempts)
                self._armed.append(armed)

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()
            self._rng = random.Random(self._seed)

    def rules(self) -> list[FaultRule]:
        with self._lock:
            return [armed.rule for armed in self._armed]

    def consult(self, crm: str, method: str, path: str) -> Firing:
        firing = Firing(crm=crm, _lock=self._lock)
        with self._lock:
            for armed in self._armed:
                if not armed.matches(crm, method, path):
                    continue
                if armed.rule.kind == "locked_rows":
                    firing._locks.append(armed)
                    continue
                armed.matched += 1
                if not self._fires(armed):
                    continue
                armed.fired += 1
                self._collect(firing, armed.rule)
        return firing

    def _fires(self, armed: _Armed) -> bool:
        rule = armed.rule
        if armed.matched < rule.first_call:
            return False
        limit = rule.max_fires
        if limit is not None and armed.fired >= limit:
            return False
        return rule.probability >= 1.0 or self._rng.random() < rule.probability

    @staticmethod
    def _collect(firing: Firing, rule: FaultRule) -> None:
        firing.kinds.append(rule.kind)
        if rule.kind in RESPONSE_KINDS:
            if firing.response is None:
                firing.response = rule
        elif rule.kind == "latency":
            firing.latency_ms += rule.latency_ms
        elif rule.kind == "commit_then_drop":
            firing.commit_then_drop = True
        elif rule.kind == "partial_batch":
            firing.partial.append(rule)
        elif rule.kind == "search_lag":
            firing.search_lag_s = max(firing.search_lag_s, rule.seconds)
        else:
            firing.effects.append(rule)
