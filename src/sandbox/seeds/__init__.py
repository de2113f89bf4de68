"""Seed data for the sandbox: named stories and synthetic scale, the same story in both CRMs."""

from __future__ import annotations

from datetime import datetime

from sandbox.seeds.model import SeedDeal, Story
from sandbox.seeds.story import synthetic, synthetic_closed, track_selling

SEEDS = ("track-selling", "empty")


class SeedError(ValueError):
    """An unknown seed name or an impossible size; the message lists what is available."""


def build_story(name: str, seed_value: int, deals: int, now: datetime, closed: int = 0) -> Story:
    """The story for ``name``; ``deals > 0`` replaces it with that many synthetic open deals; ``closed > 0``
    adds that many synthetic closed deals with field history."""
    story = _open_story(name, seed_value, deals, now)
    if closed < 0:
        raise SeedError(f"--closed-deals must be 0 or more, not {closed}")
    if closed:
        return Story(deals=story.deals + synthetic_closed(closed, seed_value, now).deals)
    return story


def _open_story(name: str, seed_value: int, deals: int, now: datetime) -> Story:
    if name not in SEEDS:
        raise SeedError(f"unknown seed {name!r}: choose one of {', '.join(SEEDS)}")
    if deals < 0:
        raise SeedError(f"--deals must be 0 or more, not {deals}")
    if deals:
        return synthetic(deals, seed_value, now)
    if name == "empty":
        return Story(deals=())
    return track_selling(seed_value, now)


__all__ = ["SEEDS", "SeedDeal", "SeedError", "Story", "build_story"]
