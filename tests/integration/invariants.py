"""What must hold on a CRM after any scenario: exactly one open bant-sync task per open unqualified deal,
none on a qualified or closed deal, no sync key twice, every escalation visible (its open task High), and a
further full sweep writes nothing."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

from tests.integration.conftest import CrmView, Env

UNQUALIFIED = frozenset({"needs_qualification", "poc_unqualified", "qualify_out"})
ESCALATED = frozenset({"poc_unqualified", "qualify_out"})
OPEN_STATUS = {"salesforce": "Not Started", "hubspot": "NOT_STARTED"}
COMPLETED_STATUS = {"salesforce": "Completed", "hubspot": "COMPLETED"}
HIGH = {"salesforce": "High", "hubspot": "HIGH"}
DUE_BUSINESS_DAYS = 3
"""`[run] task_due_business_days` in the shipped defaults."""


def business_days_after(start: date, days: int) -> date:
    """`start` moved forward by `days` Monday-to-Friday days (a weekend start rolls to Monday first)."""
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    left = days
    while left > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            left -= 1
    return current


def task_problems(view: CrmView, *, may_lack_task: Collection[str] = ()) -> list[str]:
    """Every way the CRM breaks the invariants, one line each (empty when all hold). A deal named in
    `may_lack_task` may have no open task (its rep completed it under `completed_tasks = "leave"`)."""
    deals = view.deals()
    tasks = view.task_details()
    problems = [f"key {key} is on {n} tasks" for key, n in Counter(t["key"] for t in tasks).items() if n > 1]
    open_by_deal: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for task in tasks:
        if task["open"]:
            open_by_deal[task["deal_id"]].append(task)
    problems += [
        f"open task {t[0]['id']} on unknown deal {d}" for d, t in open_by_deal.items() if d not in deals
    ]
    for deal_id, deal in sorted(deals.items()):
        open_tasks = open_by_deal.get(deal_id, [])
        unqualified = deal["open"] and deal["status"] in UNQUALIFIED
        if unqualified and len(open_tasks) != 1 and not (not open_tasks and deal_id in may_lack_task):
            problems.append(f"{deal['status']} deal {deal_id} has {len(open_tasks)} open tasks")
        elif not unqualified and open_tasks:
            state = "open" if deal["open"] else "closed"
            problems.append(f"{state} {deal['status']} deal {deal_id} has {len(open_tasks)} open task(s)")
        if unqualified and deal["status"] in ESCALATED:
            problems += [
                f"{deal['status']} deal {deal_id}: its open task {t['id']} has priority {t['priority']}"
                for t in open_tasks
                if t["priority"] != HIGH[view.crm]
            ]
    return problems


def assert_settled(env: Env, *, may_lack_task: Collection[str] = ()) -> None:
    """The invariants hold, and a further full sweep succeeds writing nothing to the CRM."""
    problems = task_problems(env.view, may_lack_task=may_lack_task)
    assert problems == [], f"{len(problems)} problem(s): {problems[:10]}"
    env.sb.reset_requests()
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    writes = env.write_requests()
    assert writes == [], f"a further full sweep wrote {len(writes)} time(s): {writes[:5]}"
