"""Salesforce sObject resources, OAuth, limits and ids, through simple-salesforce and requests."""

from __future__ import annotations

import time
from datetime import date

import jwt
import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox import Sandbox
from sandbox.salesforce.ids import checksum, normalize_id
from tests.sandbox.clients import sf_client, sf_info, sf_session
from tests.sandbox.conftest import Factory


def _open_id(sb: Sandbox) -> str:
    return str(next(r["Id"] for r in sb.salesforce.records("Opportunity") if not r["IsClosed"]))


def test_describe_lists_bant_fields_with_their_types(sf: Salesforce) -> None:
    """Opportunity describe carries the BANT inputs and outputs with the types DESIGN §4 names."""
    fields = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
    expected = {
        "BANT_Budget__c": "string",
        "BANT_Need__c": "textarea",
        "BANT_Status__c": "picklist",
        "BANT_Missing__c": "string",
        "BANT_Score__c": "double",
        "BANT_Checked_At__c": "datetime",
        "BANT_Flagged_Since__c": "date",
        "BANT_Reasons__c": "textarea",
        "BANT_Snooze_Until__c": "date",
        "BANT_Snooze_Reason__c": "string",
        "LastModifiedById": "reference",
    }
    assert {name: fields[name]["type"] for name in expected} == expected
    assert [p["value"] for p in fields["BANT_Status__c"]["picklistValues"]] == [
        "qualified",
        "needs_qualification",
        "poc_unqualified",
        "qualify_out",
        "not_evaluated",
        "snoozed",
    ]
    assert fields["BANT_Status__c"]["updateable"] and not fields["IsClosed"]["updateable"]
    key = {f["name"]: f for f in sf.Task.describe()["fields"]}["BANT_Sync_Key__c"]
    assert (key["externalId"], key["unique"], key["length"]) == (True, True, 255)


def test_bare_org_lacks_the_output_fields_and_task_key(make_sandbox: Factory) -> None:
    """--bare leaves bant-sync's own fields out, so setup's describe check has something to report."""
    sf = sf_client(make_sandbox(bare=True))
    opportunity = {f["name"] for f in sf.Opportunity.describe()["fields"]}
    task = {f["name"] for f in sf.Task.describe()["fields"]}
    assert "BANT_Need__c" in opportunity and "BANT_Status__c" not in opportunity
    assert "BANT_Sync_Key__c" not in task


def test_create_read_update_delete_round_trip(sb: Sandbox, sf: Salesforce) -> None:
    """A created opportunity is readable, PATCH changes it (204) and DELETE removes it (then 404)."""
    created = sf.Opportunity.create(
        {"Name": "Sandbox Co — Trial", "StageName": "Prospecting", "CloseDate": "2026-06-30"}
    )
    assert created["success"] and created["id"].startswith("006")
    record = sf.Opportunity.get(created["id"])
    assert (record["IsClosed"], record["Probability"], record["OwnerId"]) == (
        False,
        10.0,
        sb.salesforce.default_owner_id,
    )
    assert sf.Opportunity.update(created["id"], {"StageName": "Closed Won"}) == 204
    won = sf.Opportunity.get(created["id"], headers=None)
    assert (won["IsClosed"], won["IsWon"], won["Probability"]) == (True, True, 100.0)
    assert sf.Opportunity.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get(created["id"])


