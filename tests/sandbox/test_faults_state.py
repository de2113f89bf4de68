"""Faults that change what the CRM holds or sees: partial batches, locked rows, search lag, session expiry,
schema changes."""

from __future__ import annotations

import json

import pytest
import requests
from hubspot.crm.deals import ApiException, BatchInputSimplePublicObjectBatchInput, PublicObjectSearchRequest
from hubspot.crm.deals.exceptions import UnauthorizedException
from hubspot.crm.properties.exceptions import NotFoundException as PropertyNotFound
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceMalformedRequest

from sandbox import FaultRule, Sandbox
from tests.sandbox.clients import hs_client, hs_info, hs_url, sf_client, sf_info, sf_session


def _open_deals(sb: Sandbox, count: int) -> list[str]:
    return [str(d["id"]) for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "false"][:count]


def _batch(ids: list[str], **props: str) -> BatchInputSimplePublicObjectBatchInput:
    return BatchInputSimplePublicObjectBatchInput(inputs=[{"id": i, "properties": props} for i in ids])


def _qualified_search(sb: Sandbox) -> set[str]:
    request = PublicObjectSearchRequest(
        filter_groups=[
            {"filters": [{"propertyName": "bant_status", "operator": "EQ", "value": "qualified"}]}
        ],
        limit=200,
    )
    return {
        r.id
        for r in hs_client(sb).crm.deals.search_api.do_search(public_object_search_request=request).results
    }


def test_a_partial_hubspot_batch_is_a_207_with_errors_beside_results(sb: Sandbox) -> None:
    """partial_batch rows (1,): the SDK gets ...WithErrors; row 1 unchanged, rows 0 and 2 written."""
    sb.add_fault(
        FaultRule(kind="partial_batch", crm="hubspot", rows=(1,), message="Property is locked by a workflow")
    )
    deals = _open_deals(sb, 3)
    response = hs_client(sb).crm.deals.batch_api.update(_batch(deals, bant_score="70"))
    assert (response.status, response.num_errors) == ("COMPLETE", 1)
    assert (
        response.errors[0].context == {"ids": [deals[1]]}
        and response.errors[0].category == "VALIDATION_ERROR"
    )
    assert sorted(r.id for r in response.results) == sorted([deals[0], deals[2]])
    assert [sb.hubspot.get_deal(d)["properties"].get("bant_score") for d in deals] == ["70", None, "70"]
    assert sb.requests()[-1]["status"] == 207


def test_hubspot_locked_rows_conflict_for_n_attempts(sb: Sandbox) -> None:
    """locked_rows attempts=1 on HubSpot: the first write is a per-row CONFLICT, the next one lands."""
    deal = _open_deals(sb, 1)[0]
    sb.add_fault(FaultRule(kind="locked_rows", crm="hubspot", ids=(deal,), attempts=1))
    hs = hs_client(sb)
    first = hs.crm.deals.batch_api.update(_batch([deal], bant_score="5"))
    assert first.errors[0].category == "CONFLICT" and first.errors[0].context == {"ids": [deal]}
    assert (
        hs.crm.deals.batch_api.update(_batch([deal], bant_score="5")).results[0].properties["bant_score"]
        == "5"
    )


def test_search_lag_shows_the_old_version_until_the_lag_has_passed(sb: Sandbox) -> None:
    """With a 30 s search lag an edit is invisible to search for 30 s of sandbox clock; reads see it now."""
    sb.add_fault(FaultRule(kind="search_lag", seconds=30))
    sb.clock.freeze()
    deal = _open_deals(sb, 1)[0]
    sb.clock.advance(5)
    hs_client(sb).crm.deals.batch_api.update(_batch([deal], bant_status="qualified"))
    assert deal not in _qualified_search(sb)
    assert sb.hubspot.get_deal(deal)["properties"]["bant_status"] == "qualified"
    sb.clock.advance(31)
    assert deal in _qualified_search(sb)


def test_a_record_created_within_the_lag_is_not_found_by_search(sb: Sandbox) -> None:
    """set_search_lag: a brand-new task is missing from search until the lag passes."""
    sb.hubspot.set_search_lag(60)
    sb.clock.freeze()
    hs = hs_client(sb)
    hs.crm.objects.tasks.basic_api.create(
        {"properties": {"hs_task_subject": "New", "hs_timestamp": "2026-03-09T17:00:00Z"}}
    )
    request = PublicObjectSearchRequest(limit=10)
    assert hs.crm.objects.tasks.search_api.do_search(public_object_search_request=request).total == 0
    sb.clock.advance(61)
    assert hs.crm.objects.tasks.search_api.do_search(public_object_search_request=request).total == 1


