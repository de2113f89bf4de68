"""Salesforce object metadata: the fields of Opportunity, Task and User as describe reports them."""

from __future__ import annotations

from dataclasses import dataclass, field

from sandbox.bant_fields import BANT_STATUSES
from sandbox.salesforce.ids import KEY_PREFIXES

OPEN_STAGES = (
    ("Prospecting", 10),
    ("Qualification", 10),
    ("Needs Analysis", 20),
    ("Value Proposition", 50),
    ("Id. Decision Makers", 60),
    ("Perception Analysis", 70),
    ("Proposal/Price Quote", 75),
    ("Negotiation/Review", 90),
)
CLOSED_STAGES = (("Closed Won", 100), ("Closed Lost", 0))
STAGE_PROBABILITY = dict(OPEN_STAGES + CLOSED_STAGES)
OPPORTUNITY_TYPES = ("New Business", "Existing Business", "POC")
TASK_STATUSES = ("Not Started", "In Progress", "Completed")
TASK_PRIORITIES = ("High", "Normal", "Low")
BANT_INPUTS = ("BANT_Budget__c", "BANT_Authority__c", "BANT_Need__c", "BANT_Timing__c")
BANT_OUTPUTS = (
    "BANT_Status__c",
    "BANT_Missing__c",
    "BANT_Score__c",
    "BANT_Checked_At__c",
    "BANT_Flagged_Since__c",
    "BANT_Reasons__c",
)
BANT_SNOOZE = ("BANT_Snooze_Until__c", "BANT_Snooze_Reason__c")
TASK_KEY = "BANT_Sync_Key__c"

_SOAP = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "int": "xsd:int",
    "anyType": "xsd:anyType",
}