def test_every_write_moves_system_modstamp_with_the_sandbox_clock(sb: Sandbox, sf: Salesforce) -> None:
    """API writes and user edits stamp SystemModstamp and LastModifiedDate with the sandbox clock."""
    sb.clock.freeze()
    record_id = _open_id(sb)
    sb.clock.advance(3600)
    sf.Opportunity.update(record_id, {"BANT_Status__c": "qualified"})
    after_api = sb.salesforce.get("Opportunity", record_id)
    assert after_api is not None and after_api["SystemModstamp"] == sb.clock.now()
    sb.clock.advance(60)
    sb.salesforce.update("Opportunity", record_id, {"BANT_Budget__c": "TBD"})
    after_user = sb.salesforce.get("Opportunity", record_id)
    assert after_user is not None
    assert after_user["SystemModstamp"] == after_user["LastModifiedDate"] == sb.clock.now()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"Nope__c": "x"}, "INVALID_FIELD"),
        ({"BANT_Status__c": "maybe"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE"),
        ({"CloseDate": "next tuesday"}, "JSON_PARSER_ERROR"),
        ({"BANT_Budget__c": "x" * 256}, "STRING_TOO_LONG"),
        ({"OwnerId": "005000000000000AAA"}, "INVALID_CROSS_REFERENCE_KEY"),
    ],
    ids=["unknown-field", "restricted-picklist", "read-only", "bad-date", "too-long", "dangling-owner"],
)
def test_bad_updates_are_400_with_the_salesforce_code(
    sb: Sandbox, sf: Salesforce, payload: dict[str, object], code: str
) -> None:
    """Each invalid write answers 400 [{"errorCode": code, ...}] and changes nothing."""
    record_id = _open_id(sb)
    before = sb.salesforce.get("Opportunity", record_id)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.update(record_id, payload)
    assert caught.value.content[0]["errorCode"] == code
    assert sb.salesforce.get("Opportunity", record_id) == before


def test_create_without_required_fields_names_them(sf: Salesforce) -> None:
    """Missing Name/StageName/CloseDate is REQUIRED_FIELD_MISSING listing the fields."""
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Opportunity.create({"Amount": 10})
    error = caught.value.content[0]
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert set(error["fields"]) == {"Name", "StageName", "CloseDate"}


def test_upsert_by_external_id_creates_then_updates(sb: Sandbox, sf: Salesforce) -> None:
    """PATCH sobjects/Task/BANT_Sync_Key__c/<key>: 201 first, 200 after; Task IsClosed follows Status."""
    what = _open_id(sb)
    assert sf.Task.upsert("BANT_Sync_Key__c/deal-1", {"Subject": "Qualify", "WhatId": what}) == 201
    assert sf.Task.upsert("BANT_Sync_Key__c/deal-1", {"Status": "Completed"}) == 200
    tasks = [t for t in sb.salesforce.records("Task") if t["BANT_Sync_Key__c"] == "deal-1"]
    assert len(tasks) == 1
    assert (tasks[0]["Status"], tasks[0]["IsClosed"], tasks[0]["Priority"]) == ("Completed", True, "Normal")
    assert sf.Task.get_by_custom_id("BANT_Sync_Key__c", "deal-1")["Id"] == tasks[0]["Id"]


def test_upsert_matching_several_records_is_300(sb: Sandbox, sf: Salesforce) -> None:
    """An external id that is not unique and matches twice: the upsert is refused with 300."""
    from sandbox.salesforce.schema import FieldDef

    sb.salesforce.add_field(
        "Task", FieldDef("Legacy_Key__c", "Legacy Key", "string", length=40, external_id=True)
    )
    for _ in range(2):
        sf.Task.create({"Subject": "Old", "Legacy_Key__c": "dup"})
    with pytest.raises(SalesforceMoreThanOneRecord) as caught:
        sf.Task.upsert("Legacy_Key__c/dup", {"Subject": "New"})
    assert len(caught.value.content) == 2


def test_limits_and_the_usage_header_count_calls(make_sandbox: Factory) -> None:
    """Every call counts against DailyApiRequests; Sforce-Limit-Info reports USED/MAX."""
    sb = make_sandbox(salesforce_daily_api_limit=500)
    sf = sf_client(sb)
    sf.query("SELECT Id FROM User")
    assert (sf.api_usage["api-usage"].used, sf.api_usage["api-usage"].total) == (1, 500)
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 500, "Remaining": 498}


def test_past_the_daily_allocation_calls_are_refused_with_request_limit_exceeded(
    make_sandbox: Factory,
) -> None:
    """With the allocation spent, calls get 403 REQUEST_LIMIT_EXCEEDED, even with rate limits off."""
    sb = make_sandbox(salesforce_daily_api_limit=3)
    sf = sf_client(sb)
    for _ in range(3):
        sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert caught.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_a_wrong_token_gets_invalid_session_id(sb: Sandbox) -> None:
    """An unknown bearer token is 401 INVALID_SESSION_ID, which simple-salesforce raises as expired."""
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf_client(sb, token="00D!not-a-token").query("SELECT Id FROM User")
    assert caught.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def _token(sb: Sandbox, form: dict[str, str]) -> requests.Response:
    url = f"{sf_info(sb)['login_url']}/services/oauth2/token"
    return sf_session(sb).post(url, data=form, timeout=10)


