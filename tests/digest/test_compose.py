"""compose: who gets which flagged deals, as pure code (no store, no CRM, no clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.model import Owner
from worker.config.settings import TeamSettings
from worker.digest.compose import compose, criterion_label
from worker.digest.model import Digest
from worker.state import DealState

T = datetime(2026, 11, 30, 8, tzinfo=UTC)
LABELS = {"budget": "Budget", "authority": "Economic buyer", "need": "Need", "timing": "Timing"}
ANN = Owner("005A", "Ann Lee", "Ann@Northbeam.example", "005M", True)
BOB = Owner("005B", "Bob Roy", "bob@northbeam.example", "005M", True)
MAY = Owner("005M", "Maya Chen", "maya@northbeam.example", None, True)
GONE = Owner("005G", "Gus Old", "gus@northbeam.example", "005M", False)
MUTE = Owner("005N", "No Mail", None, None, True)
OWNERS = [ANN, BOB, MAY, GONE, MUTE]


def state(
    deal_id: str,
    owner: str | None,
    missing: tuple[str, ...],
    since: date | None = None,
    name: str | None = None,
) -> DealState:
    return DealState(deal_id, owner, "needs_qualification", missing, T, since, name or f"Deal {deal_id} name")


def by_recipient(digests: tuple[Digest, ...]) -> dict[str, Digest]:
    return {d.recipient: d for d in digests}


def test_each_owner_gets_their_own_deals_oldest_flag_first_with_labels_and_links() -> None:
    """An owner's digest lists only their deals, oldest flag first (undated last), each with the
    framework's labels for what is missing and its CRM link; the address is lower-cased."""
    flagged = [
        state("1", "005A", ("budget", "authority"), date(2026, 11, 20)),
        state("2", "005A", ("timing",), None),
        state("3", "005A", ("need",), date(2026, 10, 1)),
        state("4", "005B", ("budget",), date(2026, 11, 1)),
    ]
    links = {"1": "https://crm/1", "3": "https://crm/3"}
    plan = compose("sf", "2026-W49", OWNERS, flagged, LABELS, links, managers=False)
    digests = by_recipient(plan.digests)
    assert set(digests) == {"ann@northbeam.example", "bob@northbeam.example"}
    ann = digests["ann@northbeam.example"]
    assert (
        ann.own is not None
        and ann.team == ()
        and (ann.name, ann.week, ann.connection)
        == (
            "Ann Lee",
            "2026-W49",
            "sf",
        )
    )
    assert [(d.deal_id, d.missing, d.url) for d in ann.own.deals] == [
        ("3", ("Need",), "https://crm/3"),
        ("1", ("Budget", "Economic buyer"), "https://crm/1"),
        ("2", ("Timing",), None),
    ]
    assert [d.deal_id for d in digests["bob@northbeam.example"].own.deals] == ["4"]  # type: ignore[union-attr]


def test_a_manager_gets_the_rollup_of_their_reports_and_their_own_deals_in_one_digest() -> None:
    """ManagerId rolls reports up to their manager; a manager who owns flagged deals gets one digest with
    both; an inactive report's deals still reach the manager."""
    flagged = [
        state("1", "005A", ("budget",)),
        state("2", "005B", ("need",)),
        state("3", "005M", ("timing",)),
    ]
    flagged.append(state("4", "005G", ("need",)))
    plan = compose("sf", "2026-W49", OWNERS, flagged, LABELS, {})
    digests = by_recipient(plan.digests)
    maya = digests["maya@northbeam.example"]
    assert maya.own is not None and [d.deal_id for d in maya.own.deals] == ["3"]
    assert [(m.name, [d.deal_id for d in m.deals]) for m in maya.team] == [
        ("Ann Lee", ["1"]),
        ("Bob Roy", ["2"]),
        ("Gus Old", ["4"]),
    ]
    assert (maya.own_count, maya.team_count) == (1, 3)
    assert digests["ann@northbeam.example"].team == ()
    assert "gus@northbeam.example" not in digests and plan.unreachable == ("005G",)


def test_managers_off_leaves_only_configured_teams() -> None:
    """With `managers = false` ManagerId rolls nothing up; a configured team still does."""
    flagged = [state("1", "005A", ("budget",)), state("2", "005B", ("need",))]
    team = TeamSettings("Field", ("BOB@northbeam.example",), ("vp@northbeam.example",))
    plan = compose("hs", "2026-W49", OWNERS, flagged, LABELS, {}, [team], managers=False)
    digests = by_recipient(plan.digests)
    assert "maya@northbeam.example" not in digests
    vp = digests["vp@northbeam.example"]
    assert vp.own is None and vp.teams == ("Field",) and vp.name == "vp@northbeam.example"
    assert [m.owner_id for m in vp.team] == ["005B"]


def test_a_team_manager_who_is_also_a_member_is_not_in_their_own_rollup() -> None:
    """Teams list people by e-mail in any case; a manager listed as a member sees their deals once."""
    flagged = [state("1", "005A", ("budget",)), state("2", "005M", ("need",))]
    team = TeamSettings(
        "EMEA", ("ann@northbeam.example", "MAYA@northbeam.example"), ("Maya@Northbeam.example",)
    )
    maya = by_recipient(compose("hs", "w", OWNERS, flagged, LABELS, {}, [team], managers=False).digests)[
        "maya@northbeam.example"
    ]
    assert maya.own is not None and [d.deal_id for d in maya.own.deals] == ["2"]
    assert [m.owner_id for m in maya.team] == ["005A"]


def test_owners_no_digest_can_reach_are_listed() -> None:
    """No e-mail, inactive, not in the owners cache, or no owner at all: listed as unreachable, no digest."""
    flagged = [
        state("1", "005N", ("budget",)),
        state("2", "005G", ("need",)),
        state("3", "005Z", ("need",)),
        state("4", None, ("need",)),
    ]
    plan = compose("sf", "w", [MUTE, GONE], flagged, LABELS, {}, managers=False)
    assert plan.digests == ()
    assert plan.unreachable == ("(no owner)", "005G", "005N", "005Z")


def test_no_flagged_deals_means_no_digest() -> None:
    """Nothing flagged: nobody gets a message, managers included."""
    team = TeamSettings("Field", ("ann@northbeam.example",), ("vp@northbeam.example",))
    assert compose("sf", "w", OWNERS, [], LABELS, {}, [team]).digests == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("authority", "Economic buyer", id="framework-label"),
        pytest.param("economic_buyer", "Economic buyer", id="readable-name"),
        pytest.param("champion", "Champion", id="one-word"),
    ],
)
def test_criterion_label(name: str, expected: str) -> None:
    """The framework's label where it has one, else the criterion's name made readable."""
    assert criterion_label(name, LABELS) == expected


def test_a_deal_without_a_stored_name_is_named_by_its_id() -> None:
    """States stored before schema v5 have no name until their next run: the digest says "Deal <id>"."""
    flagged = [DealState("006X", "005A", "poc_unqualified", ("budget",), T)]
    [digest] = compose("sf", "w", OWNERS, flagged, LABELS, {}, managers=False).digests
    assert digest.own is not None and digest.own.deals[0].name == "Deal 006X"
    assert digest.own.deals[0].status == "poc_unqualified"
