"""Connections kept in the state store (`bant-sync connections add`), as the configuration loader sees
them: each row becomes a `[connections.NAME]` table and is validated by the same code as a file's.

Secrets never go into the table: a key a connector declares as a secret, or one that looks like a secret
(token, password, private key...), is refused with where secrets go instead (env
BANT_SYNC_CONNECTIONS__NAME__KEY, its _FILE, or the secrets file's [connections.NAME]), the same places a
file connection's secrets come from. What the table may hold is a reference: `<secret>_file`, the absolute
path of a file holding the secret (a mounted Kubernetes secret, a file a secrets manager's agent writes),
read exactly as env BANT_SYNC_CONNECTIONS__NAME__<SECRET>_FILE would be, which wins when set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from worker.config.secrets import env_name
from worker.config.settings import StateSettings
from worker.state.model import StoredConnection

FILE_SUFFIX = "_file"
_SECRET_LIKE = re.compile(r"token|secret|passw|private_key|api_?key|credential|bearer", re.IGNORECASE)
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,98}[A-Za-z0-9])?")
STORE_SOURCE = "state store"
"""`ConnectionSettings.source` of a connection loaded from the state store."""
RESERVED_KEYS = ("crm", "enabled", "tenant")
"""Keys that are columns of the table, not settings: given as options (--crm, --disabled, --tenant)."""


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a stored connection (its environment variables must be spellable)."""
    if _NAME.fullmatch(name) and "__" not in name:
        return None
    return (
        f"{name!r} is not a usable connection name: use letters, digits, '-' and '_' (no '__', no leading "
        f"or trailing '-'/'_'), at most 100 characters, e.g. 'acme-hubspot'"
    )


def where_secrets_go(name: str, key: str) -> str:
    variable = env_name("connections", name, key.removesuffix("_file"))
    return (
        f"set env {variable} (or {variable}_FILE) or put `{key.removesuffix('_file')}` under "
        f"[connections.{name}] in the secrets file"
    )


def secret_keys(keys: Iterable[str], secret_names: Iterable[str], settings_keys: Iterable[str]) -> list[str]:
    """The keys that are, or look like, secrets: a declared secret name (or its _file variant), or a key
    the connector does not know whose name looks like a secret's."""
    declared = set(secret_names)
    known = set(settings_keys)
    return [
        key
        for key in keys
        if key in declared
        or (key not in known and key.removesuffix(FILE_SUFFIX) not in declared and _SECRET_LIKE.search(key))
    ]


def file_references(table: Mapping[str, Any], secret_names: Iterable[str]) -> dict[str, Any]:
    """The `<secret>_file` keys of `table`: where a secret's file is, not the secret."""
    wanted = {f"{name}{FILE_SUFFIX}" for name in secret_names}
    return {key: value for key, value in table.items() if key in wanted}


def reference_problem(value: Any) -> str | None:
    if isinstance(value, str) and value and Path(value).is_absolute():
        return None
    return "must be the absolute path of a file holding the secret (only its owner may read it)"


def environ_with_references(
    name: str, references: Mapping[str, str], environ: Mapping[str, str]
) -> Mapping[str, str]:
    """`environ` with each stored secret file reference as the connection's _FILE variable, unless the
    environment gives that secret itself (its variable or its _FILE variable wins, as for any setting)."""
    added: dict[str, str] = {}
    for secret, path in references.items():
        variable = env_name("connections", name, secret)
        if not environ.get(variable) and not environ.get(variable + "_FILE"):
            added[variable + "_FILE"] = path
    return {**environ, **added} if added else environ


def secret_problem(name: str, key: str) -> str:
    where = where_secrets_go(name, key)
    return f"looks like a secret, and secrets are never kept in the state store: {where}"


def as_table(row: StoredConnection) -> dict[str, Any]:
    """The row as the `[connections.NAME]` table a config file would hold."""
    return {**row.settings, "crm": row.crm, "enabled": row.enabled}


def read_rows(state: StateSettings) -> tuple[list[StoredConnection], str]:
    """Every stored connection (one query) and the store's display address; opens and closes the store."""
    from worker.state.store import StateStore

    store = StateStore.open(state.database_url())
    try:
        return store.stored_connections(), store.where
    finally:
        store.close()


def strip_reserved(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k not in RESERVED_KEYS}
