"""The HubSpot client seam: error mapping, one token refresh on 401, retries, pacing and call counting."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import urllib3.exceptions
from hubspot.crm.deals.exceptions import ApiException

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    TransientError,
)
from connectors.hubspot.auth import OAuthToken, StaticToken, TokenGrant, token_source
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError, map_api_exception
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.settings import HubSpotSettings
from connectors.retry import RetryPolicy
from tests.connectors.hs_support import RawResponse


def _api_exception(status: int, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
    exc = ApiException(status=status, reason="x")
    exc.body = json.dumps(body or {})
    exc.headers = headers or {}
    return exc


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected", "words"),
    [
        pytest.param(
            429,
            {"policyName": "TEN_SECONDLY_ROLLING"},
            {"Retry-After": "3"},
            TransientError,
            "rate",
            id="429-retry-after",
        ),
        pytest.param(502, {"message": "bad gateway"}, {}, TransientError, "502", id="5xx"),
        pytest.param(
            401, {"category": "INVALID_AUTHENTICATION"}, {}, AuthenticationError, "access token", id="401"
        ),
        pytest.param(
            403,
            {
                "category": "MISSING_SCOPES",
                "errors": [{"context": {"requiredGranularScopes": ["crm.objects.deals.write"]}}],
            },
            {},
            ConfigurationError,
            "crm.objects.deals.write",
            id="403-missing-scopes",
        ),
        pytest.param(
            400, {"category": "VALIDATION_ERROR", "message": "bad"}, {}, HubSpotRequestError, "bad", id="400"
        ),
    ],
)
def test_error_mapping(
    status: int, body: dict[str, Any], headers: dict[str, str], expected: type, words: str
) -> None:
    """Each HubSpot error status maps onto the error tree with a message naming what to fix."""
    error = map_api_exception(status, headers, json.dumps(body))
    assert type(error) is expected
    assert words in str(error)


def test_429_carries_retry_after_as_an_http_date() -> None:
    """An HTTP-date Retry-After becomes the seconds from the injected clock to that date."""
    now = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
    error = map_api_exception(429, {"Retry-After": "Mon, 02 Mar 2026 12:00:09 GMT"}, "{}", lambda: now)
    assert isinstance(error, TransientError)
    assert error.retry_after == 9.0


def test_429_then_success_waits_an_http_date_retry_after() -> None:
    """A 429 whose Retry-After is an HTTP-date is retried after waiting until that date (client clock)."""
    hint = {"Retry-After": "Mon, 02 Mar 2026 12:00:04 GMT"}
    api = FakeApi([_api_exception(429, {"policyName": "TEN_SECONDLY_ROLLING"}, hint), "ok"])
    client, slept = _client(api, StaticToken("tok"), clock=lambda: datetime(2026, 3, 2, 12, tzinfo=UTC))
    assert client.call("search", "deals_search", "do_search", {}) == "ok"
    assert client.calls == 2
    assert 4.0 in slept


def test_429_carries_retry_after_seconds() -> None:
    """Retry-After becomes TransientError.retry_after so the retry policy waits exactly that long."""
    error = map_api_exception(429, {"Retry-After": "7"}, "{}")
    assert isinstance(error, TransientError)
    assert error.retry_after == 7.0


class FakeApi:
    """Stands in for one SDK api object: scripted outcomes for `<method>_with_http_info`."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.tokens_seen: list[str] = []
        self.raw: list[RawResponse] = []
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(access_token=""), close=lambda: None)

    def do_search_with_http_info(self, *args: Any, **kwargs: Any) -> Any:
        assert kwargs["_request_timeout"] == (5.0, 60.0)
        self.tokens_seen.append(self.api_client.configuration.access_token)
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        headers = {"X-HubSpot-RateLimit-Remaining": "99", "X-HubSpot-RateLimit-Max": "100"}
        if kwargs.get("_preload_content") is False:
            self.raw.append(RawResponse(outcome, headers=headers))
            return self.raw[-1]
        return outcome, 200, headers


