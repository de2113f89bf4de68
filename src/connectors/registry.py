"""Connector plugins: built-in and third-party CRMs register through the `bant_sync.connectors` entry points.

A plugin package declares, in its pyproject.toml::

    [project.entry-points."bant_sync.connectors"]
    pipedrive = "bant_sync_pipedrive:factory"

where `factory` is a ConnectorFactory. The worker turns the `[connections.NAME]` table of the config into
`factory.settings_type` (a frozen dataclass of plain types), resolves the secrets named in
`factory.secret_names` from the environment or the secrets file, and calls `factory.create`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import entry_points
from typing import Any, Protocol

from connectors.errors import ConfigurationError
from connectors.protocol import Connector

ENTRY_POINT_GROUP = "bant_sync.connectors"


@dataclass(frozen=True)
class ConnectorContext:
    """What the worker hands a connector besides its settings. `clock` returns tz-aware UTC now; `sleep`
    is the only way a connector waits (tests inject a fake one).

    `pacing` is a mapping the worker keeps per connection for as long as its process runs and hands to each
    run's connector: where a connector keeps what paces its calls to the CRM (HubSpot's rate-limit windows),
    so a run that starts right after another knows the calls the last one just sent instead of bursting
    into a limit. Never domain state: that is the worker's, in its state store."""

    connection: str
    secrets: Mapping[str, str]
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    pacing: MutableMapping[str, object] = field(default_factory=dict)


class ConnectorSettings(Protocol):
    """What the worker asks of a connector's settings type, besides being a dataclass of plain types."""

    def problems(self) -> list[str]:
        """Every problem with these settings, each as "<setting>: <what to do>"; empty when they work.
        Called when the configuration loads, so every problem is reported with the others at once."""
        ...


class ConnectorFactory(Protocol):
    name: str
    settings_type: type[ConnectorSettings]
    secret_names: tuple[str, ...]

    def create(self, settings: Any, context: ConnectorContext) -> Connector: ...


def available_factories() -> dict[str, ConnectorFactory]:
    """Every registered connector factory by CRM name (`crm = "..."` in a connection's config)."""
    factories: dict[str, ConnectorFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        factories[ep.name] = ep.load()
    return factories


def factory_for(crm: str) -> ConnectorFactory:
    factories = available_factories()
    if crm not in factories:
        known = ", ".join(sorted(factories)) or "none"
        raise ConfigurationError(
            f"no connector named {crm!r} is installed (installed: {known}); set `crm` to one of them or "
            f"install the plugin package that provides it"
        )
    return factories[crm]
