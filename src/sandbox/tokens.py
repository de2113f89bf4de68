"""Bearer tokens a CRM stand-in accepts; revoking them all is the session-expiry fault."""

from __future__ import annotations

import secrets
import threading


class TokenStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._valid: set[str] = set()
        self._revoked: set[str] = set()

    def issue(self, token: str | None = None) -> str:
        value = token or secrets.token_urlsafe(48)
        with self._lock:
            self._valid.add(value)
        return value

    def valid(self, token: str) -> bool:
        with self._lock:
            return token in self._valid

    def revoked(self, token: str) -> bool:
        """True for a token that was valid until a session expiry (the CRM says 'expired', not 'invalid')."""
        with self._lock:
            return token in self._revoked

    def revoke_all(self) -> None:
        with self._lock:
            self._revoked |= self._valid
            self._valid.clear()
