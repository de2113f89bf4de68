"""Getting a Salesforce access token: OAuth 2.0 JWT bearer (recommended), client credentials,
username-password (legacy), or a ready token — against a configurable login URL, through our session.

We do the token exchange ourselves rather than through simple-salesforce's login helpers because those
hard-code `https://{domain}.salesforce.com` and only refresh sessions they opened (docs/design.md §5).
Token endpoint and grant parameters: Salesforce Help, "OAuth 2.0 JWT Bearer Flow for Server-to-Server
Integration", "OAuth 2.0 Client Credentials Flow", "OAuth 2.0 Username-Password Flow".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
import requests

from connectors.errors import AuthenticationError, ConfigurationError, TransientError
from connectors.retry import RetryPolicy
from connectors.salesforce.settings import SalesforceSettings

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 - a URL path, not a secret
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME = timedelta(minutes=3)
"""Salesforce accepts assertions that expire within 3 minutes (JWT bearer flow, `exp` claim)."""


@dataclass(frozen=True, slots=True)
class Token:
    access_token: str
    instance_url: str

    def __repr__(self) -> str:
        return f"Token(access_token=<redacted>, instance_url={self.instance_url!r})"


def _need(secrets: Mapping[str, str], name: str, mode: str) -> str:
    value = secrets.get(name, "")
    if not value:
        raise ConfigurationError(
            f"Salesforce auth = {mode!r} needs the secret {name!r}: set it in the secrets file under this "
            f"connection or in the environment"
        )
    return value


class Authenticator:
    """Obtains (and, when its mode allows, re-obtains) an access token for one connection."""

    def __init__(
        self,
        settings: SalesforceSettings,
        secrets: Mapping[str, str],
        session: requests.Session,
        policy: RetryPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._secrets = secrets
        self._session = session
        self._policy = policy
        self._clock = clock
        self.logins = 0

    @property
    def can_refresh(self) -> bool:
        return self._settings.auth != "token"

    def login(self) -> Token:
        """A fresh token (for `token` mode, the configured one)."""
        mode = self._settings.auth
        if mode == "token":
            if not self._settings.instance_url:
                raise ConfigurationError("Salesforce auth = 'token' needs instance_url in the connection")
            return Token(_need(self._secrets, "access_token", mode), self._settings.instance_url.rstrip("/"))
        return self._policy.call(self._exchange, self._grant(mode))

    def _grant(self, mode: str) -> dict[str, str]:
        s = self._settings
        if mode == "jwt":
            now = self._clock()
            claims = {
                "iss": s.client_id,
                "sub": s.username,
                "aud": s.jwt_audience or s.login_url.rstrip("/"),
                "exp": int((now + JWT_LIFETIME).timestamp()),
            }
            key = _need(self._secrets, "private_key", mode)
            try:
                assertion = jwt.encode(claims, key, algorithm="RS256")
            except (ValueError, TypeError, jwt.PyJWTError) as exc:
                raise ConfigurationError(
                    "Salesforce private_key is not a usable RSA private key in PEM form; put the PEM text "
                    "(-----BEGIN PRIVATE KEY-----…) of the External Client App's certificate "
                    "key in the secret"
                ) from exc
            return {"grant_type": JWT_GRANT, "assertion": assertion}
        if mode == "client_credentials":
            return {
                "grant_type": "client_credentials",
                "client_id": s.client_id,
                "client_secret": _need(self._secrets, "client_secret", mode),
            }
        password = _need(self._secrets, "password", mode) + self._secrets.get("security_token", "")
        return {
            "grant_type": "password",
            "client_id": s.client_id,
            "client_secret": _need(self._secrets, "client_secret", mode),
            "username": s.username,
            "password": password,
        }

    def _exchange(self, form: dict[str, str]) -> Token:
        url = self._settings.login_url.rstrip("/") + TOKEN_PATH
        self.logins += 1
        try:
            response = self._session.post(url, data=form, headers={"Accept": "application/json"})
        except requests.Timeout as exc:
            raise TransientError(f"Salesforce login at {url} timed out") from exc
        except requests.exceptions.SSLError as exc:
            raise ConfigurationError(
                f"TLS verification of the Salesforce login URL {url} failed; set ca_bundle to the CA that "
                f"signs its certificate"
            ) from exc
        except requests.ConnectionError as exc:
            raise TransientError(
                f"could not reach the Salesforce login URL {url}: {type(exc).__name__}"
            ) from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientError(
                f"Salesforce login answered {response.status_code}", status=response.status_code
            )
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code == 200 and not (isinstance(body, dict) and "access_token" in body):
            raise TransientError(
                f"Salesforce login at {url} answered 200 without a token (a proxy or an outage page in the "
                "way?)",
                status=200,
            )
        if response.status_code != 200 or not isinstance(body, dict) or "access_token" not in body:
            error = body.get("error", "unknown_error") if isinstance(body, dict) else "unknown_error"
            detail = body.get("error_description", "") if isinstance(body, dict) else ""
            raise AuthenticationError(
                f"Salesforce refused the {self._settings.auth!r} login ({response.status_code} {error}: "
                f"{detail}); check client_id, username, login_url and that the integration user is "
                f"pre-authorized for the External Client App (its Policies: Permitted Users, "
                f"permission set BANT_Sync)"
            )
        instance = str(body.get("instance_url") or self._settings.instance_url).rstrip("/")
        return Token(str(body["access_token"]), instance)
