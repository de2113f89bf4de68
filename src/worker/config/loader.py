"""Load Settings: shipped defaults < user file (--config / BANT_SYNC_CONFIG) < BANT_SYNC_* environment.

Environment overrides name a settings path with double underscores: BANT_SYNC_STATE__URL,
BANT_SYNC_LOGGING__LEVEL, BANT_SYNC_CONNECTIONS__HUBSPOT__HOST. Values are read as TOML values when they
parse as one (15, true, ["a", "b"]) and as plain strings otherwise.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from connectors.errors import ConfigurationError
from connectors.registry import factory_for
from worker.config import secrets as secret_store
from worker.config.frameworks import load_framework
from worker.config.settings import (
    DEFAULT_CONFIG_FILE,
    ConnectionSettings,
    LoggingSettings,
    OpsApiSettings,
    RulesSettings,
    RunSettings,
    ScheduleSettings,
    Settings,
    StateSettings,
)
from worker.config.typed_tables import Problems, build, did_you_mean, field_names
from worker.errors import ConfigError
from worker.state.engine import normalise_url
from worker.state.errors import StateConfigError

_SECTIONS: dict[str, type[Any]] = {
    "logging": LoggingSettings,
    "state": StateSettings,
    "rules": RulesSettings,
    "run": RunSettings,
    "ops_api": OpsApiSettings,
}
_TOP_KEYS = (*_SECTIONS, "connections", "secrets_file")
_CONNECTION_KEYS = ("crm", "enabled", "framework", *field_names(ScheduleSettings))
_SPECIAL_ENV = frozenset({"BANT_SYNC_CONFIG", "BANT_SYNC_SECRETS_FILE", "BANT_SYNC_OPS_TOKEN"})


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found (check --config or BANT_SYNC_CONFIG)"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    except OSError as exc:
        raise ConfigError([f"{path}: cannot be read: {exc.strerror}"]) from None


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: Mapping[str, str], problems: Problems) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(secret_store.ENV_PREFIX) or name in _SPECIAL_ENV:
            continue
        if name.startswith(("BANT_SYNC_TEST_", "BANT_SYNC_OPS_TOKEN")) or name.endswith("_FILE"):
            continue
        path = [part.lower() for part in name.removeprefix(secret_store.ENV_PREFIX).split("__")]
        if path[0] not in _TOP_KEYS:
            problems.add(f"env {name}", f"unknown setting {path[0]!r}{did_you_mean(path[0], _TOP_KEYS)}")
            continue
        if path[0] == "connections" and len(path) == 3:
            continue  # may be a secret; checked when the connection is built
        node = overrides
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = _env_value(raw)
    return overrides


def _resolve_path(value: str, base: Path) -> str:
    if not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def _add_setting_problems(key: str, found: Iterable[str], problems: Problems) -> None:
    """Record a connector's own "<setting>: <what>" problems under `key` (connections.NAME)."""
    for problem in found:
        setting, sep, what = problem.partition(": ")
        if sep and " " not in setting:
            problems.add(f"{key}.{setting}", what)
        else:
            problems.add(key, problem)


def _check_schedule(key: str, schedule: ScheduleSettings, problems: Problems) -> None:
    if schedule.incremental_every_minutes < 1:
        problems.add(f"{key}.incremental_every_minutes", "must be at least 1")
    if schedule.misfire_grace_seconds < 0:
        problems.add(f"{key}.misfire_grace_seconds", "must be 0 or more")
    try:
        CronTrigger.from_crontab(schedule.full_sweep_cron)
    except ValueError as exc:
        problems.add(
            f"{key}.full_sweep_cron",
            f"{schedule.full_sweep_cron!r} is not a crontab expression ({exc}); five fields "
            f"'min hour day month weekday', e.g. '0 2 * * *'",
        )


def _check_state(state: StateSettings, problems: Problems) -> None:
    if not state.url:
        return
    try:
        normalise_url(state.url)
    except StateConfigError as exc:
        problems.add("state.url", str(exc))


