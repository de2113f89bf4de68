"""Associations between HubSpot records, stored in both directions with their type ids.

Task-to-deal is HUBSPOT_DEFINED type 216 and deal-to-task 217 (HubSpot docs, "Associations v4: association
type id values"); clients should read them from the labels endpoint rather than hard-code them.
"""

from __future__ import annotations

from collections import defaultdict

PAIRS: dict[tuple[str, str], tuple[int, str]] = {
    ("tasks", "deals"): (216, "task_to_deal"),
    ("deals", "tasks"): (217, "deal_to_task"),
}
_REVERSE = {216: 217, 217: 216}

Key = tuple[str, str]


def type_name(from_type: str, to_type: str, type_id: int) -> str:
    pair = PAIRS.get((from_type, to_type))
    if pair is not None and pair[0] == type_id:
        return pair[1]
    return f"{from_type[:-1]}_to_{to_type[:-1]}"


class AssociationStore:
    """Callers hold the HubSpot state lock."""

    def __init__(self) -> None:
        self._links: dict[Key, dict[Key, set[int]]] = defaultdict(dict)

    def link(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        self._links[(from_type, from_id)].setdefault((to_type, to_id), set()).add(type_id)
        reverse = _REVERSE.get(type_id, type_id)
        self._links[(to_type, to_id)].setdefault((from_type, from_id), set()).add(reverse)

    def unlink(self, from_type: str, from_id: str, to_type: str, to_id: str) -> bool:
        removed = self._links.get((from_type, from_id), {}).pop((to_type, to_id), None) is not None
        self._links.get((to_type, to_id), {}).pop((from_type, from_id), None)
        return removed

    def targets(self, from_type: str, from_id: str, to_type: str) -> list[tuple[str, set[int]]]:
        links = self._links.get((from_type, from_id), {})
        found = [(key[1], set(types)) for key, types in links.items() if key[0] == to_type]
        return sorted(found, key=lambda item: int(item[0]) if item[0].isdigit() else 0)

    def remove_object(self, object_type: str, object_id: str) -> None:
        for other in list(self._links.pop((object_type, object_id), {})):
            self._links.get(other, {}).pop((object_type, object_id), None)

    def clear(self) -> None:
        self._links.clear()

    def valid_type(self, from_type: str, to_type: str, type_id: int) -> bool:
        pair = PAIRS.get((from_type, to_type))
        return pair is not None and pair[0] == type_id

    @staticmethod
    def default_type(from_type: str, to_type: str) -> int | None:
        pair = PAIRS.get((from_type, to_type))
        return pair[0] if pair else None
