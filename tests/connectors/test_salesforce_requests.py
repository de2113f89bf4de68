"""Salesforce connector request shapes against `responses`: SOQL text, paging, chunking, upsert bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import responses

from connectors.model import Cursor, OutcomeKind, StatusWrite, TaskAction, TaskWrite, WritePlan
from connectors.registry import Intent
from rules.model import Status
from tests.connectors.sf_support import (
    BASE,
    TOKEN,
    MemoryLedger,
    make_connector,
    opp_id,
    opp_record,
    opportunity_describe,
    task_describe,
)

SELECT = (
    "SELECT Id, SystemModstamp, Name, OwnerId, StageName, Type, Amount, CloseDate, BANT_Budget__c, "
    "BANT_Authority__c, BANT_Need__c, BANT_Timing__c, BANT_Status__c, BANT_Missing__c, BANT_Score__c, "
    "BANT_Checked_At__c, BANT_Flagged_Since__c FROM Opportunity WHERE IsClosed = false"
)
ORDER = " ORDER BY SystemModstamp ASC, Id ASC"


@pytest.fixture
def sf() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_describes(sf: responses.RequestsMock, external_id: bool = True) -> None:
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe(external_id))


def soql_of(call: responses.Call) -> str:
    return parse_qs(urlparse(call.request.url).query)["q"][0]


def query_calls(sf: responses.RequestsMock) -> list[responses.Call]:
    return [c for c in sf.calls if "/query" in (c.request.url or "")]


@pytest.mark.parametrize(
    ("kwargs", "overlap", "where"),
    [
        ({"cursor": None}, 5, ""),
        ({"cursor": None, "full": True}, 5, ""),
        (
            {"cursor": Cursor(datetime(2026, 3, 1, 10, 5, 30, 250000, tzinfo=UTC), opp_id(7))},
            5,
            " AND SystemModstamp >= 2026-03-01T10:00:30Z",
        ),
        (
            {"cursor": Cursor(datetime(2026, 3, 1, 10, 5, 30, tzinfo=UTC), opp_id(7))},
            0,
            " AND (SystemModstamp > 2026-03-01T10:05:30.000Z OR (SystemModstamp = 2026-03-01T10:05:30.000Z"
            f" AND Id > '{opp_id(7)}'))",
        ),
    ],
    ids=["first-run", "full-sweep", "overlap", "strict-tuple"],
)
def test_soql_text_for_each_pull_mode(
    sf: responses.RequestsMock, kwargs: dict[str, object], overlap: int, where: str
) -> None:
    """The SOQL names mapped fields only, open deals, the cursor window in UTC `Z`, and (stamp, Id) order."""
    add_describes(sf)
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    connector = make_connector(overlap_minutes=overlap)
    cursor = kwargs.pop("cursor")
    assert list(connector.fetch_changed(cursor, **kwargs)) == []  # type: ignore[arg-type]
    (call,) = query_calls(sf)
    assert soql_of(call) == SELECT + where + ORDER
    assert call.request.headers["Sforce-Query-Options"] == "batchSize=2000"
    assert call.request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_scoped_queries_quote_their_values(sf: responses.RequestsMock) -> None:
    """Owner and single-deal scopes put quoted, escaped values into the SOQL."""
    add_describes(sf)
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    connector = make_connector()
    list(connector.fetch_by_owner("005x' OR Name != '"))
    assert connector.fetch_one(opp_id(3)) is None
    owner_call, one_call = query_calls(sf)
    assert soql_of(owner_call) == SELECT + " AND OwnerId = '005x\\' OR Name != \\''" + ORDER
    assert soql_of(one_call) == SELECT + f" AND Id = '{opp_id(3)}'" + ORDER


def test_records_follow_next_records_url_and_map_to_deals(sf: responses.RequestsMock) -> None:
    """query_all_iter follows nextRecordsUrl; each record becomes a Deal with typed values and flags."""
    add_describes(sf)
    first = opp_record(
        1,
        Name="Acme POC",
        OwnerId="005A",
        StageName="Qualification",
        Type="POC",
        Amount=12000.0,
        CloseDate="2026-06-30",
        BANT_Budget__c="TBD",
        BANT_Status__c="poc_unqualified",
        BANT_Missing__c="budget;authority",
        BANT_Score__c=50.0,
        BANT_Checked_At__c="2026-03-01T09:00:00.000+0000",
        BANT_Flagged_Since__c="2026-02-20",
    )
    second = opp_record(2, stamp="2026-03-01T10:00:00.000+0000")
    sf.get(
        f"{BASE}/query/",
        json={
            "totalSize": 2,
            "done": False,
            "nextRecordsUrl": "/services/data/v59.0/query/01gX-2000",
            "records": [first],
        },
    )
    sf.get(f"{BASE}/query/01gX-2000", json={"totalSize": 2, "done": True, "records": [second]})
    pages = list(make_connector().fetch_changed(None))
    assert len(pages) == 1
    deal = pages[0].deals[0]
    assert (deal.name, deal.owner_id, deal.stage, deal.deal_type) == (
        "Acme POC",
        "005A",
        "Qualification",
        "POC",
    )
    assert deal.amount == 12000.0
    assert deal.close_date == date(2026, 6, 30)
    assert deal.budget == "TBD"
    assert deal.modified_at == datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
    assert deal.flagged_since == date(2026, 2, 20)
    assert deal.flags.status == "poc_unqualified"
    assert deal.flags.missing == ("budget", "authority")
    assert deal.flags.score == 50
    assert deal.flags.checked_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
    assert pages[0].cursor == Cursor(datetime(2026, 3, 1, 10, 0, tzinfo=UTC), opp_id(2))


def test_pages_hold_at_most_the_batch_size(sf: responses.RequestsMock) -> None:
    """A 450-record result with batch size 200 yields pages of 200, 200, 50, cursors ascending."""
    add_describes(sf)
    records = [opp_record(i, stamp=f"2026-03-01T10:{i // 60:02d}:{i % 60:02d}.000+0000") for i in range(450)]
    sf.get(f"{BASE}/query/", json={"totalSize": 450, "done": True, "records": records})
    pages = list(make_connector(query_batch_size=200).fetch_changed(None))
    assert [len(p.deals) for p in pages] == [200, 200, 50]
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(cursors)  # type: ignore[type-var]
    assert pages[-1].cursor is not None and pages[-1].cursor.deal_id == opp_id(449)


def test_overlap_rereads_never_move_the_cursor_back(sf: responses.RequestsMock) -> None:
    """Records re-read inside the overlap window leave the page cursor at the saved position or later."""
    add_describes(sf)
    saved = Cursor(datetime(2026, 3, 1, 10, 4, tzinfo=UTC), opp_id(9))
    sf.get(f"{BASE}/query/", json={"totalSize": 1, "done": True, "records": [opp_record(1)]})
    (page,) = list(make_connector().fetch_changed(saved))
    assert page.cursor == saved


def status(i: int, missing: tuple[str, ...] = ("budget",)) -> StatusWrite:
    return StatusWrite(
        opp_id(i),
        Status.NEEDS_QUALIFICATION,
        missing,
        75,
        datetime(2026, 3, 2, 12, 0, tzinfo=UTC),
        date(2026, 3, 2),
    )


def ok(n: int, start: int = 0) -> list[dict[str, object]]:
    return [{"id": opp_id(start + i), "success": True, "errors": []} for i in range(n)]


def test_status_writes_go_in_chunks_of_200_with_exact_body(sf: responses.RequestsMock) -> None:
    """450 status writes are 3 composite/sobjects PATCH calls of 200, 200, 50 (sent side by side) with
    allOrNone false."""
    add_describes(sf)
    sizes: list[int] = []

    def answer(request: object) -> tuple[int, dict[str, str], str]:
        body = json.loads(request.body)  # type: ignore[attr-defined]
        sizes.append(len(body["records"]))
        return 200, {}, json.dumps([{"id": r["id"], "success": True, "errors": []} for r in body["records"]])

    sf.add_callback(responses.PATCH, f"{BASE}/composite/sobjects", callback=answer)
    outcomes = make_connector().apply(WritePlan(status_writes=tuple(status(i) for i in range(450))))
    assert sorted(sizes, reverse=True) == [200, 200, 50]
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN] * 450
    patches = [json.loads(c.request.body) for c in sf.calls if c.request.method == "PATCH"]
    first = next(p for p in patches if p["records"][0]["id"] == opp_id(0))
    assert first["allOrNone"] is False
    assert first["records"][0] == {
        "attributes": {"type": "Opportunity"},
        "id": opp_id(0),
        "BANT_Status__c": "needs_qualification",
        "BANT_Missing__c": "budget",
        "BANT_Score__c": 75,
        "BANT_Checked_At__c": "2026-03-02T12:00:00.000Z",
        "BANT_Flagged_Since__c": "2026-03-02",
    }


def test_rejected_rows_are_reported_with_the_crm_message(sf: responses.RequestsMock) -> None:
    """A validation-rule rejection on one row is that row's outcome; its neighbours are written."""
    add_describes(sf)
    results = ok(3)
    results[1] = {
        "id": None,
        "success": False,
        "errors": [
            {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Amount required", "fields": []}
        ],
    }
    sf.patch(f"{BASE}/composite/sobjects", json=results)
    outcomes = make_connector().apply(WritePlan(status_writes=(status(0), status(1), status(2))))
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN, OutcomeKind.REJECTED, OutcomeKind.WRITTEN]
    assert (outcomes[1].code, outcomes[1].message) == ("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Amount required")
    assert outcomes[1].deal_id == opp_id(1)


