"""Whole runs against the sandbox CRM: a seeded sandbox, its generated config, and a Worker over it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox, SandboxOptions
from sandbox.salesforce.ids import normalize_id
from tests.timing import FakeTime
from worker.run_model import RunRequest, RunSummary
from worker.service import Worker
from worker.settings_loader import load_settings

SF_DEAL_FIELDS = {
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
}
"""CRM-neutral deal field names -> Salesforce Opportunity fields."""

HS_DEAL_FIELDS = {
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
}
"""CRM-neutral deal field names -> HubSpot deal properties."""

_HS_DEAL_TYPES = {"POC": "poc", "New Business": "newbusiness", "Existing Business": "existingbusiness"}
_HS_STAGES = {"Closed Won": "closedwon", "Closed Lost": "closedlost", "Qualification": "qualifiedtobuy"}
SF_TASK_KEY = "BANT_Sync_Key__c"
HS_TASK_KEY = "bant_sync_key"


def _hs_due(due: date) -> str:
    return f"{due.isoformat()}T12:00:00.000Z"


def _hs_date(value: object) -> date | None:
    if not value:
        return None
    return date.fromisoformat(str(value)[:10])


@dataclass
class CrmView:
    """Reads one CRM of the sandbox in CRM-neutral terms, for assertions, and acts on it the way a rep or
    an admin would (through the sandbox's state, as edits made in the CRM's own UI)."""

    sb: Sandbox
    crm: str

    # ----- reading ------------------------------------------------------------------------------------------
    def deals(self) -> dict[str, dict[str, Any]]:
        if self.crm == "salesforce":
            return {
                r["Id"]: {
                    "status": r.get("BANT_Status__c"),
                    "missing": r.get("BANT_Missing__c"),
                    "type": r.get("Type"),
                    "open": not r.get("IsClosed"),
                }
                for r in self.sb.salesforce.records("Opportunity")
            }
        return {
            d["id"]: {
                "status": d["properties"].get("bant_status"),
                "missing": d["properties"].get("bant_missing"),
                "type": d["properties"].get("dealtype"),
                "open": d["properties"].get("hs_is_closed") != "true",
            }
            for d in self.sb.hubspot.deals()
        }

    def deal_field(self, deal_id: str, name: str) -> Any:
        """One field of a deal by its CRM-neutral name (see SF_DEAL_FIELDS / HS_DEAL_FIELDS)."""
        if self.crm == "salesforce":
            record = self.sb.salesforce.get("Opportunity", deal_id)
            assert record is not None, f"no Opportunity {deal_id}"
            return record.get(SF_DEAL_FIELDS[name])
        deal = self.sb.hubspot.get_deal(deal_id)
        assert deal is not None, f"no deal {deal_id}"
        return deal["properties"].get(HS_DEAL_FIELDS[name])  # type: ignore[union-attr]

    def missing_of(self, deal_id: str) -> list[str]:
        """The criteria the deal's missing field names (bant-sync writes them `;`-separated)."""
        raw = str(self.deal_field(deal_id, "missing") or "")
        return [part.strip().lower() for part in raw.replace(",", ";").split(";") if part.strip()]

    def tasks(self) -> list[dict[str, Any]]:
        """Every bant-sync task: deal id, key, open or not."""
        if self.crm == "salesforce":
            return [
                {
                    "deal_id": t["WhatId"],
                    "key": t.get("BANT_Sync_Key__c"),
                    "open": t.get("Status") != "Completed",
                }
                for t in self.sb.salesforce.records("Task")
                if t.get("BANT_Sync_Key__c")
            ]
        found = []
        for task in self.sb.hubspot.tasks():
            props = task["properties"]
            if not props.get("bant_sync_key"):
                continue
            deal_ids = list(task.get("associations", {}).get("deals", []))
            found.append(
                {
                    "deal_id": deal_ids[0] if deal_ids else props.get("bant_sync_key"),
                    "key": props["bant_sync_key"],
                    "open": props.get("hs_task_status") != "COMPLETED",
                }
            )
        return found

    def task_details(self) -> list[dict[str, Any]]:
        """Every bant-sync task with what a rep sees: id, deal_id, key, open, status (the CRM's value),
        subject, body, due (a date), priority (the CRM's value), owner, modified (the CRM's stamp)."""
        if self.crm == "salesforce":
            return [
                {
                    "id": t["Id"],
                    "deal_id": t.get("WhatId"),
                    "key": t.get(SF_TASK_KEY),
                    "open": t.get("Status") != "Completed",
                    "status": t.get("Status"),
                    "subject": t.get("Subject"),
                    "body": t.get("Description"),
                    "due": t.get("ActivityDate"),
                    "priority": t.get("Priority"),
                    "owner": t.get("OwnerId"),
                    "modified": t.get("SystemModstamp"),
                }
                for t in self.sb.salesforce.records("Task")
                if t.get(SF_TASK_KEY)
            ]
        found = []
        for task in self.sb.hubspot.tasks():
            props = task["properties"]
            if not props.get(HS_TASK_KEY):
                continue
            deal_ids = list(task.get("associations", {}).get("deals", []))
            found.append(
                {
                    "id": task["id"],
                    "deal_id": deal_ids[0] if deal_ids else props.get(HS_TASK_KEY),
                    "key": props[HS_TASK_KEY],
                    "open": props.get("hs_task_status") != "COMPLETED",
                    "status": props.get("hs_task_status"),
                    "subject": props.get("hs_task_subject"),
                    "body": props.get("hs_task_body"),
                    "due": _hs_date(props.get("hs_timestamp")),
                    "priority": props.get("hs_task_priority"),
                    "owner": props.get("hubspot_owner_id"),
                    "modified": props.get("hs_lastmodifieddate"),
                }
            )
        return found

    def tasks_of(self, deal_id: str) -> list[dict[str, Any]]:
        """The deal's bant-sync tasks (task_details), open or not."""
        return [t for t in self.task_details() if t["deal_id"] == deal_id]

    def open_tasks_of(self, deal_id: str) -> list[dict[str, Any]]:
        """The deal's open bant-sync tasks (task_details)."""
        return [t for t in self.tasks_of(deal_id) if t["open"]]

    def task(self, task_id: str) -> dict[str, Any]:
        """One bant-sync task (task_details) by its CRM id."""
        found = [t for t in self.task_details() if t["id"] == task_id]
        assert len(found) == 1, f"no bant-sync task {task_id}"
        return found[0]

    def owners(self) -> list[str]:
        """The reps a deal or task can be assigned to (Salesforce users other than the integration user,
        HubSpot owners)."""
        if self.crm == "salesforce":
            users = self.sb.salesforce.records("User")
            return [str(u["Id"]) for u in users if "bant-sync" not in str(u.get("Username"))]
        return [str(o["id"]) for o in self.sb.hubspot.owners]

    # ----- what reps and admins do --------------------------------------------------------------------------
    def set_deal_fields(self, deal_id: str, fields: Mapping[str, Any]) -> None:
        """A rep edits the deal: CRM-neutral names (budget, authority, need, timing, type, stage, amount,
        name, owner); None blanks the field; type and stage take the Salesforce spellings ("POC",
        "Closed Lost"), translated for HubSpot."""
        if self.crm == "salesforce":
            self.sb.salesforce.update(
                "Opportunity", deal_id, {SF_DEAL_FIELDS[k]: v for k, v in fields.items()}
            )
            return
        props: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "type" and value is not None:
                value = _HS_DEAL_TYPES.get(str(value), str(value))
            elif name == "stage" and value is not None:
                value = _HS_STAGES.get(str(value), str(value))
            props[HS_DEAL_FIELDS[name]] = "" if value is None else str(value)
        self.sb.hubspot.update_deal(deal_id, props)

    def set_deal_field(self, deal_id: str, name: str, value: Any) -> None:
        """A rep edits one deal field (see set_deal_fields)."""
        self.set_deal_fields(deal_id, {name: value})

    def close_deal(self, deal_id: str, won: bool = False) -> None:
        self.set_deal_field(deal_id, "stage", "Closed Won" if won else "Closed Lost")

    def fix_bant(self, deal_id: str) -> None:
        """A rep fills in every BANT field properly."""
        if self.crm == "salesforce":
            self.sb.salesforce.update(
                "Opportunity",
                deal_id,
                {
                    "BANT_Budget__c": "120000",
                    "BANT_Authority__c": "Maria Chen, CFO",
                    "BANT_Need__c": "Consolidate four regional billing systems",
                    "BANT_Timing__c": "2099-03-31",
                },
            )
        else:
            self.sb.hubspot.update_deal(
                deal_id,
                {
                    "bant_budget": "120000",
                    "bant_authority": "Maria Chen, CFO",
                    "bant_need": "Consolidate four regional billing systems",
                    "bant_timing": "2099-03-31",
                },
            )

    def delete_task(self, task_id: str) -> None:
        """A rep deletes the task (Salesforce: moved to the recycle bin; HubSpot: archived)."""
        if self.crm == "salesforce":
            state = self.sb.salesforce
            with state.lock:
                state.delete(state.require_schema("Task"), normalize_id(task_id) or task_id)
            return
        with self.sb.hubspot.lock:
            self.sb.hubspot.archive("tasks", task_id)

    def delete_all_tasks(self) -> int:
        """An admin bulk-deletes every bant-sync task (or the sandbox org is refreshed); how many went."""
        ids = [t["id"] for t in self.task_details()]
        for task_id in ids:
            self.delete_task(task_id)
        return len(ids)

    def _update_task(self, task_id: str, sf_fields: Mapping[str, Any], hs_props: Mapping[str, Any]) -> None:
        if self.crm == "salesforce":
            self.sb.salesforce.update("Task", task_id, sf_fields)
            return
        with self.sb.hubspot.lock:
            self.sb.hubspot.update("tasks", task_id, hs_props)

    def complete_task(self, task_id: str) -> None:
        """A rep marks the task done (Salesforce Status "Completed"; HubSpot hs_task_status COMPLETED)."""
        self._update_task(task_id, {"Status": "Completed"}, {"hs_task_status": "COMPLETED"})

    def reopen_task(self, task_id: str) -> None:
        """A rep sets a completed task back to not started."""
        self._update_task(task_id, {"Status": "Not Started"}, {"hs_task_status": "NOT_STARTED"})

    def edit_task(
        self, task_id: str, *, subject: str | None = None, due: date | None = None, owner: str | None = None
    ) -> None:
        """A rep edits the task: its subject, its due date, or reassigns it to another owner."""
        sf: dict[str, Any] = {}
        hs: dict[str, Any] = {}
        if subject is not None:
            sf["Subject"], hs["hs_task_subject"] = subject, subject
        if due is not None:
            sf["ActivityDate"], hs["hs_timestamp"] = due.isoformat(), _hs_due(due)
        if owner is not None:
            sf["OwnerId"], hs["hubspot_owner_id"] = owner, owner
        self._update_task(task_id, sf, hs)

    def set_task_key(self, task_id: str, key: str) -> None:
        """Rewrite a task's sync key (e.g. to the key an older bant-sync wrote)."""
        self._update_task(task_id, {SF_TASK_KEY: key}, {HS_TASK_KEY: key})


