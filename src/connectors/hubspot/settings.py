"""Typed settings of one HubSpot connection (`[connections.NAME]` with `crm = "hubspot"`).

Plain types only, so the worker can build this from TOML and validate it once. Property names default to
docs/design.md §4; every one can be renamed in config.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from connectors.errors import ConfigurationError
from connectors.fieldtable import mapping_problems
from connectors.request_settings import RequestSettings
from rules.errors import did_you_mean

DEFAULT_PROPERTIES: dict[str, str] = {
    "name": "dealname",
    "stage": "dealstage",
    "pipeline": "pipeline",
    "deal_type": "dealtype",
    "amount": "amount",
    "close_date": "closedate",
    "owner_id": "hubspot_owner_id",
    "modified_at": "hs_lastmodifieddate",
    "is_closed": "hs_is_closed",
    "budget": "bant_budget",
    "authority": "bant_authority",
    "need": "bant_need",
    "timing": "bant_timing",
    "flagged_since": "bant_flagged_since",
    "status": "bant_status",
    "missing": "bant_missing",
    "score": "bant_score",
    "checked_at": "bant_checked_at",
    "reasons": "bant_reasons",
    "snooze_until": "bant_snooze_until",
    "snooze_reason": "bant_snooze_reason",
    "modified_by": "hs_updated_by_user_id",
}
"""Canonical meaning -> HubSpot deal property. Keys not listed here are custom fields carried in `extra`."""

INPUT_KEYS: tuple[str, ...] = ("budget", "authority", "need", "timing", "snooze_until", "snooze_reason")
"""Input properties people fill in: `setup` creates the snooze ones, checks the BANT ones and creates them
with `--create-inputs`."""

OUTPUT_KEYS: tuple[str, ...] = ("status", "missing", "score", "checked_at", "flagged_since", "reasons")
"""bant-sync's own output properties: `setup` creates them in the property group."""

STANDARD_KEYS: tuple[str, ...] = (
    "name",
    "stage",
    "pipeline",
    "deal_type",
    "amount",
    "close_date",
    "owner_id",
    "modified_at",
    "is_closed",
    "modified_by",
)


AUTH_MODES = ("private_app", "oauth")
log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class HubSpotSettings(RequestSettings):
    """One HubSpot account; the retry and timeout knobs come from `RequestSettings`. Secrets (access_token,
    client_secret, refresh_token) are not settings."""

    host: str = "https://api.hubapi.com"
    auth: str = "private_app"
    client_id: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    """Canonical name -> deal property, over `DEFAULT_PROPERTIES`; any other name is a custom field."""
    properties: dict[str, str] = field(default_factory=dict)
    """Deprecated: the old name of `fields`, still read (a warning at load); `fields` wins a clash."""
    task_key_property: str = "bant_sync_key"
    property_group: str = "bant_sync"
    property_group_label: str = "BANT sync"
    overlap_minutes: int = 60
    burst_limit_per_10s: int = 100
    search_per_second: int = 4
    max_in_flight: int = 4
    page_size: int = 200
    deals_per_page: int = 1000
    refresh_margin_seconds: int = 300
    webhooks: bool = False
    """Near-real-time: `serve` takes HubSpot's webhook deliveries for this connection at
    `POST /webhooks/hubspot/NAME` (docs/hubspot.md, docs/realtime.md). Needs `app_id` and the secret
    `client_secret` (the app's, which signs the deliveries)."""
    app_id: str = ""
    """The HubSpot app whose webhooks deliver here (its numeric id): its own writes come back as events
    whose change source names it, and those are dropped as echoes."""

    def __post_init__(self) -> None:
        self.validate()
        if self.properties:
            log.warning(
                "deprecated setting",
                setting="properties",
                use="fields",
                detail="`properties` is deprecated: rename it to `fields` (the same canonical -> name table)",
            )

    def problems(self) -> list[str]:
        """Every problem with these settings, each as "<setting>: <what to do>"; empty when they work."""
        problems: list[str] = []
        if self.auth not in AUTH_MODES:
            hint = did_you_mean(self.auth, AUTH_MODES)
            problems.append(f"auth: must be 'private_app' or 'oauth', not {self.auth!r}{hint}")
        if self.auth == "oauth" and not self.client_id:
            problems.append("client_id: auth = 'oauth' needs it (the public app's client id)")
        if not self.host.startswith(("https://", "http://")):
            problems.append(f"host: {self.host!r} must start with https:// (or http:// for a local sandbox)")
        if not 1 <= self.page_size <= 200:
            problems.append("page_size: must be between 1 and 200 (HubSpot's search page limit)")
        if not self.page_size <= self.deals_per_page <= 2000:
            problems.append("deals_per_page: must be between page_size and 2000")
        if self.burst_limit_per_10s < 1:
            problems.append("burst_limit_per_10s: must be positive")
        if self.search_per_second < 1:
            problems.append("search_per_second: must be positive")
        if self.overlap_minutes < 0:
            problems.append("overlap_minutes: must be >= 0")
        if not 1 <= self.max_in_flight <= 10:
            problems.append("max_in_flight: must be between 1 and 10")
        if self.app_id and not self.app_id.isdigit():
            problems.append(f"app_id: must be the HubSpot app's numeric id, not {self.app_id[:40]!r}")
        if self.webhooks and not self.app_id:
            problems.append(
                "app_id: webhooks = true needs it (the id of the app whose webhook subscriptions deliver "
                "here, shown in the app's settings), so bant-sync's own writes are not re-assessed"
            )
        problems.extend(self.request_problems())
        problems.extend(mapping_problems(self.fields, DEFAULT_PROPERTIES, "HubSpot"))
        problems.extend(mapping_problems(self.properties, DEFAULT_PROPERTIES, "HubSpot", "properties"))
        return problems

    def validate(self) -> None:
        """Raise one ConfigurationError listing every problem, so a person fixes them in one pass."""
        problems = self.problems()
        if problems:
            error = ConfigurationError("HubSpot connection settings: " + "; ".join(problems))
            error.problems = tuple(problems)
            raise error

    @property
    def props(self) -> dict[str, str]:
        """The full mapping: defaults overlaid with `fields` (and the old `properties`)."""
        return {**DEFAULT_PROPERTIES, **self.properties, **self.fields}

    def prop(self, key: str) -> str:
        return self.props[key]
