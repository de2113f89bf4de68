"""Snoozed deals in the digest: listed apart from the flagged ones with their end date and reason, an owner
with only snoozed deals still hears about them, a manager's rollup counts them, and every channel says so
(escaped, within Slack's limits)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

from connectors.model import Owner
from worker.config.settings import TeamSettings
from worker.digest.compose import compose
from worker.digest.model import DealLine, Digest, OwnerDeals
from worker.digest.render import SLACK_MAX_LINES, SLACK_SECTION_MAX, render, subject
from worker.state import DealState

T = datetime(2026, 11, 30, 8, tzinfo=UTC)
LABELS = {"budget": "Budget", "authority": "Economic buyer", "need": "Need", "timing": "Timing"}
ANN = Owner("005A", "Ann Lee", "ann@northbeam.example", "005M", True)
BOB = Owner("005B", "Bob Roy", "bob@northbeam.example", "005M", True)
MAY = Owner("005M", "Maya Chen", "maya@northbeam.example", None, True)
OWNERS = [ANN, BOB, MAY]
REASON = "Customer budget cycle opens on 1 January"


def flagged(deal_id: str, owner: str) -> DealState:
    return DealState(
        deal_id, owner, "needs_qualification", ("budget",), T, date(2026, 11, 2), f"Deal {deal_id}"
    )


def snoozed(deal_id: str, owner: str, until: date) -> DealState:
    return DealState(
        deal_id,
        owner,
        "snoozed",
        ("need",),
        T,
        date(2026, 11, 1),
        f"Deal {deal_id}",
        until,
        date(2026, 11, 25),
    )


def by_recipient(digests: tuple[Digest, ...]) -> dict[str, Digest]:
    return {d.recipient: d for d in digests}


def test_snoozed_deals_are_listed_apart_with_their_date_and_reason() -> None:
    """Ann's flagged deal is in `deals`, her snoozed ones in `snoozed` (the soonest end first) with the
    reason; Bob, with only a snoozed deal, still gets a digest; Maya's rollup counts both kinds."""
    plan = compose(
        "sf",
        "2026-W49",
        OWNERS,
        [flagged("1", "005A")],
        LABELS,
        {"2": "https://crm/2"},
        snoozed=[
            snoozed("3", "005A", date(2026, 12, 20)),
            snoozed("2", "005A", date(2026, 12, 10)),
            snoozed("4", "005B", date(2026, 12, 5)),
        ],
        reasons={"2": REASON, "4": REASON},
    )
    digests = by_recipient(plan.digests)
    ann = digests["ann@northbeam.example"]
    assert ann.own is not None and [d.deal_id for d in ann.own.deals] == ["1"]
    assert [(d.deal_id, d.snooze_until, d.snooze_reason, d.url) for d in ann.own.snoozed] == [
        ("2", date(2026, 12, 10), REASON, "https://crm/2"),
        ("3", date(2026, 12, 20), "", None),
    ]
    assert (ann.own_count, ann.own_snoozed) == (1, 2)
    bob = digests["bob@northbeam.example"]
    assert bob.own is not None and bob.own.deals == () and [d.deal_id for d in bob.own.snoozed] == ["4"]
    maya = digests["maya@northbeam.example"]
    assert [(m.name, len(m.deals), len(m.snoozed)) for m in maya.team] == [
        ("Ann Lee", 1, 2),
        ("Bob Roy", 0, 1),
    ]
    assert (maya.team_count, maya.team_snoozed) == (1, 3)


def test_a_configured_team_counts_its_members_snoozes() -> None:
    team = TeamSettings("Field", ("bob@northbeam.example",), ("vp@northbeam.example",))
    plan = compose(
        "hs",
        "w",
        OWNERS,
        [],
        LABELS,
        {},
        [team],
        managers=False,
        snoozed=[snoozed("4", "005B", date(2026, 12, 5))],
    )
    vp = by_recipient(plan.digests)["vp@northbeam.example"]
    assert vp.own is None and (vp.team_count, vp.team_snoozed) == (0, 1)


def _line(deal_id: str, name: str, until: date | None = None, reason: str = "") -> DealLine:
    status = "snoozed" if until else "poc_unqualified"
    return DealLine(
        deal_id, name, status, ("Budget",), date(2026, 11, 2), f"https://crm/{deal_id}", until, reason
    )


