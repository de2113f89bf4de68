"""The one seam every Salesforce request passes through.

simple-salesforce builds URLs and parses JSON; it sends through the `requests.Session` we give it, so the
seam is that session's `request()`: quota guard -> send -> classify the response into the error tree ->
retry policy -> one re-authentication on INVALID_SESSION_ID. Nothing else in the connector retries, and
nothing else interprets a Salesforce error envelope. Thread-safe: the read-ahead and parallel batches
share one client.

Error envelope and status codes: REST API Developer Guide, "Status Codes and Error Responses";
`Sforce-Limit-Info`: REST API Developer Guide, "Response Headers" (api-usage=USED/MAX).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any
from urllib.parse import urlparse

import requests
import structlog
from simple_salesforce.api import Salesforce

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    QuotaExhaustedError,
    SchemaDriftError,
    TransientError,
)
from connectors.http import Timeouts, TimeoutSession, make_session
from connectors.retry import RetryPolicy, SingleAttempt, parse_retry_after, utc_now
from connectors.salesforce.auth import Authenticator, Token
from connectors.salesforce.settings import SalesforceSettings

log = structlog.get_logger()

_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")
_DRIFT_CODES = frozenset(
    {"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_TYPE", "NO_SUCH_COLUMN"}
)
_TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})
CLIENT_NAME = "bant-sync"
"""The client name every request carries (`Sforce-Call-Options: client=bant-sync`). Salesforce puts it in the
`changeOrigin` of the change events our writes cause, which is how the change stream knows them as echoes."""
CALL_OPTIONS = {"Sforce-Call-Options": f"client={CLIENT_NAME}"}


class _SessionExpired(ConnectorError):
    """Internal: 401 INVALID_SESSION_ID; the seam re-authenticates once and resends."""


def error_items(response: requests.Response) -> list[dict[str, Any]]:
    """The `[{"errorCode", "message", "fields"}]` envelope of an error response (empty if not one)."""
    try:
        body = response.json()
    except ValueError:
        return []
    if isinstance(body, dict):
        body = [body]
    return [item for item in body if isinstance(item, dict)] if isinstance(body, list) else []


def drift_fields(item: dict[str, Any]) -> tuple[str, ...]:
    """The field names a schema-drift error is about: its `fields`, else the name quoted in the message."""
    fields = tuple(str(f) for f in item.get("fields") or ())
    if fields:
        return fields
    return tuple(_NO_SUCH_COLUMN.findall(str(item.get("message", ""))))


def classify(response: requests.Response, now: Callable[[], datetime] = utc_now) -> ConnectorError | None:
    """Map a Salesforce response onto the error tree; None for success. `now` dates a Retry-After
    HTTP-date."""
    status = response.status_code
    if status < 300:
        return None
    items = error_items(response)
    code = str(items[0].get("errorCode", "")) if items else ""
    message = str(items[0].get("message", "")) if items else response.reason
    if status == 401 and code == "INVALID_SESSION_ID":
        return _SessionExpired(message)
    if code == "REQUEST_LIMIT_EXCEEDED":
        return QuotaExhaustedError(
            f"Salesforce daily API allocation exhausted ({message}); the run stops and resumes later"
        )
    if status == 429 or status >= 500 or code in _TRANSIENT_CODES:
        return TransientError(
            f"Salesforce {status} {code or response.reason}",
            parse_retry_after(response.headers.get("Retry-After"), now),
            status,
        )
    if code in _DRIFT_CODES:
        fields = tuple(f for item in items for f in drift_fields(item))
        return SchemaDriftError(
            f"Salesforce rejected a field ({code}: {message}); run `bant-sync setup --check`, redeploy "
            f"config/salesforce and grant field access to the integration user",
            fields,
        )
    if status == 401:
        return AuthenticationError(f"Salesforce refused the access token ({code}: {message})")
    if status == 403:
        return ConfigurationError(
            f"Salesforce refused the request ({code}: {message}); give the integration user 'API Enabled' "
            f"and the BANT_Sync permission set"
        )
    return ConfigurationError(f"Salesforce rejected a request: {status} {code}: {message}")


_EXPECTED_PARTS = (("/query", "records"), ("/describe", "fields"))
"""A path marker and the list its success must hold: a query page's records, an sObject describe's fields.
A collection write (`/composite/sobjects`) answers a list of SaveResults."""


def _check_json(response: requests.Response) -> None:
    """A success whose body is not the JSON it should be (a proxy's HTML page, a body cut short, a query
    page without `records`) is a TransientError, retried like a 5xx and then failing the run with one
    message, instead of an exception deep inside simple-salesforce. The body is parsed once: the parsed
    value is what simple-salesforce's own `response.json()` then returns."""
    if response.status_code == 204 or not response.content:
        return
    try:
        parsed = json.loads(response.content)
    except ValueError:
        kind = response.headers.get("Content-Type", "no content type")
        raise TransientError(
            f"Salesforce answered {response.status_code} with a body that is not JSON ({kind}, "
            f"{len(response.content)} bytes); a proxy or an outage page in the way?",
            status=response.status_code,
        ) from None
    path = urlparse(str(response.url)).path
    malformed = (
        not isinstance(parsed, dict | list)
        or ("/composite/sobjects" in path and not isinstance(parsed, list))
        or any(
            marker in path and not (isinstance(parsed, dict) and isinstance(parsed.get(part), list))
            for marker, part in _EXPECTED_PARTS
        )
    )
    if malformed:
        raise TransientError(
            f"Salesforce answered {response.status_code} with JSON of the wrong shape for {path}",
            status=response.status_code,
        )
    response.json = lambda *args, **kwargs: parsed  # type: ignore[method-assign]


