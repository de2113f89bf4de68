"""Delivery errors by what the digest does about them, and the one tenacity policy that retries them.

DeliveryError             a delivery to one recipient failed: reported for that recipient, recorded
├── TransientDelivery     `failed` in the ledger and tried again by the next run; the others go on
│                         retried within the run first: SMTP 4xx, a dropped or refused connection, a
│                         timeout, Slack's `ratelimited` (waiting its Retry-After) or a 5xx
└── PermanentDelivery     not retried within the run: SMTP 5xx (550 unknown mailbox), a TLS or login
                          failure, a Slack user no e-mail finds, any other Slack API error
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

log = structlog.get_logger()
T = TypeVar("T")

MAX_DELAY = 60.0
"""The longest wait between two tries of one delivery (a Slack Retry-After is honoured up to 900 s)."""


class DeliveryError(Exception):
    """A delivery to one recipient failed; the message says why, for the recipient's line in the output."""


class TransientDelivery(DeliveryError):
    """Worth another try soon; `retry_after` is the server's hint in seconds, when it gave one."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDelivery(DeliveryError):
    """Trying again now would fail the same way."""


def _wait(base_delay: float) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, TransientDelivery) and failure.retry_after is not None:
            return failure.retry_after
        return float(min(base_delay * 2 ** (state.attempt_number - 1), MAX_DELAY))

    return wait


def deliver_with_retries(
    send: Callable[[], T],
    *,
    max_attempts: int,
    base_delay: float,
    sleep: Callable[[float], None],
    recipient: str,
    channel: str,
) -> T:
    """`send()`, tried up to `max_attempts` times while it raises TransientDelivery (waiting its
    Retry-After, else `base_delay` doubling up to MAX_DELAY, through `sleep`); the last error propagates."""

    def before_sleep(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "digest delivery will be retried",
            recipient=recipient,
            channel=channel,
            attempt=state.attempt_number,
            wait_s=state.upcoming_sleep,
            error=str(failure),
        )

    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=_wait(base_delay),
        retry=retry_if_exception_type(TransientDelivery),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(send)
