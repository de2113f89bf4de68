"""Salesforce connector request shapes against `responses`: SOQL text, paging, chunking, the org identity,
task lookups by key and task write bodies."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlparse

import pytest
import responses
from simple_salesforce.format import format_soql

from connectors.errors import ConfigurationError
from connectors.model import (
    CONTENT_FIELDS,
    CrmTask,
    Cursor,
    OutcomeKind,
    StatusWrite,
    TaskAction,
    TaskField,
    TaskWrite,
    WritePlan,
)
from connectors.salesforce.settings import DEFAULT_FIELDS
from rules.model import Status
from tests.connectors import sf_support
from tests.connectors.sf_support import (
    BASE,
    ORG_ID,
    ORG_SOQL,
    TOKEN,
    add_organization,
    add_query,
    make_connector,
    opp_id,
    opp_record,
    opportunity_describe,
    task_describe,
)

SELECT = (
    "SELECT Id, SystemModstamp, Name, OwnerId, StageName, Type, Amount, CloseDate, BANT_Budget__c, "
    "BANT_Authority__c, BANT_Need__c, BANT_Timing__c, BANT_Status__c, BANT_Missing__c, BANT_Score__c, "
    "BANT_Checked_At__c, BANT_Flagged_Since__c, BANT_Reasons__c, BANT_Snooze_Until__c, "
    "BANT_Snooze_Reason__c, LastModifiedById FROM Opportunity WHERE IsClosed = false"
)
ORDER = " ORDER BY SystemModstamp ASC, Id ASC"


@pytest.fixture
def sf() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def add_describes(sf: responses.RequestsMock, external_id: bool = True) -> None:
    """What preflight reads: both describes and the Organization query."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe(external_id))
    add_organization(sf)


def soql_of(call: responses.Call) -> str:
    return sf_support.soql_of(call.request)


def query_calls(sf: responses.RequestsMock) -> list[responses.Call]:
    """Every query call but preflight's Organization query."""
    return [c for c in sf.calls if "/query" in (c.request.url or "") and soql_of(c) != ORG_SOQL]


def org_calls(sf: responses.RequestsMock) -> list[responses.Call]:
    return [c for c in sf.calls if "/query" in (c.request.url or "") and soql_of(c) == ORG_SOQL]


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
    add_query(sf, json={"totalSize": 0, "done": True, "records": []})
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
    add_query(sf, json={"totalSize": 0, "done": True, "records": []})
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
    add_query(
        sf,
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
    add_query(sf, json={"totalSize": 450, "done": True, "records": records})
    pages = list(make_connector(query_batch_size=200).fetch_changed(None))
    assert [len(p.deals) for p in pages] == [200, 200, 50]
    cursors = [p.cursor for p in pages]
    assert cursors == sorted(cursors)  # type: ignore[type-var]
    assert pages[-1].cursor is not None and pages[-1].cursor.deal_id == opp_id(449)


def test_overlap_rereads_never_move_the_cursor_back(sf: responses.RequestsMock) -> None:
    """Records re-read inside the overlap window leave the page cursor at the saved position or later."""
    add_describes(sf)
    saved = Cursor(datetime(2026, 3, 1, 10, 4, tzinfo=UTC), opp_id(9))
    add_query(sf, json={"totalSize": 1, "done": True, "records": [opp_record(1)]})
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
        "BANT_Reasons__c": "",
    }


def test_every_request_names_bant_sync_in_sforce_call_options(sf: responses.RequestsMock) -> None:
    """Reads and writes carry `Sforce-Call-Options: client=bant-sync`: Salesforce puts it in the changeOrigin
    of the change events our writes cause, which is how the change stream drops them as echoes."""
    add_describes(sf)
    sf.patch(f"{BASE}/composite/sobjects", json=[{"id": opp_id(0), "success": True, "errors": []}])
    make_connector().apply(WritePlan(status_writes=(status(0),)))
    assert sf.calls
    assert {c.request.headers.get("Sforce-Call-Options") for c in sf.calls} == {"client=bant-sync"}


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


def echo_ids(request: Any) -> tuple[int, dict[str, str], str]:
    """Answer a composite/sobjects call with one success per record, by the record's id."""
    body = json.loads(request.body)
    return 200, {}, json.dumps([{"id": r["id"], "success": True, "errors": []} for r in body["records"]])


def patches(sf: responses.RequestsMock) -> list[responses.Call]:
    return [c for c in sf.calls if c.request.method == "PATCH"]


