"""Reps and admins at work in the sandbox CRM, in CRM-neutral terms.

`sb.people("salesforce")` / `sb.people("hubspot")` reads deals and bant-sync's follow-up tasks the way a
person sees them and makes the edits a person makes in the CRM's own UI: filling in deal fields, deleting,
completing, reopening or editing tasks, an admin's bulk delete. Edits go to the sandbox's state as a user
edit does (validated like an API write, the record's SystemModstamp / hs_lastmodifieddate bumped), never
through the request log.

Deal fields go by CRM-neutral names (`DEAL_FIELDS`); values are the CRM's own (HubSpot's are strings),
except that `type` and `stage` take the Salesforce spellings ("POC", "Closed Lost") and are translated
for HubSpot.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import TYPE_CHECKING, Any, Final, TypedDict

from sandbox.salesforce.ids import normalize_id

if TYPE_CHECKING:
    from sandbox.sandbox import Sandbox

CRMS: Final = ("salesforce", "hubspot")

DEAL_FIELDS: Final[Mapping[str, Mapping[str, str]]] = {
    "salesforce": {
        "budget": "BANT_Budget__c",
        "authority": "BANT_Authority__c",
        "need": "BANT_Need__c",
        "timing": "BANT_Timing__c",
        "type": "Type",
        "stage": "StageName",
        "amount": "Amount",
        "name": "Name",
        "owner": "OwnerId",
        "status": "BANT_Status__c",
        "flagged_since": "BANT_Flagged_Since__c",
        "missing": "BANT_Missing__c",
        "reasons": "BANT_Reasons__c",
        "snooze_until": "BANT_Snooze_Until__c",
        "snooze_reason": "BANT_Snooze_Reason__c",
        "modified_by": "LastModifiedById",
    },
    "hubspot": {
        "budget": "bant_budget",
        "authority": "bant_authority",
        "need": "bant_need",
        "timing": "bant_timing",
        "type": "dealtype",
        "stage": "dealstage",
        "amount": "amount",
        "name": "dealname",
        "owner": "hubspot_owner_id",
        "status": "bant_status",
        "flagged_since": "bant_flagged_since",
        "missing": "bant_missing",
        "reasons": "bant_reasons",
        "snooze_until": "bant_snooze_until",
        "snooze_reason": "bant_snooze_reason",
        "modified_by": "hs_updated_by_user_id",
    },
}
"""CRM-neutral deal field names -> the Salesforce Opportunity field / HubSpot deal property, per CRM."""

TASK_KEY: Final[Mapping[str, str]] = {"salesforce": "BANT_Sync_Key__c", "hubspot": "bant_sync_key"}
"""The task field holding bant-sync's sync key, per CRM."""

GOOD_BANT: Final[Mapping[str, str]] = {
    "budget": "120000",
    "authority": "Maria Chen, CFO",
    "need": "Consolidate four regional billing systems",
    "timing": "2099-03-31",
}
"""What `fix_bant` fills in: a value that meets each BANT criterion."""

_HS_DEAL_TYPES = {"POC": "poc", "New Business": "newbusiness", "Existing Business": "existingbusiness"}
_HS_STAGES = {"Closed Won": "closedwon", "Closed Lost": "closedlost", "Qualification": "qualifiedtobuy"}
_SF_TASK: Final = {"status": "Status", "subject": "Subject", "due": "ActivityDate", "owner": "OwnerId"}
_HS_TASK: Final = {
    "status": "hs_task_status",
    "subject": "hs_task_subject",
    "due": "hs_timestamp",
    "owner": "hubspot_owner_id",
}
_OPEN = {"salesforce": "Not Started", "hubspot": "NOT_STARTED"}
_COMPLETED = {"salesforce": "Completed", "hubspot": "COMPLETED"}


class DealInfo(TypedDict):
    """A deal as `People.deals` shows it."""

    name: str | None
    status: str | None
    """bant-sync's verdict written on the deal (None before its first run)."""
    missing: str | None
    """The criteria bant-sync found missing, as written (`;`-separated); see `People.missing_of`."""
    type: str | None
    """The CRM's value (Salesforce "POC", HubSpot "poc")."""
    poc: bool
    open: bool
    owner: str | None


