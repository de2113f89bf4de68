"""Where the org keeps opportunity history: compact tuples per opportunity, rows made when a query reads them.

A history row as a dict with its index entries was about 1 KB; 100,000 closed deals with about eight rows
each held 870 MB. Here a row is one tuple in its opportunity's list (an int counter for its id, the values
shared with the seed), and `rows` builds the dicts a query scans: only for the opportunities a top-level
`OpportunityId IN (...)` names (the connector's reads), or for all of them on a query without one. Ids are
made from the counter when a row is built, so a row keeps its id from one query to the next.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime

from sandbox.salesforce import history
from sandbox.salesforce.ids import KEY_PREFIXES, make_id

FieldChange = tuple[int, str, str, object, object, datetime, object]
"""(counter, Field, DataType, OldValue, NewValue, CreatedDate, CreatedById)."""
StagePoint = tuple[int, object, object, object, object, datetime, object]
"""(counter, StageName, Amount, CloseDate, Probability, CreatedDate, CreatedById)."""


class HistoryStore:
    """OpportunityFieldHistory and OpportunityHistory of one org, by opportunity (15-character id key, the
    key SOQL compares an id by). Callers hold the state's lock."""

    def __init__(self) -> None:
        self.fields: dict[str, list[FieldChange]] = {}
        self.stages: dict[str, list[StagePoint]] = {}
        self._ids: dict[str, str] = {}
        """15-character key -> the opportunity's 18-character id (shared with its record)."""
        self._counters = {history.FIELD_HISTORY: 0, history.STAGE_HISTORY: 0}

    def clear(self) -> None:
        self.fields.clear()
        self.stages.clear()
        self._ids.clear()
        self._counters = dict.fromkeys(self._counters, 0)

    def _next(self, obj: str) -> int:
        self._counters[obj] += 1
        return self._counters[obj]

    def _key(self, opportunity: str) -> str:
        key = opportunity[:15]
        self._ids.setdefault(key, opportunity)
        return key

    def add_field(
        self, opportunity: str, field: str, data_type: str, old: object, new: object, at: datetime, by: object
    ) -> None:
        change = (self._next(history.FIELD_HISTORY), field, data_type, old, new, at, by)
        self.fields.setdefault(self._key(opportunity), []).append(change)

    def add_stage(
        self,
        opportunity: str,
        stage: object,
        amount: object,
        close: object,
        probability: object,
        at: datetime,
        by: object,
    ) -> None:
        point = (self._next(history.STAGE_HISTORY), stage, amount, close, probability, at, by)
        self.stages.setdefault(self._key(opportunity), []).append(point)

    def count(self, obj: str) -> int:
        held = self.fields if obj == history.FIELD_HISTORY else self.stages
        return sum(len(rows) for rows in held.values())

    def rows(self, obj: str, keys: Iterable[object] | None = None) -> Iterator[dict[str, object]]:
        """`obj`'s rows as records, for the opportunities whose 15-character key is in `keys` (all when
        None), each opportunity's oldest first."""
        held = self.fields if obj == history.FIELD_HISTORY else self.stages
        wanted = held.keys() if keys is None else [k for k in keys if isinstance(k, str) and k in held]
        prefix = KEY_PREFIXES[obj]
        for key in wanted:
            opportunity = self._ids[key]
            if obj == history.FIELD_HISTORY:
                for n, field, data_type, old, new, at, by in self.fields[key]:
                    yield {
                        "Id": make_id(prefix, n),
                        "OpportunityId": opportunity,
                        "Field": field,
                        "DataType": data_type,
                        "OldValue": old,
                        "NewValue": new,
                        "CreatedDate": at,
                        "CreatedById": by,
                        "IsDeleted": False,
                    }
            else:
                for n, stage, amount, close, probability, at, by in self.stages[key]:
                    point = {
                        "Id": opportunity,
                        "StageName": stage,
                        "Amount": amount,
                        "CloseDate": close,
                        "Probability": probability,
                    }
                    yield {**history.stage_row(make_id(prefix, n), point, at), "CreatedById": by}
