"""`GET /health`: is each connection syncing? Judged from the state store at request time.

A configured, enabled connection is `degraded` (with a `reason`) when either holds, else `ok`:

- **failing**: its latest `[ops_api] degraded_after_failed_runs` runs that are no longer running all
  `failed` (or were `abandoned`: their process died). A `succeeded`, `stopped` or `quota_stopped` run
  among them breaks the streak, so one good run recovers the connection.
- **stale**: `[ops_api] degraded_after_minutes` > 0 and its latest succeeded run finished longer ago than
  that. A connection that has never succeeded is judged from when this service started instead, so a new
  connection (or one added by a restart) has that long to succeed before it is degraded on age.

A disabled connection (`enabled = false`) is not scheduled, so it is never judged: always `ok`.

The overall `status` is `degraded` when any connection is. The answer is HTTP 200 either way: `/health`
also serves as a liveness probe, and restarting the process (what an orchestrator does on a failing
probe) fixes neither a CRM refusing requests nor missing credentials; alert on the body or on the
`bant_sync_connection_degraded` metric instead. The answer carries no run error text (the endpoint needs
no token, and a CRM's message may quote data): the reason says where to look (`GET /runs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from worker.service import Worker
from worker.state.model import RunStatus

OK = "ok"
DEGRADED = "degraded"
FAILURES = frozenset({RunStatus.FAILED.value, RunStatus.ABANDONED.value})
"""Run statuses that count towards a failing streak."""


@dataclass(frozen=True)
class ConnectionHealth:
    status: str
    reason: str | None
    enabled: bool
    lease_holder: str | None
    last_run_status: str | None
    last_success_at: datetime | None
    failed_in_a_row: int

    @property
    def degraded(self) -> bool:
        return self.status == DEGRADED

    def as_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "enabled": self.enabled,
            "lease_holder": self.lease_holder,
            "last_run_status": self.last_run_status,
            "last_success_at": self.last_success_at.isoformat() if self.last_success_at else None,
            "failed_in_a_row": self.failed_in_a_row,
        }


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} d"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes or not parts:
        parts.append(f"{minutes} min")
    return " ".join(parts)


class HealthCheck:
    """Judges the connections of `worker` against its `[ops_api]` settings; `started_at` is when this
    service started (the reference for connections that have never succeeded)."""

    def __init__(self, worker: Worker, started_at: datetime) -> None:
        self._worker = worker
        self.started_at = started_at

    def connection(self, name: str, now: datetime) -> ConnectionHealth:
        worker = self._worker
        limits = worker.settings.ops_api
        store = worker.store
        lease = store.lease_holder(name, now)
        outcomes = store.latest_outcomes(name, limits.degraded_after_failed_runs)
        streak = 0
        for outcome in outcomes:
            if outcome.status not in FAILURES:
                break
            streak += 1
        last_success = store.last_succeeded(name)
        enabled = worker.settings.connections[name].enabled
        reasons = []
        if enabled and streak >= limits.degraded_after_failed_runs:
            reasons.append(
                f"the latest {streak} runs failed: see GET /runs?connection={name} for their errors"
            )
        if enabled and limits.degraded_after_minutes > 0:
            since = last_success or self.started_at
            limit = timedelta(minutes=limits.degraded_after_minutes)
            if now - since > limit:
                what = (
                    f"no successful run for {_span(now - since)}"
                    if last_success
                    else f"no successful run since the service started {_span(now - since)} ago"
                )
                reasons.append(f"{what} (degraded after {_span(limit)})")
        return ConnectionHealth(
            status=DEGRADED if reasons else OK,
            reason="; ".join(reasons) or None,
            enabled=enabled,
            lease_holder=lease.run_id if lease else None,
            last_run_status=outcomes[0].status if outcomes else None,
            last_success_at=last_success,
            failed_in_a_row=streak,
        )

    def connections(self, now: datetime) -> dict[str, ConnectionHealth]:
        return {name: self.connection(name, now) for name in self._worker.settings.connections}

    def report(self) -> dict[str, Any]:
        """The body of GET /health."""
        found = self.connections(self._worker.clock())
        overall = DEGRADED if any(h.degraded for h in found.values()) else OK
        return {"status": overall, "connections": {name: h.as_json() for name, h in found.items()}}
