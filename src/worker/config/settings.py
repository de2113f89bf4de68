"""Typed settings: config/default.toml, then the user's file, then BANT_SYNC_* environment overrides.

Validated once, all problems reported together, read-only after. See the README's configuration reference.
"""

from __future__ import annotations

import os
import sysconfig
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from rules.errors import did_you_mean
from worker.config.secrets import Secret
from worker.config.typed_tables import SECRET
from worker.state.engine import display_text, with_password


def shipped_config_dir(candidates: Sequence[Path] | None = None) -> Path:
    """The shipped `config/` (default.toml, frameworks/): the source checkout's for an editable install,
    else the copy a wheel installs under `<prefix>/share/bant-sync/config` (pyproject's data-files)."""
    if candidates is None:
        schemes = [sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")]
        candidates = [
            Path(__file__).resolve().parents[3] / "config",
            *(
                Path(sysconfig.get_path("data", scheme)) / "share" / "bant-sync" / "config"
                for scheme in schemes
            ),
        ]
    for candidate in candidates:
        if (candidate / "default.toml").is_file():
            return candidate
    return candidates[0]


PROJECT_CONFIG_DIR = shipped_config_dir()
DEFAULT_CONFIG_FILE = PROJECT_CONFIG_DIR / "default.toml"
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("auto", "console", "json")
COMPLETED_TASK_POLICIES = ("reopen", "new_task", "leave")


def default_state_dir() -> str:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return str(Path(base) / "bant-sync")


@dataclass(frozen=True)
class LoggingSettings:
    level: str = "info"
    format: str = "auto"

    def __post_init__(self) -> None:
        if self.level.lower() not in LOG_LEVELS:
            raise ValueError(
                f"logging.level must be one of {', '.join(LOG_LEVELS)}, not {self.level!r}"
                + did_you_mean(self.level.lower(), LOG_LEVELS)
            )
        if self.format not in LOG_FORMATS:
            raise ValueError(
                f"logging.format must be one of {', '.join(LOG_FORMATS)}, not {self.format!r}"
                + did_you_mean(self.format, LOG_FORMATS)
            )


@dataclass(frozen=True, repr=False)
class StateSettings:
    """Where cursors, leases, the task ledger and run history live. `url` (a SQLAlchemy URL, e.g.
    postgresql://host/db) wins over `dir` (a SQLite file `state.db` inside it)."""

    dir: str = ""
    url: str = ""
    connections_table: bool = False
    """Also load the connections kept in the state store's `connections` table (`bant-sync connections
    add`). Off by default, so commands do not open the state store just to read the configuration."""
    password: Secret | None = field(default=None, repr=False, compare=False, metadata={SECRET: True})
    """The database password, from a secret path (BANT_SYNC_STATE__PASSWORD, its _FILE, or the secrets
    file's [state] password), merged into `url` only by `database_url()`."""

    def database_url(self) -> str:
        """The URL to connect with, password included: hand it to the state store only, and show
        `display_url()` wherever a person or a log may read it."""
        if self.url:
            return self.url if self.password is None else with_password(self.url, self.password.reveal())
        return f"sqlite:///{Path(self.dir or default_state_dir()) / 'state.db'}"

    def display_url(self) -> str:
        """The state store's URL with any password masked."""
        return display_text(self.database_url())

    def __repr__(self) -> str:
        return (
            f"StateSettings(dir={self.dir!r}, url={display_text(self.url)!r}, "
            f"connections_table={self.connections_table!r})"
        )


@dataclass(frozen=True)
class RulesSettings:
    """`framework` is a name from config/frameworks/ or a path to a .toml file."""

    framework: str = "bant"
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if not self.timezone:
            raise ValueError("rules.timezone must name a time zone, e.g. 'Europe/Berlin' or 'UTC'")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            hint = did_you_mean(self.timezone, sorted(available_timezones()))
            hint = hint or " (an IANA name such as 'Europe/Berlin')"
            raise ValueError(f"rules.timezone {self.timezone!r} is not a known time zone{hint}") from None


MIN_LEASE_TTL_SECONDS = 15


@dataclass(frozen=True)
class RunSettings:
    lease_ttl_seconds: int = 60
    """How long a run's lease outlives its last heartbeat (the heartbeat renews it every third of this)."""
    deadline_minutes: int = 120
    task_due_business_days: int = 3
    completed_tasks: str = "reopen"
    """What a run does with a task a person completed while its deal is still unqualified."""

    def __post_init__(self) -> None:
        if self.completed_tasks not in COMPLETED_TASK_POLICIES:
            raise ValueError(
                f"run.completed_tasks must be one of {', '.join(COMPLETED_TASK_POLICIES)}, "
                f"not {self.completed_tasks!r}" + did_you_mean(self.completed_tasks, COMPLETED_TASK_POLICIES)
            )
        if self.task_due_business_days < 0:
            raise ValueError(
                f"run.task_due_business_days must be 0 or more, not {self.task_due_business_days}"
            )
        if self.lease_ttl_seconds < MIN_LEASE_TTL_SECONDS:
            raise ValueError(
                f"run.lease_ttl_seconds must be at least {MIN_LEASE_TTL_SECONDS} (a heartbeat renews the "
                f"lease every third of it, and one renewal may wait for a busy state store), "
                f"not {self.lease_ttl_seconds}"
            )


@dataclass(frozen=True)
class OpsApiSettings:
    """`[ops_api]`: where `serve` listens, its body limit, when `/health` calls a connection degraded, and
    how long a console session lasts."""

    host: str = "127.0.0.1"
    port: int = 8787
    max_body_bytes: int = 16_384
    degraded_after_failed_runs: int = 3
    """A connection whose latest N finished runs all failed is `degraded` in /health."""
    degraded_after_minutes: int = 1440
    """A connection with no successful run for this long is `degraded` (0: never on age alone)."""
    session_minutes: int = 30
    """A console session ends after this long without a request."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"ops_api.port must be between 0 and 65535, not {self.port}")
        if self.max_body_bytes < 1:
            raise ValueError(f"ops_api.max_body_bytes must be positive, not {self.max_body_bytes}")
        if self.degraded_after_failed_runs < 1:
            raise ValueError(
                "ops_api.degraded_after_failed_runs must be at least 1, "
                f"not {self.degraded_after_failed_runs}"
            )
        if self.degraded_after_minutes < 0:
            raise ValueError(
                f"ops_api.degraded_after_minutes must be 0 or more, not {self.degraded_after_minutes}"
            )
        if not 1 <= self.session_minutes <= 24 * 60:
            raise ValueError(
                f"ops_api.session_minutes must be between 1 and 1440, not {self.session_minutes}"
            )


@dataclass(frozen=True)
class ScheduleSettings:
    """Per connection: an incremental run every N minutes and a full sweep by cron (m h dom mon dow)."""

    incremental_every_minutes: int = 15
    full_sweep_cron: str = "0 2 * * *"
    misfire_grace_seconds: int = 600
    event_debounce_seconds: float = 2.0
    """With CRM events on (HubSpot `webhooks = true`, Salesforce `change_events = true`): how long after the
    last event an EVENTS run starts."""
    event_max_delay_seconds: float = 10.0
    """... but never later than this after the first event of a burst (a steady stream still runs)."""

    def __post_init__(self) -> None:
        if not 0 <= self.event_debounce_seconds <= 300:
            raise ValueError(
                f"event_debounce_seconds must be between 0 and 300, not {self.event_debounce_seconds}"
            )
        if not self.event_debounce_seconds <= self.event_max_delay_seconds <= 3600:
            raise ValueError(
                f"event_max_delay_seconds must be between event_debounce_seconds "
                f"({self.event_debounce_seconds}) and 3600, not {self.event_max_delay_seconds}"
            )


DIGEST_CHANNELS = ("email", "slack")
SMTP_TLS_MODES = ("starttls", "implicit", "none")


@dataclass(frozen=True)
class TeamSettings:
    """One `[[digest.teams]]` entry: whose flagged deals roll up to whom, by e-mail (for a CRM without
    managers, such as HubSpot, or for a team that is not a Salesforce reporting line)."""

    name: str = ""
    """The team's name, shown in the rollup."""
    members: tuple[str, ...] = ()
    """The owners' e-mails (as in the CRM); case does not matter."""
    managers: tuple[str, ...] = ()
    """Who gets the team's rollup: e-mails (they need not own deals)."""


@dataclass(frozen=True)
class DigestSettings:
    """The weekly digest (`bant-sync digest`, and `serve` when enabled): each owner's flagged deals, and
    each manager's rollup of their team, by e-mail and/or Slack."""

    enabled: bool = False
    """Whether `serve` sends the digest on `schedule` (`bant-sync digest` works either way)."""
    schedule: str = "0 8 * * MON"
    """When `serve` sends it: crontab 'min hour day month weekday', in `rules.timezone`."""
    retry_every_minutes: int = 60
    """How often `serve` retries the week's failed deliveries after the weekly firing (0: only next week)."""
    channels: tuple[str, ...] = ("email",)
    """Where the digest goes: "email" and/or "slack" (each recipient gets one message on each)."""
    managers: bool = True
    """Send managers the rollup of their reports' flagged deals (Salesforce `User.ManagerId`)."""
    max_attempts: int = 4
    """Tries per delivery within one run for a transient error (SMTP 4xx, a dropped connection, Slack's
    rate limit); then it is reported failed and retried by the next run."""
    retry_base_delay: float = 2.0
    """Seconds before the first retry (doubling each time, at most 60; Slack's Retry-After wins)."""
    teams: tuple[TeamSettings, ...] = ()
    """`[[digest.teams]]` tables: name, members, managers."""

    def __post_init__(self) -> None:
        unknown = [c for c in self.channels if c not in DIGEST_CHANNELS]
        if unknown or not self.channels:
            raise ValueError(
                f"digest.channels must list one or more of {', '.join(DIGEST_CHANNELS)}, not "
                f"{list(self.channels)!r}" + (did_you_mean(unknown[0], DIGEST_CHANNELS) if unknown else "")
            )
        if self.max_attempts < 1:
            raise ValueError(f"digest.max_attempts must be at least 1, not {self.max_attempts}")
        if self.retry_every_minutes < 0:
            raise ValueError(f"digest.retry_every_minutes must be 0 or more, not {self.retry_every_minutes}")
        if self.retry_base_delay < 0:
            raise ValueError(f"digest.retry_base_delay must be 0 or more, not {self.retry_base_delay}")


@dataclass(frozen=True, repr=False)
class SmtpSettings:
    """The mail server the digest's e-mails go through. The password is a secret
    (BANT_SYNC_SMTP__PASSWORD, its _FILE, or `password` under [smtp] in the secrets file)."""

    host: str = ""
    """The SMTP server's host name; required for the e-mail channel."""
    port: int = 587
    """587 for STARTTLS, 465 for implicit TLS."""
    tls: str = "starttls"
    """"starttls" (upgrade a plain connection), "implicit" (TLS from the start, SMTPS) or "none" (a local
    relay on loopback only)."""
    username: str = ""
    """Log in as this user (with the password secret); empty: no login."""
    from_address: str = ""
    """The digest's From: address; required for the e-mail channel."""
    ca_file: str = ""
    """A PEM file of CAs to trust instead of the system's (a company CA); relative to the config file."""
    timeout: float = 30.0
    """Seconds for connecting and for each reply of the server."""
    password: Secret | None = field(default=None, repr=False, compare=False, metadata={SECRET: True})

    def __post_init__(self) -> None:
        if self.tls not in SMTP_TLS_MODES:
            raise ValueError(
                f"smtp.tls must be one of {', '.join(SMTP_TLS_MODES)}, not {self.tls!r}"
                + did_you_mean(self.tls, SMTP_TLS_MODES)
            )
        if not 0 < self.port <= 65535:
            raise ValueError(f"smtp.port must be between 1 and 65535, not {self.port}")
        if self.timeout <= 0:
            raise ValueError(f"smtp.timeout must be positive, not {self.timeout}")

    def __repr__(self) -> str:
        return (
            f"SmtpSettings(host={self.host!r}, port={self.port}, tls={self.tls!r}, "
            f"username={self.username!r}, from_address={self.from_address!r})"
        )


@dataclass(frozen=True, repr=False)
class SlackSettings:
    """The Slack app the digest is posted by. Its bot token (scopes `users:read.email`, `chat:write`) is a
    secret: BANT_SYNC_SLACK__BOT_TOKEN, its _FILE, or `bot_token` under [slack] in the secrets file."""

    base_url: str = "https://slack.com/api/"
    """The Web API's address (Slack's own unless a proxy or a test stand-in serves it)."""
    timeout: float = 30.0
    """Seconds per Web API request."""
    bot_token: Secret | None = field(default=None, repr=False, compare=False, metadata={SECRET: True})

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("https://", "http://")):
            raise ValueError(f"slack.base_url must be an http(s) URL, not {self.base_url!r}")
        if self.timeout <= 0:
            raise ValueError(f"slack.timeout must be positive, not {self.timeout}")

    def __repr__(self) -> str:
        return f"SlackSettings(base_url={self.base_url!r})"


