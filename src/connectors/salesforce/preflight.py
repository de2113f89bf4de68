"""Preflight: describe Opportunity and Task once per run and check every field bant-sync reads or writes.

Describe only lists fields the integration user can read (field-level security hides the rest), and says
per field whether it is `updateable` / `createable` (REST API Developer Guide, "sObject Describe"). Every
problem is named with the permission to grant, all at once, and nothing is written while any remains:
a vanished BANT field must never make deals look unqualified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import SchemaDriftError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.settings import DESCRIBE_TYPES, INPUT_KEYS, OUTPUT_KEYS, SalesforceSettings
from rules.model import Status

PERMISSION_SET = "BANT_Sync"
TASK_FIELDS = ("WhatId", "OwnerId", "Subject", "Description", "ActivityDate", "Status", "Priority")


@dataclass(frozen=True)
class Problem:
    sobject: str
    field: str
    issue: str
    fix: str

    def __str__(self) -> str:
        return f"{self.sobject}.{self.field}: {self.issue} — {self.fix}"


@dataclass(frozen=True)
class PreflightReport:
    problems: tuple[Problem, ...]
    passed: tuple[str, ...]
    opportunity_types: Mapping[str, str] = field(default_factory=dict)
    task_key_is_external_id: bool = False

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            listing = "; ".join(str(p) for p in self.problems)
            raise SchemaDriftError(
                f"Salesforce is not ready for bant-sync ({len(self.problems)} problem(s)): {listing}. "
                f"Nothing was written.",
                tuple(f"{p.sobject}.{p.field}" for p in self.problems),
            )


def _fields(describe: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {str(f["name"]).lower(): f for f in describe.get("fields", []) if isinstance(f, dict)}


DEPLOY = "cd config/salesforce && sf project deploy start --source-dir force-app --target-org <alias>"
"""The one deploy command (the sf CLI runs only inside the sfdx project); docs/admin-guide.md explains it."""


def _missing_fix(sobject: str, name: str, access: str) -> str:
    if name.endswith("__c"):
        return (
            f"deploy config/salesforce ({DEPLOY}) and grant {access} on "
            f"{sobject}.{name} to the integration user (permission set {PERMISSION_SET})"
        )
    return f"grant {access} on {sobject}.{name} to the integration user (permission set {PERMISSION_SET})"


def check(
    settings: SalesforceSettings, opportunity: Mapping[str, Any], task: Mapping[str, Any]
) -> PreflightReport:
    """Pure check of two describe results against the settings."""
    problems: list[Problem] = []
    passed: list[str] = []
    opp = _fields(opportunity)
    field_map = settings.field_map
    if not opportunity.get("updateable", False):
        problems.append(
            Problem("Opportunity", "*", "not editable", "grant Edit on Opportunity (object permission)")
        )
    wanted = [(field_map[k], False) for k in INPUT_KEYS] + [(field_map[k], True) for k in OUTPUT_KEYS]
    for key in (*INPUT_KEYS, *OUTPUT_KEYS):
        meta = opp.get(field_map[key].lower())
        kind = str(meta.get("type", "")) if meta is not None else ""
        if meta is not None and kind and kind not in DESCRIBE_TYPES.get(key, (kind,)):
            problems.append(
                Problem(
                    "Opportunity",
                    field_map[key],
                    f"is of type {kind}, expected {' or '.join(DESCRIBE_TYPES[key])}",
                    f"map `{key}` to a field of that type in `fields`, or deploy config/salesforce "
                    f"({DEPLOY})",
                )
            )
    wanted += [(name, False) for name in settings.custom_fields.values()]
    wanted += [("SystemModstamp", False), ("IsClosed", False)]
    for name, needs_edit in wanted:
        meta = opp.get(name.lower())
        access = "Edit" if needs_edit else "Read"
        if meta is None:
            problems.append(
                Problem(
                    "Opportunity", name, "missing or not readable", _missing_fix("Opportunity", name, access)
                )
            )
        elif needs_edit and not meta.get("updateable", False):
            problems.append(
                Problem("Opportunity", name, "not editable", _missing_fix("Opportunity", name, "Edit"))
            )
        else:
            passed.append(f"Opportunity.{name}: {'editable' if needs_edit else 'readable'}")
    status_meta = opp.get(field_map["status"].lower())
    if status_meta is not None and status_meta.get("type") == "picklist":
        values = {str(v.get("value")) for v in status_meta.get("picklistValues", []) if v.get("active", True)}
        absent = [s.value for s in Status if s.value not in values]
        if absent and status_meta.get("restrictedPicklist", True):
            problems.append(
                Problem(
                    "Opportunity",
                    field_map["status"],
                    f"picklist lacks values {absent}",
                    "add them (config/salesforce ships the full value set) or make the picklist unrestricted",
                )
            )
    tsk = _fields(task)
    if not (task.get("createable", False) and task.get("updateable", False)):
        problems.append(
            Problem("Task", "*", "not creatable/editable", "grant Create and Edit on Task (Activities)")
        )
    for name in (*TASK_FIELDS, settings.task_key_field):
        meta = tsk.get(name.lower())
        if meta is None:
            problems.append(
                Problem("Task", name, "missing or not readable", _missing_fix("Task", name, "Edit"))
            )
        elif not (meta.get("createable", False) and meta.get("updateable", False)):
            problems.append(
                Problem("Task", name, "not creatable/editable", _missing_fix("Task", name, "Edit"))
            )
        else:
            passed.append(f"Task.{name}: editable")
    key_meta = tsk.get(settings.task_key_field.lower()) or {}
    is_external = bool(key_meta.get("externalId", False))
    passed.append(
        f"Task.{settings.task_key_field}: "
        + (
            "External ID — tasks are upserted by key"
            if is_external
            else "not an External ID — ledger fallback"
        )
    )
    types = {str(f["name"]): str(f.get("type", "")) for f in opp.values()}
    return PreflightReport(tuple(problems), tuple(passed), types, is_external)


def preflight(client: SalesforceClient, settings: SalesforceSettings) -> PreflightReport:
    """Describe both objects (two API calls) and check them; the caller decides whether to raise."""
    return check(settings, client.describe("Opportunity"), client.describe("Task"))
