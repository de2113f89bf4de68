"""The console's sessions, CSRF tokens and login throttle, all in memory.

A session is a random id (256 bits from `secrets`) the browser holds in a cookie; the server keeps, per id,
the session's CSRF token and when it was last used. A session ends after `idle` without a request, at
logout, or when the process restarts (nothing is persisted: after a restart everyone logs in again). The
CSRF token is a second random value bound to the session: every state-changing request must echo it (a
hidden form field or the X-CSRF-Token header), which a page of another site cannot read.

The clock is injectable (monotonic seconds) so expiry is tested without waiting.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_SESSIONS = 1_000
"""Sessions kept at most; a login beyond this ends the least recently used one."""
MAX_LOGIN_FAILURES = 5
"""Failed logins from one client within LOGIN_WINDOW_SECONDS before it is locked out for that long."""
LOGIN_WINDOW_SECONDS = 300.0


@dataclass
class Session:
    id: str
    csrf: str
    created: float
    last_seen: float


class SessionStore:
    """Sessions by id, each ending `idle_seconds` after its last request."""

    def __init__(
        self,
        idle_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_sessions: int = MAX_SESSIONS,
    ) -> None:
        if idle_seconds <= 0:
            raise ValueError("a session must last some time: idle_seconds must be positive")
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._max = max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def create(self) -> Session:
        """A new session (its id and CSRF token fresh random values)."""
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), now, now)
        with self._lock:
            self._expire(now)
            while len(self._sessions) >= self._max:
                oldest = min(self._sessions.values(), key=lambda s: s.last_seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        """The live session with this id, its idle clock restarted; None when unknown or expired (an
        expired one is forgotten)."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen >= self.idle_seconds:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            return session

    def delete(self, session_id: str) -> None:
        with self._lock:
            self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        for stale in [s.id for s in self._sessions.values() if now - s.last_seen >= self.idle_seconds]:
            del self._sessions[stale]


def csrf_ok(session: Session, given: str | None) -> bool:
    """Whether `given` is the session's CSRF token (compared in constant time)."""
    return bool(given) and hmac.compare_digest(str(given).encode(), session.csrf.encode())


def token_ok(given: str, token: str) -> bool:
    """Whether a login's `given` token is the ops token (compared in constant time)."""
    return hmac.compare_digest(given.encode(), token.encode())


class LoginThrottle:
    """Locks a client out after MAX_LOGIN_FAILURES failed logins within the window, for the window.

    The ops token has at least 32 characters, so guessing it is hopeless anyway; the lockout keeps a
    client from hammering the login (and filling the log) and makes a wrong-token loop visible."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        max_failures: int = MAX_LOGIN_FAILURES,
        window_seconds: float = LOGIN_WINDOW_SECONDS,
    ) -> None:
        self._clock = clock
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._lock = threading.Lock()
        self._failures: dict[str, list[float]] = {}

    def _recent(self, client: str, now: float) -> list[float]:
        kept = [at for at in self._failures.get(client, []) if now - at < self.window_seconds]
        if kept:
            self._failures[client] = kept
        else:
            self._failures.pop(client, None)
        return kept

    def locked_for(self, client: str) -> float:
        """Seconds until `client` may try again (0: it may now)."""
        now = self._clock()
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.max_failures:
                return 0.0
            return max(0.0, self.window_seconds - (now - recent[-self.max_failures]))

    def failed(self, client: str) -> None:
        now = self._clock()
        with self._lock:
            self._failures[client] = [*self._recent(client, now), now]
            if len(self._failures) > MAX_SESSIONS:  # bound memory under a flood of clients
                oldest = min(self._failures, key=lambda c: self._failures[c][-1])
                del self._failures[oldest]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)
