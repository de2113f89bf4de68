"""Read deals from an export: CSV (with a header row) or JSON Lines, one deal per row.

Canonical columns: id, name, owner_id, stage, pipeline, deal_type, amount, close_date, budget, authority,
need, timing, flagged_since, snooze_until, snooze_reason, modified_by; `amount` reads as a Decimal and dates
as YYYY-MM-DD, as the connectors read them (`connectors.codecs`). Other columns are kept in `Deal.extra`
for custom frameworks. A bad row is reported with its line number and skipped; the rest are read. In a
CSV, a row's line is the one it starts on, and an unbalanced quote is a bad row (never a silent merge of
the rows after it).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from connectors.codecs import parse_date, parse_number
from rules import CANONICAL_FIELDS, Deal, Value
from worker.errors import InputFileError

_DATE_FIELDS = ("close_date", "flagged_since", "snooze_until")
_DATE_PREFIX = re.compile(r"\d{4}-\d{2}-\d{2}")
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
    """A YYYY-MM-DD date, read by the codecs; a time after it (as spreadsheets export dates) is ignored."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip()
    try:
        if not _DATE_PREFIX.match(text):
            raise ValueError(text)
        return parse_date(text[:10])
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
        amount=parse_number(_scalar(record.get("amount"), "amount")),
        close_date=dates["close_date"],
        budget=_scalar(record.get("budget"), "budget"),
        authority=_scalar(record.get("authority"), "authority"),
        need=_scalar(record.get("need"), "need"),
        timing=_scalar(record.get("timing"), "timing"),
        flagged_since=dates["flagged_since"],
        extra=extra,
        snooze_until=dates["snooze_until"],
        snooze_reason=_text(record.get("snooze_reason")),
        modified_by=_text(record.get("modified_by")),
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


def _quote_problem(error: csv.Error, first: int, end: int) -> str:
    """What a strict CSV reader's complaint means for the user: almost always an unbalanced quote."""
    message = str(error)
    if "end of data" in message:
        return "unbalanced quote: a quoted value starts on this line and is never closed"
    if "expected after" in message:
        where = "" if end == first else f" (line {end})"
        return (
            f"unbalanced quote: a quoted value starts on this line and its closing quote{where} is followed "
            'by more text; write a quote inside a quoted value as two ("")'
        )
    return f"not readable as CSV ({message})"


def _csv_records(text: str) -> Iterator[tuple[int, Mapping[str, Any] | BadRow]]:
    """Each CSV record with the line it starts on. A record whose quoting is broken is a BadRow naming that
    line, and reading resumes on the next line, so one stray quote never silently swallows the rows after
    it. A quoted value may span lines (a multi-line note) only when its row still has one value per column.
    """
    lines = io.StringIO(text, newline="").readlines()
    header: list[str] | None = None
    position = 0  # lines before the one the current reader started on
    while position < len(lines):
        reader = csv.reader(itertools.islice(lines, position, None), strict=True)
        done = 0  # lines the reader had consumed when the last complete record ended
        try:
            for row in reader:
                first, last = position + done + 1, position + reader.line_num
                done = reader.line_num
                if header is None:
                    header = _header(row)
                    continue
                if not row:
                    continue
                if last > first and len(row) != len(header):
                    reason = (
                        f"unbalanced quote: a quoted value starts on this line and runs on to line {last}, "
                        f"leaving {len(row)} values for {len(header)} columns"
                    )
                    yield first, BadRow(first, reason)
                    position = first
                    break
                if len(row) > len(header):
                    yield first, BadRow(first, "more values than header columns")
                    continue
                yield first, dict(zip(header, [*row, *([None] * (len(header) - len(row)))], strict=True))
            else:
                return
        except csv.Error as exc:
            first = position + done + 1
            if header is None:
                raise InputFileError(f"the CSV header cannot be read: {_quote_problem(exc, 1, 1)}") from None
            yield first, BadRow(first, _quote_problem(exc, first, position + reader.line_num))
            position = first


def _header(row: list[str]) -> list[str]:
    names = [name.strip() for name in row]
    if "id" not in names:
        raise InputFileError(
            "the CSV header has no 'id' column (canonical columns: "
            + ", ".join(c for c in CANONICAL_FIELDS if c != "modified_at")
            + ")"
        )
    return names


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
