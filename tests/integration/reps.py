"""Seeded random rep activity on a CRM: fix, blank or junk BANT fields, turn deals into POCs, close them,
delete, complete or edit bant-sync tasks. Used by the week scenario and the kill-and-edit loops."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from tests.integration.conftest import CrmView

UNQUALIFIED = frozenset({"needs_qualification", "poc_unqualified", "qualify_out"})
GOOD = {
    "budget": "120000",
    "authority": "Maria Chen, CFO",
    "need": "Consolidate four regional billing systems",
    "timing": "2099-03-31",
}
"""A value that meets each BANT criterion."""
JUNK = {"budget": "TBD", "authority": "?", "need": "tbd", "timing": "2001-01-01"}
"""A value that does not (a placeholder, too short, in the past)."""

ALL_KINDS: Mapping[str, int] = {
    "fix": 14,
    "fix_one": 10,
    "break": 14,
    "junk": 8,
    "poc": 4,
    "close": 3,
    "delete": 16,
    "complete": 16,
    "edit": 15,
}
"""Every kind of action with its relative weight."""
BANT_AND_TASK_KINDS: Mapping[str, int] = {
    "fix": 3,
    "fix_one": 2,
    "break": 3,
    "junk": 2,
    "delete": 3,
    "complete": 3,
}
"""BANT field fixes, blanks and junk, task deletes and completions."""


@dataclass(frozen=True)
class Action:
    """One thing a rep did. `break` blanks a field, `junk` fills it with a value that does not count."""

    kind: str
    deal_id: str
    task_id: str | None = None
    criterion: str | None = None
    subject: str | None = None
    due: date | None = None
    owner: str | None = None


@dataclass
class Reps:
    """Picks deals and tasks with a seeded `rng`, so the same seed plays the same activity. What a deal
    needs is judged by what bant-sync last wrote on it (its status and missing fields)."""

    view: CrmView
    rng: random.Random
    today: Callable[[], date] = date.today
    kinds: Mapping[str, int] = field(default_factory=lambda: dict(ALL_KINDS))
    done: Counter[str] = field(default_factory=Counter)
    """How many of each kind were done, over every `act`."""
    _deals: dict[str, dict[str, Any]] = field(init=False, default_factory=dict)
    _missing: dict[str, list[str]] = field(init=False, default_factory=dict)
    _tasks: list[dict[str, Any]] = field(init=False, default_factory=list)
    _owners: list[str] = field(init=False, default_factory=list)

    def act(self, count: int) -> list[Action]:
        """`count` attempts drawn by weight; an attempt with nothing to act on is skipped. What was done."""
        self._deals = self.view.deals()
        self._missing = {}
        self._tasks = sorted(
            (
                t
                for t in self.view.task_details()
                if t["open"] and self._deals.get(t["deal_id"], {}).get("open")
            ),
            key=lambda t: str(t["id"]),
        )
        self._owners = self.view.owners()
        actions = []
        for kind in self.rng.choices(list(self.kinds), list(self.kinds.values()), k=count):
            action = getattr(self, f"_{kind}")()
            if action is not None:
                self.done[kind] += 1
                actions.append(action)
        return actions

    # ----- picking ------------------------------------------------------------------------------------------
    def _deal(self, *, unqualified: bool | None, poc: bool | None = None) -> str | None:
        candidates = [
            deal_id
            for deal_id, deal in sorted(self._deals.items())
            if deal["open"]
            and deal["status"] is not None
            and (unqualified is None or (deal["status"] in UNQUALIFIED) == unqualified)
            and (poc is None or (str(deal["type"] or "").lower() == "poc") == poc)
        ]
        return self.rng.choice(candidates) if candidates else None

    def _task(self) -> dict[str, Any] | None:
        if not self._tasks:
            return None
        return self._tasks.pop(self.rng.randrange(len(self._tasks)))

    def _missing_of(self, deal_id: str) -> list[str]:
        if deal_id not in self._missing:
            self._missing[deal_id] = [m for m in self.view.missing_of(deal_id) if m in GOOD]
        return self._missing[deal_id]

    # ----- the actions --------------------------------------------------------------------------------------
    def _fix(self) -> Action | None:
        deal_id = self._deal(unqualified=True)
        if deal_id is None:
            return None
        self.view.set_deal_fields(deal_id, GOOD)
        return Action("fix", deal_id)

    def _fix_one(self) -> Action | None:
        deal_id = self._deal(unqualified=True)
        missing = self._missing_of(deal_id) if deal_id else []
        if deal_id is None or not missing:
            return None
        criterion = self.rng.choice(missing)
        self.view.set_deal_field(deal_id, criterion, GOOD[criterion])
        return Action("fix_one", deal_id, criterion=criterion)

    def _break(self) -> Action | None:
        deal_id = self._deal(unqualified=False)
        if deal_id is None:
            return None
        criterion = self.rng.choice(sorted(GOOD))
        self.view.set_deal_field(deal_id, criterion, None)
        return Action("break", deal_id, criterion=criterion)

    def _junk(self) -> Action | None:
        deal_id = self._deal(unqualified=None)
        if deal_id is None:
            return None
        criterion = self.rng.choice(sorted(JUNK))
        self.view.set_deal_field(deal_id, criterion, JUNK[criterion])
        return Action("junk", deal_id, criterion=criterion)

    def _poc(self) -> Action | None:
        deal_id = self._deal(unqualified=True, poc=False)
        if deal_id is None:
            return None
        self.view.set_deal_field(deal_id, "type", "POC")
        self._deals[deal_id] = {**self._deals[deal_id], "type": "POC"}
        return Action("poc", deal_id)

    def _close(self) -> Action | None:
        deal_id = self._deal(unqualified=None)
        if deal_id is None:
            return None
        self.view.close_deal(deal_id, won=self.rng.random() < 0.5)
        self._deals[deal_id] = {**self._deals[deal_id], "open": False}
        self._tasks = [t for t in self._tasks if t["deal_id"] != deal_id]
        return Action("close", deal_id)

    def _delete(self) -> Action | None:
        task = self._task()
        if task is None:
            return None
        self.view.delete_task(task["id"])
        return Action("delete", task["deal_id"], task_id=task["id"])

    def _complete(self) -> Action | None:
        task = self._task()
        if task is None:
            return None
        self.view.complete_task(task["id"])
        return Action("complete", task["deal_id"], task_id=task["id"])

    def _edit(self) -> Action | None:
        task = self._task()
        if task is None:
            return None
        owners = [o for o in self._owners if o != task["owner"]]
        owner = self.rng.choice(owners) if owners else str(task["owner"])
        due = self.today() + timedelta(days=self.rng.randint(5, 30))
        subject = f"Call the customer about {self.rng.choice(sorted(GOOD))} ({self.rng.randint(1, 999)})"
        self.view.edit_task(task["id"], subject=subject, due=due, owner=owner)
        self._tasks.append(task)
        return Action("edit", task["deal_id"], task_id=task["id"], subject=subject, due=due, owner=owner)
