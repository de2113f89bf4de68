"""Read deals from an export: CSV (with a header row) or JSON Lines, one deal per row.

Canonical columns: id, name, owner_id, stage, pipeline, deal_type, amount, close_date, budget, authority,
need, timing, flagged_since. Other columns are kept in `Deal.extra` for custom frameworks. A bad row is
reported with its line number and skipped; the rest are read.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from rules import CANONICAL_FIELDS, Deal, Value
from worker.errors import InputFileError

_DATE_FIELDS = ("close_date", "flagged_since")
_IGNORED = frozenset({"modified_at"})


@dataclass(frozen=True, slots=True)
class BadRow:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class DealRow:
    line: int
    deal: Deal


def _date(value: Any, column: str) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"{column} {str(value)[:40]!r} is not a date (use YYYY-MM-DD)") from None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _scalar(value: Any, column: str) -> Value:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise ValueError(f"{column} must be a single value, not {type(value).__name__}")


def deal_from_record(record: Mapping[str, Any]) -> Deal:
    """Build a Deal from one row; ValueError says what is wrong with it."""
    deal_id = _text(record.get("id"))
    if deal_id is None:
        raise ValueError("missing id")
    dates = {name: _date(record.get(name), name) for name in _DATE_FIELDS}
    extra = {
        key: _scalar(value, key)
        for key, value in record.items()
        if key not in CANONICAL_FIELDS and key not in _IGNORED and key
    }
    return Deal(
        id=deal_id,
        name=_text(record.get("name")),
        owner_id=_text(record.get("owner_id")),
        stage=_text(record.get("stage")),
        pipeline=_text(record.get("pipeline")),
        deal_type=_text(record.get("deal_type")),
        amount=_scalar(record.get("amount"), "amount"),
        close_date=dates["close_date"],
        budget=_scalar(record.get("budget"), "budget"),
        authority=_scalar(record.get("authority"), "authority"),
        need=_scalar(record.get("need"), "need"),
        timing=_scalar(record.get("timing"), "timing"),
        flagged_since=dates["flagged_since"],
        extra=extra,
    )


def _open_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputFileError(f"{path}: is a directory, not a CSV or JSON Lines file") from None
    except OSError as exc:
        raise InputFileError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            f"{path}: not UTF-8 text (byte {exc.start}); export the file as UTF-8 CSV or JSON Lines"
        ) from None
    if not text.strip():
        raise InputFileError(f"{path}: the file is empty")
    return text


def _csv_records(text: str) -> Iterator[tuple[int, Mapping[str, Any] | BadRow]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "id" not in [f.strip() for f in reader.fieldnames]:
        raise InputFileError(
            "the CSV header has no 'id' column (canonical columns: "
            + ", ".join(c for c in CANONICAL_FIELDS if c != "modified_at")
            + ")"
        )
    for row in reader:
        if None in row:
            yield reader.line_num, BadRow(reader.line_num, "more values than header columns")
            continue
        yield reader.line_num, {k.strip(): v for k, v in row.items() if k is not None}


def _jsonl_records(text: str) -> Iterator[tuple[int, Mapping[str, Any] | BadRow]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, BadRow(number, f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield number, BadRow(number, "each line must be a JSON object")
            continue
        yield number, record


def read_deals(path: Path) -> Iterator[DealRow | BadRow]:
    """Yield each row as a DealRow or a BadRow, in file order. Format by extension, else by content."""
    text = _open_text(path)
    is_jsonl = path.suffix.lower() in {".jsonl", ".ndjson", ".json"} or (
        path.suffix.lower() != ".csv" and text.lstrip().startswith("{")
    )
    records = _jsonl_records(text) if is_jsonl else _csv_records(text)
    for line, record in records:
        if isinstance(record, BadRow):
            yield record
            continue
        try:
            yield DealRow(line, deal_from_record(record))
        except ValueError as exc:
            yield BadRow(line, str(exc))
