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

    def intend(self, intents):  # type: ignore[no-untyped-def]
        for i in intents:
            current = self.entries.get(i.sync_key)
            if current is None or current.task_id is None:
                self.entries[i.sync_key] = self._entry(i.sync_key, i.deal_id, None, "intended", i.missing)

    def confirm(self, confirmations):  # type: ignore[no-untyped-def]
        for c in confirmations:
            deal_id = self.entries[c.sync_key].deal_id if c.sync_key in self.entries else ""
            self.entries[c.sync_key] = self._entry(c.sync_key, deal_id, c.task_id, c.state, c.missing)

    def lookup(self, sync_keys):  # type: ignore[no-untyped-def]
        return {key: self.entries[key] for key in sync_keys if key in self.entries}

    def pending(self):  # type: ignore[no-untyped-def]
        return [e for e in self.entries.values() if e.task_id is None]


@pytest.fixture
def hubspot_ledger() -> HubSpotMemoryLedger:
    """An empty in-memory task ledger."""
    return HubSpotMemoryLedger()