def _connection(
    name: str,
    table: Any,
    defaults: RulesSettings,
    secrets_file: Mapping[str, Any],
    environ: Mapping[str, str],
    base: Path,
    problems: Problems,
) -> ConnectionSettings | None:
    key = f"connections.{name}"
    if not isinstance(table, Mapping):
        problems.add(key, "must be a table")
        return None
    crm = table.get("crm")
    if not isinstance(crm, str):
        problems.add(
            f"{key}.crm", "required: which CRM this connection speaks, e.g. 'salesforce' or 'hubspot'"
        )
        return None
    try:
        factory = factory_for(crm)
    except ConfigurationError as exc:
        problems.add(f"{key}.crm", str(exc))
        return None
    crm_table = {k: v for k, v in table.items() if k not in _CONNECTION_KEYS}
    for secret_name in factory.secret_names:
        if secret_name in crm_table:
            problems.add(
                f"{key}.{secret_name}",
                f"secrets must not be in a config file: set env "
                f"{secret_store.env_name('connections', name, secret_name)} or put it in the secrets file",
            )
            crm_table.pop(secret_name)
    for env_key, raw in environ.items():
        prefix = secret_store.env_name("connections", name) + "__"
        if env_key.startswith(prefix) and not env_key.endswith("_FILE"):
            setting = env_key.removeprefix(prefix).lower()
            if setting not in factory.secret_names and setting not in _CONNECTION_KEYS:
                crm_table[setting] = _env_value(raw)
    if "ca_bundle" in crm_table and isinstance(crm_table["ca_bundle"], str):
        crm_table["ca_bundle"] = _resolve_path(crm_table["ca_bundle"], base)
    try:
        crm_settings = build(factory.settings_type, crm_table, key, problems)
    except ConfigurationError as exc:  # a settings type that validates itself as it is built
        _add_setting_problems(key, exc.problems or (str(exc),), problems)
        crm_settings = None
    else:
        check = getattr(crm_settings, "problems", None)
        if callable(check):
            _add_setting_problems(key, check(), problems)
    schedule = build(
        ScheduleSettings,
        {k: v for k, v in table.items() if k in field_names(ScheduleSettings)},
        key,
        problems,
    )
    found: dict[str, secret_store.Secret] = {}
    for secret_name in factory.secret_names:
        try:
            secret = secret_store.lookup(("connections", name, secret_name), secrets_file, environ)
        except ValueError as exc:
            problems.add(f"{key}.{secret_name}", str(exc))
            continue
        if secret is not None:
            found[secret_name] = secret
    _check_schedule(key, schedule, problems)
    enabled = table.get("enabled", True)
    framework = table.get("framework", defaults.framework)
    if not isinstance(enabled, bool):
        problems.add(f"{key}.enabled", "must be true or false")
    if not isinstance(framework, str):
        problems.add(f"{key}.framework", "must be a framework name or a path to a .toml file")
    if crm_settings is None:
        return None
    return ConnectionSettings(
        name=name,
        crm=crm,
        enabled=bool(enabled),
        framework=str(framework),
        schedule=schedule,
        crm_settings=crm_settings,
        secrets=found,
    )


def _check_frameworks(
    rules: RulesSettings, raw_connections: Mapping[str, Any], config_dir: str, problems: Problems
) -> None:
    """Load each framework the configuration names (`rules.framework` and every connection's), once each,
    and record its problems under the first key naming it, so a broken framework file is reported with
    the settings' problems instead of after they are fixed."""
    named: dict[str, str] = {}
    if isinstance(rules.framework, str):
        named.setdefault(rules.framework, "rules.framework")
    for name, table in raw_connections.items():
        framework = table.get("framework") if isinstance(table, Mapping) else None
        if isinstance(framework, str):
            named.setdefault(framework, f"connections.{name}.framework")
    for framework, key in named.items():
        try:
            load_framework(framework, config_dir)
        except ConfigError as exc:
            for problem in exc.problems:
                problems.add(key, problem)


def load_settings(config_path: str | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, merge and validate every settings source, or raise ConfigError listing every problem."""
    env = os.environ if environ is None else environ
    sources = [DEFAULT_CONFIG_FILE] if DEFAULT_CONFIG_FILE.exists() else []
    user_path = config_path or env.get("BANT_SYNC_CONFIG")
    if user_path:
        sources.append(Path(user_path).expanduser().resolve())
    base = sources[-1].parent if user_path else Path.cwd()
    data: dict[str, Any] = {}
    for source in sources:
        data = _merge(data, _read_toml(source))
    problems = Problems()
    data = _merge(data, _env_overrides(env, problems))
    names = tuple(str(s) for s in sources)
    for key in data:
        if key not in _TOP_KEYS:
            problems.add(key, f"unknown key{did_you_mean(key, _TOP_KEYS)}")
    secrets_path = env.get("BANT_SYNC_SECRETS_FILE") or data.get("secrets_file") or ""
    secrets_file: Mapping[str, Any] = {}
    if secrets_path:
        try:
            secrets_file = secret_store.load_secrets_file(Path(_resolve_path(str(secrets_path), base)))
        except ValueError as exc:
            problems.add("secrets_file", str(exc))
    sections = {name: build(cls, data.get(name) or {}, name, problems) for name, cls in _SECTIONS.items()}
    state: StateSettings = sections["state"]
    sections["state"] = StateSettings(dir=_resolve_path(state.dir, base), url=state.url)
    _check_state(state, problems)
    connections: dict[str, ConnectionSettings] = {}
    raw_connections = data.get("connections") or {}
    if not isinstance(raw_connections, Mapping):
        problems.add("connections", "must be a table of [connections.NAME] tables")
        raw_connections = {}
    for name, table in raw_connections.items():
        connection = _connection(name, table, sections["rules"], secrets_file, env, base, problems)
        if connection is not None:
            connections[name] = connection
    _check_frameworks(sections["rules"], raw_connections, str(base), problems)
    try:
        ops_token = secret_store.lookup(("ops_token",), secrets_file, env)
    except ValueError as exc:
        problems.add("ops_token", str(exc))
        ops_token = None
    if problems:
        raise ConfigError(problems.items, names)
    return Settings(
        **sections,
        connections=connections,
        ops_token=ops_token,
        config_files=names,
        config_dir=str(base),
    )
