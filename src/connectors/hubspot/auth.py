"""HubSpot credentials: a private-app (or service key) token, or the OAuth refresh-token flow.

Private apps use one long-lived bearer token (https://developers.hubspot.com/docs/api/private-apps).
Public apps get a short-lived access token plus a refresh token; `POST /oauth/v1/token` with
`grant_type=refresh_token` returns a new access token and its `expires_in` (seconds; 30 minutes today,
https://developers.hubspot.com/docs/api/oauth/tokens). We refresh `margin` seconds ahead of expiry, and once
more when HubSpot answers 401 anyway.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from connectors.errors import AuthenticationError, ConfigurationError


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """What the token endpoint returned. `refresh_token` is None when HubSpot kept the old one."""

    access_token: str
    expires_in: int
    refresh_token: str | None = None


Exchange = Callable[[str, str, str], TokenGrant]
"""(client_id, client_secret, refresh_token) -> TokenGrant; raises AuthenticationError on invalid_grant."""


class TokenSource(Protocol):
    refreshable: bool

    def token(self) -> str: ...

    def refresh(self) -> str: ...


class StaticToken:
    """A private-app access token: never expires on its own, cannot be refreshed."""

    refreshable = False

    def __init__(self, access_token: str) -> None:
        self._token = access_token

    def token(self) -> str:
        return self._token

    def refresh(self) -> str:
        raise AuthenticationError(
            "HubSpot rejected the private-app access token: check the `access_token` secret of this "
            "connection (the app's or service key's token in HubSpot: docs/admin-guide.md)"
        )


class OAuthToken:
    """Access token kept fresh from a refresh token; `clock` returns tz-aware UTC now."""

    refreshable = True

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        exchange: Exchange,
        clock: Callable[[], datetime],
        margin_seconds: int = 300,
        access_token: str | None = None,
    ) -> None:
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._exchange = exchange
        self._clock = clock
        self._margin = timedelta(seconds=margin_seconds)
        self._access = access_token
        self._expires_at: datetime | None = None
        self._lock = threading.Lock()
        self.refreshes = 0

    def token(self) -> str:
        with self._lock:
            if self._access is None or (
                self._expires_at is not None and self._clock() >= self._expires_at - self._margin
            ):
                return self._refresh_locked()
            return self._access

    def refresh(self) -> str:
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> str:
        grant = self._exchange(self._client_id, self._client_secret, self._refresh_token)
        self.refreshes += 1
        self._access = grant.access_token
        self._expires_at = self._clock() + timedelta(seconds=grant.expires_in)
        if grant.refresh_token:
            self._refresh_token = grant.refresh_token
        return grant.access_token


def token_source(
    auth: str,
    client_id: str,
    secrets: Mapping[str, str],
    exchange: Exchange,
    clock: Callable[[], datetime],
    margin_seconds: int,
) -> TokenSource:
    """Build the token source the settings ask for, naming any missing secret."""
    if auth == "oauth":
        missing = [name for name in ("client_secret", "refresh_token") if not secrets.get(name)]
        if missing:
            raise ConfigurationError(
                f"auth = 'oauth' needs the secret(s) {', '.join(missing)}: put them in the secrets file or "
                f"the environment for this connection"
            )
        return OAuthToken(
            client_id,
            secrets["client_secret"],
            secrets["refresh_token"],
            exchange,
            clock,
            margin_seconds,
            access_token=secrets.get("access_token") or None,
        )
    token = secrets.get("access_token")
    if not token:
        raise ConfigurationError(
            "auth = 'private_app' needs the secret access_token (the app's or service key's static token): "
            "put it in the secrets file or the environment for this connection"
        )
    return StaticToken(token)
