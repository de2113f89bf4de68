"""Keeping a connection's owners cache fresh: names and e-mails are a convenience, never a run's blocker.

A full sweep refreshes the cache when it is empty or older than `MAX_AGE` by the run's clock: one paged read
(`Connector.owners()`), counted in the run's API calls like every other request. Incremental and scoped
runs never read owners, so their call budgets are unchanged; a day-old cache is fresh enough for names
(a new rep's deals show the id until the next daily sweep, and `sync --owner EMAIL` refreshes on a miss).
A CRM failure while reading owners logs a warning and the run goes on; running out of quota stops the run
as it would at its next request anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import structlog

from connectors.errors import ConnectorError, QuotaExhaustedError
from connectors.model import Owner
from connectors.protocol import Connector
from rules.errors import did_you_mean
from worker.errors import UsageError
from worker.state import StateStore

log = structlog.get_logger()

MAX_AGE = timedelta(days=1)
"""How old the cache may grow before a full sweep reads the owners again."""


def is_stale(store: StateStore, connection: str, now: datetime, max_age: timedelta = MAX_AGE) -> bool:
    """True when the connection has no cached owners or they were read `max_age` or longer ago."""
    refreshed = store.owners_refreshed_at(connection)
    return refreshed is None or now - refreshed >= max_age


def read_owners(
    store: StateStore, connection: str, connector: Connector, clock: Callable[[], datetime]
) -> list[Owner]:
    """Read the CRM's owners and replace the cache with them (ConnectorError when the CRM would not say)."""
    found = connector.owners()
    store.replace_owners(connection, found, clock())
    log.info("owners refreshed", owners=len(found))
    return found


def refresh_owners(
    store: StateStore, connection: str, connector: Connector, clock: Callable[[], datetime]
) -> list[Owner] | None:
    """`read_owners`, but a CRM failure other than running out of quota is a warning and None."""
    try:
        return read_owners(store, connection, connector, clock)
    except QuotaExhaustedError:
        raise
    except ConnectorError as exc:
        log.warning("owners not refreshed; names stay as they were", error=str(exc))
        return None


def refresh_if_stale(
    store: StateStore, connection: str, connector: Connector, clock: Callable[[], datetime]
) -> None:
    """The full sweep's step: refresh only an empty or day-old cache."""
    if is_stale(store, connection, clock()):
        refresh_owners(store, connection, connector, clock)


def fresh_owners(
    store: StateStore, connection: str, connector: Connector, clock: Callable[[], datetime]
) -> list[Owner]:
    """The connection's owners for something people read (the report, the digest): the cache, read again
    from the CRM through `connector` (past preflight) when it is empty or a day old. A CRM that will not
    say leaves the cache as it was (names are a convenience), but running out of quota stops the caller."""
    if is_stale(store, connection, clock()):
        found = refresh_owners(store, connection, connector, clock)
        if found is not None:
            return found
    return store.owners(connection)


def _by_email(owners: Sequence[Owner], email: str) -> list[Owner]:
    """The owners with this e-mail (case-insensitive), active ones first."""
    wanted = email.casefold()
    found = [o for o in owners if o.email is not None and o.email.casefold() == wanted]
    return sorted(found, key=lambda o: not o.active)


def resolve_owner(
    store: StateStore,
    connection: str,
    value: str,
    connector_for: Callable[[str], Connector],
    clock: Callable[[], datetime],
) -> str:
    """The owner id `sync --owner VALUE` means: VALUE itself unless it is an e-mail (holds "@"), which is
    looked up in the connection's owners cache, case-insensitively; an e-mail the cache does not know makes
    one read of the CRM's owners (a new rep) before it is a UsageError naming the closest known e-mail.
    Two users sharing an e-mail: the active one; two active ones are a UsageError naming both ids."""
    if "@" not in value:
        return value
    matches = _by_email(store.owners(connection), value)
    if not matches:
        connector = connector_for(connection)
        try:
            owners = read_owners(store, connection, connector, clock)
        except ConnectorError as exc:
            raise UsageError(
                f"--owner {value}: no cached owner of connection {connection!r} has this e-mail, and the "
                f"CRM's owners could not be read ({exc}); pass the owner's id instead"
            ) from exc
        finally:
            connector.close()
        matches = _by_email(owners, value)
    if not matches:
        known = sorted({o.email for o in store.owners(connection) if o.email})
        hint = did_you_mean(value.casefold(), [e.casefold() for e in known])
        raise UsageError(
            f"--owner {value}: no owner of connection {connection!r} has this e-mail{hint}; "
            "`bant-sync status` lists the owners with unqualified deals"
        )
    if len(matches) > 1 and matches[1].active:
        ids = ", ".join(o.id for o in matches if o.active)
        raise UsageError(f"--owner {value}: several active owners have this e-mail ({ids}); pass one id")
    return matches[0].id
