"""The OpportunityChangeEvent log behind the Pub/Sub endpoint: origins, bitmaps, retention, the cap, memory,
and its life across a sandbox reset."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, date, datetime

import pytest

from sandbox import Sandbox
from sandbox.clock import SandboxClock
from sandbox.salesforce.cdc import ChangeLog, build_schema, change_context, rest_origin
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.schema import opportunity_schema
from sandbox.salesforce.state import SalesforceState
from tests.sandbox.conftest import Factory

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "origin"),
    [
        (None, "com/salesforce/api/rest/62.0"),
        ("client=bant-sync", "com/salesforce/api/rest/62.0;client=bant-sync"),
        ("defaultNamespace=acme, client=etl", "com/salesforce/api/rest/62.0;client=etl"),
        ("client=", "com/salesforce/api/rest/62.0"),
    ],
)
def test_the_rest_origin_names_the_client_of_sforce_call_options(header: str | None, origin: str) -> None:
    assert rest_origin("62.0", header) == origin


def test_bitmaps_set_bit_i_for_the_schemas_field_i_least_significant_first() -> None:
    """As ChangeEventHeaderUtility.py decodes them: hex, reversed bit string, index into the fields."""
    schema = build_schema(opportunity_schema(bare=False))
    names = ("Name", "LastModifiedDate", "BANT_Budget__c")
    bitmap = schema.bitmap(names)
    assert (
        len(bitmap) == 1 and bitmap[0].startswith("0x") and bitmap[0] == bitmap[0].upper().replace("0X", "0x")
    )
    bits = bin(int(bitmap[0][2:], 16))[2:][::-1]
    assert [schema.names[i] for i, bit in enumerate(bits) if bit == "1"] == list(
        sorted(names, key=schema.names.index)
    )
    assert len(bitmap[0][2:]) % 2 == 0
    assert schema.fields_of(bitmap) == sorted(names, key=schema.names.index)
    assert schema.bitmap(()) == []


def test_the_schema_id_is_stable_and_follows_the_fields() -> None:
    one, two = build_schema(opportunity_schema(False)), build_schema(opportunity_schema(False))
    assert one.schema_id == two.schema_id and len(one.schema_id) == 22
    assert build_schema(opportunity_schema(bare=True)).schema_id != one.schema_id


def _org(clock: SandboxClock, log: ChangeLog, deals: int) -> tuple[SalesforceState, list[str]]:
    state = SalesforceState(clock)
    owner = make_id("005", 1)
    state.default_owner_id = owner
    state.insert_seed(
        "User", [{"Id": owner, "Name": "API", "Username": "api", "Email": "a@x", "IsActive": True}]
    )
    schema = state.schemas["Opportunity"]
    fields = {"StageName": "Prospecting", "CloseDate": date(2026, 4, 1), "OwnerId": owner}
    ids = [state.commit_create(schema, {"Name": f"deal {i}", **fields}) for i in range(deals)]
    state.publish_changes(log)
    return state, ids


def test_an_update_event_costs_a_few_hundred_bytes() -> None:
    """A 100,000-deal run writes 100,000 opportunities: the log must stay a fraction of the org's size."""
    clock = SandboxClock(START)
    clock.freeze()
    log = ChangeLog(clock)
    state, ids = _org(clock, log, 2_000)
    schema, now = state.schemas["Opportunity"], clock.now()
    log.current_schema()
    changes = {
        "BANT_Status__c": "qualified",
        "BANT_Missing__c": "budget",
        "BANT_Score__c": 3.0,
        "BANT_Checked_At__c": now,
        "BANT_Reasons__c": "Budget missing",
    }
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with change_context("com/salesforce/api/rest/62.0;client=bant-sync"):
            for rid in ids:
                state.commit_update(schema, rid, dict(changes), now)
        without = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(log.events()) == len(ids)
    off_clock = SandboxClock(START)
    off_clock.freeze()
    off = ChangeLog(off_clock, enabled=False)
    off_state, off_ids = _org(off_clock, off, 2_000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with change_context("x"):
            for rid in off_ids:
                off_state.commit_update(off_state.schemas["Opportunity"], rid, dict(changes), now)
        baseline = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    per_event = (without - baseline) / len(ids)
    assert per_event < 400, f"{per_event:.0f} bytes an event"
    assert off.events() == []


def test_events_older_than_72_hours_are_pruned_and_the_cap_drops_the_oldest() -> None:
    clock = SandboxClock(START)
    clock.freeze()
    log = ChangeLog(clock, cap=3)
    state, ids = _org(clock, log, 1)
    schema = state.schemas["Opportunity"]
    for i in range(4):
        state.commit_update(schema, ids[0], {"BANT_Need__c": f"n{i}"})
    assert [e.replay for e in log.events()] == [2, 3, 4]
    assert not log.valid_position(1) and log.valid_position(2)
    clock.advance(72 * 3600 - 1)
    assert len(log.events()) == 3
    clock.advance(2)
    assert log.events() == [] and not log.valid_position(4)
    assert log.earliest_position() == 4


def test_the_log_outlives_a_reset_and_keeps_its_replay_ids(make_sandbox: Factory) -> None:
    sb: Sandbox = make_sandbox(deals=3)
    deal = sorted(sb.people("salesforce").deals())[0]
    sb.salesforce.update("Opportunity", deal, {"BANT_Budget__c": "yes"})
    replay = sb.change_events.events()[-1].replay
    sb.reset()
    assert [e.replay for e in sb.change_events.events()] == [replay]
    sb.salesforce.update("Opportunity", deal, {"BANT_Budget__c": "again"})
    assert sb.change_events.events()[-1].replay == replay + 1
    assert sb.change_events.current_schema().schema_id == build_schema(opportunity_schema(False)).schema_id


def test_change_events_can_be_turned_off(make_sandbox: Factory) -> None:
    sb: Sandbox = make_sandbox(deals=2, salesforce_change_events=False)
    deal = sorted(sb.people("salesforce").deals())[0]
    sb.salesforce.update("Opportunity", deal, {"BANT_Budget__c": "yes"})
    assert sb.change_events.events() == []
