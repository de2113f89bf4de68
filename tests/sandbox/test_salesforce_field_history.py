"""Salesforce opportunity history in the sandbox: OpportunityFieldHistory, OpportunityHistory and
FieldDefinition, read through simple-salesforce as a real org answers them."""

from __future__ import annotations

from typing import Any

import pytest
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from sandbox import Sandbox
from tests.sandbox.clients import sf_client, sf_info, sf_session

BANT = ("BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timing__c")


def _opportunities(sb: Sandbox, closed: bool) -> list[dict[str, Any]]:
    return [o for o in sb.salesforce.records("Opportunity") if o["IsClosed"] is closed]


def _field_rows(sf: Salesforce, opportunity: str) -> list[dict[str, Any]]:
    soql = (
        "SELECT Id, OpportunityId, Field, DataType, OldValue, NewValue, CreatedDate, CreatedById, IsDeleted "
        f"FROM OpportunityFieldHistory WHERE OpportunityId IN ('{opportunity}') ORDER BY CreatedDate ASC"
    )
    records: list[dict[str, Any]] = sf.query_all(soql)["records"]
    return records


def _stage_rows(sf: Salesforce, opportunity: str) -> list[dict[str, Any]]:
    soql = (
        "SELECT Id, OpportunityId, StageName, Amount, CloseDate, Probability, ExpectedRevenue, "
        "ForecastCategory, CreatedDate, CreatedById, SystemModstamp, IsDeleted FROM OpportunityHistory "
        f"WHERE OpportunityId = '{opportunity}' ORDER BY CreatedDate ASC"
    )
    records: list[dict[str, Any]] = sf.query_all(soql)["records"]
    return records


def test_seeded_closed_deals_carry_a_history_that_ends_at_their_values(sb: Sandbox, sf: Salesforce) -> None:
    """Each of the 85 closed POCs has one 'created' row, stage rows from Prospecting to its closed stage and
    BANT rows whose last NewValue is the value the record holds (18 deals edited, 28 edits); open seeded
    deals have no rows."""
    closed = _opportunities(sb, True)
    assert len(closed) == 85
    edited_deals, edit_rows = 0, 0
    for opportunity in closed:
        rows = _field_rows(sf, opportunity["Id"])
        assert [r["Field"] for r in rows].count("created") == 1
        assert rows[0]["Field"] == "created" and rows[0]["OldValue"] is None
        stages = [r for r in rows if r["Field"] == "StageName"]
        assert stages[-1]["NewValue"] == opportunity["StageName"]
        assert stages[0]["OldValue"] == "Prospecting"
        edited_deals += any(r["Field"] in BANT for r in rows)
        for name in BANT:
            edits = [r for r in rows if r["Field"] == name]
            edit_rows += len(edits)
            if edits:
                assert edits[-1]["NewValue"] == opportunity[name]
                assert edits[0]["OldValue"] != edits[0]["NewValue"]
        path = _stage_rows(sf, opportunity["Id"])
        assert path[0]["StageName"] == "Prospecting"
        assert path[0]["CreatedDate"] == rows[0]["CreatedDate"]
        assert [p["StageName"] for p in path[1:]] == [s["NewValue"] for s in stages]
    assert (edited_deals, edit_rows) == (18, 28)
    opened = _opportunities(sb, False)[0]["Id"]
    assert _field_rows(sf, opened) == [] and _stage_rows(sf, opened) == []


def test_an_api_update_records_tracked_fields_and_the_stage_path(sb: Sandbox, sf: Salesforce) -> None:
    """A PATCH of an opportunity adds a row per changed tracked field (not for untracked BANT_Status__c,
    not for an unchanged value) and an OpportunityHistory row for the stage move."""
    opportunity = next(o for o in _opportunities(sb, False) if o["StageName"] != "Negotiation/Review")
    sb.clock.advance(60)
    sf.Opportunity.update(
        opportunity["Id"],
        {
            "BANT_Budget__c": "USD 120k approved",
            "BANT_Authority__c": opportunity["BANT_Authority__c"],
            "BANT_Status__c": "qualified",
            "StageName": "Negotiation/Review",
        },
    )
    rows = _field_rows(sf, opportunity["Id"])
    assert [(r["Field"], r["OldValue"], r["NewValue"], r["DataType"]) for r in rows] == [
        ("BANT_Budget__c", opportunity["BANT_Budget__c"], "USD 120k approved", "Text"),
        ("StageName", opportunity["StageName"], "Negotiation/Review", "DynamicEnum"),
    ]
    path = _stage_rows(sf, opportunity["Id"])
    assert [(p["StageName"], p["Probability"], p["ForecastCategory"]) for p in path] == [
        ("Negotiation/Review", 90.0, "Commit")
    ]
    assert path[0]["CreatedDate"] == rows[0]["CreatedDate"]
    sf.Opportunity.update(opportunity["Id"], {"BANT_Need__c": opportunity["BANT_Need__c"]})
    assert len(_field_rows(sf, opportunity["Id"])) == 2


