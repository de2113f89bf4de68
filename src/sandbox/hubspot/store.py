"""One HubSpot object type's records: insertion order follows ``hs_lastmodifieddate`` (a write moves the
record to the end), an id index for list paging, unique-value indexes, and a write log search caches read."""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import datetime

from sandbox.hubspot.properties import PropertyRegistry

Props = dict[str, str | None]
Edit = tuple[int, str, tuple[str, ...], tuple[str | None, ...], int | None]
"""One change of property values (sandbox.hubspot.history): (epoch ms, sourceType, names changed, their
values before, updatedByUserId)."""
_MAX_WRITE_LOG = 200_000


@dataclass(slots=True)
class HsObject:
    id: str
    num: int
    properties: Props
    created_at: datetime
    updated_at: datetime
    modstamp_ms: int
    history: list[tuple[int, Props]] | None = None
    """Earlier versions, kept only while a search lag may ask for them (None until then: an empty list
    per record is 5.6 MB at 100,000 deals)."""
    edits: tuple[Edit, ...] | None = None
    """Property changes, oldest first (None until one is made): what `propertiesWithHistory` is rebuilt from
    (sandbox.hubspot.history)."""


class ObjectStore:
    def __init__(self, object_type: str, registry: PropertyRegistry) -> None:
        self.type = object_type
        self.registry = registry
        self.objects: dict[str, HsObject] = {}
        self.ordered = True
        self.writes: list[str] = []
        """Ids written or removed since ``epoch`` began, in order: search caches catch up from it."""
        self.epoch = 0
        self.search_cache: dict[str, object] = {}
        self._nums: list[int] = []
        self._unique: dict[str, dict[str, str]] = {}
        self.reindex()

    def reindex(self) -> None:
        self.new_epoch()
        self._unique = {n: {} for n, p in self.registry.properties.items() if p.has_unique_value}
        for obj in self.objects.values():
            self._index(obj, add=True)
        self._nums = sorted(obj.num for obj in self.objects.values())

    def by_unique(self, name: str, value: str) -> HsObject | None:
        found = self._unique.get(name, {}).get(value)
        return self.objects.get(found) if found is not None else None

    def ids_after(self, after: int, limit: int) -> list[str]:
        start = bisect.bisect_right(self._nums, after)
        return [str(num) for num in self._nums[start : start + limit]]

    def put(self, obj: HsObject, *, new: bool) -> None:
        last = next(reversed(self.objects.values()), None) if self.objects else None
        if last is not None and last.modstamp_ms > obj.modstamp_ms:
            self.ordered = False
        self.objects[obj.id] = obj
        self._index(obj, add=True)
        self._log(obj.id)
        if new:
            bisect.insort(self._nums, obj.num)

    def take(self, object_id: str) -> HsObject:
        obj = self.objects.pop(object_id)
        self._index(obj, add=False)
        return obj

    def new_epoch(self) -> None:
        """Forget the write log; every cached search is recomputed."""
        self.epoch += 1
        self.writes = []
        self.search_cache.clear()

    def _log(self, object_id: str) -> None:
        self.writes.append(object_id)
        if len(self.writes) > _MAX_WRITE_LOG:
            self.new_epoch()

    def remove(self, object_id: str) -> None:
        obj = self.take(object_id)
        self._log(object_id)
        index = bisect.bisect_left(self._nums, obj.num)
        if index < len(self._nums) and self._nums[index] == obj.num:
            del self._nums[index]

    def _index(self, obj: HsObject, *, add: bool) -> None:
        for name, index in self._unique.items():
            value = obj.properties.get(name)
            if value is None:
                continue
            if add:
                index[value] = obj.id
            elif index.get(value) == obj.id:
                del index[value]
