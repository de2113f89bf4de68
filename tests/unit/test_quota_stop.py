"""A quota stop sends nothing more (issue 12, item 2): HubSpot's daily limit is a quota stop like
Salesforce's REQUEST_LIMIT_EXCEEDED, and a client that met one sends no further request, from any thread."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import responses
from hubspot.crm.deals.exceptions import ApiException

from connectors.errors import QuotaExhaustedError, TransientError
from connectors.hubspot.auth import StaticToken
from connectors.hubspot.client import HubSpotClient, map_api_exception
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.settings import HubSpotSettings
from connectors.retry import RetryPolicy
from tests.connectors.sf_support import BASE, add_organization, make_connector

DAILY = {
    "status": "error",
    "message": "You have reached your daily limit.",
    "errorType": "RATE_LIMIT",
    "policyName": "DAILY",
}


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("DAILY", QuotaExhaustedError), ("TEN_SECONDLY_ROLLING", TransientError), ("SECONDLY", TransientError)],
)
def test_hubspot_429_is_a_quota_stop_only_for_the_daily_limit(policy: str, expected: type) -> None:
    """A 429 naming the DAILY policy stops the run; the rolling limits stay transient (waited out)."""
    error = map_api_exception(429, {}, json.dumps({**DAILY, "policyName": policy}))
    assert type(error) is expected


class _DealsApi:
    """The SDK's search api: answers every call with the daily-limit 429 and counts the sends."""

    def __init__(self) -> None:
        self.sends = 0
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(access_token=""), close=lambda: None)

    def do_search_with_http_info(self, *args: Any, **kwargs: Any) -> Any:
        self.sends += 1
        error = ApiException(status=429, reason="Too Many Requests")
        error.body = json.dumps(DAILY)
        error.headers = {}
        raise error


def test_a_hubspot_client_that_met_the_daily_limit_sends_nothing_more() -> None:
    """The first call meets the daily limit (sent once, not retried); later calls raise the same stop
    without reaching HubSpot."""
    api = _DealsApi()
    sdk = SimpleNamespace(crm=SimpleNamespace(deals=SimpleNamespace(search_api=api)))
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, sleep=lambda _s: None, rng=random.Random(1))
    limiter = RateLimiter(100, 4, clock=lambda: 1000.0, sleep=lambda _s: None)
    client = HubSpotClient(HubSpotSettings(), StaticToken("tok"), policy, limiter, sdk=sdk)
    for _ in range(3):
        with pytest.raises(QuotaExhaustedError, match="daily"):
            client.call("search", "deals_search", "do_search", {})
    assert api.sends == 1


@pytest.fixture
def sf() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        add_organization(mock)
        yield mock


def test_a_salesforce_client_that_met_the_quota_stop_sends_nothing_more(sf: responses.RequestsMock) -> None:
    """After one REQUEST_LIMIT_EXCEEDED, every later call of that connector raises the quota stop without
    being sent (the org would refuse it the same way)."""
    sf.get(
        f"{BASE}/sobjects/Opportunity/describe",
        status=403,
        json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}],
    )
    connector = make_connector()
    for _ in range(3):
        with pytest.raises(QuotaExhaustedError, match="TotalRequests"):
            connector.preflight()
    assert len(sf.calls) == 1
    assert connector.api_calls == 1
