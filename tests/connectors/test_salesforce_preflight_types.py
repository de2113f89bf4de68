"""Preflight refuses a mapped field of a type the connector cannot read or write as it must."""

from __future__ import annotations

from connectors.salesforce.preflight import check
from connectors.salesforce.settings import SalesforceSettings
from tests.connectors.sf_support import opportunity_describe, task_describe


def _with_type(name: str, kind: str) -> dict[str, object]:
    describe = opportunity_describe()
    for meta in describe["fields"]:
        if meta["name"] == name:
            meta["type"] = kind
    return describe


def test_the_shipped_types_pass() -> None:
    assert check(SalesforceSettings(), opportunity_describe(), task_describe()).ok


def test_a_snooze_date_held_in_a_text_field_is_refused_naming_the_setting() -> None:
    """Snooze-until in a text field would quarantine every snoozed deal: preflight names the field, the type
    it needs and the setting to change, before anything is written."""
    report = check(SalesforceSettings(), _with_type("BANT_Snooze_Until__c", "string"), task_describe())
    [problem] = report.problems
    assert (problem.field, problem.issue) == ("BANT_Snooze_Until__c", "is of type string, expected date")
    assert "map `snooze_until`" in problem.fix


def test_reasons_in_a_short_text_field_are_refused() -> None:
    report = check(SalesforceSettings(), _with_type("BANT_Reasons__c", "string"), task_describe())
    [problem] = report.problems
    assert problem.field == "BANT_Reasons__c"
    assert "is of type string, expected textarea" in problem.issue
    assert "map `reasons`" in problem.fix
