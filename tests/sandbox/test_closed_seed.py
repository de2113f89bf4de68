"""The synthetic closed history (`--closed-deals N`): closed deals with field history, for the report at
scale, added to whichever story is seeded."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from rules import Deal, evaluate
from sandbox.seeds import SeedError, build_story
from sandbox.seeds.model import STAGES
from worker.config.frameworks import load_framework

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_closed_deals_are_added_to_the_story_with_history() -> None:
    story = build_story("empty", 7, 0, NOW, closed=2000)
    assert len(story.deals) == 2000 and not any(d.is_open for d in story.deals)
    assert all(STAGES[d.stage][0] in {"Closed Won", "Closed Lost"} for d in story.deals)
    for deal in story.deals:
        stages = [c for c in deal.changes if c.field == "stage"]
        assert len(stages) == 3 and stages[-1].new == str(deal.stage) and stages[-1].at <= NOW
    assert all(d.created < d.changes[0].at for d in story.deals)
    filled_in = [d for d in story.deals if any(c.field != "stage" for c in d.changes)]
    assert 50 < len(filled_in) < 200
    with_track = build_story("track-selling", 7, 0, NOW, closed=10)
    assert len(with_track.deals) == len(build_story("track-selling", 7, 0, NOW).deals) + 10


def test_qualified_pocs_at_entry_win_far_more_often() -> None:
    """The mix the benchmark's report should find: POCs qualified at entry win about 80%, others about 5%."""
    framework = load_framework("bant")
    story = build_story("empty", 7, 0, NOW, closed=4000)
    won = {True: [0, 0], False: [0, 0]}
    for deal in story.deals:
        if deal.kind != "POC":
            continue
        changed = {c.field: c.old for c in deal.changes if c.field != "stage"}
        values = {k: changed.get(k, getattr(deal, k)) for k in ("budget", "authority", "need", "timing")}
        at_entry = Deal(id="x", deal_type="POC", stage="Prospecting", **values)
        qualified = evaluate(at_entry, framework, deal.created.date()).status == "qualified"
        won[qualified][0] += deal.stage == 8
        won[qualified][1] += 1
    assert 0.7 < won[True][0] / won[True][1] < 0.9
    assert won[False][0] / won[False][1] < 0.1


def test_a_negative_count_is_refused() -> None:
    with pytest.raises(SeedError, match="--closed-deals"):
        build_story("empty", 7, 0, NOW, closed=-1)