def _client(
    api: FakeApi, tokens: Any, clock: Callable[[], datetime] = lambda: datetime(2026, 3, 2, 12, tzinfo=UTC)
) -> tuple[HubSpotClient, list[float]]:
    slept: list[float] = []
    now = [1000.0]

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    sdk = SimpleNamespace(crm=SimpleNamespace(deals=SimpleNamespace(search_api=api)))
    policy = RetryPolicy(max_attempts=4, base_delay=0.5, sleep=sleep, rng=random.Random(1))
    limiter = RateLimiter(100, 4, clock=lambda: now[0], sleep=sleep)
    return HubSpotClient(HubSpotSettings(), tokens, policy, limiter, sdk=sdk, clock=clock), slept


def test_429_then_success_waits_retry_after_and_counts_both_calls() -> None:
    """A 429 with Retry-After is retried after exactly that wait; both sends are counted."""
    api = FakeApi([_api_exception(429, {"policyName": "TEN_SECONDLY_ROLLING"}, {"Retry-After": "2"}), "ok"])
    client, slept = _client(api, StaticToken("tok"))
    assert client.call("search", "deals_search", "do_search", {}) == "ok"
    assert client.calls == 2
    assert 2.0 in slept


def test_call_json_returns_the_body_unmodelled_and_releases_the_connection() -> None:
    """call_json asks the SDK for the raw response, parses its JSON and gives the connection back."""
    api = FakeApi([{"results": [{"id": "7", "properties": {"dealname": "x"}}], "total": 1}])
    client, _slept = _client(api, StaticToken("tok"))
    body = client.call_json("search", "deals_search", "do_search", {})
    assert body == {"results": [{"id": "7", "properties": {"dealname": "x"}}], "total": 1}
    assert [r.released for r in api.raw] == [True]
    assert client.calls == 1


def test_call_json_body_that_is_not_json_is_transient_and_retried() -> None:
    """A 2xx whose body is not a JSON object (a proxy's page, a cut-off body) is retried like a 5xx."""
    api = FakeApi([b"<html>gateway</html>", b"[1, 2]", {"results": []}, b"{cut"])
    client, _slept = _client(api, StaticToken("tok"))
    assert client.call_json("search", "deals_search", "do_search", {}) == {"results": []}
    assert client.calls == 3 and all(r.released for r in api.raw)
    with pytest.raises(TransientError, match="not JSON"), client.single_attempt():
        client.call_json("search", "deals_search", "do_search", {})


def test_dropped_connection_is_transient_and_retried() -> None:
    """A reset connection (urllib3 ProtocolError with SDK retries off) is a TransientError, retried."""
    api = FakeApi([urllib3.exceptions.ProtocolError("reset"), "ok"])
    client, _slept = _client(api, StaticToken("tok"))
    assert client.call("search", "deals_search", "do_search", {}) == "ok"
    assert client.calls == 2


def test_no_retry_when_asked() -> None:
    """Inside single_attempt() (creates) the first TransientError surfaces so the caller can reconcile by
    key."""
    api = FakeApi([urllib3.exceptions.ReadTimeoutError(None, "/", "timed out"), "ok"])  # type: ignore[arg-type]
    client, _slept = _client(api, StaticToken("tok"))
    with pytest.raises(TransientError), client.single_attempt():
        client.call("search", "deals_search", "do_search", {})
    assert client.calls == 1


def test_single_attempt_sends_once_on_this_thread_only() -> None:
    """Inside `single_attempt()` a 502 is sent once and raised; another thread's call is still retried."""
    api = FakeApi([_api_exception(502), _api_exception(502), "ok"])
    client, _slept = _client(api, StaticToken("tok"))
    other: list[Any] = []
    with client.single_attempt():
        with pytest.raises(TransientError):
            client.call("search", "deals_search", "do_search", {})
        assert client.calls == 1
        worker = threading.Thread(
            target=lambda: other.append(client.call("search", "deals_search", "do_search", {}))
        )
        worker.start()
        worker.join()
    assert other == ["ok"]
    assert client.calls == 3


