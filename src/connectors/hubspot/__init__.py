"""HubSpot connector (hubspot-api-client 12). Registered as the `hubspot` entry point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectors.hubspot.connector import HubSpotConnector
from connectors.hubspot.settings import HubSpotSettings
from connectors.protocol import Connector
from connectors.registry import ConnectorContext, ConnectorSettings

__all__ = ["HubSpotConnector", "HubSpotFactory", "HubSpotSettings", "factory"]


@dataclass(frozen=True, slots=True)
class HubSpotFactory:
    """Builds HubSpotConnector from `[connections.NAME]` settings; secrets come from env or secret file."""

    name: str = "hubspot"
    settings_type: type[ConnectorSettings] = HubSpotSettings
    secret_names: tuple[str, ...] = ("access_token", "client_secret", "refresh_token")

    def create(self, settings: Any, context: ConnectorContext) -> Connector:
        if not isinstance(settings, HubSpotSettings):
            raise TypeError(f"expected HubSpotSettings, got {type(settings).__name__}")
        return HubSpotConnector(settings, context)


factory = HubSpotFactory()
