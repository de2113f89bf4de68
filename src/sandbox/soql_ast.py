"""The SOQL subset's syntax tree, its error type and the result of running a query.

Kept apart from the parser and the evaluator so both can import it without a cycle; callers import
everything from `sandbox.soql`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, TypeAlias

ErrorCode: TypeAlias = Literal["MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"]
ValueKind: TypeAlias = Literal["string", "number", "boolean", "null", "date", "datetime"]
CompareOp: TypeAlias = Literal["=", "!=", "<", ">", "<=", ">="]
LiteralValue: TypeAlias = str | int | float | bool | date | datetime | None


class SoqlError(Exception):
    """A query Salesforce would refuse; `code` is the REST errorCode, `message` its text.

    `offset` (0-based, into `text`) marks where the problem is, for the caret-and-position form real
    Salesforce puts in its error envelope (`salesforce_message`).
    """

    def __init__(self, code: ErrorCode, message: str, text: str = "", offset: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code: ErrorCode = code
        self.message = message
        self.text = text
        self.offset = offset

    @property
    def salesforce_message(self) -> str:
        """The message as the REST API words it: the offending line, a caret, `ERROR at Row:r:Column:c`."""
        if not self.text or self.offset is None:
            return self.message
        before = self.text[: self.offset]
        row = before.count("\n") + 1
        line_start = before.rfind("\n") + 1
        line_end = self.text.find("\n", self.offset)
        line = self.text[line_start : line_end if line_end >= 0 else len(self.text)]
        column = self.offset - line_start + 1
        caret = " " * (column - 1) + "^"
        return f"\n{line}\n{caret}\nERROR at Row:{row}:Column:{column}\n{self.message}"


@dataclass(frozen=True)
class FieldRef:
    """A field as written in the query; it is matched to the describe case-insensitively at execution."""

    name: str
    offset: int


@dataclass(frozen=True)
class Value:
    """A literal. `raw` is its source text (for strings: between the quotes, escapes not yet decoded)."""

    kind: ValueKind
    value: LiteralValue
    raw: str
    offset: int


@dataclass(frozen=True)
class Compare:
    field: FieldRef
    op: CompareOp
    value: Value


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Value, ...]
    negated: bool


@dataclass(frozen=True)
class Like:
    """`field LIKE 'pattern'`; `regex` is the pattern already translated ('%' → '.*', '_' → '.')."""

    field: FieldRef
    pattern: Value
    regex: str


@dataclass(frozen=True)
class Not:
    inner: Condition


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


Condition: TypeAlias = Compare | InList | Like | Not | And | Or


@dataclass(frozen=True)
class OrderKey:
    field: FieldRef
    descending: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    """A parsed query. `fields` is empty when `is_count` (SELECT COUNT())."""

    text: str
    sobject: str
    fields: tuple[FieldRef, ...]
    is_count: bool
    where: Condition | None
    order_by: tuple[OrderKey, ...]
    limit: int | None


@dataclass(frozen=True)
class QueryResult:
    """Selected rows keyed by describe name in SELECT order; for COUNT() `rows` is empty."""

    rows: list[dict[str, object]]
    total_size: int
