"""Faults that change the answer: injected statuses and CRM errors, latency, hangs, commit-then-drop."""

from __future__ import annotations

import json
import time

import pytest
import requests
import urllib3
from hubspot.crm.deals import ApiException, BatchInputSimplePublicObjectBatchInput, PublicObjectSearchRequest
from hubspot.crm.deals.exceptions import ServiceException
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError

from sandbox import FaultRule, Sandbox
from tests.sandbox.clients import hs_client, hs_headers, hs_url, sf_client, sf_info, sf_session
from tests.sandbox.conftest import Factory


def _open_deals(sb: Sandbox, count: int) -> list[str]:
    return [str(d["id"]) for d in sb.hubspot.deals() if d["properties"]["hs_is_closed"] == "false"][:count]


def _open_opportunity(sb: Sandbox) -> str:
    return str(next(r["Id"] for r in sb.salesforce.records("Opportunity") if not r["IsClosed"]))


def test_a_status_fault_answers_that_status_for_the_given_number_of_calls(sb: Sandbox) -> None:
    """status 503 times=2 on search: two 503s in HubSpot's envelope with the given headers, then normal."""
    sb.add_fault(
        FaultRule(
            kind="status", crm="hubspot", path=r"/search$", status=503, times=2, headers={"Retry-After": "3"}
        )
    )
    hs = hs_client(sb)
    request = PublicObjectSearchRequest(limit=1)
    for _ in range(2):
        with pytest.raises(ServiceException) as caught:
            hs.crm.deals.search_api.do_search(public_object_search_request=request)
        assert caught.value.status == 503 and caught.value.headers["Retry-After"] == "3"
        assert json.loads(caught.value.body)["category"] == "SERVICE_UNAVAILABLE"
    assert hs.crm.deals.search_api.do_search(public_object_search_request=request).total > 0
    assert [e.get("faults") for e in sb.requests()] == [["status"], ["status"], None]


def test_an_injected_429_carries_the_rate_limit_body_and_retry_after(sb: Sandbox) -> None:
    """status 429 on HubSpot renders the RATE_LIMIT body (policyName) with the rule's Retry-After."""
    sb.add_fault(FaultRule(kind="status", crm="hubspot", status=429, headers={"Retry-After": "7"}, nth=1))
    with pytest.raises(ApiException) as caught:
        hs_client(sb).crm.deals.basic_api.get_page(limit=1)
    body = json.loads(caught.value.body)
    assert (caught.value.status, body["errorType"], body["policyName"]) == (
        429,
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert caught.value.headers["Retry-After"] == "7"


def test_a_salesforce_status_fault_uses_the_salesforce_envelope(sb: Sandbox) -> None:
    """status 503 on Salesforce: [{"errorCode": "SERVER_UNAVAILABLE", ...}]."""
    sb.add_fault(FaultRule(kind="status", crm="salesforce", status=503, times=1))
    with pytest.raises(SalesforceGeneralError) as caught:
        sf_client(sb).query("SELECT Id FROM User")
    assert caught.value.status == 503 and caught.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"


def test_an_error_code_fault_is_rendered_at_its_usual_status(sb: Sandbox) -> None:
    """error_code INVALID_SESSION_ID is a 401 in Salesforce's array envelope."""
    sb.add_fault(FaultRule(kind="error_code", crm="salesforce", error_code="INVALID_SESSION_ID", nth=2))
    sf = sf_client(sb)
    sf.query("SELECT Id FROM User")
    with pytest.raises(SalesforceExpiredSession) as caught:
        sf.query("SELECT Id FROM User")
    assert caught.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID", "fields": []}
    ]
    assert sf.query("SELECT Id FROM User")["totalSize"] == len(sb.salesforce.records("User"))


def test_a_hubspot_error_code_fault_is_rendered_with_its_category(sb: Sandbox) -> None:
    """error_code OBJECT_NOT_FOUND answers 404 with HubSpot's category."""
    sb.add_fault(FaultRule(kind="error_code", crm="hubspot", error_code="OBJECT_NOT_FOUND", times=1))
    with pytest.raises(ApiException) as caught:
        hs_client(sb).crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 404 and json.loads(caught.value.body)["category"] == "OBJECT_NOT_FOUND"


