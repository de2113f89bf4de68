"""Batched writes with per-row outcomes.

HubSpot batch endpoints take at most 100 inputs. When some rows fail and others succeed HubSpot answers
207 Multi-Status, which hubspot-api-client does not raise for; the body (read as JSON) holds `results` and
an `errors` list naming the failed ids under `context.ids`
(https://developers.hubspot.com/docs/api/crm/understanding-the-crm#batch-operations). A whole-batch 400
(one invalid value refuses the batch) is narrowed down by splitting the chunk, so one bad row never fails
the others; a 400 saying a property does not exist is schema drift and stops the connection. A deal update
that fails part-way raises with the status outcomes of the rows that landed before the failure (`landed`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.concurrency import PoolStopped, map_until, stopping
from connectors.errors import ConnectorError, SchemaDriftError
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError
from connectors.model import OutcomeKind, RowOutcome, WriteTarget

BATCH_LIMIT = 100


@dataclass(frozen=True, slots=True)
class RowResult:
    """How one input row ended: ok, or refused with HubSpot's category/code and message."""

    ok: bool
    code: str | None = None
    message: str | None = None
    record: Any = None


def chunks(items: Sequence[Any], size: int = BATCH_LIMIT) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _attr(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


def error_rows(errors: Iterable[Any]) -> tuple[dict[str, RowResult], list[RowResult]]:
    """Split 207/400 error entries into those naming row ids and those that name none."""
    by_id: dict[str, RowResult] = {}
    loose: list[RowResult] = []
    for error in errors:
        code = _attr(error, "category") or _attr(error, "status") or "ERROR"
        message = str(_attr(error, "message") or "HubSpot refused this row")
        ids: list[str] = []
        contexts = [_attr(error, "context") or {}]
        contexts.extend(_attr(detail, "context") or {} for detail in _attr(error, "errors") or [])
        for context in contexts:
            ids.extend(str(i) for i in context.get("ids") or context.get("id") or [])
        if ids:
            for row_id in ids:
                by_id[row_id] = RowResult(False, str(code), message)
        else:
            loose.append(RowResult(False, str(code), message))
    return by_id, loose


_PROPERTY_NAME = re.compile(
    r'[Pp]roperty (?:values were not valid: )?\\?"?([A-Za-z0-9_]+)\\?"? does not exist'
)


def missing_properties(error: HubSpotRequestError) -> tuple[str, ...]:
    """Properties a 400 says do not exist (HubSpot: code PROPERTY_DOESNT_EXIST, context.propertyName)."""
    names: list[str] = []
    for detail in error.body.get("errors") or []:
        if isinstance(detail, dict) and detail.get("code") == "PROPERTY_DOESNT_EXIST":
            names.extend((detail.get("context") or {}).get("propertyName") or [])
    if not names and error.category == "VALIDATION_ERROR":
        names.extend(_PROPERTY_NAME.findall(str(error.body.get("message") or "")))
    return tuple(sorted(set(names)))


def batch_update(
    client: HubSpotClient,
    api: str,
    rows: Sequence[tuple[str, dict[str, str]]],
    object_label: str,
) -> dict[str, RowResult]:
    """Update `(id, properties)` rows in chunks of 100; one RowResult per id.

    A failure part-way raises the error of the chunk that failed first once the chunks in flight are done;
    no request is sent after it. For deals the error carries `landed`: the status outcomes of the rows
    HubSpot answered for before it (bant-sync writes nothing on a deal but its status fields, so a deal row
    is a status write).
    """

    def send(
        chunk: Sequence[tuple[str, dict[str, str]]],
    ) -> tuple[dict[str, RowResult], ConnectorError | None]:
        answered: dict[str, RowResult] = {}
        try:
            _update_chunk(client, api, chunk, object_label, answered)
        except ConnectorError as exc:
            return answered, exc
        return answered, None

    outcomes: dict[str, RowResult] = {}
    errors: list[ConnectorError] = []
    in_flight = client.settings.max_in_flight
    sent, stopped_by = map_until(send, list(chunks(rows)), in_flight, lambda done: done[1] is not None)
    for index, chunk in enumerate(sent):
        if chunk is None:
            continue
        answered, error = chunk
        outcomes.update(answered)
        if error is not None:
            errors.insert(0 if index == stopped_by else len(errors), error)
    if not errors and any(row_id not in outcomes for row_id, _ in rows):
        raise PoolStopped("a batch of an enclosing pool failed")
    if errors:
        if object_label == "deal":
            errors[0].landed = [
                _status_outcome(row_id, outcomes[row_id]) for row_id, _ in rows if row_id in outcomes
            ]
        raise errors[0]
    return outcomes


def _status_outcome(deal_id: str, result: RowResult) -> RowOutcome:
    kind = OutcomeKind.WRITTEN if result.ok else OutcomeKind.REJECTED
    return RowOutcome(deal_id, WriteTarget.STATUS, kind, result.code, result.message)


def _update_chunk(
    client: HubSpotClient,
    api: str,
    chunk: Sequence[tuple[str, dict[str, str]]],
    object_label: str,
    into: dict[str, RowResult],
) -> None:
    """Send one chunk, recording each row's result in `into` as soon as HubSpot answers for it (so what
    landed before a failure is known). Sends nothing once a sibling chunk failed (`stopping()`)."""
    if stopping():
        return
    body = {"inputs": [{"id": row_id, "properties": props} for row_id, props in chunk]}
    try:
        response = client.call_json("other", api, "update", body, expect="results")
    except HubSpotRequestError as exc:
        if exc.status != 400:
            raise
        drift = missing_properties(exc)
        if drift:
            raise SchemaDriftError(
                f"HubSpot {object_label} property missing: {', '.join(drift)}; run `bant-sync setup` or fix "
                f"the property mapping",
                fields=drift,
            ) from None
        named, _loose = error_rows(exc.body.get("errors") or [exc.body])
        _narrow(client, api, chunk, object_label, named, exc, into)
        return
    into.update(read_results(response, [row_id for row_id, _ in chunk], lambda record: str(record["id"])))


def _narrow(
    client: HubSpotClient,
    api: str,
    chunk: Sequence[tuple[str, dict[str, str]]],
    object_label: str,
    named: dict[str, RowResult],
    exc: HubSpotRequestError,
    into: dict[str, RowResult],
) -> None:
    """A whole chunk was refused: reject the rows HubSpot named, else split until the bad rows stand alone."""
    if len(chunk) == 1:
        row_id = chunk[0][0]
        into[row_id] = named.get(row_id) or RowResult(False, exc.category or str(exc.status), str(exc))
        return
    known = [row for row in chunk if row[0] in named]
    rest = [row for row in chunk if row[0] not in named]
    if known:
        into.update((row_id, named[row_id]) for row_id, _ in known)
        if rest:
            _update_chunk(client, api, rest, object_label, into)
        return
    middle = len(chunk) // 2
    _update_chunk(client, api, chunk[:middle], object_label, into)
    _update_chunk(client, api, chunk[middle:], object_label, into)


def read_results(
    response: Mapping[str, Any], expected: Sequence[str], key_of: Callable[[Mapping[str, Any]], str | None]
) -> dict[str, RowResult]:
    """Walk a batch response's JSON (200 or 207) row by row: results are ok, errors are refused by id."""
    outcomes: dict[str, RowResult] = {}
    for record in response.get("results") or []:
        key = key_of(record)
        if key is not None:
            outcomes[key] = RowResult(True, record=record)
    named, loose = error_rows(response.get("errors") or [])
    fallback = loose[0] if len(loose) == 1 else None
    for key in expected:
        if key in outcomes:
            continue
        outcomes[key] = (
            named.get(key)
            or fallback
            or RowResult(
                False,
                "NO_RESULT",
                "HubSpot returned neither a result nor an error for this row; retried next run",
            )
        )
    return outcomes
