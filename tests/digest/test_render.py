"""render: the e-mail parts and Slack blocks say the same thing, escape what the CRM wrote, and fit Slack's
limits; ISO week names."""

from __future__ import annotations

import json
from datetime import date

import pytest

from worker.digest.model import DealLine, Digest, OwnerDeals
from worker.digest.render import SLACK_MAX_LINES, SLACK_SECTION_MAX, render
from worker.digest.week import IsoWeek

HOSTILE = 'Acme <script>alert("x")</script> & Sons\u202e'


def digest(deals: int = 1, members: int = 0, name: str = HOSTILE) -> Digest:
    lines = tuple(
        DealLine(
            f"{i}",
            name if i == 0 else f"Deal {i}",
            "poc_unqualified",
            ("Budget",),
            date(2026, 11, 2),
            f"https://crm/{i}",
        )
        for i in range(deals)
    )
    team = tuple(OwnerDeals(f"00{i}", f"Rep <{i}>", f"rep{i}@x.io", lines[:3]) for i in range(members))
    return Digest(
        "ann@x.io", "Ann <Lee>", "sf", "2026-W49", OwnerDeals("005", "Ann", "ann@x.io", lines), team
    )


def test_html_escapes_what_the_crm_wrote_and_text_keeps_it_readable() -> None:
    """The HTML part shows deal and people names as text, never markup; the text part as written, minus
    invisible characters (a bidi override here)."""
    out = render(digest())
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html and "Ann &lt;Lee&gt;" in out.html
    assert '<a href="https://crm/0">' in out.html
    assert '- Acme <script>alert("x")</script> & Sons (POC without BANT)' in out.text
    assert "\u202e" not in out.text
    assert "POC without BANT" in out.text and "missing: Budget" in out.text and "2026-11-02" in out.text


def test_slack_blocks_escape_mrkdwn_and_link_each_deal() -> None:
    """Slack's three control characters are escaped; each deal links to its CRM record."""
    out = render(digest())
    texts = [b["text"]["text"] for b in out.slack_blocks if b["type"] == "section"]
    assert any('<https://crm/0|Acme &lt;script&gt;alert("x")&lt;/script&gt; &amp; Sons>' in t for t in texts)
    assert out.slack_blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "BANT digest 2026-W49"},
    }
    assert "2026-W49" in out.slack_text
    json.dumps(out.slack_blocks)


def test_slack_lists_at_most_its_limit_and_says_how_many_more() -> None:
    """Many deals and reports: at most SLACK_MAX_LINES deals and 50 blocks, sections within 3000
    characters, and a line saying how many more the e-mail has; the e-mail lists them all."""
    out = render(digest(deals=SLACK_MAX_LINES + 7, members=30))
    assert len(out.slack_blocks) <= 50
    assert all(len(b["text"]["text"]) <= SLACK_SECTION_MAX for b in out.slack_blocks if "text" in b)
    context = [e["text"] for b in out.slack_blocks if b["type"] == "context" for e in b["elements"]]
    assert any("…and 7 more" in c for c in context) and any("…and 10 more people" in c for c in context)
    assert all(f"https://crm/{i}" in out.text for i in range(SLACK_MAX_LINES + 7))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-W49", IsoWeek(2026, 49), id="plain"),
        pytest.param("2026-W01", IsoWeek(2026, 1), id="first"),
        pytest.param("2025-W53", None, id="2025-has-52-weeks"),
        pytest.param("2020-W53", IsoWeek(2020, 53), id="2020-has-53"),
        pytest.param("2026-49", None, id="no-W"),
        pytest.param("2026-W9", None, id="one-digit"),
    ],
)
def test_iso_weeks(text: str, expected: IsoWeek | None) -> None:
    """YYYY-Www only, and only weeks the ISO year has."""
    if expected is None:
        with pytest.raises(ValueError, match=r"ISO week"):
            IsoWeek.parse(text)
    else:
        assert IsoWeek.parse(text) == expected and str(expected) == text


def test_the_week_of_a_day_is_its_iso_week() -> None:
    """Dec 31 2024 belongs to 2025-W01; Monday is its first day."""
    assert str(IsoWeek.of(date(2024, 12, 31))) == "2025-W01"
    assert IsoWeek.parse("2025-W01").monday == date(2024, 12, 30)
