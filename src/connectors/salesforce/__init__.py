"""The built-in Salesforce connector, registered as the `salesforce` entry point of `bant_sync.connectors`."""

from __future__ import annotations

from typing import Any

from connectors.registry import ConnectorContext, ConnectorSettings
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.settings import SalesforceSettings


class SalesforceFactory:
    name = "salesforce"
    settings_type: type[ConnectorSettings] = SalesforceSettings
    secret_names: tuple[str, ...] = (
        "access_token",
        "client_secret",
        "private_key",
        "password",
        "security_token",
    )

    def create(self, settings: Any, context: ConnectorContext) -> SalesforceConnector:
        if not isinstance(settings, SalesforceSettings):
            settings = SalesforceSettings(**settings)
        return SalesforceConnector(settings, context)


factory = SalesforceFactory()

__all__ = ["SalesforceConnector", "SalesforceFactory", "SalesforceSettings", "factory"]