def test_identity_is_the_org_id_read_once(sf: responses.RequestsMock) -> None:
    """identity is `salesforce:` and the 15-character org id from `SELECT Id FROM Organization LIMIT 1`,
    read on first use (no describe needed) and never asked again, preflight included."""
    add_describes(sf)
    connector = make_connector()
    assert connector.identity == "salesforce:00D5g000004ABCD"
    assert [c for c in sf.calls if "/describe" in (c.request.url or "")] == []
    connector.preflight()
    assert connector.identity == f"salesforce:{ORG_ID[:15]}"
    assert len(org_calls(sf)) == 1


def test_preflight_reads_the_org_id(sf: responses.RequestsMock) -> None:
    """A preflight that passes has read the org id: identity then needs no further call."""
    add_describes(sf)
    connector = make_connector()
    connector.preflight()
    calls = len(sf.calls)
    assert connector.identity == "salesforce:00D5g000004ABCD"
    assert len(sf.calls) == calls and len(org_calls(sf)) == 1


def test_an_org_query_without_a_record_stops_preflight(sf: responses.RequestsMock) -> None:
    """No Organization record (a user without API access to it) is a ConfigurationError, not an identity."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    with pytest.raises(ConfigurationError, match="Organization"):
        make_connector().preflight()


def test_field_names_map_canonical_fields_to_opportunity_fields() -> None:
    """field_names names each canonical field's Opportunity field, extra fields included."""
    names = make_connector(extra_fields={"region": "Region__c"}).field_names
    assert names["budget"] == DEFAULT_FIELDS["budget"] == "BANT_Budget__c"
    assert names["region"] == "Region__c"


FIND = (
    "SELECT Id, {:literal}, Subject, ActivityDate, OwnerId, Priority, IsClosed FROM Task "
    "WHERE {:literal} IN {} ORDER BY CreatedDate ASC"
)


def test_find_tasks_queries_200_keys_at_a_time_escaped(sf: responses.RequestsMock) -> None:
    """450 distinct keys (some asked twice, one with a quote) are 3 SOQL queries of at most 200 keys, each
    key once, quoted and escaped by format_soql; no preflight is needed to look tasks up."""
    keys = [f"bs2-{i:04d}" for i in range(449)] + ["bs2-x'y"]
    add_query(sf, json={"totalSize": 0, "done": True, "records": []})
    assert make_connector().find_tasks(keys + keys[:10]) == {}
    wanted = sorted(keys)
    texts = [soql_of(c) for c in query_calls(sf)]
    assert texts == [
        format_soql(FIND, "BANT_Sync_Key__c", "BANT_Sync_Key__c", wanted[start : start + 200])
        for start in (0, 200, 400)
    ]
    assert "'bs2-x\\'y')" in texts[-1]
    assert org_calls(sf) == []


def test_find_tasks_reads_state_and_fields_and_keeps_the_oldest_of_a_key(sf: responses.RequestsMock) -> None:
    """Each key found maps to a CrmTask (open unless IsClosed, due from ActivityDate); of two tasks under
    one key the oldest (first by CreatedDate) wins; a key without a task is left out."""
    base = {"attributes": {"type": "Task"}, "OwnerId": "005A", "Priority": "High", "Subject": "s"}
    records = [
        {**base, "Id": "00T1", "BANT_Sync_Key__c": "k1", "IsClosed": False, "ActivityDate": "2026-03-05"},
        {**base, "Id": "00T9", "BANT_Sync_Key__c": "k1", "IsClosed": True, "ActivityDate": None},
        {**base, "Id": "00T2", "BANT_Sync_Key__c": "k2", "IsClosed": True, "ActivityDate": None},
    ]
    add_query(sf, json={"totalSize": 3, "done": True, "records": records})
    found = make_connector().find_tasks(["k1", "k2", "k3"])
    assert found == {
        "k1": CrmTask("00T1", "k1", True, "s", date(2026, 3, 5), "005A", "High"),
        "k2": CrmTask("00T2", "k2", False, "s", None, "005A", "High"),
    }


def test_find_tasks_of_no_keys_makes_no_call(sf: responses.RequestsMock) -> None:
    """An empty key list is answered without a request."""
    connector = make_connector()
    assert connector.find_tasks([]) == {}
    assert len(sf.calls) == 0


def task(
    i: int,
    action: TaskAction = TaskAction.CREATE,
    task_id: str | None = None,
    fields: frozenset[TaskField] = frozenset(),
    owner_id: str | None = "005A",
) -> TaskWrite:
    return TaskWrite(
        action,
        f"bs2-key-{i}",
        opp_id(i),
        owner_id,
        "[bant-sync] Acme: confirm Budget",
        "Confirm budget",
        date(2026, 3, 5),
        task_id=task_id,
        fields=fields,
    )


