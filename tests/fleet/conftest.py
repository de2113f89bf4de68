"""The fleet's tests: a sandbox fleet's config with the schedule and state store the test asks for.

PostgreSQL tests reuse the state store tests' server lookup (BANT_SYNC_TEST_POSTGRES_URL, skip with a
message when unreachable) and a throwaway schema per test, named in the URL's search_path so the state
store and procrastinate's tables both land in it and parallel tests never meet.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from sandbox.fleet import SandboxFleet
from sandbox.options import SandboxOptions
from tests.unit.state.conftest import libpq_url, pg_schema  # noqa: F401 - the `pg_schema` fixture


def schema_url(url: str, schema: str) -> str:
    """`url` (libpq form) with `search_path` set to `schema` for every connection made with it."""
    separator = "&" if "?" in url else "?"
    return f"{libpq_url(url)}{separator}options={quote(f'-csearch_path={schema}')}"


def fleet_config(
    fleet: SandboxFleet,
    path: Path,
    *,
    state_url: str | None = None,
    every_minutes: int = 1,
    full_sweep_cron: str = "0 2 * * *",
) -> Path:
    """The fleet's config at `path`, every connection with the given schedule, the state store at
    `state_url` when given (it wins over the generated state directory)."""
    fleet.write_config(path)
    text = path.read_text(encoding="utf-8")
    schedule = f"incremental_every_minutes = {every_minutes}\nfull_sweep_cron = {full_sweep_cron!r}\n"
    text = re.sub(r'(crm = "(?:salesforce|hubspot)"\n)', lambda m: m.group(1) + schedule, text)
    if state_url is not None:
        text = text.replace("[state]\n", f"[state]\nurl = {state_url!r}\n", 1)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sandbox_fleet() -> Iterator[SandboxFleet]:
    """Two accounts (four connections), 30 deals each, no rate limits."""
    with SandboxFleet.start(accounts=2, options=SandboxOptions(deals=30, enforce_rate_limits=False)) as fleet:
        yield fleet
