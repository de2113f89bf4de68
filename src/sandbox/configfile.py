"""``Sandbox.write_config`` and ``SandboxFleet.write_config``: a ready bant-sync config pointing at sandboxes,
its secrets file (0600) and a fresh state directory, so a new sandbox never inherits cursors or task ledgers
of an old one. One sandbox gives the connections `salesforce` and `hubspot`; a fleet gives a pair per
account, named by the fleet, all in one config and one state directory (one bant-sync serving them all)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Info = Mapping[str, Mapping[str, str] | str]


@dataclass(frozen=True)
class ConnectionPair:
    """One sandbox's two connections: their names in the config and the sandbox's `info`."""

    salesforce: str
    hubspot: str
    info: Info


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string for everything written here.
    return json.dumps(value)


def _table(connection: str) -> str:
    """`[connections.NAME]`, NAME quoted unless it is a bare TOML key (as the sandbox's names are)."""
    bare = connection and all(c.isascii() and (c.isalnum() or c in "-_") for c in connection)
    return f"[connections.{connection if bare else _toml_string(connection)}]"


def write_config(path: Path, info: Info) -> Path:
    """The config of one sandbox: connections `salesforce` and `hubspot`."""
    return write_connections(path, [ConnectionPair("salesforce", "hubspot", info)])


def write_connections(path: Path, pairs: Sequence[ConnectionPair]) -> Path:
    """One config with both connections of every pair, their tokens in the secrets file beside it."""
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.stem
    secrets_path = path.parent / f"{name}.secrets.toml"
    state_dir = path.parent / f"{name}.state"
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir()
    config = [
        f"secrets_file = {_toml_string(secrets_path.name)}",
        "",
        "[state]",
        f"dir = {_toml_string(state_dir.name)}",
        "",
    ]
    secrets: list[str] = []
    for pair in pairs:
        tables, tokens = _pair(pair)
        config += tables
        secrets += tokens
    path.write_text("\n".join(config), encoding="utf-8")
    secrets_path.unlink(missing_ok=True)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(secrets))
    return path


def _pair(pair: ConnectionPair) -> tuple[list[str], list[str]]:
    """The config tables and the secrets tables of one sandbox's two connections."""
    salesforce = pair.info["salesforce"]
    hubspot = pair.info["hubspot"]
    assert isinstance(salesforce, Mapping) and isinstance(hubspot, Mapping)
    pubsub = salesforce.get("pubsub_endpoint")
    salesforce_extra = [f"pubsub_endpoint = {_toml_string(pubsub)}"] if pubsub else []
    sf_table, hs_table = _table(pair.salesforce), _table(pair.hubspot)
    tables = [
        sf_table,
        'crm = "salesforce"',
        f"instance_url = {_toml_string(salesforce['instance_url'])}",
        f"login_url = {_toml_string(salesforce['login_url'])}",
        'auth = "token"',
        f"ca_bundle = {_toml_string(str(pair.info['ca_bundle']))}",
        *salesforce_extra,
        "",
        hs_table,
        'crm = "hubspot"',
        f"host = {_toml_string(hubspot['host'])}",
        "",
    ]
    tokens = [
        sf_table,
        f"access_token = {_toml_string(salesforce['access_token'])}",
        "",
        hs_table,
        f"access_token = {_toml_string(hubspot['access_token'])}",
        "",
    ]
    return tables, tokens