def test_creates_are_upserted_by_key_and_the_rest_written_by_id(sf: responses.RequestsMock) -> None:
    """With an External ID key: the status PATCH, then the by-id task PATCH, then one upsert PATCH on
    Task/BANT_Sync_Key__c carrying every owned field of the new task, open; one outcome per task write."""
    add_describes(sf)
    sf.add_callback(responses.PATCH, f"{BASE}/composite/sobjects", callback=echo_ids)
    sf.patch(
        f"{BASE}/composite/sobjects/Task/BANT_Sync_Key__c",
        json=[{"id": "00T1", "success": True, "created": True, "errors": []}],
    )
    plan = WritePlan(
        status_writes=(status(0),),
        task_writes=(
            task(0),
            task(1, TaskAction.UPDATE, "00T2", frozenset({TaskField.SUBJECT})),
            task(2, TaskAction.COMPLETE, "00T3"),
        ),
    )
    outcomes = make_connector().apply(plan)
    calls = patches(sf)
    assert [urlparse(c.request.url).path for c in calls] == [
        "/services/data/v59.0/composite/sobjects",
        "/services/data/v59.0/composite/sobjects",
        "/services/data/v59.0/composite/sobjects/Task/BANT_Sync_Key__c",
    ]
    assert [r["id"] for r in json.loads(calls[1].request.body)["records"]] == ["00T2", "00T3"]
    assert json.loads(calls[2].request.body)["records"] == [
        {
            "attributes": {"type": "Task"},
            "BANT_Sync_Key__c": "bs2-key-0",
            "WhatId": opp_id(0),
            "Subject": "[bant-sync] Acme: confirm Budget",
            "Description": "Confirm budget",
            "ActivityDate": "2026-03-05",
            "Priority": "High",
            "OwnerId": "005A",
            "Status": "Not Started",
        }
    ]
    assert [(o.kind, o.task_id, o.sync_key) for o in outcomes[1:]] == [
        (OutcomeKind.WRITTEN, "00T1", "bs2-key-0"),
        (OutcomeKind.WRITTEN, "00T2", "bs2-key-1"),
        (OutcomeKind.WRITTEN, "00T3", "bs2-key-2"),
    ]


def test_an_upsert_is_retried_after_a_transient_error(sf: responses.RequestsMock) -> None:
    """An upsert by External ID is safe to resend: a 503 is retried after a backoff and the task written."""
    add_describes(sf)
    upsert = f"{BASE}/composite/sobjects/Task/BANT_Sync_Key__c"
    sf.patch(upsert, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}])
    sf.patch(upsert, json=[{"id": "00T1", "success": True, "created": True, "errors": []}])
    sleeps: list[float] = []
    (outcome,) = make_connector(sleeps).apply(WritePlan(task_writes=(task(0),)))
    assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, "00T1")
    assert len(patches(sf)) == 2 and len(sleeps) == 1


def test_without_external_id_creates_are_posted_once_without_a_lookup(sf: responses.RequestsMock) -> None:
    """Without an External ID key, creates are one POST of new records (key, deal, open), and nothing is
    looked up first: finding existing tasks is the worker's job (find_tasks)."""
    add_describes(sf, external_id=False)
    sf.post(
        f"{BASE}/composite/sobjects",
        json=[{"id": "00TA", "success": True, "errors": []}, {"id": "00TB", "success": True, "errors": []}],
    )
    outcomes = make_connector().apply(WritePlan(task_writes=(task(0), task(1))))
    (call,) = [c for c in sf.calls if c.request.method == "POST"]
    records = json.loads(call.request.body)["records"]
    assert [(r["BANT_Sync_Key__c"], r["WhatId"], r["Status"], "id" in r) for r in records] == [
        ("bs2-key-0", opp_id(0), "Not Started", False),
        ("bs2-key-1", opp_id(1), "Not Started", False),
    ]
    assert [o.task_id for o in outcomes] == ["00TA", "00TB"]
    assert query_calls(sf) == [] and patches(sf) == []


def test_uncertain_create_without_external_id_is_not_resent(sf: responses.RequestsMock) -> None:
    """A 503 on the create POST is not retried: the row is REJECTED with code UNCERTAIN (the next run's
    lookup by key settles it), after exactly one POST and no backoff."""
    add_describes(sf, external_id=False)
    sf.post(
        f"{BASE}/composite/sobjects", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]
    )
    sleeps: list[float] = []
    (outcome,) = make_connector(sleeps).apply(WritePlan(task_writes=(task(0),)))
    assert (outcome.kind, outcome.code, outcome.sync_key) == (OutcomeKind.REJECTED, "UNCERTAIN", "bs2-key-0")
    assert len([c for c in sf.calls if c.request.method == "POST"]) == 1
    assert sleeps == []


