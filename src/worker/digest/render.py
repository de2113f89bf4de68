"""A Digest in words: the e-mail's subject, plain text and HTML parts, and Slack's blocks and fallback text.

Jinja2 templates under `templates/`: the HTML one autoescaped (deal and people names are the CRM's, so
anyone who can name a deal could otherwise write HTML into a manager's mail), the text one not, and the
Slack one JSON whose every text is escaped for Slack's mrkdwn (`&`, `<`, `>`) and then `tojson`. Names lose
invisible characters (bidi overrides, zero-width) as in follow-up tasks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from worker.digest.model import DealLine, Digest, OwnerDeals
from worker.sync.follow_up import visible

STATUS_WORDS = {"poc_unqualified": "POC without BANT", "qualify_out": "qualify or close out"}
"""How the loudest statuses read beside a deal's name (a plain "needs qualification" says nothing more)."""

SLACK_MAX_LINES = 20
"""Deals listed in a Slack message per owner (and per report in a rollup); the e-mail lists them all."""
SLACK_MAX_MEMBERS = 20
"""Reports listed in a Slack rollup (a message holds at most 50 blocks)."""
SLACK_SECTION_MAX = 3000
"""Slack's limit on a section block's text."""


@dataclass(frozen=True, slots=True)
class Rendered:
    """One recipient's messages: the e-mail (subject, text, HTML) and the Slack post (blocks, fallback)."""

    subject: str
    text: str
    html: str
    slack_text: str
    slack_blocks: tuple[dict[str, Any], ...]


def mrkdwn(text: object) -> str:
    """Text as Slack shows it literally: its three control characters escaped (api.slack.com/reference/
    surfaces/formatting#escaping), invisible characters dropped."""
    cleaned = visible(str(text), newlines=False)
    return cleaned.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_link(deal: DealLine) -> str:
    """The deal's name, linked to its CRM record when there is one (`|` would end a link's URL)."""
    name = mrkdwn(deal.name).replace("|", "¦")
    return f"<{deal.url}|{name}>" if deal.url else name


def snooze_words(deal: DealLine) -> str:
    """ "snoozed until 2026-12-20: <reason>" (plain text; the reason as the rep wrote it)."""
    until = deal.snooze_until.isoformat() if deal.snooze_until is not None else "?"
    return f"snoozed until {until}" + (f": {deal.snooze_reason}" if deal.snooze_reason else "")


def slack_member(member: OwnerDeals, max_lines: int) -> str:
    """One report in a Slack rollup: name, counts, their flagged deals then their snoozed ones, within one
    section's 3000 characters."""
    count, rested = len(member.deals), len(member.snoozed)
    lines = [f"*{mrkdwn(member.name)}*: {count} flagged" + (f", {rested} snoozed" if rested else "")]
    for deal in member.deals[:max_lines]:
        missing = mrkdwn(", ".join(deal.missing) or "qualification")
        lines.append(f"• {slack_link(deal)}: {missing}")
    if count > max_lines:
        lines.append(f"…and {count - max_lines} more")
    for deal in member.snoozed[:max_lines]:
        lines.append(f"◦ {slack_link(deal)}: _{mrkdwn(snooze_words(deal))}_")
    if rested > max_lines:
        lines.append(f"…and {rested - max_lines} more snoozed")
    text = "\n".join(lines)
    return text if len(text) <= SLACK_SECTION_MAX else text[: SLACK_SECTION_MAX - 1] + "…"


def slack_snoozed(digest: Digest, max_lines: int) -> str:
    """The recipient's own snoozed deals in one Slack section (a block each would break Slack's 50): the
    count, then each deal with its end date and reason, within the section's 3000 characters."""
    own = digest.own.snoozed if digest.own is not None else ()
    hello = f"Hi {mrkdwn(digest.name)}, your" if digest.own_count == 0 else "Your"
    head = f"{hello} *{len(own)} snoozed* (flagged again when the snooze ends, if still unqualified):"
    lines = [f"◦ {slack_link(deal)}: _{mrkdwn(snooze_words(deal))}_" for deal in own[:max_lines]]
    while True:  # drop whole lines (never cut a link) until the section fits, counting them as more
        more = len(own) - len(lines)
        text = "\n".join([head, *lines, *([f"…and {more} more snoozed: see the e-mail"] if more else [])])
        if len(text) <= SLACK_SECTION_MAX or not lines:
            return text[:SLACK_SECTION_MAX]
        lines.pop()


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("worker.digest", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["visible"] = lambda text: visible(str(text), newlines=False)
    env.filters["mrkdwn"] = mrkdwn
    env.filters["slack_link"] = slack_link
    env.filters["slack_member"] = slack_member
    env.filters["snooze_words"] = snooze_words
    env.filters["slack_snoozed"] = slack_snoozed
    return env


def subject(digest: Digest) -> str:
    """ "BANT digest 2026-W49: 3 of your deals need qualification; 1 snoozed" (and the team's counts for a
    manager)."""
    parts = []
    if digest.own is not None and (digest.own_count or not digest.own_snoozed):
        parts.append(
            f"{digest.own_count} of your deals {'needs' if digest.own_count == 1 else 'need'} qualification"
        )
    if digest.own_snoozed:
        parts.append(
            f"{digest.own_snoozed} {'is' if digest.own_snoozed == 1 else 'are'} snoozed"
            if digest.own_count
            else f"{digest.own_snoozed} of your deals {'is' if digest.own_snoozed == 1 else 'are'} snoozed"
        )
    if digest.team:
        team = f"your team has {digest.team_count} flagged"
        parts.append(team + (f", {digest.team_snoozed} snoozed" if digest.team_snoozed else ""))
    return f"BANT digest {digest.week} ({digest.connection}): " + "; ".join(parts)


def render(digest: Digest) -> Rendered:
    """The digest's e-mail parts and Slack message."""
    env = _environment()
    title = subject(digest)
    values = {
        "digest": digest,
        "subject": title,
        "status_words": STATUS_WORDS,
        "max_lines": SLACK_MAX_LINES,
        "max_members": SLACK_MAX_MEMBERS,
    }
    blocks = json.loads(env.get_template("slack.json.j2").render(values))
    return Rendered(
        subject=title,
        text=env.get_template("email.txt.j2").render(values),
        html=env.get_template("email.html.j2").render(values),
        slack_text=title,
        slack_blocks=tuple(blocks),
    )
