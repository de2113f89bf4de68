"""The HubSpot portal's fixed metadata: deal and task properties, groups, the default deal pipeline."""

from __future__ import annotations

from sandbox.bant_fields import BANT_STATUSES
from sandbox.hubspot.properties import (
    DEAL_TYPES,
    TASK_PRIORITIES,
    TASK_STATUSES,
    PropertyDef,
    PropertyGroup,
    PropertyRegistry,
    option_list,
)

PIPELINE_ID = "default"
STAGES = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)
CLOSED_STAGES = frozenset(stage for stage, _, _, closed in STAGES if closed)
ALWAYS = {
    "deals": ("createdate", "hs_lastmodifieddate", "hs_object_id"),
    "tasks": ("hs_createdate", "hs_lastmodifieddate", "hs_object_id"),
}
DEFAULTS = {
    "deals": ("dealname", "amount", "closedate", "pipeline", "dealstage", *ALWAYS["deals"]),
    "tasks": ALWAYS["tasks"],
}
MODIFIED = "hs_lastmodifieddate"
CREATED = {"deals": "createdate", "tasks": "hs_createdate"}


def _system(name: str, label: str, kind: str, group: str) -> PropertyDef:
    return PropertyDef(name, label, kind, group_name=group, hubspot_defined=True, read_only=True)


def _builtin(
    group: str,
    name: str,
    label: str,
    kind: str,
    field_type: str = "",
    options: tuple[tuple[str, str], ...] = (),
) -> PropertyDef:
    return PropertyDef(name, label, kind, field_type, group, options=options, hubspot_defined=True)


def _bant_group() -> PropertyGroup:
    return PropertyGroup("bant_sync", "BANT Sync")


def _owner_options(owner_ids: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((owner, owner) for owner in owner_ids)


def deal_registry(bare: bool, owner_ids: tuple[str, ...]) -> PropertyRegistry:
    group = "dealinformation"
    registry = PropertyRegistry(groups={group: PropertyGroup(group, "Deal information", 0)})
    stages = tuple((stage, label) for stage, label, _, _ in STAGES)
    registry.add(
        _system("hs_object_id", "Record ID", "number", group),
        _system("createdate", "Create Date", "datetime", group),
        _system(MODIFIED, "Last Modified Date", "datetime", group),
        _system("hs_is_closed", "Is Deal Closed?", "bool", group),
        _system("hs_is_closed_won", "Is Closed Won", "bool", group),
        _system("hs_updated_by_user_id", "Updated by user ID", "number", group),
        _builtin(group, "dealname", "Deal Name", "string"),
        _builtin(group, "dealstage", "Deal Stage", "enumeration", "radio", stages),
        _builtin(group, "pipeline", "Pipeline", "enumeration", "select", ((PIPELINE_ID, "Sales Pipeline"),)),
        _builtin(group, "dealtype", "Deal Type", "enumeration", "radio", DEAL_TYPES),
        _builtin(group, "amount", "Amount", "number"),
        _builtin(group, "closedate", "Close Date", "datetime"),
        _builtin(group, "hubspot_owner_id", "Deal owner", "enumeration", "select", _owner_options(owner_ids)),
        _builtin(group, "description", "Deal Description", "string", "textarea"),
        PropertyDef("bant_budget", "BANT Budget", "string", group_name=group),
        PropertyDef("bant_authority", "BANT Authority", "string", group_name=group),
        PropertyDef("bant_need", "BANT Need", "string", "textarea", group_name=group),
        PropertyDef("bant_timing", "BANT Timing", "string", group_name=group),
    )
    if not bare:
        registry.groups["bant_sync"] = _bant_group()
        registry.add(
            PropertyDef(
                "bant_status",
                "BANT Status",
                "enumeration",
                "select",
                "bant_sync",
                options=option_list(BANT_STATUSES),
            ),
            PropertyDef("bant_missing", "BANT Missing", "string", group_name="bant_sync"),
            PropertyDef("bant_score", "BANT Score", "number", group_name="bant_sync"),
            PropertyDef("bant_checked_at", "BANT Checked At", "datetime", group_name="bant_sync"),
            PropertyDef("bant_flagged_since", "BANT Flagged Since", "date", group_name="bant_sync"),
            PropertyDef("bant_reasons", "BANT Reasons", "string", "textarea", group_name="bant_sync"),
            PropertyDef("bant_snooze_until", "BANT Snooze Until", "date", group_name="bant_sync"),
            PropertyDef("bant_snooze_reason", "BANT Snooze Reason", "string", group_name="bant_sync"),
        )
    return registry


def task_registry(bare: bool, owner_ids: tuple[str, ...]) -> PropertyRegistry:
    group = "taskinformation"
    registry = PropertyRegistry(groups={group: PropertyGroup(group, "Task information", 0)})
    registry.add(
        _system("hs_object_id", "Record ID", "number", group),
        _system("hs_createdate", "Create Date", "datetime", group),
        _system(MODIFIED, "Last Modified Date", "datetime", group),
        _builtin(group, "hs_task_subject", "Task Title", "string"),
        _builtin(group, "hs_task_body", "Task Notes", "string", "textarea"),
        _builtin(group, "hs_timestamp", "Due date", "datetime"),
        _builtin(group, "hs_task_status", "Task Status", "enumeration", "select", option_list(TASK_STATUSES)),
        _builtin(
            group, "hs_task_priority", "Priority", "enumeration", "select", option_list(TASK_PRIORITIES)
        ),
        _builtin(
            group,
            "hs_task_type",
            "Task Type",
            "enumeration",
            "select",
            option_list(("TODO", "CALL", "EMAIL")),
        ),
        _builtin(
            group, "hubspot_owner_id", "Assigned to", "enumeration", "select", _owner_options(owner_ids)
        ),
    )
    if not bare:
        registry.groups["bant_sync"] = _bant_group()
        registry.add(
            PropertyDef(
                "bant_sync_key", "BANT Sync Key", "string", group_name="bant_sync", has_unique_value=True
            )
        )
    return registry


def pipelines(created_at: str) -> dict[str, object]:
    stages = [
        {
            "id": stage,
            "label": label,
            "displayOrder": order,
            "metadata": {"isClosed": str(closed).lower(), "probability": probability},
            "createdAt": created_at,
            "updatedAt": created_at,
            "archived": False,
            "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT",
        }
        for order, (stage, label, probability, closed) in enumerate(STAGES)
    ]
    pipeline = {
        "id": PIPELINE_ID,
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": stages,
        "createdAt": created_at,
        "updatedAt": created_at,
        "archived": False,
    }
    return {"results": [pipeline]}
