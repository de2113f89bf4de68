"""What an outcome report holds: the cohort comparisons first, then compliance, its trend and follow-through.

Plain values, computed by `outcomes` and `compliance` and drawn by `render`; nothing here reads a CRM or the
state store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

from worker.report.cohorts import Comparison
from worker.report.snoozes import SnoozeSummary


class Source(StrEnum):
    HISTORY = "field history"
    AUDIT = "bant-sync audit log"
    AT_CLOSE = "values at close"


@dataclass(frozen=True, slots=True)
class Judged:
    """One closed deal with its verdict at entry; `qualified` is None for a deal that never reached the entry
    point or that the framework does not judge (out of scope, or nothing required at its stage)."""

    deal_id: str
    name: str | None
    owner_id: str | None
    is_poc: bool
    qualified: bool | None
    won: bool
    closed_on: date
    source: Source


@dataclass(frozen=True, slots=True)
class ComplianceRow:
    """One owner's (or team's) open deals: how many, how many unqualified, how many snoozed, and per
    criterion how many miss it (`missing` holds a count for every criterion of the framework, in its order;
    a snoozed deal counts for each criterion it misses). A snoozed deal is one of the open deals but
    neither unqualified nor qualified: the three shares add up to the whole."""

    group: str
    email: str | None
    open_deals: int
    unqualified: int
    missing: tuple[tuple[str, int], ...]
    snoozed: int = 0

    def share(self, criterion: str) -> float | None:
        count = dict(self.missing).get(criterion, 0)
        return count / self.open_deals if self.open_deals else None

    @property
    def unqualified_share(self) -> float | None:
        return self.unqualified / self.open_deals if self.open_deals else None

    @property
    def snoozed_share(self) -> float | None:
        return self.snoozed / self.open_deals if self.open_deals else None

    @property
    def qualified(self) -> int:
        """Open deals neither unqualified nor snoozed: qualified."""
        return self.open_deals - self.unqualified - self.snoozed

    @property
    def qualified_share(self) -> float | None:
        return self.qualified / self.open_deals if self.open_deals else None


@dataclass(frozen=True, slots=True)
class TrendPoint:
    """The open pipeline at a week's end: how many deals, how many unqualified, how many snoozed, and per
    criterion how many miss it (unqualified and snoozed deals both count for what they miss)."""

    week_ending: date
    open_deals: int
    unqualified: int
    missing: tuple[tuple[str, int], ...]
    snoozed: int = 0


@dataclass(frozen=True, slots=True)
class FollowThrough:
    """Flags raised in the period: how many, how many were qualified later, the median and 90th-percentile
    days that took (None with no qualified deal), and what became of deals still flagged when they closed,
    and of deals that reached qualify_out (won, lost, still open)."""

    flagged: int
    qualified_later: int
    median_days: float | None
    p90_days: float | None
    closed_while_flagged_won: int
    closed_while_flagged_lost: int
    qualify_out: int
    qualify_out_won: int
    qualify_out_lost: int
    qualify_out_open: int


@dataclass(frozen=True, slots=True)
class CohortSection:
    """One comparison of the report: its title, the two cohorts, and where their statuses came from."""

    key: str
    title: str
    comparison: Comparison
    source: str
    """How each deal's status at entry was known ("field history", "values at close", or each one's share)."""


@dataclass(frozen=True, slots=True)
class Compliance:
    """The open pipeline: by owner, by team, week by week, and what flags led to. `criteria` pairs each
    criterion of the framework with its label, in the framework's order."""

    criteria: tuple[tuple[str, str], ...]
    by_owner: tuple[ComplianceRow, ...]
    by_team: tuple[ComplianceRow, ...]
    trend: tuple[TrendPoint, ...]
    follow_through: FollowThrough | None
    snoozes: SnoozeSummary | None = None
    """The deals snoozed now, and the snoozes refused or ended (re-flagged) in the report's period."""


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    connection: str
    since: date
    until: date
    framework: str
    sections: tuple[CohortSection, ...]
    compliance: Compliance | None = None
    closed_deals: int = 0
    not_entered: int = 0
    """Closed deals that never reached the entry stage (in no cohort)."""
    api_calls: int = 0
    notes: tuple[str, ...] = field(default=())
