"""`bant-sync setup --check` for Salesforce: the preflight report, printed for a person.

Salesforce fields are not created through the API (custom fields are metadata an admin deploys from
config/salesforce/), so setup only checks: authentication, every mapped field, the task key, the quota.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.errors import ConnectorError
from connectors.salesforce.connector import SalesforceConnector


@dataclass(frozen=True, slots=True)
class SetupReport:
    ok: bool
    lines: tuple[str, ...]

    def render(self) -> str:
        verdict = "ready" if self.ok else "NOT ready: fix the lines marked FIX, then run this check again"
        return "\n".join((*self.lines, f"Salesforce connection {verdict}."))


def setup_check(connector: SalesforceConnector) -> SetupReport:
    """Authenticate, describe Opportunity and Task, and list what passed and what to fix. Never raises a
    ConnectorError: the problem becomes a FIX line."""
    lines: list[str] = []
    try:
        report = connector.check()
    except ConnectorError as exc:
        return SetupReport(False, (f"FIX  {exc}",))
    lines.append(f"ok   authenticated to {connector.client.sf.base_url.split('/services')[0]}")
    lines.extend(f"ok   {line}" for line in report.passed)
    lines.extend(f"FIX  {problem}" for problem in report.problems)
    client = connector.client
    if client.used is not None and client.limit:
        share = client.used / client.limit
        stop = connector.settings.quota_stop_share
        mark = "ok  " if share < stop else "FIX "
        lines.append(
            f"{mark} API usage today {client.used}/{client.limit} ({share:.0%}); runs stop at {stop:.0%}"
        )
    return SetupReport(report.ok, tuple(lines))
