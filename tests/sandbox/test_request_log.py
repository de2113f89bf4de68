"""The request log counts every call exactly while its memory stays bounded whatever the bodies weigh."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime

from sandbox.http import Request
from sandbox.requestlog import RequestLog

WHEN = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _batch(rows: int) -> Request:
    """A HubSpot batch update of ``rows`` deals, about 150 bytes a row."""
    inputs = [
        {"id": str(10_000_000_000 + i), "properties": {"bant_missing": "need,timing" * 5}}
        for i in range(rows)
    ]
    body = json.dumps({"inputs": inputs}).encode()
    return Request(
        "POST", "/crm/v3/objects/deals/batch/update", headers={"content-type": "application/json"}, body=body
    )


def _growth(log: RequestLog, request: Request, calls: int) -> int:
    """Bytes the log holds after ``calls`` recordings of ``request``."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(calls):
            log.record("hubspot", request, 200, WHEN)
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_memory_per_call_does_not_grow_with_body_size_and_counts_stay_exact() -> None:
    """1,000 calls with 100-row bodies (11 KB each) cost the log about what 1,000 one-row calls cost: the
    bodies are cut to their head, and only the newest entries keep even that."""
    small, large = _batch(1), _batch(100)
    assert len(large.body) > 10_000
    small_log, large_log = RequestLog(bodies_kept=50), RequestLog(bodies_kept=50)
    small_bytes = _growth(small_log, small, 1_000)
    large_bytes = _growth(large_log, large, 1_000)
    assert large_bytes < small_bytes + 50 * 2 * 4096
    assert large_bytes < 1_000 * len(large.body) / 10
    entries = large_log.entries()
    assert len(entries) == 1_000
    assert all(e["body_bytes_total"] == len(large.body) and e["body"] is None for e in entries)
    assert [i for i, e in enumerate(entries) if "body_head" in e] == list(range(950, 1_000))
    assert str(entries[-1]["body_head"]) == large.body[:4096].decode()


def test_small_bodies_stay_parsed_for_the_newest_calls_only() -> None:
    log = RequestLog(bodies_kept=3)
    for i in range(5):
        body = json.dumps({"after": str(i * 200), "limit": 200}).encode()
        log.record("hubspot", Request("POST", "/crm/v3/objects/deals/search", body=body), 200, WHEN)
    bodies = [e["body"] for e in log.entries()]
    assert bodies == [
        None,
        None,
        {"after": "400", "limit": 200},
        {"after": "600", "limit": 200},
        {"after": "800", "limit": 200},
    ]


def test_a_list_already_handed_out_keeps_its_bodies() -> None:
    log = RequestLog(bodies_kept=1)
    log.record("salesforce", Request("PATCH", "/x", body=b'{"A": 1}'), 204, WHEN)
    handed_out = log.entries()
    log.record("salesforce", Request("PATCH", "/x", body=b'{"A": 2}'), 204, WHEN)
    assert handed_out[0]["body"] == {"A": 1}
    assert [e["body"] for e in log.entries()] == [None, {"A": 2}]


def test_form_bodies_are_never_kept_and_clear_counts_every_call() -> None:
    log = RequestLog()
    form = Request(
        "POST",
        "/services/oauth2/token",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"grant_type=password&password=hunter2",
    )
    log.record("salesforce", form, 200, WHEN)
    (entry,) = log.entries()
    assert entry["body"] is None and "body_head" not in entry and entry["body_bytes_total"] == len(form.body)
    assert log.clear() == 1 and log.entries() == []