@dataclass
class Env:
    sb: Sandbox
    worker: Worker
    view: CrmView
    crm: str
    config: Path
    time: FakeTime = field(default_factory=FakeTime)
    """The worker's clock; `advance_days` moves it together with the sandbox's."""
    connection: str = ""
    """The connection `run` syncs; empty means the one named like the CRM (as the sandbox writes it)."""

    def run(self, mode: str = "incremental", dry_run: bool = False, **kw: Any) -> RunSummary:
        request = RunRequest(self.connection or self.crm, mode=mode, dry_run=dry_run, **kw)
        return self.worker.run(request)

    def writes(self) -> int:
        """CRM write requests in the sandbox's request log since the last reset."""
        return len(self.write_requests())

    def write_requests(self) -> list[str]:
        """The CRM write requests since the last reset, as "METHOD path" (for assertion messages)."""
        return [
            f"{r['method']} {r['path']}"
            for r in self.sb.requests()
            if r["method"] in {"POST", "PATCH", "PUT", "DELETE"}
            and "/search" not in str(r["path"])
            and "/batch/read" not in str(r["path"])
            and "oauth2" not in str(r["path"])
        ]

    def advance_days(self, days: float) -> None:
        """Let days pass: the sandbox clock and the worker's clock move together."""
        self.time.shift += timedelta(days=days)
        self.sb.clock.advance(days * 86_400)

    def today(self) -> date:
        """The worker's today (the sandbox configs assess in UTC)."""
        return self.time.now().astimezone(UTC).date()

    def restart(
        self,
        config: Path | None = None,
        environ: Mapping[str, str] | None = None,
        connection: str | None = None,
    ) -> Worker:
        """A new bant-sync process: close the worker and open another on `config` (default: the same
        file, re-read) with `environ` as its environment, on the same clock; `connection` switches the
        connection `run` syncs."""
        self.worker.close()
        if config is not None:
            self.config = config
        if connection is not None:
            self.connection = connection
        settings = load_settings(str(self.config), environ=dict(environ or {}))
        self.worker = Worker(settings, clock=self.time.now, sleep=self.time.sleep)
        return self.worker

    def rename_connection(self, new: str) -> None:
        """Ops rename the connection in the config file (and its secrets file), then restart bant-sync
        syncing it under the new name."""
        old = self.connection or self.crm
        for path in (self.config, self.config.with_name(f"{self.config.stem}.secrets.toml")):
            text = path.read_text(encoding="utf-8")
            assert f"[connections.{old}]" in text, f"{path} has no [connections.{old}] table"
            path.write_text(text.replace(f"[connections.{old}]", f"[connections.{new}]"), encoding="utf-8")
        self.restart(connection=new)


@pytest.fixture(params=["salesforce", "hubspot"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    crm = str(request.param)
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False)
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        settings = load_settings(str(config), environ={})
        time = FakeTime()
        worker = Worker(settings, clock=time.now, sleep=time.sleep)
        env = Env(sb, worker, CrmView(sb, crm), crm, config, time)
        try:
            yield env
        finally:
            env.worker.close()
