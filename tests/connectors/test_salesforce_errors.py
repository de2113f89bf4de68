"""Salesforce error mapping, retries, re-authentication, the quota guard and preflight, with `responses`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    QuotaExhaustedError,
    SchemaDriftError,
    TransientError,
)
from connectors.http import Timeouts
from connectors.hubspot.settings import HubSpotSettings
from connectors.model import StatusWrite, WritePlan
from connectors.request_settings import RequestSettings, retry_policy
from connectors.retry import MAX_RETRY_AFTER
from connectors.salesforce import SalesforceSettings
from rules.model import Status
from tests.connectors.sf_support import (
    BASE,
    INSTANCE,
    NOW,
    add_organization,
    make_connector,
    opp_id,
    opportunity_describe,
    task_describe,
)
from worker.config.typed_tables import Problems, build

LOGIN = "https://login.example.test"


@pytest.fixture
def sf() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        add_organization(mock)
        yield mock


def envelope(code: str, message: str = "msg", fields: list[str] | None = None) -> list[dict[str, object]]:
    return [{"errorCode": code, "message": message, "fields": fields or []}]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (403, envelope("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."), QuotaExhaustedError),
        (401, envelope("INVALID_SESSION_ID", "Session expired or invalid"), AuthenticationError),
        (
            400,
            envelope("INVALID_FIELD", "No such column 'BANT_Budget__c' on entity 'Opportunity'."),
            SchemaDriftError,
        ),
        (403, envelope("INSUFFICIENT_ACCESS", "no access"), ConfigurationError),
        (404, envelope("NOT_FOUND", "The requested resource does not exist"), ConfigurationError),
        (503, envelope("SERVER_UNAVAILABLE", "down"), TransientError),
        (500, "<html>oops</html>", TransientError),
    ],
    ids=["quota", "expired-token-mode", "drift", "forbidden", "not-found", "unavailable", "html-500"],
)
def test_error_responses_map_onto_the_error_tree(
    sf: responses.RequestsMock, status: int, body: object, error: type[Exception]
) -> None:
    """Each Salesforce failure becomes the error class that tells the worker what to do."""
    kwargs = {"json": body} if not isinstance(body, str) else {"body": body}
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=status, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(error) as caught:
        make_connector(max_attempts=2).preflight()
    assert type(caught.value) is error
    if error is SchemaDriftError:
        assert caught.value.fields == ("BANT_Budget__c",)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "attempts", "sends"),
    [(403, 5, 1), (503, 3, 3), (400, 5, 1)],
    ids=["quota-never-retried", "transient-retried-to-cap", "drift-never-retried"],
)
def test_only_transient_errors_are_retried(
    sf: responses.RequestsMock, status: int, attempts: int, sends: int
) -> None:
    """Quota and schema errors are sent once; a 503 is sent max_attempts times."""
    code = {403: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE", 400: "INVALID_FIELD"}[status]
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=status, json=envelope(code))
    connector = make_connector(max_attempts=attempts)
    with pytest.raises((QuotaExhaustedError, TransientError, SchemaDriftError)):
        connector.preflight()
    assert len(sf.calls) == sends
    assert connector.api_calls == sends


def test_retry_after_is_honoured_on_429(sf: responses.RequestsMock) -> None:
    """A 429 with Retry-After: 7 waits exactly 7 s, then succeeds."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=429, headers={"Retry-After": "7"}, json=[])
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sleeps: list[float] = []
    make_connector(sleeps).preflight()
    assert sleeps == [7.0]


