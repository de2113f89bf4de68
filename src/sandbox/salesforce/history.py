"""Opportunity history as Salesforce keeps it: `OpportunityFieldHistory`, `OpportunityHistory`, and the
`FieldDefinition` rows that say which fields are tracked.

- `OpportunityFieldHistory` (Object Reference, "StandardObjectNameHistory"): one row per change of a
  tracked field (Setup > Object Manager > Opportunity > Fields & Relationships > Set History Tracking),
  with `OldValue`/`NewValue` (anyType: the values in the field's own JSON form), and one row with
  `Field = 'created'` (no values) when the record is created while history tracking is on for the object.
  Untracked fields leave no row.
- `OpportunityHistory` (Object Reference, "OpportunityHistory"): the stage history, tracked whatever the
  field settings: a row at creation and one on every change of StageName, Amount, CloseDate or
  Probability, holding the values after the change.
- `FieldDefinition` (Object Reference, "FieldDefinition"): a metadata view, one row per field of an object;
  queries must filter on `EntityDefinitionId` (or `DurableId`). Its rows are built from the live schema and
  the tracked set when a query runs, never stored.

All three are read-only through the API (describe: not createable, updateable or deletable; a write is
refused with INVALID_TYPE_FOR_OPERATION). The seed keeps history only for deals that carry changes (closed
ones): an open seeded deal has neither its `created` row nor its first `OpportunityHistory` row (a
documented deviation: 100,000 open deals would otherwise hold 200,000 rows that say nothing).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from sandbox.salesforce.schema import STAGE_PROBABILITY, FieldDef, ObjectSchema

FIELD_HISTORY = "OpportunityFieldHistory"
STAGE_HISTORY = "OpportunityHistory"
FIELD_DEFINITION = "FieldDefinition"
READ_ONLY = frozenset({FIELD_HISTORY, STAGE_HISTORY, FIELD_DEFINITION})
"""Objects the API never writes: their rows come from Opportunity writes (or are metadata)."""

DEFAULT_TRACKED = frozenset(
    {"StageName", "BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timing__c"}
)
"""Opportunity fields whose history the sandbox org tracks from the start (an admin chooses up to 20)."""

STAGE_FIELDS = ("StageName", "Amount", "CloseDate", "Probability")
"""A change of any of these adds an OpportunityHistory row."""

STORED = frozenset({FIELD_HISTORY, STAGE_HISTORY})
"""Objects whose rows live in the state's `HistoryStore` (compact, by opportunity), not in its tables;
queries reach them by OpportunityId as through an index (Salesforce indexes every lookup field)."""

_DATA_TYPES = {
    "string": "Text",
    "textarea": "TextArea",
    "picklist": "DynamicEnum",
    "combobox": "DynamicEnum",
    "currency": "Currency",
    "double": "Double",
    "percent": "Percent",
    "int": "Double",
    "date": "DateOnly",
    "datetime": "DateTime",
    "boolean": "Boolean",
    "reference": "EntityId",
    "email": "Email",
    "phone": "Phone",
    "url": "Url",
}
_DEFINITION_TYPES = {
    "id": "Lookup()",
    "reference": "Lookup()",
    "string": "Text",
    "textarea": "Long Text Area",
    "picklist": "Picklist",
    "combobox": "Picklist",
    "currency": "Currency",
    "double": "Number",
    "percent": "Percent",
    "int": "Number",
    "date": "Date",
    "datetime": "Date/Time",
    "boolean": "Checkbox",
}
_FORECAST = {"Closed Won": "Closed", "Closed Lost": "Omitted"}

_RO = {"createable": False, "updateable": False}


def _stamp(name: str, label: str) -> FieldDef:
    return FieldDef(name, label, "datetime", nillable=False, **_RO)  # type: ignore[arg-type]


def _common(label: str) -> list[FieldDef]:
    return [
        FieldDef("Id", f"{label} ID", "id", length=18, nillable=False, **_RO),  # type: ignore[arg-type]
        FieldDef(
            "OpportunityId",
            "Opportunity ID",
            "reference",
            length=18,
            nillable=False,
            reference_to=("Opportunity",),
            **_RO,  # type: ignore[arg-type]
        ),
    ]


def _tail() -> list[FieldDef]:
    return [
        _stamp("CreatedDate", "Created Date"),
        FieldDef(
            "CreatedById",
            "Created By ID",
            "reference",
            length=18,
            nillable=False,
            reference_to=("User",),
            **_RO,  # type: ignore[arg-type]
        ),
        FieldDef("IsDeleted", "Deleted", "boolean", nillable=False, **_RO),  # type: ignore[arg-type]
    ]


def field_history_schema() -> ObjectSchema:
    fields = [
        *_common("Opportunity Field History"),
        FieldDef("Field", "Changed Field", "picklist", length=255, nillable=False, **_RO),  # type: ignore[arg-type]
        FieldDef("DataType", "Data Type", "picklist", length=40, **_RO),  # type: ignore[arg-type]
        FieldDef("OldValue", "Old Value", "anyType", length=255, **_RO),  # type: ignore[arg-type]
        FieldDef("NewValue", "New Value", "anyType", length=255, **_RO),  # type: ignore[arg-type]
        *_tail(),
    ]
    return ObjectSchema(FIELD_HISTORY, "Opportunity Field History", {f.name: f for f in fields})


def stage_history_schema() -> ObjectSchema:
    fields = [
        *_common("Opportunity History"),
        FieldDef("StageName", "Stage", "picklist", length=255, nillable=False, **_RO),  # type: ignore[arg-type]
        FieldDef("Amount", "Amount", "currency", precision=18, scale=2, **_RO),  # type: ignore[arg-type]
        FieldDef("CloseDate", "Close Date", "date", **_RO),  # type: ignore[arg-type]
        FieldDef("Probability", "Probability (%)", "percent", precision=3, **_RO),  # type: ignore[arg-type]
        FieldDef("ExpectedRevenue", "Expected Revenue", "currency", precision=18, scale=2, **_RO),  # type: ignore[arg-type]
        FieldDef("ForecastCategory", "Forecast Category", "picklist", length=40, **_RO),  # type: ignore[arg-type]
        *_tail(),
        _stamp("SystemModstamp", "System Modstamp"),
    ]
    return ObjectSchema(STAGE_HISTORY, "Opportunity History", {f.name: f for f in fields})


def field_definition_schema() -> ObjectSchema:
    text = {"type": "string", "length": 255, **_RO}
    fields = [
        FieldDef("Id", "Field Definition ID", "id", length=18, **_RO),  # type: ignore[arg-type]
        FieldDef("DurableId", "Durable ID", **text),  # type: ignore[arg-type]
        FieldDef("QualifiedApiName", "Qualified API Name", **text),  # type: ignore[arg-type]
        FieldDef("DeveloperName", "Developer Name", **text),  # type: ignore[arg-type]
        FieldDef("Label", "Label", **text),  # type: ignore[arg-type]
        FieldDef("DataType", "Data Type", **text),  # type: ignore[arg-type]
        FieldDef(
            "EntityDefinitionId",
            "Entity Definition ID",
            "reference",
            length=18,
            reference_to=("EntityDefinition",),
            **_RO,  # type: ignore[arg-type]
        ),
        FieldDef("IsFieldHistoryTracked", "Field History Tracked", "boolean", nillable=False, **_RO),  # type: ignore[arg-type]
    ]
    return ObjectSchema(FIELD_DEFINITION, "Field Definition", {f.name: f for f in fields})


def data_type(spec: FieldDef | None) -> str:
    """The `DataType` a field history row names for a change of `spec`."""
    return _DATA_TYPES.get(spec.type, "Text") if spec is not None else "Text"


def forecast_category(stage: object) -> str:
    if isinstance(stage, str) and stage in _FORECAST:
        return _FORECAST[stage]
    probability = STAGE_PROBABILITY.get(stage, 0) if isinstance(stage, str) else 0
    return "Commit" if probability >= 90 else "BestCase" if probability >= 70 else "Pipeline"


def field_row(
    rid: str, opportunity: str, field: str, spec: FieldDef | None, old: object, new: object, at: datetime
) -> dict[str, object]:
    """One OpportunityFieldHistory row (`field` 'created' for the creation row, with no values)."""
    return {
        "Id": rid,
        "OpportunityId": opportunity,
        "Field": field,
        "DataType": data_type(spec),
        "OldValue": old,
        "NewValue": new,
        "CreatedDate": at,
        "CreatedById": None,
        "IsDeleted": False,
    }


def stage_row(rid: str, rec: Mapping[str, object], at: datetime) -> dict[str, object]:
    """One OpportunityHistory row: the opportunity's stage fields as they are after the change."""
    amount, probability = rec.get("Amount"), rec.get("Probability")
    expected = (
        round(float(amount) * float(probability) / 100, 2)
        if isinstance(amount, int | float) and isinstance(probability, int | float)
        else None
    )
    return {
        "Id": rid,
        "OpportunityId": rec["Id"],
        "StageName": rec.get("StageName"),
        "Amount": amount,
        "CloseDate": rec.get("CloseDate"),
        "Probability": probability,
        "ExpectedRevenue": expected,
        "ForecastCategory": forecast_category(rec.get("StageName")),
        "CreatedDate": at,
        "CreatedById": None,
        "SystemModstamp": at,
        "IsDeleted": False,
    }


def definition_rows(
    schemas: Iterable[ObjectSchema], tracked: Callable[[str, str], bool]
) -> list[dict[str, object]]:
    """FieldDefinition rows of every field of `schemas`, as the org's schema stands now."""
    rows: list[dict[str, object]] = []
    for schema in schemas:
        for spec in schema.fields.values():
            rows.append(
                {
                    "Id": None,
                    "DurableId": f"{schema.name}.{spec.name}",
                    "QualifiedApiName": spec.name,
                    "DeveloperName": spec.name.removesuffix("__c"),
                    "Label": spec.label,
                    "DataType": _DEFINITION_TYPES.get(spec.type, spec.type),
                    "EntityDefinitionId": schema.name,
                    "IsFieldHistoryTracked": tracked(schema.name, spec.name),
                }
            )
    return rows
