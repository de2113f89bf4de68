"""The retry and timeout knobs every CRM connection shares, declared and validated once.

`RequestSettings` is the base of each CRM's settings dataclass, so the keys a person writes stay flat
(`[connections.NAME] max_attempts = 3`) and mean the same for Salesforce and HubSpot. A connector builds
its `RetryPolicy` and its `Timeouts` from them through `retry_policy` and `RequestSettings.timeouts`, never
field by field.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from connectors.http import Timeouts
from connectors.retry import RetryPolicy


@dataclass(frozen=True, slots=True)
class RequestSettings:
    """Timeouts (seconds) of each request, attempts per request and retries per run (docs/design.md §6)."""

    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    max_attempts: int = 5
    retry_base_delay: float = 0.5
    retry_max_delay: float = 60.0
    run_retry_budget: int = 200

    @property
    def timeouts(self) -> Timeouts:
        return Timeouts(self.connect_timeout, self.read_timeout)

    def request_problems(self) -> list[str]:
        """Every problem with the retry and timeout knobs, each as "<setting>: <what to do>"."""
        problems: list[str] = []
        for name, value in (("connect_timeout", self.connect_timeout), ("read_timeout", self.read_timeout)):
            if not value > 0:
                problems.append(f"{name}: must be a positive number of seconds")
        if self.max_attempts < 1:
            problems.append("max_attempts: must be at least 1")
        if self.retry_base_delay < 0:
            problems.append("retry_base_delay: must be >= 0 seconds")
        if self.retry_max_delay < self.retry_base_delay:
            problems.append("retry_max_delay: must be at least retry_base_delay")
        if self.run_retry_budget < 0:
            problems.append("run_retry_budget: must be >= 0 (0 turns retries off for the run)")
        return problems


def retry_policy(
    settings: RequestSettings, sleep: Callable[[float], None], rng: random.Random | None = None
) -> RetryPolicy:
    """The run's retry policy from a connection's request settings."""
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_delay=settings.retry_base_delay,
        max_delay=settings.retry_max_delay,
        run_budget=settings.run_retry_budget,
        sleep=sleep,
        rng=rng,
    )