def test_locked_rows_alone_are_resent_after_a_backoff(sf: responses.RequestsMock) -> None:
    """UNABLE_TO_LOCK_ROW on row 1 → one backoff sleep, a second call with only that row, then written."""
    add_describes(sf)
    locked = {
        "success": False,
        "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}],
    }
    sf.patch(f"{BASE}/composite/sobjects", json=[ok(1)[0], locked, ok(1, 2)[0]])
    sf.patch(f"{BASE}/composite/sobjects", json=ok(1, 1))
    sleeps: list[float] = []
    outcomes = make_connector(sleeps).apply(WritePlan(status_writes=(status(0), status(1), status(2))))
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN] * 3
    patches = [json.loads(c.request.body) for c in sf.calls if c.request.method == "PATCH"]
    assert [[r["id"] for r in p["records"]] for p in patches] == [
        [opp_id(0), opp_id(1), opp_id(2)],
        [opp_id(1)],
    ]
    assert len(sleeps) == 1


def test_rows_still_locked_after_the_attempt_cap_are_rejected_not_raised(sf: responses.RequestsMock) -> None:
    """A row locked on every attempt ends REJECTED(UNABLE_TO_LOCK_ROW) after max_attempts sends."""
    add_describes(sf)
    locked = {
        "success": False,
        "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}],
    }
    sf.patch(f"{BASE}/composite/sobjects", json=[locked])
    outcomes = make_connector(max_attempts=3).apply(WritePlan(status_writes=(status(0),)))
    assert outcomes[0].kind is OutcomeKind.REJECTED
    assert outcomes[0].code == "UNABLE_TO_LOCK_ROW"
    assert len([c for c in sf.calls if c.request.method == "PATCH"]) == 3


