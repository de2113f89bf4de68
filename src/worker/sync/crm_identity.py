"""Which CRM account a connection reaches, and the refusal of two connections of one config that reach the
same one: their runs would fight over the same deals and tasks."""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime

import structlog

from connectors.errors import ConnectorError
from connectors.protocol import Connector
from worker.errors import ConfigError
from worker.state import StateStore

log = structlog.get_logger()


def check_identity(
    store: StateStore,
    connection: str,
    connector: Connector,
    configured: Collection[str],
    connector_for: Callable[[str], Connector],
    now: datetime,
) -> None:
    """Record the account this connection reaches; raise ConfigError when another enabled connection of
    this config reaches it too. A connection of the same CRM whose account is not known yet is asked for it
    (one light call, once; its runs record it from then on)."""
    identity = connector.identity
    store.record_identity(connection, connector.name, identity, now)
    known = set(store.connections_of(identity))
    for other in sorted(set(configured) - {connection}):
        if store.identity_of(other) is not None:
            continue
        peer = connector_for(other)
        try:
            if peer.name != connector.name:
                continue
            store.record_identity(other, peer.name, peer.identity, now)
            if peer.identity == identity:
                known.add(other)
        except ConnectorError as exc:
            log.info("could not read the CRM account of another connection", other=other, error=str(exc))
        finally:
            peer.close()
    others = sorted(c for c in known if c != connection and c in configured)
    if others:
        raise ConfigError(
            [
                f"connections {connection!r} and {others[0]!r} both point at the same CRM account "
                f"({identity}): keep one of them (remove the other or set `enabled = false` on it)"
            ]
        )