class SeamSession(TimeoutSession):
    """The session simple-salesforce sends through; `request()` is the seam."""

    def __init__(self, timeouts: Timeouts, client: SalesforceClient) -> None:
        super().__init__(timeouts)
        self._client = client

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        send = super().request
        return self._client.perform(lambda: send(method, url, *args, **kwargs), kwargs)


class SalesforceClient:
    """A logged-in simple-salesforce handle plus call counting, the quota guard and the retry policy."""

    def __init__(
        self,
        settings: SalesforceSettings,
        secrets: dict[str, str],
        policy: RetryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.policy = policy
        self._clock = clock
        timeouts = settings.timeouts
        self._login_session = make_session(timeouts, settings.ca_bundle)
        self.session = SeamSession(timeouts, self)
        self.session.verify = settings.ca_bundle or True
        self.session.headers.update(CALL_OPTIONS)
        adapter = requests.adapters.HTTPAdapter(max_retries=0)
        self.session.mount("https://", adapter)
        self.authenticator = Authenticator(settings, secrets, self._login_session, policy, clock)
        self.calls = 0
        self.used: int | None = None
        self.limit: int | None = None
        self._sf: Salesforce | None = None
        self._lock = threading.Lock()
        self._quota_stop: QuotaExhaustedError | None = None
        """The quota stop this client met: once set, no request of any thread is sent any more."""
        self._single_attempt = SingleAttempt()

    @property
    def sf(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._connect(self.authenticator.login())
            return self._sf

    def _connect(self, token: Token) -> Salesforce:
        return Salesforce(
            session_id=token.access_token,
            instance_url=token.instance_url,
            session=self.session,
            version=self.settings.api_version,
            object_pairs_hook=dict,
        )

    def _reauthenticate(self, headers: dict[str, str]) -> None:
        """Log in again, unless another thread already did since this request was sent."""
        sf = self.sf
        with self._lock:
            if headers.get("Authorization") in (None, "Bearer " + str(sf.session_id)):
                sf.session_id = self.authenticator.login().access_token
                sf._generate_headers()
                log.info(
                    "salesforce session expired (INVALID_SESSION_ID); logged in again",
                    auth=self.settings.auth,
                    logins=self.authenticator.logins,
                )
            headers["Authorization"] = "Bearer " + str(sf.session_id)

    def _guard_quota(self) -> None:
        if self._quota_stop is not None:
            raise QuotaExhaustedError(str(self._quota_stop), self._quota_stop.used, self._quota_stop.limit)
        if self.used is None or not self.limit:
            return
        if self.used + 1 > self.settings.quota_stop_share * self.limit:
            raise QuotaExhaustedError(
                f"stopping before the next Salesforce call: {self.used}/{self.limit} API requests used "
                f"today, quota_stop_share is {self.settings.quota_stop_share:.0%}; the run resumes from its "
                f"cursor later",
                used=self.used,
                limit=self.limit,
            )

    def _record_usage(self, response: requests.Response) -> None:
        match = _USAGE.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            self.used, self.limit = int(match.group(1)), int(match.group(2))

    def _attempt(self, send: Callable[[], requests.Response]) -> requests.Response:
        with self._lock:
            self._guard_quota()
            self.calls += 1
        try:
            response = send()
        except requests.Timeout as exc:
            raise TransientError("Salesforce request timed out") from exc
        except requests.exceptions.SSLError as exc:
            raise ConfigurationError(
                "TLS verification of the Salesforce instance failed; if a proxy or private CA signs its "
                "certificate, set ca_bundle to that CA's PEM file"
            ) from exc
        except requests.ConnectionError as exc:
            raise TransientError(f"Salesforce connection failed ({type(exc).__name__})") from exc
        with self._lock:
            self._record_usage(response)
        error = classify(response, self._clock)
        if isinstance(error, QuotaExhaustedError):
            with self._lock:
                self._quota_stop = error
        if error is not None:
            raise error
        _check_json(response)
        return response

    def perform(self, send: Callable[[], requests.Response], kwargs: dict[str, Any]) -> requests.Response:
        """Send one request through quota guard, retry policy and at most one re-authentication."""
        reauthenticated = False
        while True:
            try:
                if self._single_attempt.active:
                    return self._attempt(send)
                return self.policy.call(self._attempt, send)
            except _SessionExpired as exc:
                if reauthenticated or not self.authenticator.can_refresh:
                    raise AuthenticationError(
                        "Salesforce session expired and could not be renewed"
                        + ("" if self.authenticator.can_refresh else " (auth = 'token' cannot log in again)")
                        + "; issue a new token or switch to auth = 'jwt'"
                    ) from exc
                reauthenticated = True
                self._reauthenticate(kwargs.setdefault("headers", {}))

    def single_attempt(self) -> AbstractContextManager[None]:
        """Within this block this thread's requests are not retried: for non-idempotent creates, whose
        uncertain outcome must be reconciled by key instead of re-sent. Other threads (the read-ahead,
        other batches) keep retrying."""
        return self._single_attempt()

    def query(self, soql: str, batch_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Records of a SOQL query, page after page (`query_all_iter`), lazily."""
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"} if batch_size else {}
        records: Iterator[dict[str, Any]] = self.sf.query_all_iter(soql, headers=headers)
        return records

    def restful(self, path: str, method: str = "GET", json: Any = None) -> Any:
        return self.sf.restful(path, method=method, json=json)

    def describe(self, sobject: str) -> dict[str, Any]:
        result = self.restful(f"sobjects/{sobject}/describe")
        if not isinstance(result, dict):
            raise ConfigurationError(f"Salesforce describe of {sobject} returned nothing; check api_version")
        return result

    def close(self) -> None:
        self.session.close()
        self._login_session.close()
