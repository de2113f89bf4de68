"""The people API (`sb.people(crm)`): deals and bant-sync tasks as a person sees them, and the edits reps and
admins make in the CRM's UI, alike in both CRMs; tasks are created here through the CRMs' own APIs."""

from __future__ import annotations

from datetime import date

import pytest

from sandbox import People, Sandbox
from sandbox.people import GOOD_BANT
from tests.sandbox.clients import hs_client, sf_client

CRMS = ["salesforce", "hubspot"]


def _open_deal_ids(people: People, count: int) -> list[str]:
    return sorted(deal_id for deal_id, deal in people.deals().items() if deal["open"])[:count]


def _create_task(sb: Sandbox, crm: str, deal_id: str, key: str | None) -> str:
    """A task on the deal created through the CRM's API, with the sync key when `key` is given."""
    if crm == "salesforce":
        fields = {"Subject": "Qualify the deal", "WhatId": deal_id, "ActivityDate": "2026-03-09"}
        created = sf_client(sb).Task.create({**fields, **({"BANT_Sync_Key__c": key} if key else {})})
        return str(created["id"])
    props = {"hs_task_subject": "Qualify the deal", "hs_timestamp": "2026-03-09T17:00:00Z"}
    association = {
        "to": {"id": deal_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 216}],
    }
    body = {"properties": {**props, **({"bant_sync_key": key} if key else {})}, "associations": [association]}
    return str(hs_client(sb).crm.objects.tasks.basic_api.create(body).id)


def _stamp(sb: Sandbox, crm: str, obj: str, record_id: str) -> object:
    """The record's modification stamp as the CRM keeps it."""
    if crm == "salesforce":
        record = sb.salesforce.get(obj, record_id)
        assert record is not None
        return record["SystemModstamp"]
    found = sb.hubspot.deals() if obj == "Opportunity" else sb.hubspot.tasks()
    return next(o["updatedAt"] for o in found if o["id"] == record_id)


def test_an_unknown_crm_is_refused(sb: Sandbox) -> None:
    """sb.people names the CRMs it knows when given another."""
    with pytest.raises(ValueError, match="salesforce, hubspot"):
        sb.people("pipedrive")


def test_both_crms_show_the_same_story(sb: Sandbox) -> None:
    """Deals read alike in both CRMs: 133 open (85 POCs), names equal, no verdict before a sync, no tasks."""
    seen = {crm: sb.people(crm).deals() for crm in CRMS}
    for deals in seen.values():
        open_deals = [d for d in deals.values() if d["open"]]
        assert len(open_deals) == 133
        assert sum(d["poc"] for d in open_deals) == 85
        assert {d["status"] for d in deals.values()} == {None}
    names = [sorted(str(d["name"]) for d in deals.values()) for deals in seen.values()]
    assert names[0] == names[1]
    assert [sb.people(crm).bant_tasks() for crm in CRMS] == [[], []]


@pytest.mark.parametrize("crm", CRMS)
def test_deal_edits_take_neutral_names_and_bump_the_stamp(sb: Sandbox, crm: str) -> None:
    """set_deal_fields writes by neutral name (Salesforce spellings translated), None blanks, stamps move."""
    people = sb.people(crm)
    deal_id = _open_deal_ids(people, 1)[0]
    sb.clock.freeze()
    before = _stamp(sb, crm, "Opportunity", deal_id)
    sb.clock.advance(60)
    people.set_deal_fields(deal_id, {"budget": "TBC", "type": "POC", "need": None})
    assert people.deal_field(deal_id, "budget") == "TBC"
    assert not people.deal_field(deal_id, "need")
    assert people.deals()[deal_id]["poc"]
    assert _stamp(sb, crm, "Opportunity", deal_id) != before
    people.close_deal(deal_id, won=True)
    assert not people.deals()[deal_id]["open"]


@pytest.mark.parametrize("crm", CRMS)
def test_fix_bant_fills_in_every_criterion(sb: Sandbox, crm: str) -> None:
    """fix_bant writes a good value into each of budget, authority, need and timing."""
    people = sb.people(crm)
    deal_id = _open_deal_ids(people, 1)[0]
    people.fix_bant(deal_id)
    assert {name: str(people.deal_field(deal_id, name)) for name in GOOD_BANT} == dict(GOOD_BANT)


@pytest.mark.parametrize("crm", CRMS)
def test_task_actions_are_what_a_rep_does(sb: Sandbox, crm: str) -> None:
    """Only keyed tasks show; complete, reopen, edit, re-key and delete act on one task and bump its stamp."""
    people = sb.people(crm)
    deal_id, other_deal = _open_deal_ids(people, 2)
    task_id = _create_task(sb, crm, deal_id, "bs2-test-1")
    _create_task(sb, crm, other_deal, None)
    [task] = people.bant_tasks()
    assert (task["id"], task["deal_id"], task["key"], task["open"]) == (task_id, deal_id, "bs2-test-1", True)
    assert (task["subject"], task["due"]) == ("Qualify the deal", date(2026, 3, 9))

    sb.clock.freeze()
    sb.clock.advance(60)
    people.complete_task(task_id)
    done = people.bant_tasks()[0]
    assert not done["open"] and done["status"] == {"salesforce": "Completed", "hubspot": "COMPLETED"}[crm]
    assert done["modified"] != task["modified"]
    people.reopen_task(task_id)
    assert people.bant_tasks()[0]["open"]

    owner = next(o for o in people.owners() if o != task["owner"])
    people.edit_task(task_id, subject="Call Maria", due=date(2026, 4, 1), owner=owner)
    people.set_task_key(task_id, "bs1-old")
    edited = people.bant_tasks()[0]
    assert (edited["subject"], edited["due"], edited["owner"], edited["key"]) == (
        "Call Maria",
        date(2026, 4, 1),
        owner,
        "bs1-old",
    )
    people.delete_task(task_id)
    assert people.bant_tasks() == []


@pytest.mark.parametrize("crm", CRMS)
def test_an_admin_bulk_delete_takes_only_bant_sync_tasks(sb: Sandbox, crm: str) -> None:
    """delete_all_tasks removes every keyed task, says how many, and leaves other tasks alone."""
    people = sb.people(crm)
    deals = _open_deal_ids(people, 4)
    for n, deal_id in enumerate(deals[:3]):
        _create_task(sb, crm, deal_id, f"bs2-test-{n}")
    _create_task(sb, crm, deals[3], None)
    assert people.delete_all_tasks() == 3
    assert people.bant_tasks() == []
    remaining = sb.salesforce.records("Task") if crm == "salesforce" else sb.hubspot.tasks()
    assert len(remaining) == 1


@pytest.mark.parametrize("crm", CRMS)
def test_people_follow_a_reset(sb: Sandbox, crm: str) -> None:
    """One People object reads the sandbox's current state, so it sees a reseed."""
    people = sb.people(crm)
    deal_id = _open_deal_ids(people, 1)[0]
    seeded = people.deal_field(deal_id, "budget")
    people.fix_bant(deal_id)
    assert people.deal_field(deal_id, "budget") != seeded
    sb.reset()
    assert people.deal_field(deal_id, "budget") == seeded
