"""Helpers for the Salesforce connector tests: describe payloads, a memory ledger, connector builders."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.registry import Confirmation, ConnectorContext, Intent, LedgerEntry
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.settings import DEFAULT_FIELDS

INSTANCE = "https://sf.example.test"
BASE = f"{INSTANCE}/services/data/v59.0"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
TOKEN = "00Dtoken-abc"

TYPES = {
    "Id": "id",
    "SystemModstamp": "datetime",
    "IsClosed": "boolean",
    "Name": "string",
    "OwnerId": "reference",
    "StageName": "picklist",
    "Type": "picklist",
    "Amount": "currency",
    "CloseDate": "date",
    "BANT_Budget__c": "string",
    "BANT_Authority__c": "string",
    "BANT_Need__c": "textarea",
    "BANT_Timing__c": "string",
    "BANT_Status__c": "picklist",
    "BANT_Missing__c": "string",
    "BANT_Score__c": "double",
    "BANT_Checked_At__c": "datetime",
    "BANT_Flagged_Since__c": "date",
}
OUTPUTS = {
    "BANT_Status__c",
    "BANT_Missing__c",
    "BANT_Score__c",
    "BANT_Checked_At__c",
    "BANT_Flagged_Since__c",
}
STATUSES = ("qualified", "needs_qualification", "poc_unqualified", "qualify_out", "not_evaluated")


def opportunity_describe(drop: tuple[str, ...] = (), readonly: tuple[str, ...] = ()) -> dict[str, Any]:
    fields = []
    for name, kind in TYPES.items():
        if name in drop:
            continue
        meta: dict[str, Any] = {
            "name": name,
            "type": kind,
            "updateable": name in OUTPUTS and name not in readonly,
        }
        if name == "BANT_Status__c":
            meta["picklistValues"] = [{"value": v, "active": True} for v in STATUSES]
            meta["restrictedPicklist"] = True
        fields.append(meta)
    return {"name": "Opportunity", "updateable": True, "fields": fields}


def task_describe(external_id: bool = True) -> dict[str, Any]:
    names = ("Id", "WhatId", "OwnerId", "Subject", "Description", "ActivityDate", "Status", "Priority")
    fields = [{"name": n, "type": "string", "createable": n != "Id", "updateable": n != "Id"} for n in names]
    fields.append(
        {
            "name": "BANT_Sync_Key__c",
            "type": "string",
            "createable": True,
            "updateable": True,
            "externalId": external_id,
        }
    )
    return {"name": "Task", "createable": True, "updateable": True, "fields": fields}


class MemoryLedger:
    """A TaskLedger in memory."""

    def __init__(self) -> None:
        self.entries: dict[str, LedgerEntry] = {}
        self.calls: list[str] = []

    def intend(self, intents: Sequence[Intent]) -> None:
        for i in intents:
            self.calls.append(f"intend {i.sync_key}")
            self.entries[i.sync_key] = LedgerEntry(i.sync_key, i.deal_id, None, "intended", i.missing)

    def confirm(self, confirmations: Sequence[Confirmation]) -> None:
        for c in confirmations:
            self.calls.append(f"confirm {c.sync_key} {c.task_id}")
            deal = self.entries[c.sync_key].deal_id if c.sync_key in self.entries else ""
            self.entries[c.sync_key] = LedgerEntry(c.sync_key, deal, c.task_id, c.state, c.missing)

    def lookup(self, sync_keys: Iterable[str]) -> dict[str, LedgerEntry]:
        return {key: self.entries[key] for key in sync_keys if key in self.entries}

    def pending(self) -> list[LedgerEntry]:
        return [e for e in self.entries.values() if e.task_id is None]


def make_connector(
    sleeps: list[float] | None = None,
    secrets: dict[str, str] | None = None,
    ledger: MemoryLedger | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    **overrides: Any,
) -> SalesforceConnector:
    options: dict[str, Any] = {"instance_url": INSTANCE, "auth": "token"}
    options.update(overrides)
    settings = SalesforceSettings(**options)
    context = ConnectorContext(
        connection="sf-test",
        secrets=secrets if secrets is not None else {"access_token": TOKEN},
        ledger=ledger or MemoryLedger(),
        clock=clock,
        sleep=(sleeps if sleeps is not None else []).append,
    )
    return SalesforceConnector(settings, context, rng=random.Random(0))


def opp_record(i: int, stamp: str = "2026-03-01T10:00:00.000+0000", **values: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "attributes": {
            "type": "Opportunity",
            "url": f"/services/data/v59.0/sobjects/Opportunity/{opp_id(i)}",
        },
        "Id": opp_id(i),
        "SystemModstamp": stamp,
    }
    for name in DEFAULT_FIELDS.values():
        record[name] = None
    record.update(values)
    return record


def opp_id(i: int) -> str:
    return f"006{i:012d}AAA"