def task(i: int, action: TaskAction = TaskAction.CREATE) -> TaskWrite:
    return TaskWrite(
        action,
        f"bs1-key-{i}",
        opp_id(i),
        "005A",
        "[bant-sync] Acme: confirm Budget",
        "Confirm budget",
        date(2026, 3, 5),
    )


def test_tasks_are_upserted_by_sync_key_after_the_status_call(sf: responses.RequestsMock) -> None:
    """Status PATCH first, then one upsert PATCH on Task/BANT_Sync_Key__c with the full task body."""
    add_describes(sf)
    sf.patch(f"{BASE}/composite/sobjects", json=ok(1))
    sf.patch(
        f"{BASE}/composite/sobjects/Task/BANT_Sync_Key__c",
        json=[
            {"id": "00T1", "success": True, "created": True, "errors": []},
            {"id": "00T2", "success": True, "created": False, "errors": []},
            {"id": "00T3", "success": True, "created": False, "errors": []},
        ],
    )
    plan = WritePlan(
        status_writes=(status(0),),
        task_writes=(task(0), task(1, TaskAction.UPDATE), task(2, TaskAction.COMPLETE)),
    )
    ledger = MemoryLedger()
    outcomes = make_connector(ledger=ledger).apply(plan)
    writes = [c for c in sf.calls if c.request.method == "PATCH"]
    assert [urlparse(c.request.url).path for c in writes] == [
        "/services/data/v59.0/composite/sobjects",
        "/services/data/v59.0/composite/sobjects/Task/BANT_Sync_Key__c",
    ]
    records = json.loads(writes[1].request.body)["records"]
    assert records[0] == {
        "attributes": {"type": "Task"},
        "BANT_Sync_Key__c": "bs1-key-0",
        "WhatId": opp_id(0),
        "Subject": "[bant-sync] Acme: confirm Budget",
        "Description": "Confirm budget",
        "ActivityDate": "2026-03-05",
        "Priority": "High",
        "OwnerId": "005A",
        "Status": "Not Started",
    }
    assert "Status" not in records[1]
    assert records[2]["Status"] == "Completed"
    assert [(o.task_id, o.sync_key, o.extra.get("created")) for o in outcomes[1:]] == [
        ("00T1", "bs1-key-0", "true"),
        ("00T2", "bs1-key-1", "false"),
        ("00T3", "bs1-key-2", "false"),
    ]
    states = {k: (e.task_id, e.state, e.missing) for k, e in ledger.entries.items()}
    assert states == {
        "bs1-key-0": ("00T1", "open", ("budget",)),
        "bs1-key-1": ("00T2", "open", ()),
        "bs1-key-2": ("00T3", "completed", ()),
    }


