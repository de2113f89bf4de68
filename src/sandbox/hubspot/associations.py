"""Associations between HubSpot records, stored in both directions with their type ids.

Task-to-deal is HUBSPOT_DEFINED type 216 and deal-to-task 217 (HubSpot docs, "Associations v4: association
type id values"); clients should read them from the labels endpoint rather than hard-code them.

Stored compactly, because a 100,000-deal first run links about 57,000 tasks: per (from type, to type), each
record's targets are one tuple of ids, and the type ids of a link are kept only when they are not exactly
the pair's default type (through the API, which validates types, they always are). A dict of sets per
record in each direction held about 1.1 KB per link (65 MB at 100,000 deals); this holds about 0.2 KB.
"""

from __future__ import annotations

from collections.abc import Callable

PAIRS: dict[tuple[str, str], tuple[int, str]] = {
    ("tasks", "deals"): (216, "task_to_deal"),
    ("deals", "tasks"): (217, "deal_to_task"),
}
_REVERSE = {216: 217, 217: 216}

Key = tuple[str, str]
LinkKey = tuple[str, str, str, str]
"""(from type, from id, to type, to id)."""


def type_name(from_type: str, to_type: str, type_id: int) -> str:
    pair = PAIRS.get((from_type, to_type))
    if pair is not None and pair[0] == type_id:
        return pair[1]
    return f"{from_type[:-1]}_to_{to_type[:-1]}"


def _same(object_type: str, object_id: str) -> str:
    return object_id


class AssociationStore:
    """Callers hold the HubSpot state lock. ``canonical_id`` maps an id read from a request to the stored
    record's own id string, so a link does not keep a second copy of it."""

    def __init__(self, canonical_id: Callable[[str, str], str] = _same) -> None:
        self._targets: dict[Key, dict[str, tuple[str, ...]]] = {}
        """(from type, to type) → from id → the ids it links to, in the order they were linked."""
        self._types: dict[LinkKey, frozenset[int]] = {}
        """A link's type ids where they are not exactly the pair's default type."""
        self._canonical = canonical_id

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        from_id, to_id = self._canonical(from_type, from_id), self._canonical(to_type, to_id)
        self._add(from_type, from_id, to_type, to_id, type_id)
        self._add(to_type, to_id, from_type, from_id, _REVERSE.get(type_id, type_id))

    def unlink(self, from_type: str, from_id: str, to_type: str, to_id: str) -> bool:
        removed = self._drop(from_type, from_id, to_type, to_id)
        self._drop(to_type, to_id, from_type, from_id)
        return removed

    def targets(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, set[int]]]:
        ids = self._targets.get((from_type, to_type), {}).get(from_id, ())
        found = [(target, set(self._types_of(from_type, from_id, to_type, target))) for target in ids]
        return sorted(found, key=lambda item: int(item[0]) if item[0].isdigit() else 0)

    def remove_object(self, object_type: str, object_id: str) -> None:
        for (from_type, to_type), by_id in self._targets.items():
            if from_type != object_type:
                continue
            for target in by_id.pop(object_id, ()):
                self._types.pop((object_type, object_id, to_type, target), None)
                self._drop(to_type, target, object_type, object_id)

    def clear(self) -> None:
        self._targets.clear()
        self._types.clear()

    def valid_type(self, from_type: str, to_type: str, type_id: int) -> bool:
        pair = PAIRS.get((from_type, to_type))
        return pair is not None and pair[0] == type_id

    @staticmethod
    def default_type(from_type: str, to_type: str) -> int | None:
        pair = PAIRS.get((from_type, to_type))
        return pair[0] if pair else None

    # ----- internals ----------------------------------------------------------------------------------------
    def _types_of(self, from_type: str, from_id: str, to_type: str, to_id: str) -> frozenset[int]:
        found = self._types.get((from_type, from_id, to_type, to_id))
        if found is not None:
            return found
        default = self.default_type(from_type, to_type)
        return frozenset() if default is None else frozenset((default,))

    def _add(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        by_id = self._targets.setdefault((from_type, to_type), {})
        current = by_id.get(from_id, ())
        if to_id in current:
            types = self._types_of(from_type, from_id, to_type, to_id) | {type_id}
        else:
            by_id[from_id] = (*current, to_id)
            types = frozenset((type_id,))
        key = (from_type, from_id, to_type, to_id)
        if types == {self.default_type(from_type, to_type)}:
            self._types.pop(key, None)
        else:
            self._types[key] = types

    def _drop(self, from_type: str, from_id: str, to_type: str, to_id: str) -> bool:
        by_id = self._targets.get((from_type, to_type))
        current = by_id.get(from_id, ()) if by_id is not None else ()
        if by_id is None or to_id not in current:
            return False
        rest = tuple(target for target in current if target != to_id)
        if rest:
            by_id[from_id] = rest
        else:
            del by_id[from_id]
        self._types.pop((from_type, from_id, to_type, to_id), None)
        return True
