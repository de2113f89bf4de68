"""`bant-sync connections add | list | show | disable | enable | remove`: connections kept in the state
store instead of the config file, for a fleet of many CRM accounts (docs/operations.md, "Connections in
the state store").

These commands read the config without the stored connections (so one invalid stored connection can still
be shown, disabled or removed) and open the state store themselves. Secrets never go into the store: a
stored connection's secrets come from env BANT_SYNC_CONNECTIONS__NAME__*, its _FILE, or the secrets file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from worker.config import connection_admin
from worker.config.loader import _env_value, load_settings
from worker.config.settings import Settings
from worker.errors import UsageError
from worker.service import utc_now
from worker.state import StateStore

EPILOG = """\
examples:
  bant-sync connections add acme --crm hubspot --tenant "Acme Corp" \\
      --set incremental_every_minutes=10
  bant-sync connections add globex --crm salesforce --tenant Globex \\
      --set instance_url=https://globex.my.salesforce.com --set client_id=3MVG9... \\
      --set username=bant@globex.com --disabled
  bant-sync connections list --json
  bant-sync connections disable acme
  bant-sync connections remove acme --yes

Secrets never go into the state store: give acme's token as env
BANT_SYNC_CONNECTIONS__ACME__ACCESS_TOKEN (or ..._FILE), or as access_token under
[connections.acme] in the secrets file; or store a reference to a file holding it:
--set access_token_file=/run/secrets/acme (an absolute path, readable by its owner only).
Stored connections are loaded with `connections_table = true` under [state]; a change takes effect at
the next command or the next start of `serve`.
Exit codes: 0 ok, 2 unknown or taken name, 3 invalid settings (every problem listed).
"""


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(args.config, stored_connections=False)


def _open(settings: Settings) -> StateStore:
    return StateStore.open(settings.state.database_url())


def _values(pairs: list[str]) -> dict[str, Any]:
    """--set key=value pairs; a value is read as a TOML value when it parses as one (10, true, ["a"]),
    as a plain string otherwise, as in BANT_SYNC_* variables."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {pair!r}: write key=value, e.g. --set incremental_every_minutes=10")
        values[key.strip()] = _env_value(raw)
    bundle = values.get("ca_bundle")
    if isinstance(bundle, str) and bundle:  # relative to where the command runs, not to the config file
        values["ca_bundle"] = str(Path(bundle).expanduser().resolve())
    return values


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _line(row: dict[str, Any]) -> str:
    state = "enabled" if row["enabled"] else "disabled"
    tenant = f"  tenant {row['tenant']}" if row["tenant"] else ""
    identity = f"  account {row['identity']}" if row["identity"] else ""
    return f"{row['name']}  {row['crm']}  {state}{tenant}{identity}"


def run_add(args: argparse.Namespace, _: Settings) -> int:
    settings = _settings(args)
    values = _values(args.set or [])
    store = _open(settings)
    try:
        row = connection_admin.add(
            settings,
            store,
            args.name,
            args.crm,
            values,
            utc_now(),
            tenant=args.tenant or "",
            enabled=not args.disabled,
        )
    finally:
        store.close()
    state = "disabled" if not row.enabled else "enabled"
    sys.stdout.write(
        f"added connection {row.name} ({row.crm}, {state}) to the state store {store.where}; its secrets "
        f"come from env BANT_SYNC_CONNECTIONS__{row.name.upper()}__* or [connections.{row.name}] in the "
        f"secrets file\n"
    )
    return 0


def run_list(args: argparse.Namespace, _: Settings) -> int:
    store = _open(_settings(args))
    try:
        rows = connection_admin.listing(store)
    finally:
        store.close()
    if args.json:
        _print_json({"connections": rows})
    elif not rows:
        sys.stdout.write("no connections in the state store (add one: bant-sync connections add --help)\n")
    else:
        sys.stdout.write("".join(_line(row) + "\n" for row in rows))
    return 0


def run_show(args: argparse.Namespace, _: Settings) -> int:
    store = _open(_settings(args))
    try:
        row = connection_admin.get(store, args.name)
        _print_json(connection_admin.describe(row, store.identity_of(row.name)))
    finally:
        store.close()
    return 0


def _run_set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    store = _open(_settings(args))
    try:
        row = connection_admin.set_enabled(store, args.name, enabled, utc_now())
    finally:
        store.close()
    sys.stdout.write(f"{row.name}: {'enabled' if enabled else 'disabled'}\n")
    return 0


def run_remove(args: argparse.Namespace, _: Settings) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(f"removing {args.name!r} needs confirmation: add --yes")
        answer = input(f"remove connection {args.name!r} from the state store? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            sys.stdout.write("nothing removed\n")
            return 0
    store = _open(_settings(args))
    try:
        connection_admin.remove(store, args.name)
    finally:
        store.close()
    sys.stdout.write(f"removed {args.name} (its run history, task ledger and deal states stay)\n")
    return 0


def add_parser(subparsers: Any, common: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "connections",
        parents=[common],
        help="add, list, disable, enable or remove connections kept in the state store",
        description=(
            "Connections kept in the state store's connections table instead of the config file: one per "
            "CRM account (a Salesforce org, a HubSpot portal), for a fleet of many. They are validated like "
            "a [connections.NAME] table and loaded with `connections_table = true` under [state]."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add",
        parents=[common],
        help="validate and store a new connection",
        description=(
            "Store a connection after validating it exactly like a [connections.NAME] table (exit 3 with "
            "every problem). Any key a config file's connection table takes is given with --set; secrets "
            "are refused: they go in the environment or the secrets file."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add.add_argument("name", metavar="NAME", help="the connection's name (letters, digits, '-', '_')")
    add.add_argument("--crm", required=True, metavar="CRM", help="salesforce or hubspot")
    add.add_argument("--tenant", metavar="T", help="who the connection serves (free text)")
    add.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="a connection setting, e.g. host=https://api.hubapi.com or incremental_every_minutes=10 "
        "(repeatable; values are read as TOML when they parse as such)",
    )
    add.add_argument("--disabled", action="store_true", help="store it disabled (no scheduled runs)")
    add.set_defaults(handler=run_add, needs_settings=False)
    listed = actions.add_parser("list", parents=[common], help="the stored connections")
    listed.add_argument("--json", action="store_true", help="print one JSON object")
    listed.set_defaults(handler=run_list, needs_settings=False)
    show = actions.add_parser("show", parents=[common], help="one stored connection, as JSON")
    show.add_argument("name", metavar="NAME")
    show.set_defaults(handler=run_show, needs_settings=False)
    for action, enabled in (("disable", False), ("enable", True)):
        sub = actions.add_parser(action, parents=[common], help=f"{action} a stored connection")
        sub.add_argument("name", metavar="NAME")
        sub.set_defaults(
            handler=lambda args, _settings, on=enabled: _run_set_enabled(args, on), needs_settings=False
        )
    remove = actions.add_parser(
        "remove",
        parents=[common],
        help="delete a stored connection (its history stays)",
        description="Delete a stored connection; its run history, task ledger and deal states stay.",
    )
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    remove.set_defaults(handler=run_remove, needs_settings=False)
