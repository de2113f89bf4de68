"""sObject Collections through simple-salesforce's ``restful``: create, update, upsert, caps, allOrNone."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox import FaultRule, Sandbox


def _open_ids(sb: Sandbox, count: int) -> list[str]:
    return [str(r["Id"]) for r in sb.salesforce.records("Opportunity") if not r["IsClosed"]][:count]


def _update(sf: Salesforce, rows: list[dict[str, Any]], all_or_none: bool = False) -> list[dict[str, Any]]:
    records = [{"attributes": {"type": "Opportunity"}, **row} for row in rows]
    return sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": all_or_none, "records": records}
    )


def _upsert(sf: Salesforce, rows: list[dict[str, Any]], all_or_none: bool = False) -> list[dict[str, Any]]:
    records = [{"attributes": {"type": "Task"}, **row} for row in rows]
    body = {"allOrNone": all_or_none, "records": records}
    return sf.restful("composite/sobjects/Task/BANT_Sync_Key__c", method="PATCH", json=body)


def test_update_200_records_in_one_call_with_one_save_result_each(sb: Sandbox, sf: Salesforce) -> None:
    """Up to 200 records per call; the answer is a SaveResult per record, in order."""
    ids = _open_ids(sb, 133)
    results = _update(sf, [{"Id": i, "BANT_Status__c": "needs_qualification"} for i in ids])
    assert results == [{"id": i, "success": True, "errors": []} for i in ids]
    assert {sb.salesforce.get("Opportunity", i)["BANT_Status__c"] for i in ids} == {"needs_qualification"}


def test_more_than_200_records_is_refused_whole(sf: Salesforce) -> None:
    """201 records: 400 EXCEEDED_ID_LIMIT, nothing written."""
    records = [{"attributes": {"type": "Task"}, "Subject": f"t{i}"} for i in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert caught.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_create_returns_new_ids_and_row_errors_side_by_side(sb: Sandbox, sf: Salesforce) -> None:
    """A bad row fails alone (HTTP 200, success false) while its neighbours are created."""
    what = _open_ids(sb, 1)[0]
    records = [
        {"attributes": {"type": "Task"}, "Subject": "ok", "WhatId": what},
        {"attributes": {"type": "Task"}, "Subject": "bad", "Status": "Someday"},
        {"attributes": {"type": "Task"}, "Subject": "ok too"},
    ]
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "id" not in results[1]
    assert {t["Subject"] for t in sb.salesforce.records("Task")} == {"ok", "ok too"}


def test_all_or_none_rolls_back_every_row_when_one_fails(sb: Sandbox, sf: Salesforce) -> None:
    """allOrNone: the bad row keeps its error, the others report ALL_OR_NONE_OPERATION_ROLLED_BACK."""
    ids = _open_ids(sb, 3)
    before = [sb.salesforce.get("Opportunity", i) for i in ids]
    rows = [
        {"Id": ids[0], "BANT_Score__c": 50},
        {"Id": ids[1], "BANT_Status__c": "nope"},
        {"Id": ids[2], "BANT_Score__c": 75},
    ]
    results = _update(sf, rows, all_or_none=True)
    assert [r["success"] for r in results] == [False, False, False]
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    assert [sb.salesforce.get("Opportunity", i) for i in ids] == before


def test_an_unknown_field_fails_the_whole_request_before_any_write(sb: Sandbox, sf: Salesforce) -> None:
    """Field names are checked while deserialising: INVALID_FIELD is a 400 for the request, no row applied."""
    ids = _open_ids(sb, 2)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        _update(sf, [{"Id": ids[0], "BANT_Score__c": 10}, {"Id": ids[1], "Gone__c": 1}])
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sb.salesforce.get("Opportunity", ids[0])["BANT_Score__c"] is None


def test_update_of_a_missing_or_malformed_id_fails_that_row(sb: Sandbox, sf: Salesforce) -> None:
    """Rows without Id, with a malformed Id, or for a deleted record fail alone."""
    good = _open_ids(sb, 1)[0]
    results = _update(
        sf,
        [
            {"BANT_Score__c": 1},
            {"Id": "not-an-id", "BANT_Score__c": 1},
            {"Id": "0065g0000zzzzzzAAA", "BANT_Score__c": 1},
            {"Id": good, "BANT_Score__c": 1},
        ],
    )
    assert [r["errors"][0]["statusCode"] if r["errors"] else None for r in results] == [
        "MISSING_ARGUMENT",
        "MALFORMED_ID",
        "ENTITY_IS_DELETED",
        None,
    ]


def test_upsert_by_sync_key_reports_created_then_updated(sb: Sandbox, sf: Salesforce) -> None:
    """PATCH composite/sobjects/Task/BANT_Sync_Key__c creates unknown keys and updates known ones."""
    what = _open_ids(sb, 1)[0]
    first = _upsert(
        sf,
        [
            {"BANT_Sync_Key__c": "k1", "Subject": "Qualify", "WhatId": what},
            {"BANT_Sync_Key__c": "k2", "Subject": "Qualify 2"},
        ],
    )
    assert [(r["success"], r["created"]) for r in first] == [(True, True), (True, True)]
    second = _upsert(sf, [{"BANT_Sync_Key__c": "k1", "Subject": "Qualify (updated)"}])
    assert (second[0]["id"], second[0]["created"]) == (first[0]["id"], False)
    keyed = {t["BANT_Sync_Key__c"]: t for t in sb.salesforce.records("Task")}
    assert set(keyed) == {"k1", "k2"} and keyed["k1"]["Subject"] == "Qualify (updated)"


def test_the_same_key_twice_in_one_upsert_fails_both_rows(sf: Salesforce, sb: Sandbox) -> None:
    """Duplicate external ids inside one request: both rows DUPLICATE_EXTERNAL_ID, nothing created."""
    results = _upsert(
        sf, [{"BANT_Sync_Key__c": "same", "Subject": "a"}, {"BANT_Sync_Key__c": "same", "Subject": "b"}]
    )
    assert [r["errors"][0]["statusCode"] for r in results] == ["DUPLICATE_EXTERNAL_ID"] * 2
    assert sb.salesforce.records("Task") == []


def test_partial_batch_fault_fails_chosen_rows_and_applies_the_rest(sb: Sandbox, sf: Salesforce) -> None:
    """partial_batch rows 1 and 3 fail with the given code; rows 0, 2 and 4 are written."""
    sb.add_fault(
        FaultRule(
            kind="partial_batch",
            crm="salesforce",
            rows=(1, 3),
            error_code="FIELD_CUSTOM_VALIDATION_EXCEPTION",
            message="Stage locked",
        )
    )
    ids = _open_ids(sb, 5)
    results = _update(sf, [{"Id": i, "BANT_Score__c": 25} for i in ids])
    assert [r["success"] for r in results] == [True, False, True, False, True]
    assert results[1]["errors"] == [
        {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Stage locked", "fields": []}
    ]
    scores = [sb.salesforce.get("Opportunity", i)["BANT_Score__c"] for i in ids]
    assert scores == [25.0, None, 25.0, None, 25.0]


def test_locked_rows_fail_for_n_attempts_then_succeed(sb: Sandbox, sf: Salesforce) -> None:
    """locked_rows with attempts=2: the record fails twice with UNABLE_TO_LOCK_ROW, the third write lands."""
    locked, free = _open_ids(sb, 2)
    sb.add_fault(FaultRule(kind="locked_rows", crm="salesforce", ids=(locked,), attempts=2))
    outcomes = []
    for attempt in range(3):
        results = _update(
            sf, [{"Id": locked, "BANT_Score__c": attempt}, {"Id": free, "BANT_Score__c": attempt}]
        )
        outcomes.append([r["errors"][0]["statusCode"] if r["errors"] else "ok" for r in results])
    assert outcomes == [["UNABLE_TO_LOCK_ROW", "ok"], ["UNABLE_TO_LOCK_ROW", "ok"], ["ok", "ok"]]
    assert sb.salesforce.get("Opportunity", locked)["BANT_Score__c"] == 2.0


def test_an_error_code_fault_on_a_collection_fails_every_row(sb: Sandbox, sf: Salesforce) -> None:
    """error_code UNABLE_TO_LOCK_ROW on composite/sobjects is per row (HTTP 200), nothing applied."""
    sb.add_fault(
        FaultRule(
            kind="error_code",
            crm="salesforce",
            path="/composite/sobjects",
            error_code="UNABLE_TO_LOCK_ROW",
            times=1,
        )
    )
    ids = _open_ids(sb, 2)
    results = _update(sf, [{"Id": i, "BANT_Score__c": 5} for i in ids])
    assert [r["errors"][0]["statusCode"] for r in results] == ["UNABLE_TO_LOCK_ROW"] * 2
    assert [r["success"] for r in _update(sf, [{"Id": i, "BANT_Score__c": 5} for i in ids])] == [True, True]
