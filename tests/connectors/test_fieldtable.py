"""The declarative CRM mapping: each CRM's field table read and written by the generic functions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from structlog.testing import capture_logs

from connectors.errors import ConfigurationError
from connectors.fieldtable import (
    FieldTable,
    TaskTable,
    build_task_table,
    read_deal,
    read_task,
    write_status,
    write_task,
)
from connectors.hubspot import mapping as hs
from connectors.hubspot import tasks as hs_tasks
from connectors.hubspot.settings import DEFAULT_PROPERTIES, HubSpotSettings
from connectors.model import CrmTask, StatusWrite, TaskAction, TaskField, TaskWrite
from connectors.salesforce import tasks as sf_tasks
from connectors.salesforce.pull import OpportunityReader
from connectors.salesforce.pull import deal_table as sf_table
from connectors.salesforce.settings import DEFAULT_FIELDS, SalesforceSettings
from rules.model import Deal, Status
from tests.connectors.sf_support import TYPES, opp_record
from tests.log_sink import Sink

URL = "https://example.my.salesforce.com"
MODIFIED = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
CHECKED = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC)

HUBSPOT_VALUES: dict[str, str | None] = {
    "name": "Acme renewal",
    "owner_id": "005000000000001",
    "stage": "Proposal",
    "deal_type": "New Business",
    "amount": "12000.5",
    "close_date": "2026-04-30",
    "budget": "TBD",
    "authority": "",
    "need": None,
    "timing": "Q2",
    "status": "needs_qualification",
    "missing": "budget; need",
    "score": "50",
    "checked_at": "2026-03-01T09:00:00.000Z",
    "flagged_since": "2026-02-20",
}
"""One canonical deal as HubSpot property strings, by canonical key."""

SALESFORCE_VALUES: dict[str, Any] = {
    **HUBSPOT_VALUES,
    "amount": 12000.5,
    "score": 50,
    "checked_at": "2026-03-01T09:00:00.000+0000",
}
"""The same deal as Salesforce JSON values, by canonical key."""

LIST = "budget;timing"


def hubspot_deal(values: dict[str, str | None], mapping: dict[str, str] = DEFAULT_PROPERTIES) -> Deal:
    """A Deal read from HubSpot property strings through HubSpot's table."""
    props: dict[str, str | None] = dict.fromkeys(mapping.values())
    props.update({mapping[key]: value for key, value in values.items()})
    props[mapping["modified_at"]] = "2026-03-01T10:00:00.000Z"
    return hs.to_deal("1", props, hs.deal_table(mapping))


def salesforce_deal(values: dict[str, Any], extra: dict[str, str] | None = None) -> Deal:
    """A Deal read from one Opportunity record through Salesforce's table."""
    names = {**DEFAULT_FIELDS, **(extra or {})}
    reader = OpportunityReader(DEFAULT_FIELDS, extra or {}, TYPES)
    return reader.deal(opp_record(1, **{names[key]: value for key, value in values.items()}))


def test_the_same_deal_reads_the_same_through_both_tables() -> None:
    """One canonical deal read through HubSpot's and Salesforce's tables is the same Deal (but its id)."""
    hubspot = hubspot_deal(HUBSPOT_VALUES)
    salesforce = salesforce_deal(SALESFORCE_VALUES)
    assert hubspot.modified_at == salesforce.modified_at == MODIFIED
    assert hubspot.amount == salesforce.amount == Decimal("12000.5")
    assert hubspot.close_date == salesforce.close_date == date(2026, 4, 30)
    assert hubspot.flags == salesforce.flags
    assert hubspot.flags.missing == ("budget", "need") and hubspot.flags.score == 50
    fields = ("name", "owner_id", "stage", "deal_type", "budget", "authority", "need", "timing")
    assert [getattr(hubspot, f) for f in fields] == [getattr(salesforce, f) for f in fields]
    assert hubspot.flagged_since == salesforce.flagged_since == date(2026, 2, 20)


def test_read_deal_leaves_unmapped_fields_empty() -> None:
    """A canonical field a table does not map reads as None (Salesforce maps no pipeline)."""
    assert sf_table(DEFAULT_FIELDS, {}).get("pipeline") is None
    assert salesforce_deal(SALESFORCE_VALUES).pipeline is None