class TaskInfo(TypedDict):
    """A bant-sync follow-up task as a rep sees it."""

    id: str
    deal_id: str | None
    key: str
    open: bool
    status: str | None
    """The CRM's value (Salesforce "Not Started"/"Completed", HubSpot NOT_STARTED/COMPLETED)."""
    subject: str | None
    body: str | None
    due: date | None
    priority: str | None
    """The CRM's value (Salesforce "High", HubSpot HIGH)."""
    owner: str | None
    modified: object
    """The CRM's modification stamp (Salesforce SystemModstamp, HubSpot hs_lastmodifieddate)."""


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _hs_date(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _hs_props(obj: Mapping[str, object]) -> Mapping[str, object]:
    props = obj.get("properties")
    return props if isinstance(props, Mapping) else {}


class People:
    """The reps and admins of one CRM of the sandbox (`crm` is "salesforce" or "hubspot"). It reads the
    sandbox's current state on every call, so it keeps working across `Sandbox.reset`."""

    def __init__(self, sandbox: Sandbox, crm: str) -> None:
        if crm not in CRMS:
            raise ValueError(f"unknown CRM {crm!r}: choose one of {', '.join(CRMS)}")
        self.sandbox = sandbox
        self.crm = crm

    def __repr__(self) -> str:
        return f"People({self.crm!r})"

    # ----- what they see ------------------------------------------------------------------------------------
    def deals(self) -> dict[str, DealInfo]:
        """Every deal, open or closed, by id."""
        if self.crm == "salesforce":
            return {
                str(r["Id"]): self._deal_info(r, not r.get("IsClosed"))
                for r in self.sandbox.salesforce.records("Opportunity")
            }
        found: dict[str, DealInfo] = {}
        for deal in self.sandbox.hubspot.deals():
            props = _hs_props(deal)
            is_open = props.get("hs_is_closed") != "true"
            found[str(deal["id"])] = self._deal_info(props, is_open)
        return found

    def _deal_info(self, values: Mapping[str, object], is_open: bool) -> DealInfo:
        fields = DEAL_FIELDS[self.crm]
        kind = values.get(fields["type"])
        return {
            "name": _text(values.get(fields["name"])),
            "status": _text(values.get(fields["status"])),
            "missing": _text(values.get(fields["missing"])),
            "type": _text(kind),
            "poc": str(kind or "").lower() == "poc",
            "open": is_open,
            "owner": _text(values.get(fields["owner"])),
        }

    def deal_field(self, deal_id: str, name: str) -> Any:
        """One field of a deal by its CRM-neutral name (see `DEAL_FIELDS`), the CRM's value."""
        crm_name = DEAL_FIELDS[self.crm][name]
        if self.crm == "salesforce":
            record = self.sandbox.salesforce.get("Opportunity", deal_id)
            if record is None:
                raise KeyError(f"no Opportunity {deal_id}")
            return record.get(crm_name)
        deal = self.sandbox.hubspot.get_deal(deal_id)
        if deal is None:
            raise KeyError(f"no deal {deal_id}")
        return _hs_props(deal).get(crm_name)

    def missing_of(self, deal_id: str) -> list[str]:
        """The criteria the deal's missing field names, lower-cased (bant-sync writes them `;`-separated)."""
        raw = str(self.deal_field(deal_id, "missing") or "")
        return [part.strip().lower() for part in raw.replace(",", ";").split(";") if part.strip()]

    def bant_tasks(self) -> list[TaskInfo]:
        """Every bant-sync task (one with a sync key), open or completed, in the CRM's order."""
        key_field = TASK_KEY[self.crm]
        if self.crm == "salesforce":
            return [
                {
                    "id": str(t["Id"]),
                    "deal_id": _text(t.get("WhatId")),
                    "key": str(t[key_field]),
                    "open": t.get("Status") != _COMPLETED["salesforce"],
                    "status": _text(t.get("Status")),
                    "subject": _text(t.get("Subject")),
                    "body": _text(t.get("Description")),
                    "due": d if isinstance(d := t.get("ActivityDate"), date) else None,
                    "priority": _text(t.get("Priority")),
                    "owner": _text(t.get("OwnerId")),
                    "modified": t.get("SystemModstamp"),
                }
                for t in self.sandbox.salesforce.records("Task")
                if t.get(key_field)
            ]
        found: list[TaskInfo] = []
        for task in self.sandbox.hubspot.tasks():
            props = _hs_props(task)
            if not props.get(key_field):
                continue
            links = task.get("associations")
            deal_ids = list(links.get("deals", [])) if isinstance(links, Mapping) else []
            found.append(
                {
                    "id": str(task["id"]),
                    "deal_id": _text(deal_ids[0] if deal_ids else props.get(key_field)),
                    "key": str(props[key_field]),
                    "open": props.get("hs_task_status") != _COMPLETED["hubspot"],
                    "status": _text(props.get("hs_task_status")),
                    "subject": _text(props.get("hs_task_subject")),
                    "body": _text(props.get("hs_task_body")),
                    "due": _hs_date(props.get("hs_timestamp")),
                    "priority": _text(props.get("hs_task_priority")),
                    "owner": _text(props.get("hubspot_owner_id")),
                    "modified": props.get("hs_lastmodifieddate"),
                }
            )
        return found

    def owners(self) -> list[str]:
        """The reps a deal or task can be assigned to (Salesforce users other than the integration user,
        HubSpot owners)."""
        if self.crm == "salesforce":
            users = self.sandbox.salesforce.records("User")
            return [str(u["Id"]) for u in users if "bant-sync" not in str(u.get("Username"))]
        return [str(o["id"]) for o in self.sandbox.hubspot.owners]

    # ----- what reps do to deals ----------------------------------------------------------------------------
    def set_deal_fields(self, deal_id: str, fields: Mapping[str, Any], by: str | None = None) -> None:
        """A rep edits the deal: CRM-neutral names (budget, authority, need, timing, type, stage, amount,
        name, owner, snooze_until, snooze_reason); None blanks the field. `by` is the rep making the edit
        (one of `owners()`; the deal's owner by default): the CRM records them as its last modifier."""
        names = DEAL_FIELDS[self.crm]
        if self.crm == "salesforce":
            changes = {names[k]: v for k, v in fields.items()}
            self.sandbox.salesforce.update("Opportunity", deal_id, changes, by=by)
            return
        props: dict[str, object] = {}
        for name, value in fields.items():
            if name == "type" and value is not None:
                value = _HS_DEAL_TYPES.get(str(value), str(value))
            elif name == "stage" and value is not None:
                value = _HS_STAGES.get(str(value), str(value))
            props[names[name]] = "" if value is None else str(value)
        self.sandbox.hubspot.update_deal(deal_id, props, self._hubspot_user(by))

    def _hubspot_user(self, owner_id: str | None) -> int | None:
        """The HubSpot user id of an owner (what hs_updated_by_user_id records), None for none."""
        for owner in self.sandbox.hubspot.owners:
            user = owner.get("userId")
            if owner_id is not None and str(owner.get("id")) == owner_id and isinstance(user, int):
                return user
        return None

    def user_of(self, owner_id: str) -> str:
        """How the CRM names this rep as a record's last modifier: the Salesforce user id itself, the HubSpot
        owner's user id."""
        if self.crm == "salesforce":
            return owner_id
        return str(self._hubspot_user(owner_id))

    def snooze(self, deal_id: str, until: date | None, reason: str | None, by: str | None = None) -> None:
        """A rep snoozes the deal's flag: fills in the snooze-until date and the reason (None blanks one)."""
        day = until.isoformat() if until is not None else None
        self.set_deal_fields(deal_id, {"snooze_until": day, "snooze_reason": reason}, by=by)

    def set_deal_field(self, deal_id: str, name: str, value: Any) -> None:
        """A rep edits one deal field (see `set_deal_fields`)."""
        self.set_deal_fields(deal_id, {name: value})

    def close_deal(self, deal_id: str, won: bool = False) -> None:
        """A rep closes the deal, won or lost."""
        self.set_deal_field(deal_id, "stage", "Closed Won" if won else "Closed Lost")

    def fix_bant(self, deal_id: str) -> None:
        """A rep fills in every BANT field properly (`GOOD_BANT`)."""
        self.set_deal_fields(deal_id, GOOD_BANT)

    # ----- what reps and admins do to tasks -----------------------------------------------------------------
    def delete_task(self, task_id: str) -> None:
        """A rep deletes the task (Salesforce: to the recycle bin; HubSpot: archived)."""
        if self.crm == "salesforce":
            state = self.sandbox.salesforce
            with state.lock:
                state.delete(state.require_schema("Task"), normalize_id(task_id) or task_id)
            return
        with self.sandbox.hubspot.lock:
            self.sandbox.hubspot.archive("tasks", task_id)

    def delete_all_tasks(self) -> int:
        """An admin bulk-deletes every bant-sync task (or the sandbox is refreshed); how many went."""
        ids = [t["id"] for t in self.bant_tasks()]
        for task_id in ids:
            self.delete_task(task_id)
        return len(ids)

    def complete_task(self, task_id: str) -> None:
        """A rep marks the task done."""
        self._update_task(task_id, {"status": _COMPLETED[self.crm]})

    def reopen_task(self, task_id: str) -> None:
        """A rep sets a completed task back to not started."""
        self._update_task(task_id, {"status": _OPEN[self.crm]})

    def edit_task(
        self, task_id: str, *, subject: str | None = None, due: date | None = None, owner: str | None = None
    ) -> None:
        """A rep edits the task: its subject, its due date, or reassigns it to another owner."""
        changes: dict[str, object] = {}
        if subject is not None:
            changes["subject"] = subject
        if due is not None:
            # Salesforce: a date field; HubSpot: hs_timestamp is a moment, noon UTC of that day
            changes["due"] = due.isoformat() + ("" if self.crm == "salesforce" else "T12:00:00.000Z")
        if owner is not None:
            changes["owner"] = owner
        self._update_task(task_id, changes)

    def set_task_key(self, task_id: str, key: str) -> None:
        """An admin rewrites a task's sync key (e.g. to the key an older bant-sync wrote)."""
        self._update_task(task_id, {"key": key})

    def _update_task(self, task_id: str, changes: Mapping[str, object]) -> None:
        names = {**(_SF_TASK if self.crm == "salesforce" else _HS_TASK), "key": TASK_KEY[self.crm]}
        fields = {names[name]: value for name, value in changes.items()}
        if self.crm == "salesforce":
            self.sandbox.salesforce.update("Task", task_id, fields)
            return
        with self.sandbox.hubspot.lock:
            self.sandbox.hubspot.update("tasks", task_id, fields)