@dataclass(frozen=True)
class FieldDef:
    name: str
    label: str
    type: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    reference_to: tuple[str, ...] = ()
    default: object = None
    precision: int = 0
    scale: int = 0
    compound_field_name: str | None = None
    """The compound field (an address, a person's name) this field is a component of."""

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    @property
    def soql_type(self) -> str:
        """The type the SOQL engine compares values as."""
        return "string" if self.type in {"email", "phone", "url", "combobox"} else self.type

    @property
    def required_on_create(self) -> bool:
        return not self.nillable and self.createable and self.default is None

    def describe(self) -> dict[str, object]:
        """The field's entry in an sObject describe: every key a real describe (API v59.0-v62.0) sends on
        every field, in the API's alphabetical order, null where the feature is not used."""
        text = self.type in {"string", "textarea", "picklist", "email", "phone", "url", "combobox"}
        key = self.type in {"id", "reference"}
        polymorphic = len(self.reference_to) > 1
        return {
            "aggregatable": self.type != "textarea",
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": self.length * 3 if text else (self.length if key else 0),
            "calculated": False,
            "calculatedFormula": None,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": self.compound_field_name,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if isinstance(self.default, str | bool) else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.default is not None or self.type == "boolean" or self.name == "OwnerId",
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 9 if self.type == "int" else 0,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": "plaintextarea" if self.type == "textarea" else None,
            "filterable": self.type not in {"textarea", "anyType"},
            "filteredLookupInfo": None,
            "formulaTreatNullNumberAsZero": False,
            "groupable": self.type
            not in {"textarea", "double", "currency", "percent", "datetime", "anyType"},
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": self.name == "Id" or self.external_id,
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length if text or key else 0,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name == "Name",
            "namePointing": polymorphic,
            "nillable": self.nillable,
            "permissionable": self.nillable and (self.createable or self.updateable),
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "polymorphicForeignKey": polymorphic,
            "precision": self.precision,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.name[:-2]
            if self.type == "reference" and self.name.endswith("Id")
            else None,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": bool(self.picklist),
            "scale": self.scale,
            "searchPrefilterable": self.type == "reference",
            "soapType": _SOAP.get(self.type, "xsd:string"),
            "sortable": self.type != "textarea",
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass
class ObjectSchema:
    name: str
    label: str
    fields: dict[str, FieldDef] = field(default_factory=dict)

    @property
    def key_prefix(self) -> str:
        """The 3-character id prefix ('' for rows without ids of their own: FieldDefinition)."""
        return KEY_PREFIXES.get(self.name, "")

    def lookup(self, name: str) -> FieldDef | None:
        """Field names compare case-insensitively, as in the API."""
        found = self.fields.get(name)
        if found is not None:
            return found
        lowered = name.lower()
        return next((f for key, f in self.fields.items() if key.lower() == lowered), None)

    def soql_fields(self) -> dict[str, str]:
        return {name: f.soql_type for name, f in self.fields.items()}


def _system_fields() -> list[FieldDef]:
    stamp = {"type": "datetime", "nillable": False, "createable": False, "updateable": False}
    return [
        FieldDef("CreatedDate", "Created Date", **stamp),  # type: ignore[arg-type]
        FieldDef("LastModifiedDate", "Last Modified Date", **stamp),  # type: ignore[arg-type]
        FieldDef("SystemModstamp", "System Modstamp", **stamp),  # type: ignore[arg-type]
        FieldDef(
            "LastModifiedById",
            "Last Modified By ID",
            "reference",
            length=18,
            nillable=False,
            createable=False,
            updateable=False,
            reference_to=("User",),
        ),
    ]


def _id_field(label: str) -> FieldDef:
    return FieldDef("Id", f"{label} ID", "id", length=18, nillable=False, createable=False, updateable=False)


def opportunity_schema(bare: bool) -> ObjectSchema:
    derived = {"type": "boolean", "nillable": False, "createable": False, "updateable": False}
    fields = [
        _id_field("Opportunity"),
        FieldDef("Name", "Name", "string", length=120, nillable=False),
        FieldDef("OwnerId", "Owner ID", "reference", length=18, nillable=False, reference_to=("User",)),
        FieldDef(
            "StageName", "Stage", "picklist", length=255, nillable=False, picklist=tuple(STAGE_PROBABILITY)
        ),
        FieldDef("Type", "Opportunity Type", "picklist", length=255, picklist=OPPORTUNITY_TYPES),
        FieldDef("Amount", "Amount", "currency", precision=18, scale=2),
        FieldDef("CloseDate", "Close Date", "date", nillable=False),
        FieldDef("IsClosed", "Closed", **derived),  # type: ignore[arg-type]
        FieldDef("IsWon", "Won", **derived),  # type: ignore[arg-type]
        FieldDef("Probability", "Probability (%)", "percent", precision=3, scale=0),
        *_system_fields(),
        FieldDef("BANT_Budget__c", "BANT Budget", "string", length=255),
        FieldDef("BANT_Authority__c", "BANT Authority", "string", length=255),
        FieldDef("BANT_Need__c", "BANT Need", "textarea", length=32768),
        FieldDef("BANT_Timing__c", "BANT Timing", "string", length=255),
    ]
    if not bare:
        fields += [
            FieldDef("BANT_Status__c", "BANT Status", "picklist", length=255, picklist=BANT_STATUSES),
            FieldDef("BANT_Missing__c", "BANT Missing", "string", length=255),
            FieldDef("BANT_Score__c", "BANT Score", "double", precision=3, scale=0),
            FieldDef("BANT_Checked_At__c", "BANT Checked At", "datetime"),
            FieldDef("BANT_Flagged_Since__c", "BANT Flagged Since", "date"),
            FieldDef("BANT_Reasons__c", "BANT Reasons", "textarea", length=32768),
            FieldDef("BANT_Snooze_Until__c", "BANT Snooze Until", "date"),
            FieldDef("BANT_Snooze_Reason__c", "BANT Snooze Reason", "string", length=255),
        ]
    return ObjectSchema("Opportunity", "Opportunity", {f.name: f for f in fields})


def task_schema(bare: bool) -> ObjectSchema:
    fields = [
        _id_field("Activity"),
        FieldDef("WhatId", "Related To ID", "reference", length=18, reference_to=("Opportunity",)),
        FieldDef("OwnerId", "Assigned To ID", "reference", length=18, nillable=False, reference_to=("User",)),
        FieldDef("Subject", "Subject", "combobox", length=255),
        FieldDef("Description", "Comments", "textarea", length=32000),
        FieldDef("ActivityDate", "Due Date Only", "date"),
        FieldDef(
            "Status", "Status", "picklist", 255, nillable=False, picklist=TASK_STATUSES, default="Not Started"
        ),
        FieldDef(
            "Priority",
            "Priority",
            "picklist",
            255,
            nillable=False,
            picklist=TASK_PRIORITIES,
            default="Normal",
        ),
        FieldDef("IsClosed", "Closed", "boolean", nillable=False, createable=False, updateable=False),
        *_system_fields(),
    ]
    if not bare:
        fields.append(
            FieldDef(TASK_KEY, "BANT Sync Key", "string", length=255, external_id=True, unique=True)
        )
    return ObjectSchema("Task", "Task", {f.name: f for f in fields})


def user_schema() -> ObjectSchema:
    fields = [
        _id_field("User"),
        FieldDef("Name", "Full Name", "string", length=121, createable=False, updateable=False),
        FieldDef("Username", "Username", "string", length=80, nillable=False),
        FieldDef("Email", "Email", "email", length=128, nillable=False),
        FieldDef("IsActive", "Active", "boolean", nillable=False, default=True),
        FieldDef("ManagerId", "Manager ID", "reference", length=18, reference_to=("User",)),
        *_system_fields(),
    ]
    return ObjectSchema("User", "User", {f.name: f for f in fields})


def organization_schema() -> ObjectSchema:
    """The org's one Organization record (read-only): queried for the org id."""
    ro = {"createable": False, "updateable": False}
    fields = [
        _id_field("Organization"),
        FieldDef("Name", "Name", "string", length=80, **ro),  # type: ignore[arg-type]
        FieldDef("OrganizationType", "Edition", "string", length=40, **ro),  # type: ignore[arg-type]
        FieldDef("IsSandbox", "Is Sandbox", "boolean", nillable=False, **ro),  # type: ignore[arg-type]
        *_system_fields(),
    ]
    return ObjectSchema("Organization", "Organization", {f.name: f for f in fields})
