"""The field metadata shipped in config/salesforce matches what the connector reads and writes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from connectors.salesforce.settings import DEFAULT_FIELDS, OUTPUT_KEYS
from rules.model import Status

ROOT = Path(__file__).resolve().parents[2] / "config" / "salesforce" / "force-app" / "main" / "default"
NS = {"m": "http://soap.sforce.com/2006/04/metadata"}
CUSTOM = {key: name for key, name in DEFAULT_FIELDS.items() if name.endswith("__c")}


def field_xml(sobject: str, name: str) -> ET.Element:
    return ET.parse(ROOT / "objects" / sobject / "fields" / f"{name}.field-meta.xml").getroot()


@pytest.mark.parametrize("key", sorted(CUSTOM), ids=sorted(CUSTOM))
def test_every_default_custom_field_ships(key: str) -> None:
    """Each custom field of the default mapping has a field-meta.xml whose fullName is its API name."""
    root = field_xml("Opportunity", CUSTOM[key])
    assert root.findtext("m:fullName", namespaces=NS) == CUSTOM[key]


def test_status_picklist_carries_every_status_value() -> None:
    """BANT_Status__c is a restricted picklist with exactly the statuses the rules produce."""
    root = field_xml("Opportunity", "BANT_Status__c")
    values = [v.text for v in root.iterfind(".//m:value/m:fullName", NS)]
    assert values == [s.value for s in Status]
    assert root.findtext(".//m:restricted", namespaces=NS) == "true"


def test_task_key_is_an_external_unique_id_on_activity() -> None:
    """The task key is defined on Activity (Task custom fields live there) as a unique External ID."""
    root = field_xml("Activity", "BANT_Sync_Key__c")
    assert root.findtext("m:externalId", namespaces=NS) == "true"
    assert root.findtext("m:unique", namespaces=NS) == "true"


def test_permission_set_grants_edit_only_on_outputs() -> None:
    """The permission set reads every custom field and edits only bant-sync's outputs and the task key."""
    root = ET.parse(ROOT / "permissionsets" / "BANT_Sync.permissionset-meta.xml").getroot()
    grants = {
        fp.findtext("m:field", namespaces=NS): (
            fp.findtext("m:readable", namespaces=NS),
            fp.findtext("m:editable", namespaces=NS),
        )
        for fp in root.iterfind("m:fieldPermissions", NS)
    }
    outputs = {DEFAULT_FIELDS[k] for k in OUTPUT_KEYS}
    for name in CUSTOM.values():
        assert grants[f"Opportunity.{name}"] == ("true", "true" if name in outputs else "false")
    assert grants["Task.BANT_Sync_Key__c"] == ("true", "true")


def test_the_inputs_are_history_tracked_and_the_outputs_are_not() -> None:
    """The outcome report judges a closed deal by its BANT inputs when it started, which Salesforce keeps
    only for tracked fields: the inputs ship tracked. The outputs change on every run and would spend the
    org's 20 tracked fields per object on noise: they ship untracked."""
    outputs = {DEFAULT_FIELDS[k] for k in OUTPUT_KEYS}
    for name in CUSTOM.values():
        tracked = field_xml("Opportunity", name).findtext("m:trackHistory", namespaces=NS)
        assert tracked == ("false" if name in outputs else "true"), name