def _assertion(sb: Sandbox, **overrides: object) -> str:
    info = sf_info(sb)
    claims: dict[str, object] = {
        "iss": info["client_id"],
        "sub": info["username"],
        "aud": info["login_url"],
        "exp": int(time.time()) + 180,
    }
    claims.update(overrides)
    with open(info["jwt_private_key_path"], "rb") as handle:
        return jwt.encode(claims, handle.read(), algorithm="RS256")


def test_each_oauth_grant_issues_a_working_token(sb: Sandbox) -> None:
    """JWT bearer, client credentials and password grants each return a token the API accepts."""
    info = sf_info(sb)
    grants = [
        {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": _assertion(sb)},
        {
            "grant_type": "client_credentials",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
        },
        {
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"],
        },
    ]
    for form in grants:
        response = _token(sb, form)
        assert response.status_code == 200, form["grant_type"]
        body = response.json()
        assert body["instance_url"] == info["instance_url"] and body["token_type"] == "Bearer"
        assert (
            sf_client(sb, token=body["access_token"]).query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1
        )


@pytest.mark.parametrize(
    "overrides",
    [{"sub": "someone@else"}, {"aud": "https://login.salesforce.com"}, {"exp": 1}, {"iss": "other-app"}],
    ids=["wrong-user", "wrong-audience", "expired", "wrong-client"],
)
def test_a_bad_jwt_assertion_is_invalid_grant(sb: Sandbox, overrides: dict[str, object]) -> None:
    """Assertions with the wrong subject, audience, issuer or expiry fail with Salesforce's invalid_grant."""
    response = _token(
        sb,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": _assertion(sb, **overrides),
        },
    )
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_a_wrong_password_is_invalid_grant(sb: Sandbox) -> None:
    """The password grant checks the password."""
    info = sf_info(sb)
    response = _token(
        sb,
        {
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": "guess",
        },
    )
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_ids_are_18_characters_with_the_case_checksum(sb: Sandbox) -> None:
    """Record ids carry the documented 3-character suffix; 15-character ids address the same record."""
    assert checksum("001A0000006Vm9r") == "IAC"
    record_id = _open_id(sb)
    assert len(record_id) == 18 and checksum(record_id[:15]) == record_id[15:]
    assert normalize_id(record_id[:15]) == record_id
    assert sb.salesforce.get("Opportunity", record_id[:15]) == sb.salesforce.get("Opportunity", record_id)


def test_dates_in_python_records_are_dates(sb: Sandbox) -> None:
    """The Python API hands out Python values: dates, tz-aware datetimes, floats."""
    record = sb.salesforce.records("Opportunity")[0]
    assert isinstance(record["CloseDate"], date)
    assert record["SystemModstamp"].tzinfo is not None


def test_a_deleted_field_is_restored_with_its_values_and_no_record_moves(sb: Sandbox, sf: Salesforce) -> None:
    """restore_field (Salesforce keeps a deleted custom field and its data for 15 days) brings the field
    back in describe with every record's value; no record's SystemModstamp changes."""
    before = {r["Id"]: r for r in sb.salesforce.records("Opportunity")}
    sb.salesforce.delete_field("Opportunity", "BANT_Need__c")
    assert "BANT_Need__c" not in {f["name"] for f in sf.Opportunity.describe()["fields"]}
    with pytest.raises(KeyError):
        sb.salesforce.restore_field("Opportunity", "BANT_Budget__c")
    sb.salesforce.restore_field("Opportunity", "bant_need__c")
    after = {r["Id"]: r for r in sb.salesforce.records("Opportunity")}
    assert after == before
    assert "BANT_Need__c" in {f["name"] for f in sf.Opportunity.describe()["fields"]}