@dataclass(frozen=True)
class ConnectionSettings:
    """One CRM account. `crm_settings` is the connector's own settings dataclass; `secrets` never print."""

    name: str
    crm: str
    enabled: bool
    framework: str
    schedule: ScheduleSettings
    crm_settings: Any
    secrets: Mapping[str, Secret] = field(repr=False, default_factory=dict)
    tenant: str = ""
    """Who the connection serves (free text); set for connections kept in the state store."""
    source: str = "config"
    """Where the connection is defined: "config" (a config file or the environment) or "state store"
    (the `connections` table, `bant-sync connections add`)."""

    def revealed_secrets(self) -> dict[str, str]:
        return {key: secret.reveal() for key, secret in self.secrets.items()}


@dataclass(frozen=True)
class Settings:
    logging: LoggingSettings = LoggingSettings()
    state: StateSettings = StateSettings()
    rules: RulesSettings = RulesSettings()
    run: RunSettings = RunSettings()
    ops_api: OpsApiSettings = OpsApiSettings()
    digest: DigestSettings = DigestSettings()
    smtp: SmtpSettings = SmtpSettings()
    slack: SlackSettings = SlackSettings()
    connections: Mapping[str, ConnectionSettings] = field(default_factory=dict)
    ops_token: Secret | None = field(default=None, repr=False)
    config_files: tuple[str, ...] = ()
    config_dir: str = ""

    def connection(self, name: str | None) -> ConnectionSettings:
        """The named connection, or the only one when `name` is None."""
        from worker.errors import UsageError

        if not self.connections:
            raise UsageError(
                "no connection is configured: add a [connections.NAME] table to your config file "
                "(see config/examples/), or start the sandbox with --write-config"
            )
        if name is None:
            if len(self.connections) == 1:
                return next(iter(self.connections.values()))
            names = ", ".join(self.connections)
            raise UsageError(f"several connections are configured ({names}): choose one with --connection")
        if name not in self.connections:
            names = ", ".join(self.connections)
            raise UsageError(f"no connection named {name!r}; configured: {names}")
        return self.connections[name]