def test_a_create_and_a_collection_update_record_history(sb: Sandbox, sf: Salesforce) -> None:
    """A created opportunity gets its 'created' row and first OpportunityHistory row; a composite
    collection update records its changes like a single PATCH."""
    owner = sb.salesforce.default_owner_id
    made = sf.Opportunity.create(
        {"Name": "History Co", "StageName": "Prospecting", "CloseDate": "2026-06-30", "OwnerId": owner}
    )
    rid = made["id"]
    assert [r["Field"] for r in _field_rows(sf, rid)] == ["created"]
    assert [p["StageName"] for p in _stage_rows(sf, rid)] == ["Prospecting"]
    sb.clock.advance(5)
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Opportunity"}, "id": rid, "BANT_Timing__c": "Q3", "Amount": 5000}
        ],
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert results[0]["success"] is True
    rows = _field_rows(sf, rid)
    assert [(r["Field"], r["OldValue"], r["NewValue"]) for r in rows] == [
        ("created", None, None),
        ("BANT_Timing__c", None, "Q3"),
    ]
    path = _stage_rows(sf, rid)
    assert [(p["Amount"], p["ExpectedRevenue"]) for p in path] == [(None, None), (5000.0, 500.0)]


def test_an_untracked_field_leaves_no_row_and_field_definition_says_so(sb: Sandbox, sf: Salesforce) -> None:
    """Turning history tracking off for BANT_Need__c: its changes leave no row and FieldDefinition reports
    IsFieldHistoryTracked false for it, true for the other BANT inputs and StageName."""
    sb.salesforce.set_history_tracking("Opportunity", "BANT_Need__c", False)
    opportunity = _opportunities(sb, False)[0]
    sf.Opportunity.update(opportunity["Id"], {"BANT_Need__c": "A need typed in much later on"})
    assert _field_rows(sf, opportunity["Id"]) == []
    names = "', '".join((*BANT, "StageName", "Amount"))
    result = sf.query_all(
        "SELECT QualifiedApiName, IsFieldHistoryTracked FROM FieldDefinition "
        f"WHERE EntityDefinitionId = 'Opportunity' AND QualifiedApiName IN ('{names}')"
    )
    tracked = {r["QualifiedApiName"]: r["IsFieldHistoryTracked"] for r in result["records"]}
    assert tracked == {
        "BANT_Budget__c": True,
        "BANT_Authority__c": True,
        "BANT_Need__c": False,
        "BANT_Timing__c": True,
        "StageName": True,
        "Amount": False,
    }


def test_field_definition_needs_an_entity_filter(sf: Salesforce) -> None:
    """A FieldDefinition query that names no object is refused (MALFORMED_QUERY), as Salesforce does."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT QualifiedApiName FROM FieldDefinition WHERE IsFieldHistoryTracked = true")
    assert caught.value.content[0]["errorCode"] == "MALFORMED_QUERY"


@pytest.mark.parametrize("obj", ["OpportunityFieldHistory", "OpportunityHistory"])
def test_history_objects_are_read_only(sb: Sandbox, sf: Salesforce, obj: str) -> None:
    """Describe marks them not createable/updateable/deletable; a row can be retrieved by id; a create
    through the sObject route or a collection, an update and a delete are refused with
    INVALID_TYPE_FOR_OPERATION."""
    described = sf.__getattr__(obj).describe()
    assert (described["createable"], described["updateable"], described["deletable"]) == (False,) * 3
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["OpportunityId"]["referenceTo"] == ["Opportunity"]
    if obj == "OpportunityFieldHistory":
        assert (fields["OldValue"]["type"], fields["OldValue"]["soapType"]) == ("anyType", "xsd:anyType")
    opportunity = _opportunities(sb, True)[0]["Id"]
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.__getattr__(obj).create({"OpportunityId": opportunity})
    assert caught.value.content[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    body = {"records": [{"attributes": {"type": obj}, "OpportunityId": opportunity}]}
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert results[0]["errors"][0]["statusCode"] == "INVALID_TYPE_FOR_OPERATION"
    row = sf.query(f"SELECT Id FROM {obj} WHERE OpportunityId = '{opportunity}' LIMIT 1")["records"][0]
    retrieved = sf.__getattr__(obj).get(row["Id"])
    assert (retrieved["Id"], retrieved["OpportunityId"]) == (row["Id"], opportunity)
    base = f"{sf_info(sb)['instance_url']}/services/data/v59.0/sobjects/{obj}/{row['Id']}"
    headers = {"Authorization": f"Bearer {sf_info(sb)['access_token']}"}
    session = sf_session(sb)
    for method in ("PATCH", "DELETE"):
        answer = session.request(method, base, headers=headers, json={"IsDeleted": True}, timeout=10)
        assert answer.status_code == 400, method
        assert answer.json()[0]["errorCode"] == "INVALID_TYPE_FOR_OPERATION"
    assert sum(1 for _ in sb.salesforce.records(obj)) == (368 if obj == "OpportunityFieldHistory" else 340)


def test_query_all_reads_history_by_opportunity_and_field(sb: Sandbox) -> None:
    """simple-salesforce's own query_all over `OpportunityId IN (...) AND Field IN (...)` in pages of 200
    returns exactly the rows the store holds for those deals and fields, in CreatedDate order."""
    sf = sf_client(sb)
    ids = [o["Id"] for o in _opportunities(sb, True)]
    quoted = ", ".join(f"'{i}'" for i in ids)
    fields = "', '".join((*BANT, "created"))
    result = sf.query_all(
        "SELECT OpportunityId, Field, OldValue, NewValue, CreatedDate FROM OpportunityFieldHistory "
        f"WHERE OpportunityId IN ({quoted}) AND Field IN ('{fields}') ORDER BY CreatedDate ASC",
        headers={"Sforce-Query-Options": "batchSize=200"},
    )
    held = [r for r in sb.salesforce.records("OpportunityFieldHistory") if r["Field"] != "StageName"]
    assert result["totalSize"] == len(result["records"]) == len(held) == 85 + 28
    stamps = [r["CreatedDate"] for r in result["records"]]
    assert stamps == sorted(stamps)