@pytest.mark.parametrize(
    ("hint", "waited"),
    [
        ("Mon, 02 Mar 2026 12:00:05 GMT", 5.0),
        ("Mon, 02 Mar 2026 11:00:00 GMT", 0.0),
        ("Tue, 03 Mar 2026 12:00:00 GMT", MAX_RETRY_AFTER),
    ],
    ids=["future-date", "past-date", "far-date-clamped"],
)
def test_retry_after_as_an_http_date_is_honoured_on_429(
    sf: responses.RequestsMock, hint: str, waited: float
) -> None:
    """A 429 whose Retry-After is an HTTP-date waits until that date on the connector clock, clamped."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=429, headers={"Retry-After": hint}, json=[])
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sleeps: list[float] = []
    make_connector(sleeps, clock=lambda: datetime(2026, 3, 2, 12, 0, tzinfo=UTC)).preflight()
    assert sleeps == [waited]


def test_unreadable_retry_after_falls_back_to_backoff(sf: responses.RequestsMock) -> None:
    """A 429 with a Retry-After that is neither seconds nor a date waits the policy's backoff instead."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=429, headers={"Retry-After": "later"}, json=[])
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sleeps: list[float] = []
    make_connector(sleeps, retry_base_delay=0.5).preflight()
    assert len(sleeps) == 1 and 0.25 <= sleeps[0] <= 0.5


