"""Record ids by the key SOQL compares a field with, so ``WHERE Key__c IN (...)`` reads only the records it
names instead of the whole table.

Real Salesforce indexes Id and every External ID or unique field; the sandbox keeps one `KeyIndex` for each
of those. The key is the engine's comparison key for the field's type (`soql.comparison_key`): lower case for
text, the 15-character form for ids. That is what `=` and IN compare, so the records whose key is among a
query's literals are exactly the records the condition matches. A key held by one record (the usual case
for a unique field) maps to its id alone; a set is made only when several records share the key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sandbox import soql


class KeyIndex:
    """Ids of the records holding each comparison key of one field (null and '' are not indexed)."""

    __slots__ = ("_holders", "_key", "field")

    def __init__(self, field: str, soql_type: str) -> None:
        self.field = field
        self._key = soql.comparison_key(soql_type)
        self._holders: dict[object, str | set[str]] = {}

    def add(self, rid: str, rec: Mapping[str, object]) -> None:
        key = self._key(rec.get(self.field))
        if key is None:
            return
        held = self._holders.get(key)
        if held is None:
            self._holders[key] = rid
        elif isinstance(held, set):
            held.add(rid)
        elif held != rid:
            self._holders[key] = {held, rid}

    def remove(self, rid: str, rec: Mapping[str, object]) -> None:
        key = self._key(rec.get(self.field))
        if key is None:
            return
        held = self._holders.get(key)
        if held == rid:
            del self._holders[key]
        elif isinstance(held, set):
            held.discard(rid)
            if len(held) == 1:
                self._holders[key] = next(iter(held))

    def holders(self, keys: Iterable[object]) -> set[str]:
        """The ids of the records whose key is one of `keys` (already comparison keys)."""
        found: set[str] = set()
        for key in keys:
            held = self._holders.get(key)
            if isinstance(held, str):
                found.add(held)
            elif held is not None:
                found |= held
        return found
