"""Batched writes with per-row outcomes.

HubSpot batch endpoints take at most 100 inputs. When some rows fail and others succeed HubSpot answers
207 Multi-Status, which hubspot-api-client does not raise for; the body (read as JSON) holds `results` and
an `errors` list naming the failed ids under `context.ids`
(https://developers.hubspot.com/docs/api/crm/understanding-the-crm#batch-operations). A whole-batch 400
(one invalid value refuses the batch) is narrowed down by splitting the chunk, so one bad row never fails
the others; a 400 saying a property does not exist is schema drift and stops the connection.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from connectors.concurrency import map_in_parallel
from connectors.errors import SchemaDriftError
from connectors.hubspot.client import HubSpotClient, HubSpotRequestError

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
    """Update `(id, properties)` rows in chunks of 100; one RowResult per id."""
    outcomes: dict[str, RowResult] = {}
    results = map_in_parallel(
        lambda chunk: _update_chunk(client, api, chunk, object_label),
        list(chunks(rows)),
        client.settings.max_in_flight,
    )
    for result in results:
        outcomes.update(result)
    return outcomes


def _update_chunk(
    client: HubSpotClient,
    api: str,
    chunk: Sequence[tuple[str, dict[str, str]]],
    object_label: str,
) -> dict[str, RowResult]:
    body = {"inputs": [{"id": row_id, "properties": props} for row_id, props in chunk]}
    try:
        response = client.call_json("other", api, "update", body)
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
        return _narrow(client, api, chunk, object_label, named, exc)
    return read_results(response, [row_id for row_id, _ in chunk], lambda record: str(record["id"]))


def _narrow(
    client: HubSpotClient,
    api: str,
    chunk: Sequence[tuple[str, dict[str, str]]],
    object_label: str,
    named: dict[str, RowResult],
    exc: HubSpotRequestError,
) -> dict[str, RowResult]:
    """A whole chunk was refused: reject the rows HubSpot named, else split until the bad rows stand alone."""
    if len(chunk) == 1:
        row_id = chunk[0][0]
        return {row_id: named.get(row_id) or RowResult(False, exc.category or str(exc.status), str(exc))}
    known = [row for row in chunk if row[0] in named]
    rest = [row for row in chunk if row[0] not in named]
    if known:
        outcomes = {row_id: named[row_id] for row_id, _ in known}
        if rest:
            outcomes.update(_update_chunk(client, api, rest, object_label))
        return outcomes
    middle = len(chunk) // 2
    outcomes = _update_chunk(client, api, chunk[:middle], object_label)
    outcomes.update(_update_chunk(client, api, chunk[middle:], object_label))
    return outcomes


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