def test_timeouts_are_transient_and_retried(sf: responses.RequestsMock) -> None:
    """A read timeout is retried like a 503 and then succeeds."""
    import requests

    sf.get(f"{BASE}/sobjects/Opportunity/describe", body=requests.ReadTimeout("slow"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    connector = make_connector()
    connector.preflight()
    assert connector.api_calls == 4, "two describes (one retried) and the org id query"


def rsa_pem() -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


@pytest.fixture(scope="module")
def keypair() -> tuple[str, rsa.RSAPublicKey]:
    return rsa_pem()


def jwt_connector(keypair: tuple[str, rsa.RSAPublicKey], **kw: object):  # type: ignore[no-untyped-def]
    return make_connector(
        secrets={"private_key": keypair[0]},
        auth="jwt",
        login_url=LOGIN,
        client_id="3MVG-client",
        username="bant@example.test",
        **kw,
    )


def token_response(token: str) -> dict[str, str]:
    return {
        "access_token": token,
        "instance_url": INSTANCE,
        "token_type": "Bearer",
        "id": "x",
        "issued_at": "1",
    }


def test_jwt_bearer_assertion_carries_the_documented_claims(
    sf: responses.RequestsMock, keypair: tuple[str, rsa.RSAPublicKey]
) -> None:
    """The assertion is RS256 with iss=client_id, sub=username, aud=login URL, exp within 3 minutes."""
    sf.post(f"{LOGIN}/services/oauth2/token", json=token_response("T1"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    jwt_connector(keypair).preflight()
    form = parse_qs(sf.calls[0].request.body)  # type: ignore[arg-type]
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(
        form["assertion"][0], keypair[1], algorithms=["RS256"], audience=LOGIN, options={"verify_exp": False}
    )
    assert (claims["iss"], claims["sub"]) == ("3MVG-client", "bant@example.test")
    assert 0 < claims["exp"] - NOW.timestamp() <= 180
    assert sf.calls[1].request.headers["Authorization"] == "Bearer T1"


def test_session_expiry_reauthenticates_once_and_resends(
    sf: responses.RequestsMock, keypair: tuple[str, rsa.RSAPublicKey]
) -> None:
    """401 INVALID_SESSION_ID → one new login → the same request again with the new token."""
    sf.post(f"{LOGIN}/services/oauth2/token", json=token_response("T1"))
    sf.post(f"{LOGIN}/services/oauth2/token", json=token_response("T2"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=401, json=envelope("INVALID_SESSION_ID"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    connector = jwt_connector(keypair)
    connector.preflight()
    auths = [c.request.headers.get("Authorization") for c in sf.calls if "/services/data" in c.request.url]
    assert auths == ["Bearer T1", "Bearer T2", "Bearer T2", "Bearer T2"], "the org id query uses T2 too"
    assert connector.client.authenticator.logins == 2


def test_session_expiring_again_after_reauth_is_an_authentication_error(
    sf: responses.RequestsMock, keypair: tuple[str, rsa.RSAPublicKey]
) -> None:
    """A second INVALID_SESSION_ID right after re-login is not looped on."""
    sf.post(f"{LOGIN}/services/oauth2/token", json=token_response("T1"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=401, json=envelope("INVALID_SESSION_ID"))
    connector = jwt_connector(keypair)
    with pytest.raises(AuthenticationError):
        connector.preflight()
    assert connector.client.authenticator.logins == 2


@pytest.mark.parametrize(
    ("auth", "secrets", "expected"),
    [
        (
            "password",
            {"client_secret": "cs", "password": "pw", "security_token": "st"},
            {
                "grant_type": ["password"],
                "client_id": ["3MVG-client"],
                "client_secret": ["cs"],
                "username": ["bant@example.test"],
                "password": ["pwst"],
            },
        ),
        (
            "client_credentials",
            {"client_secret": "cs"},
            {"grant_type": ["client_credentials"], "client_id": ["3MVG-client"], "client_secret": ["cs"]},
        ),
    ],
    ids=["password", "client-credentials"],
)
def test_other_grants_send_the_documented_form(
    sf: responses.RequestsMock, auth: str, secrets: dict[str, str], expected: dict[str, list[str]]
) -> None:
    """Username-password appends the security token; client credentials sends id and secret."""
    sf.post(f"{LOGIN}/services/oauth2/token", json=token_response("T1"))
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    make_connector(
        secrets=secrets, auth=auth, login_url=LOGIN, client_id="3MVG-client", username="bant@example.test"
    ).preflight()
    assert parse_qs(sf.calls[0].request.body) == expected  # type: ignore[arg-type]


def test_refused_login_names_what_to_check_without_secrets(sf: responses.RequestsMock) -> None:
    """invalid_grant → AuthenticationError naming the settings to check, never the password."""
    sf.post(
        f"{LOGIN}/services/oauth2/token",
        status=400,
        json={"error": "invalid_grant", "error_description": "authentication failure"},
    )
    connector = make_connector(
        secrets={"client_secret": "s3cr3t-cs", "password": "hunter2"},
        auth="password",
        login_url=LOGIN,
        client_id="3MVG-client",
        username="bant@example.test",
    )
    with pytest.raises(AuthenticationError) as caught:
        connector.preflight()
    text = str(caught.value)
    assert "invalid_grant" in text and "client_id" in text
    assert "hunter2" not in text and "s3cr3t-cs" not in text


def test_missing_secret_is_a_configuration_error(sf: responses.RequestsMock) -> None:
    """JWT mode without a private_key secret says which secret to set."""
    connector = make_connector(secrets={}, auth="jwt", login_url=LOGIN, client_id="c", username="u")
    with pytest.raises(ConfigurationError, match="private_key"):
        connector.preflight()


def test_quota_guard_stops_before_the_configured_share(sf: responses.RequestsMock) -> None:
    """At 80/100 used with share 0.8 the next call is not sent: QuotaExhaustedError with the figures."""
    sf.get(
        f"{BASE}/sobjects/Opportunity/describe",
        json=opportunity_describe(),
        headers={"Sforce-Limit-Info": "api-usage=79/100"},
    )
    sf.get(
        f"{BASE}/sobjects/Task/describe",
        json=task_describe(),
        headers={"Sforce-Limit-Info": "api-usage=79/100"},
    )
    org = {"attributes": {"type": "Organization"}, "Id": "00D000000000001"}
    sf.replace(
        responses.GET,
        f"{BASE}/query/",
        json={"totalSize": 1, "done": True, "records": [org]},
        headers={"Sforce-Limit-Info": "api-usage=80/100"},
    )
    connector = make_connector()
    connector.preflight()
    write = StatusWrite(opp_id(1), Status.QUALIFIED, (), 100, NOW, None)
    with pytest.raises(QuotaExhaustedError) as caught:
        connector.apply(WritePlan(status_writes=(write,)))
    assert (caught.value.used, caught.value.limit) == (80, 100)
    assert connector.api_calls == 3
    assert len(sf.calls) == 3


@pytest.mark.parametrize(
    ("drop", "readonly", "named"),
    [
        (("BANT_Budget__c",), (), ["Opportunity.BANT_Budget__c: missing or not readable"]),
        ((), ("BANT_Status__c",), ["Opportunity.BANT_Status__c: not editable"]),
        (
            ("BANT_Need__c",),
            ("BANT_Score__c",),
            ["Opportunity.BANT_Need__c: missing or not readable", "Opportunity.BANT_Score__c: not editable"],
        ),
    ],
    ids=["missing-input", "readonly-output", "both-at-once"],
)
def test_preflight_names_every_field_and_the_permission(
    sf: responses.RequestsMock, drop: tuple[str, ...], readonly: tuple[str, ...], named: list[str]
) -> None:
    """Every problem is listed in one SchemaDriftError with the permission to grant; nothing is written."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe(drop, readonly))
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    connector = make_connector()
    with pytest.raises(SchemaDriftError) as caught:
        connector.preflight()
    for text in named:
        assert text in str(caught.value)
    assert "BANT_Sync" in str(caught.value)
    assert len(caught.value.fields) == len(named)
    with pytest.raises(SchemaDriftError):
        connector.apply(
            WritePlan(status_writes=(StatusWrite(opp_id(1), Status.QUALIFIED, (), 100, NOW, None),))
        )
    assert all(c.request.method == "GET" for c in sf.calls)


def test_settings_problems_are_reported_together() -> None:
    """validate() lists every bad setting in one error."""
    settings = SalesforceSettings(
        auth="magic", login_url="http://x", quota_stop_share=2, fields={"budgit": "X"}, max_in_flight=0
    )
    with pytest.raises(ConfigurationError) as caught:
        settings.validate()
    text = str(caught.value)
    for part in ("auth = 'magic'", "https://", "quota_stop_share", "budgit", "max_in_flight"):
        assert part in text


@pytest.mark.parametrize(
    "settings_type", [SalesforceSettings, HubSpotSettings], ids=["salesforce", "hubspot"]
)
def test_retry_and_timeout_keys_stay_flat_in_each_connection(settings_type: type[RequestSettings]) -> None:
    """`[connections.NAME] max_attempts = ...` and the other five knobs still load, for both CRMs."""
    table = {
        "connect_timeout": 2,
        "read_timeout": 30,
        "max_attempts": 3,
        "retry_base_delay": 0.25,
        "retry_max_delay": 8,
        "run_retry_budget": 50,
    }
    problems = Problems()
    settings = build(settings_type, table, "connections.crm", problems)
    assert not problems
    assert isinstance(settings, RequestSettings)
    assert settings.timeouts == Timeouts(2.0, 30.0)
    policy = retry_policy(settings, sleep=lambda _s: None)
    assert (policy.max_attempts, policy.base_delay, policy.max_delay, policy.budget.limit) == (
        3,
        0.25,
        8.0,
        50,
    )


BAD_KNOBS = {
    "connect_timeout": 0.0,
    "read_timeout": -1.0,
    "max_attempts": 0,
    "retry_base_delay": -0.5,
    "retry_max_delay": -1.0,
    "run_retry_budget": -1,
}


@pytest.mark.parametrize(
    "settings_type", [SalesforceSettings, HubSpotSettings], ids=["salesforce", "hubspot"]
)
def test_bad_retry_and_timeout_knobs_are_reported_alike_for_both_crms(
    settings_type: type[SalesforceSettings] | type[HubSpotSettings],
) -> None:
    """Both CRMs name every bad retry/timeout knob, with the one shared wording, in one error."""
    expected = RequestSettings(**BAD_KNOBS).request_problems()  # type: ignore[arg-type]
    assert [p.split(":")[0] for p in expected] == list(BAD_KNOBS)
    with pytest.raises(ConfigurationError) as caught:
        settings_type(**BAD_KNOBS).validate()  # type: ignore[arg-type]
    assert [p for p in caught.value.problems if p in expected] == expected


def test_row_level_invalid_field_fails_closed(sf: responses.RequestsMock) -> None:
    """A SaveResult refusing a field (deleted mid-run) raises SchemaDriftError instead of a row rejection."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sf.patch(
        f"{BASE}/composite/sobjects",
        json=[
            {
                "success": False,
                "errors": [
                    {
                        "statusCode": "INVALID_FIELD_FOR_INSERT_UPDATE",
                        "message": "bad",
                        "fields": ["BANT_Score__c"],
                    }
                ],
            }
        ],
    )
    with pytest.raises(SchemaDriftError) as caught:
        make_connector().apply(
            WritePlan(
                status_writes=(StatusWrite(opp_id(1), Status.QUALIFIED, (), 100, NOW, date(2026, 3, 1)),)
            )
        )
    assert caught.value.fields == ("BANT_Score__c",)


def test_setup_check_lists_passes_problems_and_quota(sf: responses.RequestsMock) -> None:
    """setup(check_only) reports what is in place, one problem per field to fix, and the API usage."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe(drop=("BANT_Timing__c",)))
    sf.get(
        f"{BASE}/sobjects/Task/describe",
        json=task_describe(),
        headers={"Sforce-Limit-Info": "api-usage=120/1000"},
    )
    report = make_connector().setup(check_only=True)
    assert not report.ready
    assert any(p.startswith("Opportunity.BANT_Timing__c: missing or not readable") for p in report.problems)
    assert "Opportunity.BANT_Status__c: editable" in report.ok
    assert "Task.BANT_Sync_Key__c: External ID — tasks are upserted by key" in report.ok
    assert any(n.startswith("API usage today 120/1000 (12%)") for n in report.notes)
    assert report.created == ()


def test_setup_check_raises_a_refused_login_as_one_error(sf: responses.RequestsMock) -> None:
    """An authentication failure is the connector's own error (the CLI prints it as one PROBLEM line)."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", status=401, json=envelope("INVALID_SESSION_ID"))
    with pytest.raises(AuthenticationError, match="Salesforce session expired"):
        make_connector().setup(check_only=True)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("<html><body>Down for maintenance</body></html>", "text/html"),
        ('{"totalSize": 1, "done": tr', "application/json"),
        ('"ok"', "application/json"),
    ],
    ids=["html-page", "cut-short", "json-of-the-wrong-shape"],
)
def test_a_success_that_is_not_the_json_it_should_be_is_transient_and_retried(
    sf: responses.RequestsMock, body: str, content_type: str
) -> None:
    """A 200 whose body is not JSON (or not a query page) was a TypeError/JSONDecodeError from inside
    simple-salesforce, never retried; now it is retried like a 5xx, and a second try that answers well
    reads normally."""
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sf.get(f"{BASE}/query/", status=200, body=body, content_type=content_type)
    sf.get(f"{BASE}/query/", json={"totalSize": 0, "done": True, "records": []})
    sleeps: list[float] = []
    connector = make_connector(sleeps)
    pages = list(connector.fetch_changed(None, full=True))
    assert [p.deals for p in pages] == []
    assert len(sleeps) == 1


def test_a_body_that_stays_broken_fails_with_one_message(sf: responses.RequestsMock) -> None:
    sf.get(f"{BASE}/sobjects/Opportunity/describe", json=opportunity_describe())
    sf.get(f"{BASE}/sobjects/Task/describe", json=task_describe())
    sf.get(f"{BASE}/query/", status=200, body="<html>proxy error</html>", content_type="text/html")
    connector = make_connector([], max_attempts=2)
    with pytest.raises(TransientError, match=r"answered 200 with a body that is not JSON \(text/html"):
        list(connector.fetch_changed(None, full=True))
