"""Typed settings of one Salesforce connection (`[connections.NAME]` with `crm = "salesforce"`).

Plain types only, so the worker can build it straight from TOML. Secrets are not settings: they arrive in
`ConnectorContext.secrets` under the names in `factory.secret_names`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from connectors.errors import ConfigurationError
from connectors.fieldtable import KINDS, mapping_problems
from connectors.request_settings import RequestSettings
from rules.errors import did_you_mean

AUTH_MODES = ("jwt", "client_credentials", "password", "token")
log = structlog.get_logger()

DEFAULT_FIELDS: dict[str, str] = {
    "name": "Name",
    "owner_id": "OwnerId",
    "stage": "StageName",
    "deal_type": "Type",
    "amount": "Amount",
    "close_date": "CloseDate",
    "budget": "BANT_Budget__c",
    "authority": "BANT_Authority__c",
    "need": "BANT_Need__c",
    "timing": "BANT_Timing__c",
    "status": "BANT_Status__c",
    "missing": "BANT_Missing__c",
    "score": "BANT_Score__c",
    "checked_at": "BANT_Checked_At__c",
    "flagged_since": "BANT_Flagged_Since__c",
    "reasons": "BANT_Reasons__c",
    "snooze_until": "BANT_Snooze_Until__c",
    "snooze_reason": "BANT_Snooze_Reason__c",
    "modified_by": "LastModifiedById",
}
"""Canonical name -> Opportunity field (docs/design.md §4). A connection overrides any subset."""

DESCRIBE_TYPES: dict[str, tuple[str, ...]] = {
    "budget": ("string", "textarea", "currency", "double", "int", "picklist"),
    "authority": ("string", "textarea", "picklist", "reference"),
    "need": ("textarea", "string", "picklist"),
    "timing": ("string", "textarea", "date", "datetime", "picklist"),
    "snooze_until": ("date",),
    "snooze_reason": ("string", "textarea"),
    "modified_by": ("reference",),
    "status": ("picklist", "string"),
    "missing": ("string", "textarea"),
    "score": ("double", "int", "percent"),
    "checked_at": ("datetime",),
    "flagged_since": ("date",),
    "reasons": ("textarea",),
}
"""Canonical name -> the Opportunity describe types its field may have (the first is what config/salesforce
ships): preflight refuses another type, and the shipped metadata is tested against it. `reasons` must be a
long text area: a 255-character text field would cut the reasons short."""

INPUT_KEYS = (
    "name",
    "owner_id",
    "stage",
    "deal_type",
    "amount",
    "close_date",
    "budget",
    "authority",
    "need",
    "timing",
    "snooze_until",
    "snooze_reason",
    "modified_by",
)
OUTPUT_KEYS = ("status", "missing", "score", "checked_at", "flagged_since", "reasons")


MAX_IN_FLIGHT = 10
"""Well below the 25 concurrent long-running requests Salesforce allows an org (all integrations)."""
MAX_CHANGE_EVENTS_BATCH = 100
"""The Pub/Sub API's cap on `FetchRequest.num_requested`."""


def endpoint_problems(endpoint: str) -> list[str]:
    """Problems with `pubsub_endpoint`: it must be `host:port` (no scheme, a port 1..65535)."""
    host, _, port = endpoint.rpartition(":")
    if "://" in endpoint or "/" in endpoint or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return [
            f"pubsub_endpoint: {endpoint[:100]!r} must be host:port without a scheme, e.g. "
            "'api.pubsub.salesforce.com:7443'"
        ]
    return []