def test_private_app_401_is_authentication_error_without_retry() -> None:
    """A private-app token rejected with 401 fails at once, naming the secret to fix."""
    api = FakeApi([_api_exception(401), "ok"])
    client, _slept = _client(api, StaticToken("tok"))
    with pytest.raises(AuthenticationError, match="access_token"):
        client.call("search", "deals_search", "do_search", {})
    assert client.calls == 1


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_oauth_401_refreshes_once_then_succeeds() -> None:
    """OAuth: a 401 triggers one refresh and one resend with the new token."""
    grants = iter([TokenGrant("t1", 1800), TokenGrant("t2", 1800)])
    tokens = OAuthToken("cid", "secret", "r1", lambda *_: next(grants), Clock())
    api = FakeApi([_api_exception(401), "ok"])
    client, _slept = _client(api, tokens)
    assert client.call("search", "deals_search", "do_search", {}) == "ok"
    assert api.tokens_seen == ["t1", "t2"]
    assert tokens.refreshes == 2


def test_oauth_second_401_is_authentication_error() -> None:
    """OAuth: a 401 again after the refresh is an AuthenticationError, not a loop."""
    grants = iter([TokenGrant("t1", 1800), TokenGrant("t2", 1800)])
    tokens = OAuthToken("cid", "secret", "r1", lambda *_: next(grants), Clock())
    api = FakeApi([_api_exception(401), _api_exception(401), "never"])
    client, _slept = _client(api, tokens)
    with pytest.raises(AuthenticationError):
        client.call("search", "deals_search", "do_search", {})
    assert client.calls == 2


def test_oauth_refreshes_ahead_of_expiry() -> None:
    """The access token is refreshed `margin` before `expires_in` runs out, not after a 401."""
    clock = Clock()
    issued: list[str] = []

    def exchange(client_id: str, secret: str, refresh: str) -> TokenGrant:
        issued.append(refresh)
        return TokenGrant(f"t{len(issued)}", 1800, refresh_token=f"r{len(issued) + 1}")

    tokens = OAuthToken("cid", "secret", "r1", exchange, clock, margin_seconds=300)
    assert tokens.token() == "t1"
    clock.now += timedelta(seconds=1400)
    assert tokens.token() == "t1"
    clock.now += timedelta(seconds=101)
    assert tokens.token() == "t2"
    assert issued == ["r1", "r2"]


@pytest.mark.parametrize(
    ("auth", "secrets", "missing"),
    [
        pytest.param("private_app", {}, "access_token", id="private-app-no-token"),
        pytest.param("oauth", {"client_secret": "s"}, "refresh_token", id="oauth-no-refresh"),
    ],
)
def test_missing_secret_is_named(auth: str, secrets: dict[str, str], missing: str) -> None:
    """A missing secret stops the connection with its name, never its value."""
    with pytest.raises(ConfigurationError, match=missing):
        token_source(auth, "cid", secrets, lambda *_: TokenGrant("x", 1), Clock(), 300)


def test_errors_never_contain_the_token() -> None:
    """No error text carries the bearer token."""
    api = FakeApi([_api_exception(401)])
    client, _slept = _client(api, StaticToken("s3cr3t-token"))
    with pytest.raises(ConnectorError) as info:
        client.call("search", "deals_search", "do_search", {})
    assert "s3cr3t-token" not in str(info.value)


def test_settings_validation_names_every_problem() -> None:
    """Bad settings raise one ConfigurationError naming each problem."""
    with pytest.raises(ConfigurationError) as info:
        HubSpotSettings(auth="basic", page_size=500, max_in_flight=11)
    assert all(name in str(info.value) for name in ("auth", "page_size", "max_in_flight"))


def test_a_lost_answer_says_in_doubt_only_for_a_write() -> None:
    """A hung search is simply unanswered; only a lost write leaves its effect in doubt (a read said "it may
    or may not have been applied", which sends a person looking for a write that never was)."""
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out")  # type: ignore[arg-type]
    client, _slept = _client(FakeApi([timeout]), StaticToken("tok"))
    with pytest.raises(TransientError) as read, client.single_attempt():
        client.call("search", "deals_search", "do_search", {})
    assert "did not answer deals_search.do_search (ReadTimeoutError)" in str(read.value)
    assert "may or may not" not in str(read.value)
    api = FakeApi([timeout])
    api.update_with_http_info = api.do_search_with_http_info  # type: ignore[attr-defined]
    client, _slept = _client(api, StaticToken("tok"))
    with pytest.raises(TransientError, match="may or may not have been applied"), client.single_attempt():
        client.call("other", "deals_search", "update", {})
