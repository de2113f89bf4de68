"""The one seam every HubSpot call goes through: pacing, auth, timeouts, error mapping, retries, counting.

hubspot-api-client 12 sends through urllib3. Its own retries are switched off (`retry=False` reaches
`Configuration.retries`, see hubspot/discovery/discovery_base.py) so the connectors' RetryPolicy is the only
retry layer. Each SDK method is called through its `*_with_http_info` twin so we see the response headers.

`call` returns the SDK's model objects. `call_json` returns the response body as parsed JSON: the SDK
turns every record into a model and parses each timestamp with dateutil, which was about 40% of
bant-sync's CPU in a profiled 30,000-deal run, so searches and batch writes (thousands of records a run)
skip it (`_preload_content=False`, the SDK's documented way to get the raw urllib3 response).

Error mapping (`map_api_exception`, the one predicate that reads HubSpot error bodies):

    429                      -> TransientError(retry_after from Retry-After: seconds or HTTP-date)
    5xx, timeouts, resets    -> TransientError
    401                      -> one token refresh (OAuth) and resend, else AuthenticationError
    403 MISSING_SCOPES       -> ConfigurationError naming the scopes to grant
    other 4xx                -> HubSpotRequestError (a ConfigurationError carrying status and category)
"""

from __future__ import annotations

import importlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, cast

import structlog
import urllib3.exceptions
from hubspot import HubSpot

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    QuotaExhaustedError,
    TransientError,
)
from connectors.hubspot.auth import TokenGrant, TokenSource
from connectors.hubspot.ratelimit import RateLimiter
from connectors.hubspot.settings import HubSpotSettings
from connectors.retry import RetryPolicy, SingleAttempt, retry_after_header, utc_now

log = structlog.get_logger()

_SDK_PACKAGES = (
    "crm.deals",
    "crm.objects.tasks",
    "crm.properties",
    "crm.associations.v4.schema",
    "crm.owners",
    "oauth",
)
_API_EXCEPTIONS: tuple[type[Exception], ...] = tuple(
    importlib.import_module(f"hubspot.{pkg}.exceptions").ApiException for pkg in _SDK_PACKAGES
)