def test_creates_in_parallel_chunks_are_each_sent_once(sf: responses.RequestsMock) -> None:
    """Without an External ID, 250 creates in two chunks sent side by side: a 503 on either is not resent
    in its own thread either (and a chunk not yet sent when it came is not sent at all); every create is
    UNCERTAIN."""
    add_describes(sf, external_id=False)
    sf.post(
        f"{BASE}/composite/sobjects", status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "x"}]
    )
    outcomes = make_connector().apply(WritePlan(task_writes=tuple(task(i) for i in range(250))))
    assert {o.code for o in outcomes} == {"UNCERTAIN"}
    posts = [c for c in sf.calls if c.request.method == "POST"]
    assert 1 <= len(posts) <= 2 and len({c.request.body for c in posts}) == len(posts)


NOT_STARTED, COMPLETED = {"Status": "Not Started"}, {"Status": "Completed"}
CONTENT = {"Subject": "[bant-sync] Acme: confirm Budget", "Description": "Confirm budget", "Priority": "High"}


@pytest.mark.parametrize(
    ("write", "sent"),
    [
        (task(5, TaskAction.UPDATE, "00T5", frozenset({TaskField.SUBJECT})), {"Subject": CONTENT["Subject"]}),
        (
            task(5, TaskAction.UPDATE, "00T5", frozenset({*CONTENT_FIELDS, TaskField.DUE})),
            {**CONTENT, "ActivityDate": "2026-03-05"},
        ),
        (task(5, TaskAction.UPDATE, "00T5", frozenset({TaskField.KEY})), {"BANT_Sync_Key__c": "bs2-key-5"}),
        (task(5, TaskAction.UPDATE, "00T5", frozenset({TaskField.OWNER})), {"OwnerId": "005A"}),
        (task(5, TaskAction.UPDATE, "00T5", frozenset({TaskField.OWNER}), owner_id=None), {}),
        (
            task(5, TaskAction.REOPEN, "00T5", frozenset({TaskField.SUBJECT, TaskField.DUE})),
            {"Subject": CONTENT["Subject"], "ActivityDate": "2026-03-05", **NOT_STARTED},
        ),
        (task(5, TaskAction.REOPEN, "00T5"), NOT_STARTED),
        (task(5, TaskAction.COMPLETE, "00T5"), COMPLETED),
        (
            task(5, TaskAction.COMPLETE, "00T5", frozenset({TaskField.KEY})),
            {"BANT_Sync_Key__c": "bs2-key-5", **COMPLETED},
        ),
    ],
    ids=[
        "update-subject",
        "update-content-and-due",
        "rekey",
        "reassign",
        "no-owner-left-alone",
        "reopen-with-fields",
        "reopen-status-only",
        "complete-status-only",
        "complete-and-rekey",
    ],
)
def test_writes_by_id_send_only_the_fields_named(
    sf: responses.RequestsMock, write: TaskWrite, sent: dict[str, str]
) -> None:
    """UPDATE, REOPEN and COMPLETE send the task id and only the fields in `write.fields`, REOPEN with Status
    Not Started and COMPLETE with Completed: a rep's other edits (and their "In Progress") stay."""
    add_describes(sf)
    sf.add_callback(responses.PATCH, f"{BASE}/composite/sobjects", callback=echo_ids)
    (outcome,) = make_connector().apply(WritePlan(task_writes=(write,)))
    (call,) = patches(sf)
    assert json.loads(call.request.body)["records"] == [
        {"attributes": {"type": "Task"}, "id": "00T5", **sent}
    ]
    assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, "00T5")


def test_a_deleted_task_counts_as_completed_but_not_as_updated(sf: responses.RequestsMock) -> None:
    """COMPLETE on a task a user deleted is UNCHANGED (nothing left to complete); an UPDATE of a deleted
    task is REJECTED with Salesforce's code (the worker looks it up again next run)."""
    add_describes(sf)
    deleted = {
        "success": False,
        "errors": [{"statusCode": "ENTITY_IS_DELETED", "message": "deleted", "fields": []}],
    }
    sf.patch(
        f"{BASE}/composite/sobjects", json=[{"id": "00T1", "success": True, "errors": []}, deleted, deleted]
    )
    writes = (
        task(0, TaskAction.COMPLETE, "00T1"),
        task(1, TaskAction.COMPLETE, "00T2"),
        task(2, TaskAction.UPDATE, "00T3", frozenset({TaskField.SUBJECT})),
    )
    outcomes = make_connector().apply(WritePlan(task_writes=writes))
    assert [(o.kind, o.code, o.task_id) for o in outcomes] == [
        (OutcomeKind.WRITTEN, None, "00T1"),
        (OutcomeKind.UNCHANGED, "ENTITY_IS_DELETED", "00T2"),
        (OutcomeKind.REJECTED, "ENTITY_IS_DELETED", "00T3"),
    ]


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