def test_latency_delays_the_answer(sb: Sandbox) -> None:
    """latency_ms=150 holds the call at least that long and the log says so."""
    sb.add_fault(FaultRule(kind="latency", crm="hubspot", latency_ms=150, times=1))
    started = time.monotonic()
    hs_client(sb).crm.deals.basic_api.get_page(limit=1)
    assert time.monotonic() - started >= 0.15
    assert sb.requests()[0]["faults"] == ["latency"]


def test_the_latency_option_delays_every_crm_call(make_sandbox: Factory) -> None:
    """SandboxOptions.latency_ms is added to each CRM call."""
    sb = make_sandbox(latency_ms=120)
    started = time.monotonic()
    hs_client(sb).crm.deals.basic_api.get_page(limit=1)
    sf_client(sb).query("SELECT Id FROM User LIMIT 1")
    assert time.monotonic() - started >= 0.24


def test_a_hang_never_answers_until_the_client_gives_up(sb: Sandbox) -> None:
    """hang: the client times out; the log shows no status; the next call is served normally."""
    sb.add_fault(FaultRule(kind="hang", crm="hubspot", method="GET", times=1))
    hs = hs_client(sb)
    with pytest.raises(urllib3.exceptions.HTTPError):
        hs.crm.deals.basic_api.get_page(limit=1, _request_timeout=0.3)
    assert hs.crm.deals.basic_api.get_page(limit=1).results
    assert [e["status"] for e in sb.requests()] == [None, 200]


def test_a_salesforce_hang_times_out_a_requests_session(sb: Sandbox) -> None:
    """The HTTPS side hangs too; requests raises ReadTimeout."""
    sb.add_fault(FaultRule(kind="hang", crm="salesforce", path="/query", times=1))
    url = f"{sf_info(sb)['instance_url']}/services/data/v59.0/query"
    headers = {"Authorization": f"Bearer {sf_info(sb)['access_token']}"}
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf_session(sb).get(url, params={"q": "SELECT Id FROM User"}, headers=headers, timeout=0.3)


def test_stopping_the_sandbox_releases_a_hanging_connection(sb: Sandbox) -> None:
    """stop() returns promptly while a client waits on a hung call; the client sees the connection end."""
    sb.add_fault(FaultRule(kind="hang", crm="hubspot"))
    response: list[object] = []

    def call() -> None:
        try:
            response.append(requests.get(hs_url(sb, "/crm/v3/owners"), headers=hs_headers(sb), timeout=30))
        except requests.exceptions.ConnectionError as exc:
            response.append(exc)

    import threading

    worker = threading.Thread(target=call)
    worker.start()
    while not sb.requests():
        time.sleep(0.01)
    sb.stop()
    worker.join(timeout=10)
    assert not worker.is_alive() and isinstance(response[0], requests.exceptions.ConnectionError)


def test_commit_then_drop_applies_the_write_but_never_answers(sb: Sandbox) -> None:
    """Salesforce PATCH is applied, then the socket closes without a response: the client sees a dropped
    connection and the record holds the new value."""
    sb.add_fault(FaultRule(kind="commit_then_drop", crm="salesforce", method="PATCH", times=1))
    record_id = _open_opportunity(sb)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf_client(sb).Opportunity.update(record_id, {"BANT_Status__c": "poc_unqualified"})
    assert sb.salesforce.get("Opportunity", record_id)["BANT_Status__c"] == "poc_unqualified"
    assert sb.requests()[-1]["faults"] == ["commit_then_drop"]


def test_commit_then_drop_on_a_hubspot_batch(sb: Sandbox) -> None:
    """A HubSpot batch update is applied and dropped; the SDK raises a protocol error."""
    sb.add_fault(FaultRule(kind="commit_then_drop", crm="hubspot", path="/batch/update$", times=1))
    deals = _open_deals(sb, 2)
    batch = BatchInputSimplePublicObjectBatchInput(
        inputs=[{"id": d, "properties": {"bant_score": "40"}} for d in deals]
    )
    with pytest.raises(urllib3.exceptions.HTTPError):
        hs_client(sb).crm.deals.batch_api.update(batch)
    assert [sb.hubspot.get_deal(d)["properties"]["bant_score"] for d in deals] == ["40", "40"]