def test_without_external_id_tasks_are_reconciled_by_key_then_created_once(
    sf: responses.RequestsMock,
) -> None:
    """Ledger fallback: query keys, update the task that exists, create the other once, record the ledger."""
    add_describes(sf, external_id=False)
    sf.get(
        f"{BASE}/query/",
        json={"totalSize": 1, "done": True, "records": [{"Id": "00TOLD", "BANT_Sync_Key__c": "bs1-key-0"}]},
    )
    sf.patch(f"{BASE}/composite/sobjects", json=[{"id": "00TOLD", "success": True, "errors": []}])
    sf.post(f"{BASE}/composite/sobjects", json=[{"id": "00TNEW", "success": True, "errors": []}])
    ledger = MemoryLedger()
    outcomes = make_connector(ledger=ledger).apply(WritePlan(task_writes=(task(0), task(1))))
    assert "BANT_Sync_Key__c IN ('bs1-key-0','bs1-key-1')" in soql_of(query_calls(sf)[0])
    patch = json.loads(next(c for c in sf.calls if c.request.method == "PATCH").request.body)
    assert patch["records"][0]["id"] == "00TOLD"
    assert [o.task_id for o in outcomes] == ["00TOLD", "00TNEW"]
    assert ledger.calls == [
        "intend bs1-key-0",
        "intend bs1-key-1",
        "confirm bs1-key-0 00TOLD",
        "confirm bs1-key-1 00TNEW",
    ]


def test_uncertain_create_is_not_resent_in_ledger_mode(sf: responses.RequestsMock) -> None:
    """A 503 on the create POST is not retried; the row is UNCERTAIN and the intent stays pending."""
    add_describes(sf, external_id=False)
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    sf.post(
        f"{BASE}/composite/sobjects", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]
    )
    ledger = MemoryLedger()
    outcomes = make_connector(ledger=ledger).apply(WritePlan(task_writes=(task(0),)))
    assert outcomes[0].code == "UNCERTAIN"
    assert len([c for c in sf.calls if c.request.method == "POST"]) == 1
    assert [e.sync_key for e in ledger.pending()] == ["bs1-key-0"]


