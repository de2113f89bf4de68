"""Fixtures that start sandboxes (rate limits off, a fixed start time) and stop them after the test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hubspot import HubSpot
from simple_salesforce import Salesforce

from sandbox import Sandbox, SandboxOptions
from tests.sandbox.clients import START, hs_client, sf_client

Factory = Callable[..., Sandbox]


@pytest.fixture
def make_sandbox() -> Iterator[Factory]:
    """Start sandboxes with option overrides; stop them afterwards and fail if any handler crashed."""
    started: list[Sandbox] = []

    def make(**overrides: Any) -> Sandbox:
        options: dict[str, Any] = {"enforce_rate_limits": False, "start_time": START}
        options.update(overrides)
        sandbox = Sandbox.start(SandboxOptions(**options))
        started.append(sandbox)
        return sandbox

    yield make
    errors = [error for sandbox in started for error in sandbox.server_errors()]
    for sandbox in started:
        sandbox.stop()
    assert not errors, "sandbox handler crashed:\n" + "\n".join(errors)


@pytest.fixture
def sb(make_sandbox: Factory) -> Sandbox:
    """A track-selling sandbox."""
    return make_sandbox()


@pytest.fixture
def sf(sb: Sandbox) -> Salesforce:
    return sf_client(sb)


@pytest.fixture
def hs(sb: Sandbox) -> HubSpot:
    return hs_client(sb)
