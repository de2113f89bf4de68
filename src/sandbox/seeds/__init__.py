"""Seed data for the sandbox: named stories and synthetic scale, the same story in both CRMs."""

from __future__ import annotations

from datetime import datetime

from sandbox.seeds.model import SeedDeal, Story
from sandbox.seeds.story import synthetic, track_selling

SEEDS = ("track-selling", "empty")


class SeedError(ValueError):
    """An unknown seed name or an impossible size; the message lists what is available."""


def build_story(name: str, seed_value: int, deals: int, now: datetime) -> Story:
    """The story for ``name``; ``deals > 0`` replaces it with that many synthetic open deals."""
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
