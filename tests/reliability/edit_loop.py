"""Kill -9 with reps at work in between: rounds of random rep edits (BANT fields fixed, blanked or filled
with junk; tasks deleted or completed), each followed by a `bant-sync sync` child process SIGKILLed at a
random moment (after a read, or right after a write — between a CRM write and the ledger write that
follows it), then one full sweep. Afterwards: no unqualified deal without an open task, no open task on a
qualified deal, no deal or key with two open tasks, and each deal's last audit-log status equal to the
status the CRM shows. Used by tests/reliability/test_kill_edits.py and `bench/kill_loop.py --edits N`."""

from __future__ import annotations

import random
import sqlite3
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox import Sandbox
from tests.integration.conftest import CrmView
from tests.integration.reps import BANT_AND_TASK_KINDS, UNQUALIFIED, Reps
from tests.reliability.harness import kill_when, sync_process
from tests.timing import FakeTime
from worker import exit_codes
from worker.config.loader import load_settings
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary


def is_write(entry: dict[str, Any]) -> bool:
    path = str(entry["path"])
    return (
        entry["method"] in {"POST", "PATCH", "PUT", "DELETE"}
        and "/search" not in path
        and "/batch/read" not in path
        and "oauth2" not in path
    )


@dataclass(frozen=True)
class KillPoint:
    """After the `count`-th CRM request, or the `count`-th write request when `writes`."""

    count: int
    writes: bool

    def reached(self, entries: list[dict[str, Any]]) -> bool:
        seen = sum(1 for e in entries if is_write(e)) if self.writes else len(entries)
        return seen >= self.count

    @classmethod
    def random(cls, rng: random.Random) -> KillPoint:
        if rng.random() < 0.6:
            return cls(rng.randint(1, 3), writes=True)
        return cls(rng.randint(1, 4), writes=False)


def last_audited_status(config: Path, connection: str) -> dict[str, str]:
    """Each deal's `new_status` in its last audit-log row of the connection (SQLite state store)."""
    url = load_settings(str(config), environ={}).state.database_url()
    assert url.startswith("sqlite:///"), url
    with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
        rows = db.execute(
            "SELECT deal_id, new_status FROM audit_log WHERE connection = ? ORDER BY seq", (connection,)
        ).fetchall()
    return {str(deal_id): str(status) for deal_id, status in rows}


@dataclass
class EditLoopReport:
    crm: str
    rounds: int = 0
    edits: Counter[str] = field(default_factory=Counter)
    killed: int = 0
    finished: Counter[int] = field(default_factory=Counter)
    """Rounds whose child finished before its kill point, by exit code."""
    final: RunSummary | None = None
    leftover: list[dict[str, Any]] = field(default_factory=list)
    """What a dry run after the final sweep still wants to write."""
    unqualified_without_task: list[str] = field(default_factory=list)
    open_on_qualified: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    """Deals with more than one open task, and keys on more than one task."""
    audit_mismatches: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        found = []
        if self.final is None or self.final.status != "succeeded":
            found.append(f"final sweep {self.final.status if self.final else 'missing'}")
        for name in ("unqualified_without_task", "open_on_qualified", "duplicates", "audit_mismatches"):
            items = getattr(self, name)
            if items:
                found.append(f"{len(items)} {name.replace('_', ' ')}: {items[:3]}")
        if self.leftover:
            found.append(f"{len(self.leftover)} writes still needed after the final sweep")
        return found

    def line(self) -> str:
        finished = sum(self.finished.values())
        lease = self.finished.get(exit_codes.LEASE_HELD, 0)
        return (
            f"{self.crm}: {self.rounds} rounds, {sum(self.edits.values()):,} rep edits "
            f"({', '.join(f'{k} {n}' for k, n in sorted(self.edits.items()))}); "
            f"{self.killed} killed, {finished} finished first ({lease} lease held); "
            f"final sweep {self.final.status if self.final else '-'}; "
            f"unqualified without an open task {len(self.unqualified_without_task)}, "
            f"open tasks on qualified deals {len(self.open_on_qualified)}, "
            f"duplicates {len(self.duplicates)}, audit != CRM {len(self.audit_mismatches)}, "
            f"still to write {len(self.leftover)}; {self.seconds:.1f} s"
        )


def check_crm(report: EditLoopReport, view: CrmView, config: Path, connection: str) -> None:
    """Fill in the report's figures from what the CRM and the state store show now."""
    deals = view.deals()
    tasks = view.task_details()
    open_by_deal: dict[str, list[str]] = defaultdict(list)
    for task in tasks:
        if task["open"]:
            open_by_deal[str(task["deal_id"])].append(str(task["id"]))
    unqualified = {i for i, d in deals.items() if d["open"] and d["status"] in UNQUALIFIED}
    report.unqualified_without_task = sorted(i for i in unqualified if not open_by_deal.get(i))
    report.open_on_qualified = sorted(i for i in open_by_deal if i not in unqualified)
    report.duplicates = sorted(f"deal {i}" for i, ids in open_by_deal.items() if len(ids) > 1) + sorted(
        f"key {k}" for k, n in Counter(t["key"] for t in tasks).items() if n > 1
    )
    audited = last_audited_status(config, connection)
    shown = {i: str(d["status"]) for i, d in deals.items() if d["status"] is not None}
    report.audit_mismatches = [
        f"{i}: audit {audited.get(i)}, CRM {shown.get(i)}"
        for i in sorted(set(audited) | set(shown))
        if audited.get(i) != shown.get(i)
    ]


def run_edit_loop(
    sb: Sandbox, config: Path, crm: str, *, rounds: int, edits: int, rng: random.Random
) -> EditLoopReport:
    """An uninterrupted full sync first (the install), then `rounds` of `edits` rep edits and a killed
    sync (full or incremental, at a random KillPoint; each next sync takes the dead one's lease over at
    once, or finishes with exit 5), then a full sweep, and a dry run to see what is still wrong."""
    started = time.perf_counter()
    report = EditLoopReport(crm)
    view = CrmView(sb, crm)
    settings = load_settings(str(config), environ={})
    now = FakeTime()
    install = Worker(settings, clock=now.now, sleep=now.sleep)
    try:
        assert install.run(RunRequest(crm, mode="full")).status == "succeeded"
    finally:
        install.close()
    reps = Reps(view, rng, kinds=dict(BANT_AND_TASK_KINDS))
    for _ in range(rounds):
        reps.act(edits)
        sb.reset_requests()
        point = KillPoint.random(rng)
        process = sync_process(config, crm, full=rng.random() < 0.5)
        if kill_when(sb, process, point.reached):
            report.killed += 1
        else:
            report.finished[process.returncode] += 1
        report.rounds += 1
    report.edits = Counter(reps.done)
    worker = Worker(settings, clock=now.now, sleep=now.sleep)
    try:
        report.final = worker.run(RunRequest(crm, mode="full"))
        report.leftover = worker.run(RunRequest(crm, mode="full", dry_run=True)).planned
    finally:
        worker.close()
    check_crm(report, view, config, crm)
    report.seconds = time.perf_counter() - started
    return report
