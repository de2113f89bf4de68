"""`bant-sync check`: is everything ready? Every problem at once, nothing changed.

1. The configuration: every setting of every file and BANT_SYNC_* variable, connector settings included
   (done when the configuration loads: an invalid one exits 3 listing every problem), then each
   connection's framework.
2. The state store: it opens (reachable, schema not newer than this bant-sync).
3. Each enabled connection: its secrets are there, the CRM answers and accepts them, and the setup check
   passes (Salesforce: every mapped field exists and is readable/updatable; HubSpot: every mapped
   property exists with the right type; `bant-sync setup` creates HubSpot's own). With Salesforce
   `change_events = true`, the Pub/Sub API answers too and lets the integration user subscribe.

Exit 0 when all is ready, 3 when the configuration is wrong (settings, framework, a secret missing, a
setting the connector refuses), 1 when a CRM or the state store is unreachable or not ready (credentials
rejected, fields or properties missing).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from connectors.errors import ConfigurationError, SchemaDriftError, TransientError
from connectors.protocol import Connector, StreamsChanges
from connectors.registry import ConnectorContext, factory_for
from rules.errors import BantSyncError
from worker import exit_codes
from worker.config.frameworks import load_framework
from worker.config.settings import ConnectionSettings, Settings
from worker.service import utc_now
from worker.state import StateStore
from worker.state.engine import display, normalise_url

WAIT_BUDGET_SECONDS = 10.0
"""How long `check` waits in all for retries against one CRM before calling it unreachable."""


@dataclass
class CheckReport:
    """What `check` found: `config` problems (exit 3) and `readiness` problems (exit 1), each a line."""

    config: list[str] = field(default_factory=list)
    readiness: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        if self.config:
            return exit_codes.CONFIG
        return exit_codes.FAILURE if self.readiness else exit_codes.OK

    def add(self, where: str, error: BantSyncError) -> None:
        """Record `error` (with each of its problems) under `where`, as a config or readiness problem."""
        target = self.config if error.exit_code == exit_codes.CONFIG else self.readiness
        lines = list(error.problems) or [str(error).splitlines()[0] if str(error) else type(error).__name__]
        hint = f" ({error.hint})" if error.hint and len(lines) == 1 and error.hint not in lines[0] else ""
        target.extend(f"{where}: {line}{hint}" for line in lines)


class _WaitBudget:
    """A connector's sleep that gives up (TransientError) once `budget` seconds of waits have passed."""

    def __init__(self, sleep: Callable[[float], object], budget: float) -> None:
        self._sleep = sleep
        self._left = budget

    def __call__(self, seconds: float) -> None:
        if seconds > self._left:
            raise TransientError(f"still failing after {WAIT_BUDGET_SECONDS:.0f} s of retries")
        self._left -= seconds
        self._sleep(seconds)


def _check_state(settings: Settings, report: CheckReport) -> None:
    url = settings.state.database_url()
    where = "state store"
    try:
        where = f"state store {display(normalise_url(url))}"
        store = StateStore.open(url)
    except BantSyncError as exc:
        report.add(where, exc)
        return
    store.close()
    report.passed.append(f"{where}: ok")


def _check_connection(
    conn: ConnectionSettings, report: CheckReport, sleep: Callable[[float], object]
) -> None:
    where = conn.name
    try:
        context = ConnectorContext(
            connection=conn.name,
            secrets=conn.revealed_secrets(),
            clock=utc_now,
            sleep=_WaitBudget(sleep, WAIT_BUDGET_SECONDS),
        )
        connector: Any = factory_for(conn.crm).create(conn.crm_settings, context)
    except BantSyncError as exc:  # before any call to the CRM: settings or secrets
        report.config.extend(f"{where}: {line}" for line in (exc.problems or (str(exc),)))
        return
    try:
        problems = connection_problems(connector)
    except SchemaDriftError as exc:  # the CRM answered: a field is missing or unusable
        report.readiness.append(f"{where}: {exc}")
        return
    except ConfigurationError as exc:  # a secret missing, a setting the CRM refuses: fix the configuration
        report.config.extend(f"{where}: {line}" for line in (exc.problems or (str(exc),)))
        return
    except BantSyncError as exc:
        report.add(where, exc)
        return
    else:
        report.readiness.extend(f"{where}: {problem}" for problem in problems)
        if not problems:
            report.passed.append(f"{where}: ready ({conn.crm})")
        _check_stream(connector, report, where)
    finally:
        connector.close()


def _check_stream(connector: Connector, report: CheckReport, where: str) -> None:
    try:
        stream = change_stream_check(connector)
    except BantSyncError as exc:
        report.add(f"{where}: change stream", exc)
        return
    if stream is not None:
        report.passed.append(f"{where}: {stream}")


def change_stream_check(connector: Connector) -> str | None:
    """With a change stream on (Salesforce `change_events = true`): the line saying it is ready, or the
    error the stream would meet; None without one."""
    if not isinstance(connector, StreamsChanges) or not connector.changes_enabled:
        return None
    probe = getattr(connector, "check_change_stream", None)
    return str(probe()) if callable(probe) else None


def connection_problems(connector: Connector) -> list[str]:
    """The setup check of one connector, changing nothing: its problems, empty when ready. Raises the
    connector's error when the CRM cannot be asked (unreachable, credentials rejected)."""
    return list(connector.setup(check_only=True).problems)


def check(settings: Settings, sleep: Callable[[float], object] = time.sleep) -> CheckReport:
    """Everything `bant-sync check` checks, for settings that loaded."""
    report = CheckReport()
    for name in sorted({c.framework for c in settings.connections.values()} | {settings.rules.framework}):
        try:
            load_framework(name, settings.config_dir)
        except BantSyncError as exc:
            report.add(f"framework {name!r}", exc)
    report.passed.append(f"configuration: ok ({', '.join(settings.config_files) or 'defaults'})")
    _check_state(settings, report)
    for conn in settings.connections.values():
        if conn.enabled:
            _check_connection(conn, report, sleep)
        else:
            report.passed.append(f"{conn.name}: skipped (enabled = false)")
    return report


def run_check(args: argparse.Namespace, settings: Settings) -> int:
    report = check(settings)
    if not args.quiet:
        for line in report.passed:
            sys.stdout.write(f"{line}\n")
    problems = report.config + report.readiness
    for line in problems:
        sys.stdout.write(f"PROBLEM: {line}\n")
    if problems:
        sys.stderr.write(f"bant-sync: check: {len(problems)} problem(s) found\n")
    elif not settings.connections:
        sys.stdout.write("no connection is configured: add a [connections.NAME] table\n")
    else:
        sys.stdout.write("all ready\n")
    return report.exit_code


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "check",
        parents=[common],
        help="validate the configuration, then check each CRM and the state store; every problem at once",
        description=(
            "Check that everything is ready, changing nothing, and print every problem at once: "
            "(1) the whole configuration (every setting of the config files and BANT_SYNC_* variables, "
            "connector settings included, and each connection's framework); (2) the state store opens; "
            "(3) each enabled connection: its secrets are set, the CRM answers and accepts them, and the "
            "setup check passes (Salesforce fields and permissions, HubSpot properties). "
            f"Exit {exit_codes.OK} when ready, {exit_codes.CONFIG} when the configuration is wrong, "
            f"{exit_codes.FAILURE} when a CRM or the state store is unreachable or not ready."
        ),
    )
    parser.add_argument("--quiet", action="store_true", help="print only the problems")
    parser.set_defaults(handler=run_check)
