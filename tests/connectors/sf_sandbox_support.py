"""Driving the Salesforce connector against the sandbox: an environment and a small sync loop that uses
the worker's real planner, task reconciliation (TaskSync) and write order, with the rules engine and a task
ledger in an in-memory state store (what a run does, without leases, checkpoints or audit)."""

from __future__ import annotations

import random
import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from connectors.contract import ContractEnv
from connectors.model import Cursor, OutcomeKind, RowOutcome, WritePlan
from connectors.registry import ConnectorContext
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.settings import DEFAULT_FIELDS
from rules import Framework, evaluate, framework_from_mapping
from worker.state import StateStore, StoreLedger
from worker.sync.ordered_apply import OrderedApply
from worker.sync.planner import PlanContext, plan_statuses
from worker.sync.task_sync import TaskSync

BANT = Path(__file__).resolve().parents[2] / "config" / "frameworks" / "bant.toml"
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
NOT_A_PULL = re.compile(r"\bFROM (Organization|Task)\b")


def bant() -> Framework:
    return framework_from_mapping(tomllib.loads(BANT.read_text()), str(BANT))


class SfSandboxEnv(ContractEnv):
    """A sandbox-backed environment; one task ledger shared by every run, like the worker's store (an
    in-memory SQLite store: only the thread running `sync` touches it)."""

    def __init__(self, sb: Any, **settings: Any) -> None:
        self.sb = sb
        self.store = StateStore.open("sqlite://")
        self.ledger: StoreLedger = self.store.ledger("sandbox")
        self.sleeps: list[float] = []
        self.overrides = settings

    def settings(self, **overrides: Any) -> SalesforceSettings:
        info = self.sb.info["salesforce"]
        options: dict[str, Any] = {
            "instance_url": info["instance_url"],
            "login_url": info["login_url"],
            "auth": "token",
            "ca_bundle": self.sb.info["ca_bundle"],
            "read_timeout": 5.0,
        }
        options.update(self.overrides)
        options.update(overrides)
        return SalesforceSettings(**options)

    def secrets(self, auth: str) -> dict[str, str]:
        info = self.sb.info["salesforce"]
        if auth == "jwt":
            return {"private_key": Path(info["jwt_private_key_path"]).read_text()}
        return {"access_token": info["access_token"]}

    def connector(self, **overrides: Any) -> SalesforceConnector:
        settings = self.settings(**overrides)
        context = ConnectorContext(
            connection="sandbox",
            secrets=self.secrets(settings.auth),
            clock=self.sb.clock.now,
            sleep=self.sleeps.append,
        )
        return SalesforceConnector(settings, context, rng=random.Random(7))

    def jwt_connector(self, **overrides: Any) -> SalesforceConnector:
        info = self.sb.info["salesforce"]
        return self.connector(auth="jwt", client_id=info["client_id"], username=info["username"], **overrides)

    def now(self) -> datetime:
        now: datetime = self.sb.clock.now()
        return now

    def advance(self, seconds: float) -> None:
        self.sb.clock.advance(seconds)

    def edit_deal(self, deal_id: str, field: str, value: str) -> None:
        self.sb.salesforce.update("Opportunity", deal_id, {DEFAULT_FIELDS[field]: value})

    def requests(self) -> list[dict[str, Any]]:
        return [r for r in self.sb.requests() if r["crm"] == "salesforce"]

    def write_calls(self) -> int:
        return sum(1 for r in self.requests() if r["method"] in WRITE_METHODS and "/oauth2/" not in r["path"])

    def query_calls(self) -> int:
        """Opportunity query calls, follow-up pages included (not preflight's Organization query nor task
        lookups by key)."""
        return sum(
            1
            for r in self.requests()
            if "/query" in r["path"] and not NOT_A_PULL.search(str((r.get("query") or {}).get("q", "")))
        )

    def open_tasks(self, deal_id: str) -> int:
        return sum(
            1 for t in self.sb.salesforce.records("Task") if t["WhatId"] == deal_id and not t["IsClosed"]
        )

    def bant_tasks(self) -> list[dict[str, Any]]:
        """Every Task bant-sync keyed (under the configured key field), open or not."""
        key = self.settings().task_key_field
        return [t for t in self.sb.salesforce.records("Task") if t.get(key)]

    def open_deal_count(self) -> int:
        return sum(1 for o in self.sb.salesforce.records("Opportunity") if not o["IsClosed"])

    def unknown_deal_id(self) -> str:
        return "006000000000000ZZZ"


@dataclass
class Progress:
    """What a run got through: the cursor after its last finished page, and every outcome so far."""

    cursor: Cursor | None = None
    outcomes: list[RowOutcome] = field(default_factory=list)


def sync(
    env: SfSandboxEnv,
    connector: SalesforceConnector,
    cursor: Cursor | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
) -> tuple[Cursor | None, list[RowOutcome]]:
    """One run: preflight, then page by page assess, read the page's tasks by key, plan, and write (status
    first, then tasks through TaskSync, which keeps the ledger); returns the last cursor and outcomes.
    `progress` is updated after each page, so a run that raises still shows where it got to."""
    framework = bant()
    progress = progress if progress is not None else Progress(cursor)
    progress.cursor = cursor
    connector.preflight()
    tasks = TaskSync(connector, env.ledger)
    writer = OrderedApply(connector, tasks)
    for page in connector.fetch_changed(cursor, full=full):
        now = env.now()
        ctx = PlanContext(now.date(), now, 3, field_names=connector.field_names)
        assessments = [evaluate(deal, framework, ctx.today) for deal in page.deals]
        facts = tasks.facts(page.deals, assessments)
        plan = WritePlan(
            plan_statuses(page.deals, page.deals, assessments, ctx),
            tuple(tasks.plan(page.deals, assessments, facts, ctx)),
        )
        if not plan.is_empty:
            progress.outcomes += writer.apply(plan)
        progress.cursor = page.cursor
    return progress.cursor, progress.outcomes


def written(outcomes: list[RowOutcome]) -> int:
    return sum(1 for o in outcomes if o.kind is OutcomeKind.WRITTEN)
