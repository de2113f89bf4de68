"""The one path every CRM call takes: faults, latency, auth, limits, the handler, the log."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from sandbox.clock import SandboxClock
from sandbox.faultbook import FaultBook, Firing
from sandbox.faults import FaultRule
from sandbox.http import Request, Response
from sandbox.requestlog import RequestLog


class Front(Protocol):
    """What one CRM stand-in plugs into the gateway."""

    crm: str

    def exempt(self, request: Request) -> bool:
        """True for calls that skip auth and limits (token endpoints)."""

    def authenticate(self, request: Request) -> Response | None:
        """None when the call carries a valid token, else the CRM's 401."""

    def admit(self, request: Request) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        """Charge the call against the CRM's limits: a rejection (or None) and headers to add."""

    def handle(self, request: Request, firing: Firing) -> Response:
        """Serve the call."""

    def fault_response(self, rule: FaultRule, request: Request, firing: Firing) -> Response | None:
        """The answer for a status/error_code fault, or None when the handler applies it per row."""

    def apply_effect(self, rule: FaultRule) -> None:
        """Carry out a state-changing fault (session expiry, schema change)."""


class Gateway:
    def __init__(
        self,
        front: Front,
        faults: FaultBook,
        log: RequestLog,
        clock: SandboxClock,
        latency_ms: int,
        wait: Callable[[float], object],
    ) -> None:
        self._front = front
        self._faults = faults
        self._log = log
        self._clock = clock
        self._latency_ms = latency_ms
        self._wait = wait

    def __call__(self, request: Request) -> Response:
        front = self._front
        firing = self._faults.consult(front.crm, request.method, request.path)
        for rule in firing.effects:
            front.apply_effect(rule)
        delay_ms = self._latency_ms + firing.latency_ms
        if delay_ms > 0:
            self._wait(delay_ms / 1000)
        response = self._answer(request, firing)
        self._log.record(
            front.crm,
            request,
            None if response.action == "hang" else response.status,
            self._clock.now(),
            firing.kinds,
        )
        if firing.commit_then_drop and response.action == "send":
            return Response(status=response.status, action="drop")
        return response

    def _answer(self, request: Request, firing: Firing) -> Response:
        front = self._front
        rule = firing.response
        if rule is not None:
            if rule.kind == "hang":
                return Response(status=0, action="hang")
            faulted = front.fault_response(rule, request, firing)
            if faulted is not None:
                return faulted
        if front.exempt(request):
            return front.handle(request, firing)
        rejection = front.authenticate(request)
        if rejection is not None:
            return rejection
        rejection, headers = front.admit(request)
        if rejection is not None:
            return rejection.with_headers(*headers)
        return front.handle(request, firing).with_headers(*headers)
