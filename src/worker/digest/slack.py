"""The digest on Slack: the official SDK's WebClient, `users.lookupByEmail` then `chat.postMessage` to the
user's id (a direct message from the app's bot), blocks with a text fallback.

The SDK's own retry handlers are switched off: the digest's tenacity policy is the one retry layer
(docs/design.md §9). `base_url` comes from `[slack] base_url`, so a proxy or a test stand-in can serve the
Web API. Errors map by Slack's `error` code (api.slack.com/methods/users.lookupByEmail,
chat.postMessage): `ratelimited` (HTTP 429 with Retry-After) and 5xx are transient, `users_not_found` means
no Slack user has the address, anything else (a revoked token, a missing scope) is permanent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from connectors.retry import parse_retry_after, utc_now
from worker.config.settings import SlackSettings
from worker.digest.render import Rendered
from worker.digest.retry import PermanentDelivery, TransientDelivery

UNKNOWN_USER_ERRORS = frozenset({"users_not_found", "user_not_found"})


def _header(headers: Any, name: str) -> str | None:
    """One response header, whatever the case of its name (the SDK hands over a dict or an HTTPMessage)."""
    if headers is None:
        return None
    if isinstance(headers, Mapping):
        for key, value in headers.items():
            if str(key).lower() == name.lower():
                return str(value[0] if isinstance(value, list) and value else value)
        return None
    found = headers.get(name)
    return None if found is None else str(found)


class SlackSender:
    """Posts one digest per call to the Slack user with the recipient's e-mail."""

    def __init__(self, settings: SlackSettings, clock: Callable[[], datetime] = utc_now) -> None:
        if settings.bot_token is None:
            raise ValueError("the Slack sender needs slack.bot_token")
        self._client = WebClient(
            token=settings.bot_token.reveal(),
            base_url=settings.base_url if settings.base_url.endswith("/") else settings.base_url + "/",
            timeout=int(max(1, settings.timeout)),
            retry_handlers=[],
        )
        self._clock = clock

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            response = exc.response
            error = str(response.get("error", "")) if response is not None else ""
            status = int(response.status_code) if response is not None else 0
            if error == "ratelimited" or status == 429:
                wait = parse_retry_after(_header(response.headers, "Retry-After"), self._clock)
                raise TransientDelivery(f"Slack {what}: ratelimited", retry_after=wait) from None
            if error in UNKNOWN_USER_ERRORS:
                raise PermanentDelivery(f"Slack {what}: no Slack user has this e-mail ({error})") from None
            if status >= 500:
                raise TransientDelivery(f"Slack {what}: HTTP {status} {error}".rstrip()) from None
            raise PermanentDelivery(f"Slack {what}: {error or f'HTTP {status}'}") from None
        except (TimeoutError, URLError, ConnectionError) as exc:
            raise TransientDelivery(f"Slack {what}: the Web API could not be reached ({exc})") from None
        except SlackClientError as exc:
            raise PermanentDelivery(f"Slack {what}: {exc}") from None

    def user_id(self, email: str) -> str:
        """The Slack user id of the person with this e-mail."""
        found = self._call("users.lookupByEmail", lambda: self._client.users_lookupByEmail(email=email))
        return str(found["user"]["id"])

    def send(self, email: str, rendered: Rendered) -> None:
        """Post the digest to the user with `email` as a direct message from the bot."""
        user = self.user_id(email)
        self._call(
            "chat.postMessage",
            lambda: self._client.chat_postMessage(
                channel=user,
                text=rendered.slack_text,
                blocks=list(rendered.slack_blocks),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