@pytest.mark.parametrize(
    ("flagged_since", "hubspot_flagged", "salesforce_flagged", "missing", "hubspot_missing", "sf_missing"),
    [
        (
            date(2026, 2, 20),
            "2026-02-20",
            "2026-02-20",
            ("budget", "timing"),
            "budget;timing",
            "budget;timing",
        ),
        (None, "", None, (), "", None),
    ],
    ids=["flagged", "cleared"],
)
def test_a_status_write_encodes_the_same_values_on_both(
    flagged_since: date | None,
    hubspot_flagged: str,
    salesforce_flagged: str | None,
    missing: tuple[str, ...],
    hubspot_missing: str,
    sf_missing: str | None,
) -> None:
    """A StatusWrite encodes the same values on both CRMs: HubSpot strings ("" clears), Salesforce JSON."""
    reasons = "Budget: missing — What budget is set aside?" if missing else ""
    write = StatusWrite("1", Status.NEEDS_QUALIFICATION, missing, 50, CHECKED, flagged_since, reasons)
    hubspot = write_status(write, hs.deal_table(DEFAULT_PROPERTIES))
    salesforce = write_status(write, sf_table(DEFAULT_FIELDS, {}))
    assert hubspot == {
        "bant_status": "needs_qualification",
        "bant_missing": hubspot_missing,
        "bant_score": "50",
        "bant_checked_at": "2026-03-02T09:00:00.123Z",
        "bant_flagged_since": hubspot_flagged,
        "bant_reasons": reasons,
    }
    assert salesforce == {
        "BANT_Status__c": "needs_qualification",
        "BANT_Missing__c": sf_missing,
        "BANT_Score__c": 50,
        "BANT_Checked_At__c": "2026-03-02T09:00:00.123Z",
        "BANT_Flagged_Since__c": salesforce_flagged,
        "BANT_Reasons__c": reasons,
    }


@pytest.mark.parametrize(
    ("crm", "value"),
    [("hubspot", "Enterprise"), ("salesforce", "Enterprise")],
    ids=["hubspot", "salesforce"],
)
def test_custom_fields_come_through_extra(crm: str, value: str) -> None:
    """A custom name in the mapping is read as it comes into `Deal.extra`, on both CRMs."""
    if crm == "hubspot":
        deal = hubspot_deal({"segment": value}, {**DEFAULT_PROPERTIES, "segment": "customer_segment"})
    else:
        deal = salesforce_deal({"segment": value}, {"segment": "Segment__c"})
    assert deal.extra == {"segment": value}


def test_a_custom_field_named_like_a_canonical_one_stays_in_extra() -> None:
    """Salesforce's custom fields are custom whatever their name: they never replace a canonical field."""
    table: FieldTable = sf_table(DEFAULT_FIELDS, {"stage": "Region__c"})
    deal = read_deal({"Region__c": "EMEA", "StageName": "Proposal"}.get, table, "1", MODIFIED)
    assert deal.stage == "Proposal" and deal.extra == {"stage": "EMEA"}


def salesforce_settings(**values: Any) -> SalesforceSettings:
    """Salesforce settings that need no secrets beyond a token."""
    return SalesforceSettings(auth="token", instance_url=URL, **values)


@pytest.mark.parametrize(
    ("make", "old_key", "effective", "expected"),
    [
        (
            lambda: HubSpotSettings(properties={"budget": "my_budget", "segment": "customer_segment"}),
            "properties",
            lambda s: (s.props["budget"], s.props["segment"]),
            ("my_budget", "customer_segment"),
        ),
        (
            lambda: salesforce_settings(extra_fields={"segment": "Segment__c"}),
            "extra_fields",
            lambda s: (s.field_map["budget"], s.custom_fields["segment"]),
            ("BANT_Budget__c", "Segment__c"),
        ),
    ],
    ids=["hubspot-properties", "salesforce-extra_fields"],
)
def test_old_mapping_keys_still_load_with_a_deprecation_warning(
    make: Callable[[], Any],
    old_key: str,
    effective: Callable[[Any], tuple[str, str]],
    expected: tuple[str, str],
    sink: Sink,
) -> None:
    """The old custom-mapping keys still load, and a warning at load says to use `fields` instead."""
    settings = make()
    logs = sink.lines
    assert [(e["event"], e["setting"], e["use"]) for e in logs] == [("deprecated setting", old_key, "fields")]
    assert logs[0]["level"] == "warning"
    assert effective(settings) == expected


def test_one_fields_table_maps_canonical_and_custom_names_on_both_crms() -> None:
    """`fields` is accepted by both CRMs: canonical names remap, other names become custom fields."""
    fields = {"budget": "Budget", "segment": "Segment"}
    with capture_logs() as logs:
        hubspot = HubSpotSettings(fields=fields)
        salesforce = salesforce_settings(fields=fields)
    assert logs == [] and salesforce.problems() == []
    assert hubspot.props["budget"] == salesforce.field_map["budget"] == "Budget"
    assert hubspot.props["segment"] == salesforce.custom_fields["segment"] == "Segment"
    assert "segment" not in salesforce.field_map
    deal = hubspot_deal({"segment": "Enterprise"}, hubspot.props)
    assert deal.extra == {"segment": "Enterprise"}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"budgit": "x"}, "fields.budgit: unknown key (did you mean 'budget'?)"),
        ({"need": ""}, "fields.need: maps to an empty field name"),
    ],
    ids=["near-miss-of-a-canonical-key", "blank"],
)
def test_hubspot_fields_problems_are_salesforces(fields: dict[str, str], expected: str) -> None:
    """The two CRMs judge a `fields` table alike: a typo of a canonical key does not pass as a custom field
    on HubSpot either (it did: HubSpot read `budgit` into `extra` and no criterion saw it)."""
    with pytest.raises(ConfigurationError) as raised:
        HubSpotSettings(fields=fields)
    assert any(p.startswith(expected) for p in raised.value.problems), raised.value.problems


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"pipeline": "Pipeline__c"}, "fields.pipeline: not mapped on Salesforce"),
        ({"budget": " "}, "fields.budget: maps to an empty field name"),
        ({"budgit": "X"}, "fields.budgit: unknown key (did you mean 'budget'?)"),
    ],
    ids=["canonical-not-on-salesforce", "blank", "near-miss-of-a-canonical-key"],
)
def test_salesforce_fields_problems(fields: dict[str, str], expected: str) -> None:
    """A canonical key Salesforce does not map, a blank name or a typo of a canonical key is a problem."""
    problems = salesforce_settings(fields=fields).problems()
    assert any(p.startswith(expected) for p in problems), problems


