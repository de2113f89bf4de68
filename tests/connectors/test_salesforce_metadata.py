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


def _grants(permission_set: str) -> dict[str, tuple[str | None, str | None]]:
    root = ET.parse(ROOT / "permissionsets" / f"{permission_set}.permissionset-meta.xml").getroot()
    return {
        fp.findtext("m:field", namespaces=NS) or "": (
            fp.findtext("m:readable", namespaces=NS),
            fp.findtext("m:editable", namespaces=NS),
        )
        for fp in root.iterfind("m:fieldPermissions", NS)
    }


REP_EDITS = ("budget", "authority", "need", "timing", "snooze_until", "snooze_reason")


def test_rep_permission_set_reads_every_output_and_edits_only_the_inputs_and_snooze() -> None:
    """Reps read every field bant-sync writes (read-only) and read and edit the four inputs and the snooze."""
    grants = _grants("BANT_Sync_Rep")
    for key in OUTPUT_KEYS:
        assert grants[f"Opportunity.{DEFAULT_FIELDS[key]}"] == ("true", "false"), key
    for key in REP_EDITS:
        assert grants[f"Opportunity.{DEFAULT_FIELDS[key]}"] == ("true", "true"), key
    assert grants["Task.BANT_Sync_Key__c"] == ("true", "false")
    editable = {name for name, (_, edit) in grants.items() if edit == "true"}
    assert editable == {f"Opportunity.{DEFAULT_FIELDS[k]}" for k in REP_EDITS}
    assert set(grants) == {f"Opportunity.{name}" for name in CUSTOM.values()} | {"Task.BANT_Sync_Key__c"}


def test_rep_permission_set_grants_nothing_but_field_access() -> None:
    """It adds field access on top of the reps' profiles: no object, user, app or tab permissions."""
    root = ET.parse(ROOT / "permissionsets" / "BANT_Sync_Rep.permissionset-meta.xml").getroot()
    kinds = {child.tag.split("}")[1] for child in root}
    assert kinds == {"description", "fieldPermissions", "hasActivationRequired", "label"}


def test_integration_user_reads_the_snooze_and_writes_the_reasons() -> None:
    grants = _grants("BANT_Sync")
    assert grants["Opportunity.BANT_Snooze_Until__c"] == ("true", "false")
    assert grants["Opportunity.BANT_Snooze_Reason__c"] == ("true", "false")
    assert grants["Opportunity.BANT_Reasons__c"] == ("true", "true")


def test_snoozed_is_the_last_status_value() -> None:
    """`snoozed` is appended (existing picklist values keep their order in the org) and labelled Snoozed."""
    root = field_xml("Opportunity", "BANT_Status__c")
    values = list(root.iterfind(".//m:value", NS))
    assert values[-1].findtext("m:fullName", namespaces=NS) == "snoozed"
    assert values[-1].findtext("m:label", namespaces=NS) == "Snoozed"


def test_new_fields_have_their_contract_types() -> None:
    reasons = field_xml("Opportunity", "BANT_Reasons__c")
    assert reasons.findtext("m:type", namespaces=NS) == "LongTextArea"
    assert reasons.findtext("m:length", namespaces=NS) == "32768"
    assert reasons.findtext("m:visibleLines", namespaces=NS) == "6"
    assert "written by bant-sync" in (reasons.findtext("m:description", namespaces=NS) or "").lower()
    assert field_xml("Opportunity", "BANT_Snooze_Until__c").findtext("m:type", namespaces=NS) == "Date"
    snooze_reason = field_xml("Opportunity", "BANT_Snooze_Reason__c")
    assert snooze_reason.findtext("m:type", namespaces=NS) == "Text"
    assert snooze_reason.findtext("m:length", namespaces=NS) == "255"


def test_nothing_shipped_overwrites_the_customers_own_setup() -> None:
    """No profiles, page layouts, Paths, apps or object definitions (which would carry the object's default
    compact layout or action overrides): deploying adds, it never replaces what the customer configured."""
    shipped = {p.relative_to(ROOT).parts[0] for p in ROOT.iterdir()}
    assert shipped.isdisjoint({"profiles", "layouts", "pathAssistants", "applications", "objectTranslations"})
    assert not list((ROOT / "objects").glob("*/*.object-meta.xml"))
    assert not list(ROOT.rglob("*.profile-meta.xml"))
    assert not list(ROOT.rglob("*.layout-meta.xml"))
    assert not list(ROOT.rglob("*.pathAssistant-meta.xml"))
