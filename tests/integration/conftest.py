"""Whole runs against the sandbox CRM: a seeded sandbox, its generated config, and a Worker over it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sandbox import Sandbox, SandboxOptions
from tests.timing import FakeTime
from worker.run_model import RunRequest, RunSummary
from worker.service import Worker
from worker.settings_loader import load_settings


@dataclass
class CrmView:
    """Reads one CRM of the sandbox in CRM-neutral terms, for assertions."""

    sb: Sandbox
    crm: str

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


@dataclass
class Env:
    sb: Sandbox
    worker: Worker
    view: CrmView
    crm: str
    config: Path

    def run(self, mode: str = "incremental", dry_run: bool = False, **kw: Any) -> RunSummary:
        return self.worker.run(RunRequest(self.crm, mode=mode, dry_run=dry_run, **kw))

    def writes(self) -> int:
        """CRM write requests in the sandbox's request log since the last reset."""
        return sum(
            1
            for r in self.sb.requests()
            if r["method"] in {"POST", "PATCH", "PUT", "DELETE"}
            and "/search" not in r["path"]
            and "/batch/read" not in r["path"]
            and "oauth2" not in r["path"]
        )


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
        try:
            yield Env(sb, worker, CrmView(sb, crm), crm, config)
        finally:
            worker.close()