TASK = TaskWrite(
    TaskAction.CREATE,
    "bs2-0123456789abcdef-1",
    "1",
    "005000000000001",
    "[bant-sync] Acme: confirm Budget",
    "Budget: confirm the approved budget.",
    date(2026, 3, 6),
    "Normal",
)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            sf_tasks.task_table("BANT_Sync_Key__c"),
            {
                "Subject": "[bant-sync] Acme: confirm Budget",
                "Description": "Budget: confirm the approved budget.",
                "Priority": "Normal",
                "ActivityDate": "2026-03-06",
                "OwnerId": "005000000000001",
                "BANT_Sync_Key__c": "bs2-0123456789abcdef-1",
                "Status": "Not Started",
            },
        ),
        (
            hs_tasks.task_table("bant_sync_key"),
            {
                "hs_task_subject": "[bant-sync] Acme: confirm Budget",
                "hs_task_body": "Budget: confirm the approved budget.",
                "hs_task_priority": "MEDIUM",
                "hs_timestamp": "2026-03-06T12:00:00.000Z",
                "hubspot_owner_id": "005000000000001",
                "bant_sync_key": "bs2-0123456789abcdef-1",
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": "TODO",
            },
        ),
    ],
    ids=["salesforce", "hubspot"],
)
def test_a_task_create_sets_every_field_open_through_each_crms_table(
    table: TaskTable, expected: dict[str, str]
) -> None:
    assert write_task(TASK, table) == expected


@pytest.mark.parametrize(
    "table", [sf_tasks.task_table("Key__c"), hs_tasks.task_table("key")], ids=["salesforce", "hubspot"]
)
def test_updates_write_only_the_named_fields_and_the_state_their_action_sets(table: TaskTable) -> None:
    """UPDATE writes `fields` only; REOPEN also opens; COMPLETE also completes; an empty owner is left out."""
    due = table.name(TaskField.DUE)
    status = table.states.field
    update = replace(TASK, action=TaskAction.UPDATE, task_id="T1", fields=frozenset({TaskField.DUE}))
    assert list(write_task(update, table)) == [due]
    reopen = replace(update, action=TaskAction.REOPEN)
    assert write_task(reopen, table)[status] == table.states.open
    complete = replace(TASK, action=TaskAction.COMPLETE, task_id="T1", fields=frozenset())
    assert write_task(complete, table) == {status: table.states.completed}
    ownerless = replace(
        TASK, action=TaskAction.UPDATE, task_id="T1", owner_id=None, fields=frozenset(TaskField)
    )
    assert table.name(TaskField.OWNER) not in write_task(ownerless, table)


def test_a_task_reads_the_same_through_both_tables() -> None:
    """The same task as Salesforce JSON and as HubSpot property strings gives one CrmTask."""
    sf_record = {
        "Key__c": "k1",
        "Subject": "s",
        "ActivityDate": "2026-03-06",
        "OwnerId": "7",
        "Priority": "High",
        "IsClosed": True,
    }
    hs_record = {
        "key": "k1",
        "hs_task_subject": "s",
        "hs_timestamp": "2026-03-06T12:00:00.000Z",
        "hubspot_owner_id": "7",
        "hs_task_priority": "High",
        "hs_task_status": "COMPLETED",
    }
    sf = read_task(sf_record.get, sf_tasks.task_table("Key__c"), "T1")
    hs_task = read_task(hs_record.get, hs_tasks.task_table("key"), "T1")
    assert sf == hs_task == CrmTask("T1", "k1", False, "s", date(2026, 3, 6), "7", "High")


def test_a_task_table_must_name_every_task_field() -> None:
    with pytest.raises(ValueError, match="names no field for key"):
        build_task_table(
            {f: f.value for f in TaskField if f is not TaskField.KEY}, hs.CODECS, hs_tasks.STATES
        )
