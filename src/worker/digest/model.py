"""What a digest says, before any wording: values compose builds and render turns into messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class DealLine:
    """One flagged (or snoozed) deal as a person reads it: its name, what is missing (framework labels),
    since when, and the link to the deal in the CRM (None when the CRM could not give one); a snoozed deal
    also has the day its snooze ends and the rep's reason ("" when the audit log holds none)."""

    deal_id: str
    name: str
    status: str
    missing: tuple[str, ...]
    flagged_since: date | None
    url: str | None
    snooze_until: date | None = None
    snooze_reason: str = ""


@dataclass(frozen=True, slots=True)
class OwnerDeals:
    """One owner's flagged deals, oldest flag first, and their snoozed deals apart, the soonest end first
    (snoozed deals are not flagged: a rep acknowledged each with a reason until a date)."""

    owner_id: str
    name: str
    email: str | None
    deals: tuple[DealLine, ...]
    snoozed: tuple[DealLine, ...] = ()


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one recipient gets for one connection and week, in one message per channel: their own
    flagged and snoozed deals (`own`, when they own any) and the rollup of the people they manage (`team`,
    one entry per report with flagged or snoozed deals; `teams` names the configured teams it comes
    from)."""

    recipient: str
    """The e-mail address, lower case: the delivery ledger's key, and how Slack finds the person."""
    name: str
    connection: str
    week: str
    own: OwnerDeals | None
    team: tuple[OwnerDeals, ...] = ()
    teams: tuple[str, ...] = ()

    @property
    def own_count(self) -> int:
        return len(self.own.deals) if self.own is not None else 0

    @property
    def own_snoozed(self) -> int:
        return len(self.own.snoozed) if self.own is not None else 0

    @property
    def team_count(self) -> int:
        return sum(len(member.deals) for member in self.team)

    @property
    def team_snoozed(self) -> int:
        return sum(len(member.snoozed) for member in self.team)


@dataclass(frozen=True, slots=True)
class DigestPlan:
    """The week's digests, and the owners with flagged (or snoozed) deals no digest can reach (no e-mail in
    the CRM, or not in the owners cache), by owner id, for the command to report."""

    digests: tuple[Digest, ...]
    unreachable: tuple[str, ...] = ()
