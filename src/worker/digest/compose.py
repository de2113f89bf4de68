"""Who gets which deals: from the owners cache, the flagged deal states and the framework's labels, one
Digest per recipient. Pure: every input is passed in, nothing is read or sent.

- An owner with flagged deals gets them, if the CRM gives them an e-mail and they are active; their snoozed
  deals (until when, the rep's reason) are listed apart, and an owner with only snoozed deals gets a digest
  too (it says when each flag comes back). A manager's rollup counts and lists each report's snoozed deals
  apart from the flagged ones the same way.
- A manager gets a rollup of the flagged deals of each person who reports to them (`Owner.manager_id`,
  Salesforce's `User.ManagerId`), when `managers` is on, and of each member of every configured team
  (`[[digest.teams]]`) they are named a manager of: the way to roll up where the CRM has no managers
  (HubSpot). A person is in a rollup once, however many ways they report to its recipient.
- A person who owns flagged deals and manages people gets one digest holding both.
- Deals whose owner no digest can reach (no e-mail, inactive, unknown to the cache, no owner) still count in
  their manager's rollup where there is one, and the owner is listed as unreachable.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date

from connectors.model import Owner
from worker.config.settings import TeamSettings
from worker.digest.model import DealLine, Digest, DigestPlan, OwnerDeals
from worker.state import DealState

NO_OWNER = "(no owner)"


def criterion_label(name: str, labels: Mapping[str, str]) -> str:
    """The framework's label for a criterion, else its name made readable ("economic_buyer" ->
    "Economic buyer")."""
    return labels.get(name) or name.replace("_", " ").strip().capitalize() or name


def _line(
    state: DealState, labels: Mapping[str, str], links: Mapping[str, str], reason: str = ""
) -> DealLine:
    return DealLine(
        deal_id=state.deal_id,
        name=(state.deal_name or "").strip() or f"Deal {state.deal_id}",
        status=state.status,
        missing=tuple(criterion_label(m, labels) for m in state.missing),
        flagged_since=state.flagged_since,
        url=links.get(state.deal_id),
        snooze_until=state.snooze_until,
        snooze_reason=reason,
    )


def _oldest_first(line: DealLine) -> tuple[date, str, str]:
    return (line.flagged_since or date.max, line.name.casefold(), line.deal_id)


def _soonest_end_first(line: DealLine) -> tuple[date, str, str]:
    return (line.snooze_until or date.max, line.name.casefold(), line.deal_id)


def owner_deals(
    owners: Iterable[Owner],
    flagged: Iterable[DealState],
    labels: Mapping[str, str],
    links: Mapping[str, str],
    snoozed: Iterable[DealState] = (),
    reasons: Mapping[str, str] | None = None,
) -> dict[str, OwnerDeals]:
    """Each owner's flagged deals, oldest flag first, and snoozed deals (with `reasons`, the rep's reason
    by deal id), the soonest end first, by owner id ("" for deals without an owner)."""
    known = {owner.id: owner for owner in owners}
    why = reasons or {}
    lines: dict[str, list[DealLine]] = defaultdict(list)
    snoozes: dict[str, list[DealLine]] = defaultdict(list)
    for state in flagged:
        lines[state.owner_id or ""].append(_line(state, labels, links))
    for state in snoozed:
        snoozes[state.owner_id or ""].append(_line(state, labels, links, why.get(state.deal_id, "")))
    found: dict[str, OwnerDeals] = {}
    for owner_id in sorted(set(lines) | set(snoozes)):
        owner = known.get(owner_id)
        name = owner.name if owner is not None else (owner_id or NO_OWNER)
        email = owner.email if owner is not None else None
        found[owner_id] = OwnerDeals(
            owner_id,
            name,
            email,
            tuple(sorted(lines.get(owner_id, []), key=_oldest_first)),
            tuple(sorted(snoozes.get(owner_id, []), key=_soonest_end_first)),
        )
    return found


def _reachable(owner: Owner | None) -> str | None:
    """The owner's e-mail (lower case) when a digest can go to them."""
    if owner is None or not owner.active or not owner.email or "@" not in owner.email:
        return None
    return owner.email.strip().lower()


def compose(
    connection: str,
    week: str,
    owners: Sequence[Owner],
    flagged: Sequence[DealState],
    labels: Mapping[str, str],
    links: Mapping[str, str],
    teams: Sequence[TeamSettings] = (),
    *,
    managers: bool = True,
    snoozed: Sequence[DealState] = (),
    reasons: Mapping[str, str] | None = None,
) -> DigestPlan:
    """One Digest per recipient (by e-mail, sorted), and the owners with flagged or snoozed deals none can
    reach. `snoozed` are the snoozed deal states, `reasons` each one's snooze reason by deal id."""
    by_id = {owner.id: owner for owner in owners}
    by_email: dict[str, list[Owner]] = defaultdict(list)
    for owner in owners:
        if owner.email:
            by_email[owner.email.strip().lower()].append(owner)
    grouped = owner_deals(owners, flagged, labels, links, snoozed, reasons)

    own: dict[str, OwnerDeals] = {}
    unreachable: list[str] = []
    for owner_id, deals in grouped.items():
        address = _reachable(by_id.get(owner_id))
        if address is None:
            unreachable.append(owner_id or NO_OWNER)
        elif address in own:  # two CRM users sharing one address: one digest with both lists
            merged = sorted(own[address].deals + deals.deals, key=_oldest_first)
            rested = sorted(own[address].snoozed + deals.snoozed, key=_soonest_end_first)
            own[address] = OwnerDeals(owner_id, deals.name, address, tuple(merged), tuple(rested))
        else:
            own[address] = deals

    rollups: dict[str, dict[str, OwnerDeals]] = defaultdict(dict)
    team_names: dict[str, list[str]] = defaultdict(list)
    if managers:
        for owner_id, deals in grouped.items():
            report = by_id.get(owner_id)
            manager = by_id.get(report.manager_id) if report is not None and report.manager_id else None
            address = _reachable(manager)
            if address is not None and owner_id:
                rollups[address][owner_id] = deals
    for team in teams:
        members = {m.strip().lower() for m in team.members}
        for address in {m.strip().lower() for m in team.managers}:
            team_names[address].append(team.name)
            for member in sorted(members - {address}):
                for member_owner in by_email.get(member, []):
                    if member_owner.id in grouped:
                        rollups[address][member_owner.id] = grouped[member_owner.id]

    digests = []
    for address in sorted(set(own) | {a for a, reports in rollups.items() if reports}):
        person = next(iter(by_email.get(address, [])), None)
        reports = sorted(rollups.get(address, {}).values(), key=lambda d: (d.name.casefold(), d.owner_id))
        digests.append(
            Digest(
                recipient=address,
                name=person.name if person is not None else address,
                connection=connection,
                week=week,
                own=own.get(address),
                team=tuple(reports),
                teams=tuple(sorted(set(team_names.get(address, [])))),
            )
        )
    return DigestPlan(tuple(digests), tuple(sorted(unreachable)))