def test_salesforce_session_expiry_rejects_old_tokens_until_a_new_login(sb: Sandbox) -> None:
    """session_expiry after 2 calls: the 3rd call is 401 INVALID_SESSION_ID and stays so; a new login works"""
    sb.add_fault(FaultRule(kind="session_expiry", crm="salesforce", after_calls=2))
    sf = sf_client(sb)
    for _ in range(2):
        sf.query("SELECT Id FROM User LIMIT 1")
    for _ in range(2):
        with pytest.raises(SalesforceExpiredSession):
            sf.query("SELECT Id FROM User LIMIT 1")
    info = sf_info(sb)
    form = {
        "grant_type": "client_credentials",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
    }
    token = (
        sf_session(sb)
        .post(f"{info['login_url']}/services/oauth2/token", data=form, timeout=10)
        .json()["access_token"]
    )
    assert sf_client(sb, token=token).query("SELECT Id FROM User LIMIT 1")["totalSize"] == 1


def test_hubspot_session_expiry_says_expired_until_a_refresh(sb: Sandbox) -> None:
    """session_expiry on HubSpot: EXPIRED_AUTHENTICATION 401s until a refresh-token grant issues a token."""
    sb.add_fault(FaultRule(kind="session_expiry", crm="hubspot", after_calls=1))
    hs = hs_client(sb)
    hs.crm.deals.basic_api.get_page(limit=1)
    with pytest.raises(UnauthorizedException) as caught:
        hs.crm.deals.basic_api.get_page(limit=1)
    assert json.loads(caught.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    info = hs_info(sb)
    form = {
        "grant_type": "refresh_token",
        "client_id": info["client_id"],
        "client_secret": info["client_secret"],
        "refresh_token": info["refresh_token"],
    }
    token = requests.post(hs_url(sb, "/oauth/v1/token"), data=form, timeout=10).json()["access_token"]
    assert hs_client(sb, token=token).crm.deals.basic_api.get_page(limit=1).results


def test_a_salesforce_field_deleted_mid_run_breaks_queries_and_describe(sb: Sandbox) -> None:
    """schema_change on the 2nd query: BANT_Need__c vanishes, so that query is INVALID_FIELD."""
    sb.add_fault(
        FaultRule(
            kind="schema_change",
            crm="salesforce",
            path="/query",
            nth=2,
            object_name="Opportunity",
            field_name="BANT_Need__c",
        )
    )
    sf = sf_client(sb)
    soql = "SELECT Id, BANT_Need__c FROM Opportunity LIMIT 1"
    sf.query(soql)
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert caught.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "BANT_Need__c" not in {f["name"] for f in sf.Opportunity.describe()["fields"]}


def test_a_renamed_salesforce_field_answers_under_its_new_name(sb: Sandbox) -> None:
    """schema_change with rename_to keeps the values under the new name."""
    sb.add_fault(
        FaultRule(
            kind="schema_change",
            crm="salesforce",
            object_name="Opportunity",
            field_name="BANT_Budget__c",
            rename_to="BANT_Budget_Text__c",
        )
    )
    sf = sf_client(sb)
    renamed = sf.query("SELECT BANT_Budget_Text__c FROM Opportunity")["records"]
    assert any(r["BANT_Budget_Text__c"] for r in renamed)
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT BANT_Budget__c FROM Opportunity")


def test_a_hubspot_property_deleted_mid_run(sb: Sandbox) -> None:
    """schema_change on HubSpot: the property is gone from the properties API and writes to it fail."""
    sb.add_fault(FaultRule(kind="schema_change", crm="hubspot", object_name="deals", field_name="bant_need"))
    hs = hs_client(sb)
    with pytest.raises(PropertyNotFound):
        hs.crm.properties.core_api.get_by_name("deals", "bant_need")
    with pytest.raises(ApiException) as caught:
        hs.crm.deals.batch_api.update(_batch(_open_deals(sb, 1), bant_need="A need that is long enough"))
    assert caught.value.status == 400 and "PROPERTY_DOESNT_EXIST" in caught.value.body
