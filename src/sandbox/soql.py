"""The sandbox's SOQL engine: parse the subset bant-sync sends, run it over in-memory records.

    query = parse("SELECT Id, Name FROM Opportunity WHERE IsClosed = false ORDER BY Name LIMIT 10")
    result = execute(query, records, describe_types)
    result.rows  # [{"Id": ..., "Name": ...}, ...] keyed by describe name; result.total_size

Errors are SoqlError with the REST errorCode Salesforce would send (MALFORMED_QUERY, INVALID_FIELD,
INVALID_TYPE); put `code` and `message` (or `salesforce_message`, with the caret) in the error envelope.

A caller holding indexes asks `index_probe(query, describe_types, indexed_fields)` for the top-level
`field IN (...)` / `field = 'x'` it may answer from one (keys made by `comparison_key`), and hands `execute`
just those records, in the order a scan would meet them: the result is the scan's.
"""

from __future__ import annotations

from collections.abc import Mapping

from sandbox.soql_ast import (
    And,
    Compare,
    Condition,
    FieldRef,
    InList,
    Like,
    Not,
    Or,
    OrderKey,
    Query,
    QueryResult,
    SoqlError,
    Value,
)
from sandbox.soql_eval import (
    IndexProbe,
    comparison_key,
    execute,
    execute_values,
    index_probe,
    unknown_field,
)
from sandbox.soql_parse import parse

__all__ = [
    "And",
    "Compare",
    "Condition",
    "FieldRef",
    "InList",
    "IndexProbe",
    "Like",
    "Not",
    "Or",
    "OrderKey",
    "Query",
    "QueryResult",
    "SoqlError",
    "Value",
    "comparison_key",
    "execute",
    "execute_values",
    "index_probe",
    "parse",
    "referenced_fields",
]


def _condition_fields(condition: Condition) -> list[FieldRef]:
    if isinstance(condition, And | Or):
        return [ref for part in condition.parts for ref in _condition_fields(part)]
    if isinstance(condition, Not):
        return _condition_fields(condition.inner)
    return [condition.field]


def referenced_fields(query: Query, fields: Mapping[str, str] | None = None) -> set[str]:
    """Every field the query names (SELECT, WHERE, ORDER BY).

    Without `fields` the names are as written; with the describe's `fields` they come back in describe
    case, and an unknown one raises SoqlError(INVALID_FIELD) just as `execute` would.
    """
    refs = list(query.fields) + [key.field for key in query.order_by]
    if query.where is not None:
        refs += _condition_fields(query.where)
    if fields is None:
        return {ref.name for ref in refs}
    by_lower = {name.lower(): name for name in fields}
    resolved: set[str] = set()
    for ref in refs:
        name = by_lower.get(ref.name.lower())
        if name is None:
            raise unknown_field(query, ref)
        resolved.add(name)
    return resolved
