"""Shared fixtures of the connector tests (Salesforce and HubSpot add theirs with distinct names)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from worker.state import StateStore, StoreLedger

# --- HubSpot connector fixtures (names prefixed hubspot_) -------------------------------------------------


@pytest.fixture
def hubspot_ledger(tmp_path: Path) -> Iterator[StoreLedger]:
    """An empty task ledger of connection "hs" in a SQLite state store: the worker's own ledger, shared by
    every run of one test (connectors keep no task state; TaskSync keeps this one)."""
    store = StateStore.open(f"sqlite:///{tmp_path}/state.db")
    try:
        yield store.ledger("hs")
    finally:
        store.close()
