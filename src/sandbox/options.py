"""How a sandbox is started: seed, scale, latency, faults, limits, ports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sandbox.faults import FaultRule

CRMS = ("salesforce", "hubspot")


@dataclass(frozen=True)
class SandboxOptions:
    seed: str = "track-selling"
    deals: int = 0
    """More than 0: that many synthetic open deals instead of the story's deals."""
    closed_deals: int = 0
    """More than 0: that many synthetic closed deals with field history as well (for the outcome report)."""
    seed_value: int = 7
    latency_ms: int = 0
    """Added to every CRM call (not the control API), to make timings realistic."""
    bare: bool = False
    """Leave out bant-sync's output fields/properties and the task key, so ``bant-sync setup`` has work."""
    faults: tuple[FaultRule, ...] = ()
    enforce_rate_limits: bool = True
    """False: HubSpot's burst and search windows are counted but never refuse. The Salesforce daily
    allocation is a quota, not a rate: it always applies (raise ``salesforce_daily_api_limit`` instead)."""
    hubspot_burst_per_10s: int = 190
    hubspot_search_per_second: int = 5
    salesforce_daily_api_limit: int = 100_000
    port: int = 0
    """Salesforce (HTTPS) port; 0 picks a free one."""
    hubspot_port: int = 0
    """HubSpot and control API (HTTP) port; 0 picks a free one."""
    start_time: datetime | None = None
    """Where the sandbox clock starts (tz-aware); None is the real time."""
    host: str = "127.0.0.1"
    hubspot_webhook_url: str = ""
    """Non-empty: the HubSpot app's webhooks deliver deal creations and BANT input changes there, signed
    with the app's client secret (see `Sandbox.subscribe_hubspot_webhooks`). In a fleet, `{connection}` in it
    becomes each account's HubSpot connection name (`hs-001`, ...), so every portal posts to its own."""
    pubsub_port: int = 0
    """Salesforce Pub/Sub API (gRPC over TLS) port; 0 picks a free one (see `info["salesforce"]`)."""
    pubsub_keepalive_seconds: float = 270.0
    """Real seconds a Subscribe stream waits with nothing to send before a keepalive (the real API: 270)."""
    salesforce_change_events: bool = True
    """Keep the OpportunityChangeEvent log the Pub/Sub API streams (about 300 bytes an event, kept 72 sandbox
    hours, at most 100,000); False for benchmarks that never subscribe."""
    crms: tuple[str, ...] = CRMS
    """The CRMs seeded with the story's deals. The others still answer (org id, portal id, owners, users,
    schemas) with no deals: a benchmark of one CRM then holds only that CRM's 100,000 deals (each is about
    120 MB in memory)."""
    account: int = 1
    """Which customer's CRMs this sandbox is (`sandbox.accounts`): the org id, portal id, app id, username
    and seeded data follow it. 1 is the one every single-sandbox test uses; a fleet numbers its sandboxes
    1..N (`sandbox.fleet.SandboxFleet`)."""

    def __post_init__(self) -> None:
        if self.start_time is not None and self.start_time.tzinfo is None:
            raise ValueError("SandboxOptions.start_time must be tz-aware")
        for name in ("deals", "closed_deals", "latency_ms", "port", "hubspot_port", "pubsub_port"):
            if getattr(self, name) < 0:
                raise ValueError(f"SandboxOptions.{name} must be 0 or more")
        if self.account < 1:
            raise ValueError("SandboxOptions.account must be at least 1")
        if self.pubsub_keepalive_seconds <= 0:
            raise ValueError("SandboxOptions.pubsub_keepalive_seconds must be more than 0")
        if not self.crms or any(crm not in CRMS for crm in self.crms):
            raise ValueError(f"SandboxOptions.crms must name one or both of {', '.join(CRMS)}: {self.crms!r}")
        for name in ("hubspot_burst_per_10s", "hubspot_search_per_second", "salesforce_daily_api_limit"):
            if getattr(self, name) < 1:
                raise ValueError(f"SandboxOptions.{name} must be at least 1")
