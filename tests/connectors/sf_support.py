"""Helpers for the Salesforce connector tests: describe payloads, the Organization query, connectors."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import responses

from connectors.registry import ConnectorContext
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
    "BANT_Reasons__c": "textarea",
    "BANT_Snooze_Until__c": "date",
    "BANT_Snooze_Reason__c": "string",
    "LastModifiedById": "reference",
}
OUTPUTS = {
    "BANT_Status__c",
    "BANT_Missing__c",
    "BANT_Score__c",
    "BANT_Checked_At__c",
    "BANT_Flagged_Since__c",
    "BANT_Reasons__c",
}
STATUSES = ("qualified", "needs_qualification", "poc_unqualified", "qualify_out", "not_evaluated", "snoozed")


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


ORG_ID = "00D5g000004ABCDEAA"
"""The org's 18-character id; the connector's identity uses its first 15 characters."""
ORG_SOQL = "SELECT Id FROM Organization LIMIT 1"


def soql_of(request: Any) -> str:
    """The SOQL text of a query request (the `q` parameter), "" for any other request."""
    return parse_qs(urlparse(request.url or "").query).get("q", [""])[0]


def _is_org_query(request: Any) -> tuple[bool, str]:
    return soql_of(request) == ORG_SOQL, "not the Organization query"


def _not_org_query(request: Any) -> tuple[bool, str]:
    return soql_of(request) != ORG_SOQL, "the Organization query"


def add_organization(sf: responses.RequestsMock, org_id: str = ORG_ID) -> None:
    """Answer preflight's `SELECT Id FROM Organization LIMIT 1` with one org, however often it is asked."""
    record = {"attributes": {"type": "Organization"}, "Id": org_id}
    sf.get(
        f"{BASE}/query/",
        match=[_is_org_query],
        json={"totalSize": 1, "done": True, "records": [record]},
    )


def add_query(sf: responses.RequestsMock, **kwargs: Any) -> None:
    """Answer the next query other than the Organization one (responses' `json=`, `status=`, ...)."""
    sf.get(f"{BASE}/query/", match=[_not_org_query], **kwargs)


def make_connector(
    sleeps: list[float] | None = None,
    secrets: dict[str, str] | None = None,
    clock: Callable[[], datetime] = lambda: NOW,
    **overrides: Any,
) -> SalesforceConnector:
    options: dict[str, Any] = {"instance_url": INSTANCE, "auth": "token"}
    options.update(overrides)
    settings = SalesforceSettings(**options)
    context = ConnectorContext(
        connection="sf-test",
        secrets=secrets if secrets is not None else {"access_token": TOKEN},
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