class AccountInfoApi:
    """`GET /account-info/v3/details` (the portal's id and time zone) through the SDK's own ApiClient:
    hubspot-api-client 12 ships no module for the account-info API
    (https://developers.hubspot.com/docs/api/settings/account-information-api)."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def details_with_http_info(self, **kwargs: Any) -> Any:
        return self.api_client.call_api(
            "/account-info/v3/details",
            "GET",
            {},
            [],
            {"Accept": "application/json"},
            response_types_map={200: "object"},
            auth_settings=["oauth2"],
            _return_http_data_only=False,
            _preload_content=kwargs.get("_preload_content", True),
            _request_timeout=kwargs.get("_request_timeout"),
        )


_APIS: dict[str, Callable[[Any], Any]] = {
    "account_info": lambda c: AccountInfoApi(c.crm.owners.owners_api.api_client),
    "owners": lambda c: c.crm.owners.owners_api,
    "deals_search": lambda c: c.crm.deals.search_api,
    "deals_batch": lambda c: c.crm.deals.batch_api,
    "deals_basic": lambda c: c.crm.deals.basic_api,
    "tasks_batch": lambda c: c.crm.objects.tasks.batch_api,
    "tasks_search": lambda c: c.crm.objects.tasks.search_api,
    "properties": lambda c: c.crm.properties.core_api,
    "groups": lambda c: c.crm.properties.groups_api,
    "association_labels": lambda c: c.crm.associations.v4.schema.definitions_api,
    "oauth": lambda c: c.oauth.tokens_api,
}


class HubSpotRequestError(ConfigurationError):
    """HubSpot refused the request itself (4xx other than 401/429): our request or the account is wrong."""

    def __init__(self, message: str, status: int, category: str | None, body: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.body = body


def _parse_body(raw: object) -> dict[str, Any]:
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not isinstance(raw, str) or not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def missing_scopes(body: Mapping[str, Any]) -> list[str]:
    """Scope names a 403 MISSING_SCOPES body lists (HubSpot puts them under errors[].context)."""
    scopes: list[str] = []
    for error in body.get("errors") or []:
        context = error.get("context") or {} if isinstance(error, dict) else {}
        for key in ("requiredGranularScopes", "requiredScopes", "scopes"):
            scopes.extend(str(s) for s in context.get(key) or [])
    context = body.get("context") or {}
    for key in ("requiredGranularScopes", "requiredScopes", "scopes"):
        scopes.extend(str(s) for s in context.get(key) or [])
    return sorted(set(scopes))


def map_api_exception(
    status: int, headers: Mapping[str, str] | None, raw_body: object, now: Callable[[], datetime] = utc_now
) -> ConnectorError:
    """Turn one HubSpot error response into the connector error tree; `now` dates a Retry-After
    HTTP-date."""
    body = _parse_body(raw_body)
    category = body.get("category") or body.get("errorType")
    message = str(body.get("message") or f"HTTP {status}")
    if status == 429 and body.get("policyName") == "DAILY":
        # HubSpot names the daily allocation `DAILY` in a 429's policyName ("API usage guidelines and
        # limits"); waiting seconds will not help, so the run stops like a Salesforce quota stop.
        return QuotaExhaustedError(
            f"HubSpot daily API limit reached ({message}); the run stops and resumes later"
        )
    if status == 429:
        return TransientError(
            f"HubSpot rate limit hit ({body.get('policyName') or 'unknown policy'})",
            retry_after=retry_after_header(headers, now),
            status=status,
        )
    if status >= 500 or status == 0:
        return TransientError(f"HubSpot server error {status}: {message}", status=status)
    if status == 401:
        return AuthenticationError(
            "HubSpot rejected the access token (401): renew the connection's access_token / refresh_token"
        )
    if status == 403:
        scopes = missing_scopes(body)
        if category == "MISSING_SCOPES" or scopes:
            named = ", ".join(scopes) or "(HubSpot did not name them)"
            return ConfigurationError(
                f"the HubSpot app lacks required scopes: {named}; grant them in the app's settings "
                f"(Auth > Scopes) and reinstall or re-authorise it"
            )
        return ConfigurationError(f"HubSpot refused the call (403 {category or ''}): {message}")
    return HubSpotRequestError(
        f"HubSpot refused the request ({status} {category or ''}): {message}", status, category, body
    )


def _read_raw(response: Any, api: str, method: str) -> tuple[dict[str, Any], Mapping[str, str]]:
    """The JSON body and headers of a raw (`_preload_content=False`) urllib3 response, whose connection
    goes back to the pool once read."""
    try:
        body = response.data
    finally:
        response.release_conn()
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        raise TransientError(f"HubSpot answered {api}.{method} with a body that is not JSON") from None
    if not isinstance(parsed, dict):
        raise TransientError(f"HubSpot answered {api}.{method} with JSON that is not an object")
    return parsed, response.headers


_WRITE_METHODS = frozenset({"create", "update", "upsert", "archive"})
"""SDK methods that change something: only their lost answer leaves the outcome in doubt."""


def _part(answer: Any, name: str) -> Any:
    """`answer[name]` of parsed JSON, or the attribute of an SDK model; None when absent."""
    if isinstance(answer, dict):
        return answer.get(name)
    return getattr(answer, name, None)


def _no_answer(host: str, error: Exception) -> ConfigurationError:
    """hubspot-api-client 12 turns a TLS failure into an ApiException without a body and then fails to
    decode that body (AttributeError from its api_client). Seen when `host` says https:// to a server that
    speaks http, or the other way round: a setting to fix, not a fault to retry."""
    reason = " ".join(str(getattr(error, "reason", "") or error).split())
    return ConfigurationError(
        f"could not talk to HubSpot at {host} ({reason}): check `host` in the "
        f"connection's settings — http:// or https:// — and that nothing intercepts TLS on the way"
    )


class HubSpotClient:
    """Owns the SDK objects. `call(kind, api, method, ...)` sends one request through every guard."""

    def __init__(
        self,
        settings: HubSpotSettings,
        tokens: TokenSource | None,
        policy: RetryPolicy,
        limiter: RateLimiter,
        sdk: Any | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._single_attempt = SingleAttempt()
        self._tokens = tokens
        self.policy = policy
        self.limiter = limiter
        self._sdk = sdk if sdk is not None else HubSpot(access_token="", host=settings.host, retry=False)
        self._apis: dict[str, Any] = {}
        self._count_lock = threading.Lock()
        self.calls = 0
        self.calls_by_method: Counter[str] = Counter()
        self._quota_stop: QuotaExhaustedError | None = None
        """The daily-limit stop this client met: once set, no request of any thread is sent any more."""

    @property
    def tokens(self) -> TokenSource:
        if self._tokens is None:
            raise RuntimeError("HubSpotClient used before a token source was set")
        return self._tokens

    @tokens.setter
    def tokens(self, source: TokenSource) -> None:
        self._tokens = source

    def _api(self, name: str) -> Any:
        if name not in self._apis:
            self._apis[name] = _APIS[name](self._sdk)
        return self._apis[name]

    def single_attempt(self) -> AbstractContextManager[None]:
        """Within this block this thread's requests are not retried: for non-idempotent creates, whose
        uncertain outcome must be reconciled by key instead of re-sent. Other threads keep retrying."""
        return self._single_attempt()

    def call(
        self, kind: str, api: str, method: str, *args: Any, expect: str | None = None, **kwargs: Any
    ) -> Any:
        """Send one request, retried per the policy unless inside `single_attempt()` (how a create, whose
        uncertain outcome must be looked up rather than re-sent, is marked). `expect` names the part of a
        success the caller reads (`results`, `total`): an answer without it is not the JSON it should be
        (a proxy's page, a body cut short) and is retried as transient, never read as "nothing"."""
        if self._single_attempt.active:
            return self._checked(kind, api, method, args, kwargs, expect)
        return self.policy.call(self._checked, kind, api, method, args, kwargs, expect)

    def call_json(
        self, kind: str, api: str, method: str, *args: Any, expect: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """Like `call`, but the answer is the response body as parsed JSON instead of SDK models."""
        response = self.call(kind, api, method, *args, expect=expect, _preload_content=False, **kwargs)
        return cast(dict[str, Any], response)

    def _checked(
        self,
        kind: str,
        api: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        expect: str | None,
    ) -> Any:
        answer = self._authed(kind, api, method, args, kwargs)
        if expect is not None and _part(answer, expect) is None:
            raise TransientError(
                f"HubSpot answered {api}.{method} without `{expect}`: not the answer it should be (a proxy "
                "or an outage page in the way?)"
            )
        return answer

    def _authed(self, kind: str, api: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        try:
            return self._send(kind, api, method, args, kwargs, self.tokens.token())
        except AuthenticationError:
            if not self.tokens.refreshable:
                raise
            log.debug("hubspot access token rejected (401); refreshing it once", call=f"{api}.{method}")
        return self._send(kind, api, method, args, kwargs, self.tokens.refresh())

    def _send(
        self,
        kind: str,
        api: str,
        method: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        token: str | None,
    ) -> Any:
        target = self._api(api)
        if token is not None:
            target.api_client.configuration.access_token = token
        fn = getattr(target, f"{method}_with_http_info")
        timeout = self.settings.timeouts.as_tuple()
        if self._quota_stop is not None:
            raise QuotaExhaustedError(str(self._quota_stop))
        self.limiter.acquire(kind)
        headers: Mapping[str, str] | None = None
        with self._count_lock:
            self.calls += 1
            self.calls_by_method[f"{api}.{method}"] += 1
        try:
            if kwargs.get("_preload_content", True):
                data, _status, headers = fn(*args, _request_timeout=timeout, **kwargs)
            else:
                data, headers = _read_raw(fn(*args, _request_timeout=timeout, **kwargs), api, method)
        except _API_EXCEPTIONS as exc:
            headers = getattr(exc, "headers", None)
            status = int(getattr(exc, "status", 0) or 0)
            error = map_api_exception(status, headers, getattr(exc, "body", None), self._clock)
            if isinstance(error, QuotaExhaustedError):
                self._quota_stop = error
            if status == 429:
                policy_name = _parse_body(getattr(exc, "body", None)).get("policyName")
                self.limiter.throttled(kind, policy_name)
            raise error from None
        except urllib3.exceptions.HTTPError as exc:
            writes = method in _WRITE_METHODS
            effect = "; it may or may not have been applied" if writes else ""
            raise TransientError(
                f"HubSpot did not answer {api}.{method} ({type(exc).__name__}){effect}"
            ) from None
        except AttributeError as exc:
            if not isinstance(exc.__context__, _API_EXCEPTIONS):
                raise
            raise _no_answer(self.settings.host, exc.__context__) from None
        finally:
            self.limiter.release(kind, headers)
        return data

    def exchange_refresh_token(self, client_id: str, client_secret: str, refresh_token: str) -> TokenGrant:
        """OAuth refresh (`POST /oauth/v1/token`), sent through the same seam without a bearer token."""
        try:
            data = self._refresh_call(client_id, client_secret, refresh_token)
        except HubSpotRequestError as exc:
            raise AuthenticationError(
                f"HubSpot refused the OAuth refresh token ({exc.status}): re-authorise the app and store the "
                f"new refresh_token secret for this connection"
            ) from None
        grant = TokenGrant(
            access_token=str(data.access_token),
            expires_in=int(data.expires_in or 1800),
            refresh_token=data.refresh_token,
        )
        log.info(
            "hubspot access token refreshed",
            expires_in_s=grant.expires_in,
            refresh_token_rotated=bool(grant.refresh_token and grant.refresh_token != refresh_token),
        )
        return grant

    def _refresh_call(self, client_id: str, client_secret: str, refresh_token: str) -> Any:
        """The token endpoint's grant, retried like any call; a success without an `access_token` (a proxy's
        page) is transient too, never a grant of `None`."""
        body = {
            "grant_type": "refresh_token",
            "client_id": client_id,
            "client_secret": client_secret,
            "refresh_token": refresh_token,
        }

        def attempt() -> Any:
            data = self._send("other", "oauth", "create", (), body, None)
            if not getattr(data, "access_token", None):
                raise TransientError(
                    "HubSpot's OAuth token endpoint answered without an access_token (a proxy or an outage "
                    "page in the way?)"
                )
            return data

        return self.policy.call(attempt)

    def close(self) -> None:
        for api in self._apis.values():
            api.api_client.close()
        self._apis.clear()
