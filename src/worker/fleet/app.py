"""The procrastinate App of the fleet, bound to the state store's PostgreSQL.

The queue lives beside the state store (same database, same `search_path`: a schema named in the URL's
`options=-csearch_path=...` holds both), so a fleet needs nothing but the PostgreSQL it already has. SQLite
cannot host it (no LISTEN/NOTIFY, no row locks shared by processes on several machines): with SQLite
`bant-sync worker` refuses to start with a configuration error.
"""

from __future__ import annotations

from procrastinate import App, PsycopgConnector
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from worker.config.settings import Settings
from worker.errors import ConfigError
from worker.fleet.due import MINUTE_SECONDS
from worker.fleet.jobs import register

NOT_POSTGRES = (
    "state.url: `bant-sync worker` keeps its job queue in the state store's PostgreSQL; set state.url to a "
    "PostgreSQL URL (e.g. postgresql://bant@db.example:5432/bant) or run `bant-sync serve` on one machine"
)


def queue_conninfo(settings: Settings) -> str:
    """The libpq URL of the state store (password merged, SQLAlchemy's `+driver` dropped); ConfigError
    when the state store is not PostgreSQL."""
    if not settings.state.url:
        raise ConfigError([NOT_POSTGRES])
    try:
        url = make_url(settings.state.database_url())
    except ArgumentError:
        raise ConfigError([NOT_POSTGRES]) from None
    if url.get_backend_name() != "postgresql":
        raise ConfigError([NOT_POSTGRES])
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def build_app(settings: Settings, minute_seconds: int = MINUTE_SECONDS) -> App:
    """A not-yet-opened App on the state store's PostgreSQL with the fleet's tasks registered."""
    app = App(connector=PsycopgConnector(conninfo=queue_conninfo(settings)))
    register(app, minute_seconds)
    return app
