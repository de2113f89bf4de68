"""HubSpot's burst and search rate limits: 429 bodies with policyName, Retry-After, and rate-limit headers."""

from __future__ import annotations

import contextlib
import json

import pytest
import requests
from hubspot.crm.deals import ApiException, PublicObjectSearchRequest

from sandbox import Sandbox
from tests.sandbox.clients import hs_client, hs_headers, hs_url
from tests.sandbox.conftest import Factory


@pytest.fixture
def limited(make_sandbox: Factory) -> Sandbox:
    sandbox = make_sandbox(enforce_rate_limits=True, hubspot_burst_per_10s=5, hubspot_search_per_second=2)
    sandbox.clock.freeze()
    return sandbox


def test_every_call_reports_the_burst_window(limited: Sandbox) -> None:
    """X-HubSpot-RateLimit-Max/-Remaining/-Interval-Milliseconds count down within the 10-second window."""
    remaining = []
    for _ in range(3):
        response = requests.get(
            hs_url(limited, "/crm/v3/objects/deals"), headers=hs_headers(limited), timeout=10
        )
        assert response.headers["X-HubSpot-RateLimit-Max"] == "5"
        assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(response.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [4, 3, 2]


def test_past_the_burst_limit_calls_get_429_until_the_window_moves(limited: Sandbox) -> None:
    """The 6th call in 10 s is 429 TEN_SECONDLY_ROLLING with Retry-After; 10 s later calls pass again."""
    hs = hs_client(limited)
    for _ in range(5):
        hs.crm.deals.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as caught:
        hs.crm.deals.basic_api.get_page(limit=1)
    assert caught.value.status == 429
    body = json.loads(caught.value.body)
    assert (body["status"], body["errorType"], body["policyName"]) == (
        "error",
        "RATE_LIMIT",
        "TEN_SECONDLY_ROLLING",
    )
    assert body["correlationId"] and body["message"]
    assert caught.value.headers["Retry-After"] == "10"
    limited.clock.advance(10)
    assert hs.crm.deals.basic_api.get_page(limit=1).results


def test_search_has_its_own_per_second_limit(limited: Sandbox) -> None:
    """The 3rd search within a second is 429 SECONDLY; a second later search works again."""
    hs = hs_client(limited)
    request = PublicObjectSearchRequest(limit=1)
    for _ in range(2):
        hs.crm.deals.search_api.do_search(public_object_search_request=request)
    with pytest.raises(ApiException) as caught:
        hs.crm.deals.search_api.do_search(public_object_search_request=request)
    assert (caught.value.status, json.loads(caught.value.body)["policyName"]) == (429, "SECONDLY")
    assert caught.value.headers["Retry-After"] == "1"
    limited.clock.advance(1)
    assert hs.crm.deals.search_api.do_search(public_object_search_request=request).total > 0


def test_refused_calls_are_in_the_request_log(limited: Sandbox) -> None:
    """A 429 is a CRM call like any other: the log records it with its status."""
    hs = hs_client(limited)
    for _ in range(6):
        with contextlib.suppress(ApiException):
            hs.crm.deals.basic_api.get_page(limit=1)
    assert [entry["status"] for entry in limited.requests()] == [200] * 5 + [429]


def test_without_enforcement_nothing_is_refused(make_sandbox: Factory) -> None:
    """enforce_rate_limits=False counts calls but never answers 429."""
    sb = make_sandbox(hubspot_burst_per_10s=2)
    sb.clock.freeze()
    hs = hs_client(sb)
    for _ in range(5):
        assert hs.crm.deals.basic_api.get_page(limit=1).results
