"""Shared fixtures of the connector tests (Salesforce and HubSpot add theirs with distinct names)."""

from __future__ import annotations

import pytest

# --- HubSpot connector fixtures (names prefixed hubspot_) -------------------------------------------------


class HubSpotMemoryLedger:
    """A TaskLedger kept in memory, for HubSpot connector tests."""

    def __init__(self) -> None:
        from connectors.registry import LedgerEntry

        self._entry = LedgerEntry
        self.entries: dict[str, LedgerEntry] = {}

    def intend(self, sync_key: str, deal_id: str, missing: tuple[str, ...]) -> None:
        current = self.entries.get(sync_key)
        if current is None or current.task_id is None:
            self.entries[sync_key] = self._entry(sync_key, deal_id, None, "intended", missing)

    def confirm(self, sync_key: str, task_id: str, state: str, missing: tuple[str, ...]) -> None:
        deal_id = self.entries[sync_key].deal_id if sync_key in self.entries else ""
        self.entries[sync_key] = self._entry(sync_key, deal_id, task_id, state, missing)

    def lookup(self, sync_key: str):  # type: ignore[no-untyped-def]
        return self.entries.get(sync_key)

    def pending(self):  # type: ignore[no-untyped-def]
        return [e for e in self.entries.values() if e.task_id is None]


@pytest.fixture
def hubspot_ledger() -> HubSpotMemoryLedger:
    """An empty in-memory task ledger."""
    return HubSpotMemoryLedger()
