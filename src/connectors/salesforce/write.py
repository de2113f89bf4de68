"""sObject Collections writes: up to 200 records per call, every SaveResult walked by index.

`composite/sobjects` answers HTTP 200 even when rows fail (allOrNone=false); each SaveResult at index i
belongs to record i (REST API Developer Guide, "sObject Collections"). Rows refused with
UNABLE_TO_LOCK_ROW — another transaction holds the record — are re-sent alone after a backoff, through the
same retry policy and run budget; what still fails is reported per row and retried on a later run. A status
write that fails part-way raises with the outcomes of the rows that landed before the failure (`landed`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from connectors.concurrency import map_in_parallel, map_until, stopping
from connectors.errors import ConfigurationError, ConnectorError, SchemaDriftError, TransientError
from connectors.fieldtable import write_status
from connectors.model import OutcomeKind, RowOutcome, StatusWrite, WriteTarget
from connectors.salesforce.client import SalesforceClient, drift_fields
from connectors.salesforce.pull import deal_table

CHUNK = 200
"""sObject Collections accept at most 200 records per request."""

LOCKED = "UNABLE_TO_LOCK_ROW"
_ROW_DRIFT = frozenset({"INVALID_FIELD", "INVALID_FIELD_FOR_INSERT_UPDATE", "NO_SUCH_COLUMN"})


@dataclass(frozen=True, slots=True)
class SaveResult:
    success: bool
    id: str | None = None
    created: bool | None = None
    code: str | None = None
    message: str | None = None


class _RowsLocked(TransientError):
    """Some rows of a collection were locked; retried by the collection writer only."""


def _is_locked(error: BaseException) -> bool:
    return isinstance(error, _RowsLocked)


def parse_save_result(item: Any) -> SaveResult:
    if not isinstance(item, dict):
        raise ConfigurationError(f"Salesforce returned an unexpected SaveResult: {type(item).__name__}")
    if item.get("success"):
        created = item.get("created")
        return SaveResult(True, item.get("id"), bool(created) if created is not None else None)
    errors = item.get("errors") or [{}]
    first = errors[0] if isinstance(errors[0], dict) else {}
    code = str(first.get("statusCode") or "UNKNOWN_ERROR")
    if code in _ROW_DRIFT:
        raise SchemaDriftError(
            f"Salesforce refused a field on write ({code}: {first.get('message', '')}); run "
            f"`bant-sync setup --check` and grant Edit access to the integration user",
            drift_fields({"fields": first.get("fields"), "message": first.get("message", "")}),
        )
    return SaveResult(False, item.get("id"), None, code, str(first.get("message", "")))


class CollectionWriter:
    """Sends records to one sObject Collections endpoint (update, create or upsert) in chunks of 200,
    up to `max_in_flight` chunks at once."""

    def __init__(self, client: SalesforceClient, max_in_flight: int = 1) -> None:
        self.client = client
        self.max_in_flight = max_in_flight

    def save(self, path: str, method: str, records: Sequence[dict[str, Any]]) -> list[SaveResult]:
        """One SaveResult per record, in order. Inside the client's `single_attempt()` (creates without an
        external id) each chunk is sent once: an uncertain outcome raises TransientError, to be reconciled
        by key, never re-sent."""
        starts = range(0, len(records), CHUNK)
        chunks = map_in_parallel(
            lambda start: self._save_chunk(path, method, records[start : start + CHUNK]),
            list(starts),
            self.max_in_flight,
        )
        return [result for chunk in chunks for result in chunk]

    def save_landed(
        self, path: str, method: str, records: Sequence[dict[str, Any]]
    ) -> tuple[list[SaveResult | None], ConnectorError | None]:
        """Like `save`, but a failure does not lose what landed before it: one SaveResult per record the
        CRM answered for (None for the rest), and the error of the chunk that failed first, if any. No chunk
        is sent after one failed; chunks already in flight finish and count, without retrying."""
        starts = list(range(0, len(records), CHUNK))
        chunks, stopped_by = map_until(
            lambda start: self._send_chunk(path, method, records[start : start + CHUNK]),
            starts,
            self.max_in_flight,
            lambda sent: sent[1] is not None,
        )
        cause = chunks[stopped_by] if stopped_by is not None else None
        error = cause[1] if cause is not None else None
        results: list[SaveResult | None] = []
        for start, chunk in zip(starts, chunks, strict=True):
            results.extend(chunk[0] if chunk is not None else [None] * len(records[start : start + CHUNK]))
        return results, error

    def _save_chunk(self, path: str, method: str, records: Sequence[dict[str, Any]]) -> list[SaveResult]:
        results, error = self._send_chunk(path, method, records)
        if error is not None:
            raise error
        return [
            r if r is not None else SaveResult(False, code="NOT_SENT", message="not sent") for r in results
        ]

    def _send_chunk(
        self, path: str, method: str, records: Sequence[dict[str, Any]]
    ) -> tuple[list[SaveResult | None], ConnectorError | None]:
        """One SaveResult per record, or None for the records whose outcome is unknown because an attempt
        failed (returned with that error) or was not made because a sibling chunk failed (`stopping()`)."""
        results: list[SaveResult | None] = [None] * len(records)
        pending = list(range(len(records)))

        def attempt() -> None:
            nonlocal pending
            if stopping():
                return
            body = {"allOrNone": False, "records": [records[i] for i in pending]}
            raw = self.client.restful(path, method=method, json=body)
            if not isinstance(raw, list) or len(raw) != len(pending):
                raise ConfigurationError(
                    f"Salesforce answered {path} with {len(raw) if isinstance(raw, list) else 'no'} "
                    f"SaveResults for {len(pending)} records; check api_version"
                )
            still_locked = []
            for index, item in zip(pending, raw, strict=True):
                result = parse_save_result(item)
                results[index] = result
                if result.code == LOCKED:
                    still_locked.append(index)
            pending = still_locked
            if pending:
                raise _RowsLocked(f"{len(pending)} rows locked by another transaction")

        try:
            with contextlib.suppress(_RowsLocked):
                self.client.policy.call_when(_is_locked, attempt)
        except ConnectorError as exc:
            for index in pending:
                results[index] = None
            return results, exc
        return results, None


def status_record(write: StatusWrite, field_map: dict[str, str]) -> dict[str, Any]:
    """The composite record of one StatusWrite: its output fields encoded through Salesforce's table."""
    return {
        "attributes": {"type": "Opportunity"},
        "id": write.deal_id,
        **write_status(write, deal_table(field_map, {})),
    }


def write_statuses(
    writer: CollectionWriter, writes: Sequence[StatusWrite], field_map: dict[str, str]
) -> list[RowOutcome]:
    """Update bant-sync's output fields on each opportunity; one RowOutcome per write, in order. A failure
    part-way raises with `landed`: the outcomes of the writes the org answered for before it."""
    if not writes:
        return []
    records = [status_record(w, field_map) for w in writes]
    results, error = writer.save_landed("composite/sobjects", "PATCH", records)
    if error is not None:
        error.landed = [_outcome(w, r) for w, r in zip(writes, results, strict=True) if r is not None]
        raise error
    return [_outcome(w, r or _NOT_SENT) for w, r in zip(writes, results, strict=True)]


_NOT_SENT = SaveResult(False, code="NOT_SENT", message="not sent")


def _outcome(write: StatusWrite, result: SaveResult) -> RowOutcome:
    if result.success:
        return RowOutcome(write.deal_id, WriteTarget.STATUS, OutcomeKind.WRITTEN)
    return RowOutcome(write.deal_id, WriteTarget.STATUS, OutcomeKind.REJECTED, result.code, result.message)
