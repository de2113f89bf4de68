"""Shared fixtures: the shipped frameworks and a fixed 'today' (tests never read the clock)."""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path

import pytest

from rules import Framework, framework_from_mapping
from tests.log_sink import sink  # noqa: F401 - the `sink` fixture, shared by the logging tests

ROOT = Path(__file__).resolve().parents[1]
FRAMEWORKS = ROOT / "config" / "frameworks"
TODAY = date(2026, 11, 27)


def shipped_framework(name: str) -> Framework:
    with (FRAMEWORKS / f"{name}.toml").open("rb") as handle:
        return framework_from_mapping(tomllib.load(handle), f"{name}.toml")


@pytest.fixture(scope="session")
def bant() -> Framework:
    return shipped_framework("bant")


@pytest.fixture(scope="session")
def meddic() -> Framework:
    return shipped_framework("meddic")


@pytest.fixture
def today() -> date:
    return TODAY