@dataclass(frozen=True, slots=True)
class SalesforceSettings(RequestSettings):
    """One Salesforce org; the retry and timeout knobs come from `RequestSettings`."""

    instance_url: str = ""
    login_url: str = "https://login.salesforce.com"
    auth: str = "jwt"
    client_id: str = ""
    username: str = ""
    jwt_audience: str = ""
    api_version: str = "59.0"
    ca_bundle: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    """Canonical name -> Opportunity field, over `DEFAULT_FIELDS`; any other name is a custom field."""
    extra_fields: dict[str, str] = field(default_factory=dict)
    """Deprecated: custom fields now go in `fields`; still read (a warning at load)."""
    task_key_field: str = "BANT_Sync_Key__c"
    overlap_minutes: int = 5
    quota_stop_share: float = 0.8
    query_batch_size: int = 2000
    max_in_flight: int = 4
    """sObject Collections calls sent side by side (the next query page is read while a page is written)."""
    change_events: bool = False
    """Near-real-time: `serve` subscribes to Change Data Capture on Opportunity
    (`/data/OpportunityChangeEvent`) over the Pub/Sub API for this connection (docs/salesforce.md,
    docs/realtime.md). Needs Opportunity selected in Setup → Change Data Capture."""
    pubsub_endpoint: str = "api.pubsub.salesforce.com:7443"
    """host:port of Salesforce's Pub/Sub API (gRPC over TLS; `ca_bundle`, when set, is trusted for it too)."""
    change_events_batch: int = 100
    """How many change events `serve` asks the Pub/Sub API for at a time (flow control: 1 to 100)."""

    def __post_init__(self) -> None:
        if self.extra_fields:
            log.warning(
                "deprecated setting",
                setting="extra_fields",
                use="fields",
                detail="`extra_fields` is deprecated: move its custom fields into `fields`",
            )

    @property
    def field_map(self) -> dict[str, str]:
        """The effective canonical -> Opportunity field mapping: defaults overridden by `fields`."""
        return {**DEFAULT_FIELDS, **{k: v for k, v in self.fields.items() if k in DEFAULT_FIELDS}}

    @property
    def custom_fields(self) -> dict[str, str]:
        """Custom name -> Opportunity field, carried in `Deal.extra`: the names of `fields` that are not
        canonical, and the old `extra_fields`."""
        custom = {k: v for k, v in self.fields.items() if k not in DEFAULT_FIELDS and k not in KINDS}
        return {**self.extra_fields, **custom}

    def problems(self) -> list[str]:
        """Every problem with these settings, each as "<setting>: <what to do>"; empty when they work."""
        problems: list[str] = []
        if self.auth not in AUTH_MODES:
            problems.append(
                f"auth: unknown mode (auth = {self.auth!r}); use one of {', '.join(AUTH_MODES)}"
                + did_you_mean(self.auth, AUTH_MODES)
            )
        if self.auth == "token" and not self.instance_url:
            problems.append("instance_url: auth = 'token' needs it (the org's https://… My Domain URL)")
        if self.auth in ("jwt", "client_credentials", "password") and not self.client_id:
            problems.append(
                f"client_id: auth = {self.auth!r} needs it (the External Client App's consumer key)"
            )
        if self.auth in ("jwt", "password") and not self.username:
            problems.append(f"username: auth = {self.auth!r} needs it (the integration user)")
        for name, url in (("login_url", self.login_url), ("instance_url", self.instance_url)):
            if url and not url.startswith("https://"):
                problems.append(f"{name}: {url!r}: Salesforce is only reachable over https://")
        problems.extend(mapping_problems(self.fields, DEFAULT_FIELDS, "Salesforce"))
        for key in sorted(k for k, v in self.extra_fields.items() if not v.strip()):
            problems.append(f"extra_fields.{key}: maps to an empty field name")
        if not 0 < self.quota_stop_share <= 1:
            problems.append(
                "quota_stop_share: must be in (0, 1], e.g. 0.8 to stop at 80% of the daily allocation"
            )
        if not 200 <= self.query_batch_size <= 2000:
            problems.append("query_batch_size: must be between 200 and 2000 (Salesforce's batchSize range)")
        if self.overlap_minutes < 0:
            problems.append("overlap_minutes: must be >= 0")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            problems.append(f"max_in_flight: must be between 1 and {MAX_IN_FLIGHT}")
        if not 1 <= self.change_events_batch <= MAX_CHANGE_EVENTS_BATCH:
            problems.append(
                f"change_events_batch: must be between 1 and {MAX_CHANGE_EVENTS_BATCH} (the most events the "
                "Pub/Sub API sends for one request)"
            )
        problems.extend(endpoint_problems(self.pubsub_endpoint))
        problems.extend(self.request_problems())
        return problems

    def validate(self) -> None:
        """Raise one ConfigurationError listing every problem, so a person fixes them in one pass."""
        problems = self.problems()
        if problems:
            error = ConfigurationError("Salesforce settings: " + "; ".join(problems))
            error.problems = tuple(problems)
            raise error