def test_every_channel_shows_snoozes_apart_and_escapes_the_reason() -> None:
    hostile = "Board meets <b>15 Dec</b> & decides"
    own = OwnerDeals(
        "005A",
        "Ann",
        "ann@x.io",
        (_line("1", "Flagged deal"),),
        (_line("2", "Resting deal", date(2026, 12, 20), hostile),),
    )
    member = OwnerDeals("005B", "Bob", "bob@x.io", (), (_line("3", "Bob's rest", date(2026, 12, 5), REASON),))
    out = render(Digest("ann@x.io", "Ann", "sf", "2026-W49", own, (member,)))
    assert out.subject == (
        "BANT digest 2026-W49 (sf): 1 of your deals needs qualification; 1 is snoozed; "
        "your team has 0 flagged, 1 snoozed"
    )
    flagged_part, snoozed_part = out.text.split("Snoozed (1)")
    assert "Flagged deal" in flagged_part and "Resting deal" not in flagged_part
    assert f"snoozed until 2026-12-20: {hostile}" in snoozed_part
    assert (
        "Bob: 0 flagged, 1 snoozed" in out.text
        and f"Bob's rest: snoozed until 2026-12-05: {REASON}" in out.text
    )
    assert "<b>15 Dec</b>" not in out.html and "&lt;b&gt;15 Dec&lt;/b&gt; &amp; decides" in out.html
    assert "Snoozed (1)" in out.html and "2026-12-20" in out.html
    slack = json.dumps(out.slack_blocks, ensure_ascii=False)
    assert "&lt;b&gt;15 Dec&lt;/b&gt; &amp; decides" in slack and "<b>" not in slack
    assert "*1 snoozed*" in slack and "*Bob*: 0 flagged, 1 snoozed" in slack
    assert "*Your team*: 0 flagged deals, 1 snoozed" in slack


def test_an_owner_with_only_snoozed_deals_reads_about_them_alone() -> None:
    own = OwnerDeals("005B", "Bob", "bob@x.io", (), (_line("2", "Resting deal", date(2026, 12, 20), REASON),))
    out = render(Digest("bob@x.io", "Bob", "sf", "2026-W49", own))
    assert subject(Digest("bob@x.io", "Bob", "sf", "2026-W49", own)).endswith(": 1 of your deals is snoozed")
    assert "need qualification" not in out.text and "needs qualification" not in out.text
    assert "Snoozed (1)" in out.text and REASON in out.text
    texts = [b["text"]["text"] for b in out.slack_blocks if b["type"] == "section"]
    assert texts[0].startswith("Hi Bob, your *1 snoozed*")


def test_slack_keeps_within_its_limits_with_many_snoozes() -> None:
    """Many flagged and snoozed deals and many reports: still at most 50 blocks, sections within 3000
    characters, and the snoozes beyond the limit counted."""
    many = SLACK_MAX_LINES + 5
    deals = tuple(_line(f"f{i}", f"Deal {i}") for i in range(many))
    rests = tuple(_line(f"s{i}", f"Rest {i}", date(2026, 12, 20), REASON * 3) for i in range(many))
    team = tuple(OwnerDeals(f"00{i}", f"Rep {i}", f"r{i}@x.io", deals[:3], rests) for i in range(30))
    out = render(
        Digest("ann@x.io", "Ann", "sf", "2026-W49", OwnerDeals("005", "Ann", "ann@x.io", deals, rests), team)
    )
    assert len(out.slack_blocks) <= 50
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_MAX for b in out.slack_blocks if "text" in b)
    own = next(
        b["text"]["text"] for b in out.slack_blocks if "*25 snoozed*" in b.get("text", {}).get("text", "")
    )
    assert own.endswith("more snoozed: see the e-mail") and "…and " in own
    assert all(f"Rest {i}" in out.text for i in range(many))


def test_the_footer_speaks_of_tasks_only_where_tasks_are_open() -> None:
    """A digest of snoozed deals only does not promise a follow-up task (a snooze completes it)."""
    rest = OwnerDeals(
        "005B", "Bob", "bob@x.io", (), (_line("2", "Resting deal", date(2026, 12, 20), REASON),)
    )
    out = render(Digest("bob@x.io", "Bob", "sf", "2026-W49", rest))
    for part in (out.text, out.html, json.dumps(out.slack_blocks)):
        assert "Each deal also has a follow-up task" not in part
        assert "task is completed while the snooze holds" in part
    assert out.text.startswith("Hi Bob,\n\nSnoozed (1)")
