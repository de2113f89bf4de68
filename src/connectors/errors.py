"""Connector errors, typed by what the caller must do next.

    ConnectorError
     ├── ConfigurationError     fatal for this connection until a human fixes settings, fields or permissions
     │    └── SchemaDriftError  a mapped field/property vanished or became read-only: stop, flag no deal
     ├── AuthenticationError    credentials rejected even after one re-authentication
     ├── QuotaExhaustedError    the CRM's API allocation is (nearly) spent: stop the run cleanly, resume later
     ├── TransientError         worth retrying (timeouts, 5xx, 429, lock contention); carries retry_after
     ├── ReplayExpiredError     a change stream's saved position is past the CRM's retention: resubscribe
     └── RowRejectedError       one record refused; recorded per row, the batch and the run go on

Every one is a `rules.errors.BantSyncError` (the one root; its docstring draws the whole tree), so the CLI
and the ops API render it as one message with its exit code.

Messages name the setting, field or permission to fix and never contain secrets.

A write that fails part-way (a quota stop after some chunks of a batch were sent, a 5xx storm on the third
of five calls) raises with `landed`: the RowOutcomes of the rows the CRM answered for before the failure,
so the worker can still count, audit and checkpoint the writes that did reach the CRM.
"""

from __future__ import annotations

from connectors.model import RowOutcome
from rules.errors import QUOTA_STOPPED, ROWS_REJECTED, BantSyncError


class ConnectorError(BantSyncError):
    """Base of every error a connector raises to the worker. `landed` holds the outcomes of the rows of the
    failed write call that the CRM had already answered for (written or rejected), in plan order; empty
    when nothing is known to have landed (or the error did not come from a write)."""

    http_status = 502

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.landed: list[RowOutcome] = []


class ConfigurationError(ConnectorError):
    """Settings, CRM schema or permissions are wrong; nothing will work until a person fixes them."""

    hint = "fix the setting, field or permission named above, then run `bant-sync check`"


class SchemaDriftError(ConfigurationError):
    """A field bant-sync reads or writes is missing or not accessible; `fields` names each one."""

    def __init__(self, message: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.fields = fields


class AuthenticationError(ConnectorError):
    """The CRM rejected our credentials (after one re-authentication attempt)."""

    hint = "check the connection's token or secret (env BANT_SYNC_CONNECTIONS__NAME__... or the secrets file)"


class QuotaExhaustedError(ConnectorError):
    """The API allocation is used up or past the configured share; the run stops and resumes later."""

    exit_code = QUOTA_STOPPED
    http_status = 429
    hint = "wait for the CRM's API allocation to reset; the next run resumes from the checkpoint"

    def __init__(self, message: str, used: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.used = used
        self.limit = limit


class TransientError(ConnectorError):
    """A failure that a later attempt may not see; `retry_after` is the CRM's hint in seconds, if any."""

    http_status = 503
    hint = "check the CRM's address and that it is reachable, then retry"

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class RowRejectedError(ConnectorError):
    """The CRM refused one record; `code` and the message are the CRM's own."""

    exit_code = ROWS_REJECTED

    def __init__(self, message: str, code: str, record_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.record_id = record_id


class ReplayExpiredError(ConnectorError):
    """A change stream cannot resume from the saved position: it is older than the CRM keeps events
    (Salesforce: 72 hours) or unknown to it. Changes since then may be lost: the caller subscribes from the
    newest position and reconciles with an incremental run."""

    http_status = 503
    hint = "nothing to fix: bant-sync resubscribes from now and an incremental run catches the gap"
