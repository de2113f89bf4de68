"""The requests.Session every connector uses: explicit timeouts, a CA bundle, and no hidden retries.

urllib3's own retries are switched off (`max_retries=0`) so `connectors.retry.RetryPolicy` stays the one
retry layer; a timeout is raised to the caller's seam, which maps it to TransientError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from connectors.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds to wait for a TCP connection and for each read of a response (docs/design.md §6)."""

    connect: float = 5.0
    read: float = 60.0

    def as_tuple(self) -> tuple[float, float]:
        return (self.connect, self.read)


class TimeoutSession(requests.Session):
    """A Session that applies default timeouts to every request that does not set its own.

    simple-salesforce passes no timeout unless told, so the default has to live in the session. `verify`
    is passed per request too: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override a session's own
    `verify` (psf/requests issue 3829), which would silently drop a configured `ca_bundle`.
    """

    def __init__(self, timeouts: Timeouts) -> None:
        super().__init__()
        self.timeouts = timeouts

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeouts.as_tuple()
        if kwargs.get("verify") is None:
            kwargs["verify"] = self.verify
        return super().request(method, url, *args, **kwargs)


def make_session(
    timeouts: Timeouts | None = None, ca_bundle: str = "", user_agent: str = "bant-sync"
) -> TimeoutSession:
    """A session with default timeouts, `verify` set to `ca_bundle` when given (else the system CAs), and
    urllib3 retries disabled on both schemes. A `ca_bundle` that is not a readable file is a
    ConfigurationError (requests would raise a bare OSError on the first call)."""
    if ca_bundle and not Path(ca_bundle).is_file():
        raise ConfigurationError(
            f"ca_bundle {ca_bundle!r} is not a file: point the connection's `ca_bundle` at a PEM bundle of "
            f"the CA that signs the CRM's certificate, or remove it to use the system's CAs"
        )
    session = TimeoutSession(timeouts or Timeouts())
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.verify = ca_bundle or True
    session.headers["User-Agent"] = user_agent
    return session