def test_chunks_of_one_write_are_in_flight_together(sf: responses.RequestsMock) -> None:
    """400 status writes are two PATCH calls sent side by side: each answer waits until the other call has
    arrived (a barrier), which could never happen if the chunks went one after the other."""
    add_describes(sf)
    both_arrived = threading.Barrier(2, timeout=10)

    def answer(request: object) -> tuple[int, dict[str, str], str]:
        both_arrived.wait()
        body = json.loads(request.body)  # type: ignore[attr-defined]
        return 200, {}, json.dumps([{"id": r["id"], "success": True, "errors": []} for r in body["records"]])

    sf.add_callback(responses.PATCH, f"{BASE}/composite/sobjects", callback=answer)
    outcomes = make_connector().apply(WritePlan(status_writes=tuple(status(i) for i in range(400))))
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN] * 400


def test_creates_in_parallel_chunks_are_each_sent_once(sf: responses.RequestsMock) -> None:
    """Ledger mode, 250 creates in two chunks sent side by side: a 503 on either is not resent in its own
    thread either; every create is UNCERTAIN (reconciled by key next run) and every intent stays pending."""
    add_describes(sf, external_id=False)
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    sf.post(
        f"{BASE}/composite/sobjects", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]
    )
    ledger = MemoryLedger()
    outcomes = make_connector(ledger=ledger).apply(WritePlan(task_writes=tuple(task(i) for i in range(250))))
    assert {o.code for o in outcomes} == {"UNCERTAIN"}
    assert len([c for c in sf.calls if c.request.method == "POST"]) == 2
    assert len(ledger.pending()) == 250


def test_single_attempt_holds_for_its_own_thread_only(sf: responses.RequestsMock) -> None:
    """While one thread sends creates without retries, the read-ahead thread's queries still retry."""
    sf.get(f"{BASE}/query/", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    connector = make_connector()
    found: list[Any] = []
    with connector.client.single_attempt():
        reader = threading.Thread(
            target=lambda: found.append(connector.client.sf.query("SELECT Id FROM Task"))
        )
        reader.start()
        reader.join(timeout=30)
    assert found and found[0]["done"] is True
    assert len(query_calls(sf)) == 2


def test_empty_plan_makes_no_call(sf: responses.RequestsMock) -> None:
    """Nothing to write → no request at all (not even preflight)."""
    connector = make_connector()
    assert connector.apply(WritePlan()) == []
    assert len(sf.calls) == 0
    assert connector.api_calls == 0


def test_known_tasks_are_completed_by_id_touching_only_status(sf: responses.RequestsMock) -> None:
    """COMPLETE with a task id PATCHes Status only; a task a user deleted counts as done in the ledger."""
    add_describes(sf)
    sf.patch(
        f"{BASE}/composite/sobjects",
        json=[
            {"id": "00T1", "success": True, "errors": []},
            {
                "success": False,
                "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "deleted", "fields": []}],
            },
        ],
    )
    ledger = MemoryLedger()
    ledger.intend([Intent("bs1-key-0", opp_id(0), ("budget",)), Intent("bs1-key-1", opp_id(1), ("need",))])
    writes = tuple(
        replace(task(i, TaskAction.COMPLETE), task_id=tid) for i, tid in enumerate(("00T1", "00T2"))
    )
    outcomes = make_connector(ledger=ledger).apply(WritePlan(task_writes=writes))
    (call,) = [c for c in sf.calls if c.request.method == "PATCH"]
    assert json.loads(call.request.body)["records"] == [
        {"attributes": {"type": "Task"}, "id": "00T1", "Status": "Completed"},
        {"attributes": {"type": "Task"}, "id": "00T2", "Status": "Completed"},
    ]
    assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN, OutcomeKind.UNCHANGED]
    assert [(e.task_id, e.state) for e in ledger.entries.values()] == [
        ("00T1", "completed"),
        ("00T2", "completed"),
    ]
