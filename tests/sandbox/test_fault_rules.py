"""Fault rules as values: validation, files, and when a rule fires (nth, times, probability)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from sandbox import FaultConfigError, FaultRule, load_fault_file
from sandbox.clock import SandboxClock
from sandbox.faultbook import FaultBook
from sandbox.faults import parse_rules


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"kind": "explode"}, "unknown kind"),
        ({"kind": "status", "status": 99}, "needs status 100..599"),
        ({"kind": "status", "status": 500, "crm": "zendesk"}, "crm must be one of"),
        ({"kind": "status", "status": 500, "nth": 0}, "nth counts matching calls from 1"),
        ({"kind": "status", "status": 500, "probability": 1.5}, "probability"),
        ({"kind": "status", "status": 500, "path": "("}, "is not a regex"),
        ({"kind": "partial_batch"}, "needs rows"),
        ({"kind": "locked_rows"}, "needs ids"),
        ({"kind": "search_lag", "seconds": 5, "crm": "salesforce"}, "HubSpot fault"),
        ({"kind": "schema_change", "crm": "hubspot"}, "needs crm, object_name and field_name"),
        ({"kind": "latency"}, "needs latency_ms"),
        ({"status": 500}, "missing 'kind'"),
        ({"kind": "hang", "when": "now"}, "unknown key(s) when"),
        ({"kind": "partial_batch", "rows": 3}, "rows must be a list"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, dict) else None,
)
def test_malformed_rules_are_refused_with_the_problem_named(data: dict[str, object], fragment: str) -> None:
    """Each malformed rule raises FaultConfigError whose message names the problem."""
    with pytest.raises(FaultConfigError) as caught:
        parse_rules([data])
    assert fragment in str(caught.value)


def test_rules_load_from_json_and_toml(tmp_path: Path) -> None:
    """A JSON list, a JSON {"faults": [...]} and TOML [[faults]] give the same rules."""
    rules = [
        {"kind": "status", "crm": "hubspot", "status": 429, "headers": {"Retry-After": "2"}, "times": 3},
        {"kind": "partial_batch", "rows": [0, 2]},
    ]
    (tmp_path / "a.json").write_text(json.dumps(rules))
    (tmp_path / "b.json").write_text(json.dumps({"faults": rules}))
    (tmp_path / "c.toml").write_text(
        '[[faults]]\nkind = "status"\ncrm = "hubspot"\nstatus = 429\ntimes = 3\n'
        'headers = { Retry-After = "2" }\n\n'
        '[[faults]]\nkind = "partial_batch"\nrows = [0, 2]\n'
    )
    loaded = [load_fault_file(tmp_path / name) for name in ("a.json", "b.json", "c.toml")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0][1].rows == (0, 2) and loaded[0][0].headers == {"Retry-After": "2"}
    assert [rule.to_dict() for rule in loaded[0]] == rules


def _fires(rule: FaultRule, calls: int, path: str = "/crm/v3/objects/deals") -> list[bool]:
    book = FaultBook(seed=7)
    book.add([rule])
    return [bool(book.consult("hubspot", "GET", path).kinds) for _ in range(calls)]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FaultRule(kind="hang"), [True] * 5),
        (FaultRule(kind="hang", times=2), [True, True, False, False, False]),
        (FaultRule(kind="hang", nth=3), [False, False, True, False, False]),
        (FaultRule(kind="hang", nth=2, times=3), [False, True, True, True, False]),
        (FaultRule(kind="session_expiry", after_calls=3), [False, False, False, True, False]),
        (
            FaultRule(kind="schema_change", crm="hubspot", object_name="deals", field_name="x"),
            [True] + [False] * 4,
        ),
        (FaultRule(kind="hang", crm="salesforce"), [False] * 5),
        (FaultRule(kind="hang", method="POST"), [False] * 5),
    ],
    ids=[
        "unlimited",
        "times",
        "nth-once",
        "nth-then-times",
        "after-calls",
        "one-shot",
        "other-crm",
        "other-method",
    ],
)
def test_which_matching_calls_a_rule_fires_on(rule: FaultRule, expected: list[bool]) -> None:
    """nth picks the first firing call; times bounds them; nth alone and one-shot kinds fire once."""
    assert _fires(rule, 5) == expected


def test_path_is_a_regex_searched_in_the_path() -> None:
    """A rule with path fires only on matching paths and counts only those calls."""
    rule = FaultRule(kind="hang", path=r"/search$", nth=2)
    book = FaultBook(seed=1)
    book.add([rule])
    seen = [
        bool(book.consult("hubspot", "POST", p).kinds) for p in ("/a/search", "/a", "/a/search", "/a/search")
    ]
    assert seen == [False, False, True, False]


def test_probability_is_seeded_and_roughly_honoured() -> None:
    """probability=0.3 fires on about 30% of calls, the same calls for the same seed."""
    rule = FaultRule(kind="hang", probability=0.3)
    first, second = _fires(rule, 1000), _fires(rule, 1000)
    assert first == second
    assert 200 < sum(first) < 400


def test_locked_rows_count_attempts_per_record() -> None:
    """Each listed id fails for `attempts` write attempts; other ids never do."""
    book = FaultBook(seed=1)
    book.add([FaultRule(kind="locked_rows", ids=("a", "b"), attempts=2)])
    outcomes = []
    for _ in range(3):
        firing = book.consult("salesforce", "PATCH", "/services/data/v59.0/composite/sobjects")
        outcomes.append((firing.take_lock("a"), firing.take_lock("b"), firing.take_lock("c")))
    assert outcomes == [(True, True, False), (True, True, False), (False, False, False)]
    assert not book.consult("salesforce", "GET", "/services/data/v59.0/sobjects/Task/a").take_lock("a")


def test_the_clock_advances_sets_and_freezes() -> None:
    """advance/set move the sandbox clock; frozen, it stands still; times are ms-precise and UTC."""
    ticks = iter([0.0, 0.0, 5.0, 5.0, 5.0, 9.0])
    clock = SandboxClock(start=parse_iso("2026-03-02T09:00:00.123456Z"), monotonic=lambda: next(ticks))
    assert clock.now().isoformat() == "2026-03-02T09:00:00.123000+00:00"
    clock.freeze()
    assert clock.advance(60).isoformat() == "2026-03-02T09:01:05.123000+00:00"
    clock.set(parse_iso("2027-01-01T00:00:00Z"))
    assert clock.now().isoformat() == "2027-01-01T00:00:00+00:00"
    with pytest.raises(ValueError, match="tz-aware"):
        SandboxClock(start=parse_iso("2026-01-01T00:00:00Z").replace(tzinfo=None))


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
