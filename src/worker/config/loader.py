"""Load Settings: shipped defaults < user file (--config / BANT_SYNC_CONFIG) < BANT_SYNC_* environment.

Environment overrides name a settings path with double underscores: BANT_SYNC_STATE__URL,
BANT_SYNC_LOGGING__LEVEL, BANT_SYNC_CONNECTIONS__HUBSPOT__HOST, BANT_SYNC_CONNECTIONS__HUBSPOT__ENABLED.
Values are read as TOML values when they parse as one (15, true, ["a", "b"]) and as plain strings
otherwise. Every BANT_SYNC_* variable either overrides a setting, is a secret, or is refused with a problem
naming it: an operator who disables a connection from systemd's `Environment=` must never see it run.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from connectors.errors import ConfigurationError
from connectors.registry import ConnectorSettings, factory_for
from rules.errors import did_you_mean
from worker.config import secrets as secret_store
from worker.config import stored_connections as stored
from worker.config.frameworks import load_framework
from worker.config.settings import (
    DEFAULT_CONFIG_FILE,
    ConnectionSettings,
    DigestSettings,
    LoggingSettings,
    OpsApiSettings,
    RulesSettings,
    RunSettings,
    ScheduleSettings,
    Settings,
    SlackSettings,
    SmtpSettings,
    StateSettings,
    TeamSettings,
)
from worker.config.typed_tables import Problems, build, field_names
from worker.errors import ConfigError
from worker.state.engine import display_text, normalise_url
from worker.state.errors import StateConfigError
from worker.state.model import StoredConnection

_SECTIONS: dict[str, type[Any]] = {
    "logging": LoggingSettings,
    "state": StateSettings,
    "rules": RulesSettings,
    "run": RunSettings,
    "ops_api": OpsApiSettings,
    "digest": DigestSettings,
    "smtp": SmtpSettings,
    "slack": SlackSettings,
}
_TOP_KEYS = (*_SECTIONS, "connections", "secrets_file")
_CONNECTION_KEYS = ("crm", "enabled", "framework", *field_names(ScheduleSettings))
_SPECIAL_ENV = frozenset({"BANT_SYNC_CONFIG", "BANT_SYNC_SECRETS_FILE"})
_TEST_ENV_PREFIX = "BANT_SYNC_TEST_"
OPS_TOKEN_PATH = ("ops_token",)
STATE_PASSWORD_PATH = ("state", "password")
SMTP_PASSWORD_PATH = ("smtp", "password")
SLACK_TOKEN_PATH = ("slack", "bot_token")
_SECTION_SECRETS = (STATE_PASSWORD_PATH, SMTP_PASSWORD_PATH, SLACK_TOKEN_PATH)
_TOP_SECRETS = frozenset({OPS_TOKEN_PATH, *_SECTION_SECRETS})
HOW_TO_GENERATE = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
_FILE_SUFFIX = "_file"


@dataclass
class EnvOverrides:
    """The BANT_SYNC_* variables sorted by what they set: `sections` merges over the files like one more
    file; `connections` holds, per connection name, setting path -> (variable, raw value), applied once the
    connection's CRM (and so its secret names) is known."""

    sections: dict[str, Any] = field(default_factory=dict)
    connections: dict[str, dict[tuple[str, ...], tuple[str, str]]] = field(default_factory=dict)


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


def _is_secret_path(path: tuple[str, ...], secrets: Iterable[tuple[str, ...]]) -> bool:
    """Whether `path` names a secret, directly or as its `_FILE` variant."""
    known = set(secrets)
    if path in known:
        return True
    last = path[-1]
    return last.endswith(_FILE_SUFFIX) and (*path[:-1], last.removesuffix(_FILE_SUFFIX)) in known


def _file_var_problem(var: str, setting: str, settings_keys: Iterable[str]) -> str:
    if setting.endswith(_FILE_SUFFIX) and setting.removesuffix(_FILE_SUFFIX) in settings_keys:
        return f"only secrets are read from a _FILE variable: set {var.removesuffix('_FILE')} instead"
    return f"unknown setting {setting!r}{did_you_mean(setting, settings_keys)}"


def _env_overrides(environ: Mapping[str, str], problems: Problems) -> EnvOverrides:
    found = EnvOverrides()
    for name, raw in sorted(environ.items()):
        if not name.startswith(secret_store.ENV_PREFIX) or name in _SPECIAL_ENV:
            continue
        if name.startswith(_TEST_ENV_PREFIX):
            continue
        path = tuple(part.lower() for part in name.removeprefix(secret_store.ENV_PREFIX).split("__"))
        if _is_secret_path(path, _TOP_SECRETS):
            continue
        if path[0] == "connections":
            if len(path) < 3 or not all(path):
                problems.add(f"env {name}", "name a connection's setting: BANT_SYNC_CONNECTIONS__NAME__KEY")
                continue
            found.connections.setdefault(path[1], {})[path[2:]] = (name, raw)
            continue
        if path[0] not in _SECTIONS:
            problems.add(f"env {name}", f"unknown setting {path[0]!r}{did_you_mean(path[0], _TOP_KEYS)}")
            continue
        keys = field_names(_SECTIONS[path[0]])
        if len(path) != 2:
            example = secret_store.env_name(path[0], keys[0])
            problems.add(f"env {name}", f"name one setting of [{path[0]}], e.g. {example}")
            continue
        if path[1] not in keys:
            problems.add(f"env {name}", _file_var_problem(name, path[1], keys))
            continue
        found.sections.setdefault(path[0], {})[path[1]] = _env_value(raw)
        problems.origins[".".join(path)] = name
    return found


def _set_path(table: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    """Set `value` at `path` in `table`, copying the nested tables it passes through (never the file's)."""
    node = table
    for part in path[:-1]:
        child = node.get(part)
        node[part] = dict(child) if isinstance(child, Mapping) else {}
        node = node[part]
    node[path[-1]] = value


def _apply_connection_env(
    name: str,
    table: Mapping[str, Any],
    entries: Mapping[tuple[str, ...], tuple[str, str]],
    problems: Problems,
) -> dict[str, Any]:
    """The connection's table with its BANT_SYNC_CONNECTIONS__NAME__* overrides applied. Secrets (and their
    _FILE variants) are left to the secret lookup; any other variable sets its key or is a problem."""
    key = f"connections.{name}"
    merged = dict(table)
    if ("crm",) in entries:
        var, raw = entries[("crm",)]
        merged["crm"] = _env_value(raw)
        problems.origins[f"{key}.crm"] = var
    crm = merged.get("crm")
    try:
        factory = factory_for(crm) if isinstance(crm, str) else None
    except ConfigurationError:
        factory = None  # reported when the connection is built
    secret_names = factory.secret_names if factory is not None else ()
    settings_keys = (*_CONNECTION_KEYS, *(field_names(factory.settings_type) if factory else ()))
    for path, (var, raw) in sorted(entries.items()):
        if path == ("crm",):
            continue
        setting = path[0]
        if len(path) == 1 and setting not in settings_keys:
            if _is_secret_path(path, [(s,) for s in secret_names]):
                continue
            if factory is not None:
                problems.add(f"env {var}", _file_var_problem(var, setting, (*settings_keys, *secret_names)))
                continue
        _set_path(merged, path, _env_value(raw))
        problems.origins[".".join((key, *path))] = var
    return merged


def _match_connection_names(overrides: EnvOverrides, configured: Mapping[str, Any]) -> None:
    """Variable names are upper-case: tie each to the configured connection of that name in any case
    (`[connections.Sales]` is BANT_SYNC_CONNECTIONS__SALES__*, as for its secrets)."""
    folded = {name.lower(): name for name in configured}
    overrides.connections = {folded.get(name, name): found for name, found in overrides.connections.items()}


def _env_only_connections(
    overrides: EnvOverrides, configured: Mapping[str, Any], problems: Problems
) -> dict[str, Any]:
    """Connections the environment defines (it sets their `crm`); any other variable naming a connection
    that no file configures is a problem, never silently dropped."""
    defined: dict[str, Any] = {}
    for name, entries in overrides.connections.items():
        if name in configured:
            continue
        if ("crm",) in entries:
            defined[name] = {}
            continue
        known = ", ".join(configured) or "none"
        define = secret_store.env_name("connections", name, "crm")
        for var, _raw in entries.values():
            problems.add(
                f"env {var}",
                f"no connection {name!r} is configured (configured: {known}): add [connections.{name}] "
                f"to the config file, or define it here with {define}",
            )
    return defined


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


def _state_settings(
    state: StateSettings,
    base: Path,
    secrets_file: Mapping[str, Any],
    environ: Mapping[str, str],
    problems: Problems,
) -> StateSettings:
    """`state` with its directory resolved and its password from a secret path. A password written into a
    config file's `state.url` is refused like any secret in a config file; the URL is never quoted whole."""
    password: secret_store.Secret | None = None
    try:
        password = secret_store.lookup(STATE_PASSWORD_PATH, secrets_file, environ)
    except ValueError as exc:
        problems.add("state.password", str(exc))
    where = secret_store.env_name(*STATE_PASSWORD_PATH)
    if state.url:
        try:
            parsed = normalise_url(state.url)
        except StateConfigError as exc:
            problems.add("state.url", str(exc))
        else:
            if parsed.password is not None and "state.url" not in problems.origins:
                problems.add(
                    "state.url",
                    f"{display_text(state.url)} holds a password, and secrets must not be in a config "
                    f"file: remove it from the URL and set env {where} (or {where}_FILE, or `password` "
                    f"under [state] in the secrets file)",
                )
            elif parsed.password is not None and password is not None:
                problems.add(
                    "state.url",
                    f"{display_text(state.url)} holds a password and {password.source} gives one too: "
                    f"keep one",
                )
            elif password is not None and not parsed.drivername.startswith("postgresql"):
                problems.add("state.password", f"{password.source} is set, but only a PostgreSQL URL uses it")
    elif password is not None:
        problems.add("state.password", f"{password.source} is set, but only a PostgreSQL state.url uses it")
    return replace(state, dir=_resolve_path(state.dir, base), password=password)


def _digest_settings(table: Any, problems: Problems) -> DigestSettings:
    """[digest] with its `[[digest.teams]]` array of tables (each built like a section of its own)."""
    if not isinstance(table, Mapping):
        problems.add("digest", "must be a table")
        return DigestSettings()
    raw_teams = table.get("teams", [])
    digest = build(DigestSettings, {k: v for k, v in table.items() if k != "teams"}, "digest", problems)
    if not isinstance(raw_teams, list) or not all(isinstance(t, Mapping) for t in raw_teams):
        problems.add("digest.teams", "must be an array of tables: [[digest.teams]] name, members, managers")
        return digest
    teams = []
    for index, raw in enumerate(raw_teams):
        key = f"digest.teams[{index}]"
        team = build(TeamSettings, raw, key, problems)
        if not team.name:
            problems.add(f"{key}.name", "required: the team's name, shown in its rollup")
        if not team.managers:
            problems.add(f"{key}.managers", "required: the e-mails that get the team's rollup")
        for address in (*team.members, *team.managers):
            if "@" not in address:
                problems.add(key, f"{address!r} is not an e-mail address")
        teams.append(team)
    return replace(digest, teams=tuple(teams))


def channel_problems(smtp: SmtpSettings, slack: SlackSettings, channels: Iterable[str]) -> list[str]:
    """What keeps the digest from going out on `channels`: one line per missing setting, naming it."""
    problems: list[str] = []
    wanted = tuple(channels)
    if "email" in wanted:
        if not smtp.host:
            problems.append("smtp.host: required to send the digest by e-mail: the SMTP server's host name")
        if not smtp.from_address:
            problems.append("smtp.from_address: required to send the digest by e-mail: its From: address")
    if "slack" in wanted and slack.bot_token is None:
        where = secret_store.env_name(*SLACK_TOKEN_PATH)
        problems.append(
            f"slack.bot_token: required to send the digest by Slack: set env {where} (or {where}_FILE, or "
            f"`bot_token` under [slack] in the secrets file)"
        )
    return problems


def digest_problems(digest: DigestSettings, smtp: SmtpSettings, slack: SlackSettings) -> list[str]:
    """An enabled digest's problems: its channels' missing settings and a schedule that is no crontab."""
    problems = channel_problems(smtp, slack, digest.channels)
    try:
        CronTrigger.from_crontab(digest.schedule)
    except ValueError as exc:
        problems.append(
            f"digest.schedule: {digest.schedule!r} is not a crontab expression ({exc}); five fields "
            f"'min hour day month weekday', e.g. '0 8 * * MON'"
        )
    return problems


def _section_secret(
    path: tuple[str, str], secrets_file: Mapping[str, Any], environ: Mapping[str, str], problems: Problems
) -> secret_store.Secret | None:
    try:
        return secret_store.lookup(path, secrets_file, environ)
    except ValueError as exc:
        problems.add(".".join(path), str(exc))
        return None


def _smtp_settings(
    smtp: SmtpSettings,
    base: Path,
    secrets_file: Mapping[str, Any],
    environ: Mapping[str, str],
    problems: Problems,
) -> SmtpSettings:
    """[smtp] with its CA file resolved and its password from a secret path (only with a username)."""
    password = _section_secret(SMTP_PASSWORD_PATH, secrets_file, environ, problems)
    if smtp.username and password is None:
        where = secret_store.env_name(*SMTP_PASSWORD_PATH)
        problems.add("smtp.password", f"smtp.username is set, so the password is needed: set env {where}")
    elif password is not None and not smtp.username:
        problems.add("smtp.username", f"the SMTP password ({password.source}) is set: name the user too")
    if smtp.tls == "none" and (smtp.username or password is not None):
        problems.add("smtp.tls", "a login is never sent without TLS: use starttls or implicit")
    return replace(smtp, ca_file=_resolve_path(smtp.ca_file, base), password=password)


def _slack_settings(
    slack: SlackSettings, secrets_file: Mapping[str, Any], environ: Mapping[str, str], problems: Problems
) -> SlackSettings:
    return replace(slack, bot_token=_section_secret(SLACK_TOKEN_PATH, secrets_file, environ, problems))


def _ops_token(
    secrets_file: Mapping[str, Any], environ: Mapping[str, str], problems: Problems
) -> secret_store.Secret | None:
    """The ops API token, refused when shorter than MIN_TOKEN_LENGTH (its length is all that shows)."""
    try:
        token = secret_store.lookup(OPS_TOKEN_PATH, secrets_file, environ)
    except ValueError as exc:
        problems.add("ops_token", str(exc))
        return None
    if token is not None and len(token.reveal()) < secret_store.MIN_TOKEN_LENGTH:
        problems.add(
            "ops_token",
            f"the ops API token ({token.source}) has {len(token.reveal())} characters; use at least "
            f"{secret_store.MIN_TOKEN_LENGTH} random ones, e.g. from `{HOW_TO_GENERATE}`",
        )
    return token


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
    if "ca_bundle" in crm_table and isinstance(crm_table["ca_bundle"], str):
        crm_table["ca_bundle"] = _resolve_path(crm_table["ca_bundle"], base)
    crm_settings: ConnectorSettings | None = None
    try:
        built = build(factory.settings_type, crm_table, key, problems)
    except ConfigurationError as exc:  # a settings type that validates itself as it is built
        _add_setting_problems(key, exc.problems or (str(exc),), problems)
    else:
        _add_setting_problems(key, built.problems(), problems)
        crm_settings = built
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


def _stored_split(
    name: str, table: Mapping[str, Any], problems: Problems
) -> tuple[dict[str, Any], dict[str, str]]:
    """`table` without the keys that are or look like secrets (each recorded as a problem saying where
    secrets go), and apart from it the secret file references it holds (`access_token_file = "/run/…"`:
    the path of a file holding the secret, read like env BANT_SYNC_CONNECTIONS__NAME__ACCESS_TOKEN_FILE)."""
    crm = table.get("crm")
    try:
        factory = factory_for(crm) if isinstance(crm, str) else None
    except ConfigurationError:
        factory = None  # reported when the connection is built
    secret_names = factory.secret_names if factory is not None else ()
    settings_keys = (*_CONNECTION_KEYS, *(field_names(factory.settings_type) if factory else ()))
    references: dict[str, str] = {}
    for key, value in stored.file_references(table, secret_names).items():
        problem = stored.reference_problem(value)
        if problem is None:
            references[key.removesuffix(stored.FILE_SUFFIX)] = value
        else:
            problems.add(f"connections.{name}.{key}", problem)
    found = stored.secret_keys(table, secret_names, settings_keys)
    for key in found:
        problems.add(f"connections.{name}.{key}", stored.secret_problem(name, key))
    dropped = {*found, *stored.file_references(table, secret_names)}
    return {k: v for k, v in table.items() if k not in dropped}, references


def _stored_tables(
    rows: Iterable[StoredConnection],
    configured: Mapping[str, Any],
    sources: tuple[str, ...],
    store_where: str,
    problems: Problems,
) -> tuple[dict[str, dict[str, Any]], dict[str, str], dict[str, dict[str, str]]]:
    """The stored connections as `[connections.NAME]` tables, their tenants and their secret file
    references. A name the config (a file or the environment) also defines, in any case, is a problem
    naming both places: never one silently winning over the other."""
    folded = {name.lower(): name for name in configured}
    tables: dict[str, dict[str, Any]] = {}
    tenants: dict[str, str] = {}
    references: dict[str, dict[str, str]] = {}
    for row in rows:
        clash = folded.get(row.name.lower())
        if clash is not None:
            where = ", ".join(sources[1:] or sources) or "the environment"
            problems.add(
                f"connections.{row.name}",
                f"defined twice: as [connections.{clash}] in the config ({where}) and in the state store's "
                f"connections table ({store_where}); keep one: delete the config's table, or run "
                f"`bant-sync connections remove {row.name}`",
            )
            continue
        tables[row.name], references[row.name] = _stored_split(row.name, stored.as_table(row), problems)
        tenants[row.name] = row.tenant
    return tables, tenants, references


def check_new_connection(
    settings: Settings, name: str, crm: str, values: Mapping[str, Any], *, enabled: bool = True
) -> ConnectionSettings:
    """Validate a connection about to be stored exactly as the loader validates a `[connections.NAME]`
    table (its secrets are not looked up: they may be provided later), or raise ConfigError listing every
    problem: a bad name, a name already configured, a secret among the settings, any invalid setting."""
    problems = Problems()
    key = f"connections.{name}"
    problem = stored.name_problem(name)
    if problem is not None:
        problems.add(key, problem)
    for reserved in stored.RESERVED_KEYS:
        if reserved in values:
            problems.add(f"{key}.{reserved}", f"is not a setting here: use --{reserved} (or --disabled)")
    in_config = {
        existing.lower(): existing
        for existing, found in settings.connections.items()
        if found.source != stored.STORE_SOURCE  # the store itself is asked for those: it may have changed
    }
    clash = in_config.get(name.lower())
    if clash is not None:
        problems.add(key, f"a connection {clash!r} is already defined in the config: choose another name")
    table, _references = _stored_split(name, {**stored.strip_reserved(values), "crm": crm}, problems)
    table["enabled"] = enabled
    base = Path(settings.config_dir) if settings.config_dir else Path.cwd()
    connection = _connection(name, table, settings.rules, {}, {}, base, problems)
    _check_frameworks(settings.rules, {name: table}, str(base), problems)
    if problems or connection is None:
        raise ConfigError(problems.items or [f"{key}: invalid"])
    return connection


def load_settings(
    config_path: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    stored_connections: bool = True,
) -> Settings:
    """Read, merge and validate every settings source, or raise ConfigError listing every problem.

    With `[state] connections_table = true` the state store's connections join the file's; pass
    `stored_connections=False` to leave them out (`bant-sync connections`, which must still work when a
    stored connection is invalid, so it can be fixed or removed)."""
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
    overrides = _env_overrides(env, problems)
    data = _merge(data, overrides.sections)
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
    for section, secret in _SECTION_SECRETS:
        table = data.get(section)
        if isinstance(table, Mapping) and secret in table:
            where = secret_store.env_name(section, secret)
            problems.add(
                f"{section}.{secret}",
                f"secrets must not be in a config file: set env {where} (or {where}_FILE) or put it under "
                f"[{section}] in the secrets file",
            )
            data[section] = {k: v for k, v in table.items() if k != secret}
    sections: dict[str, Any] = {
        name: _digest_settings(data.get(name) or {}, problems)
        if cls is DigestSettings
        else build(cls, data.get(name) or {}, name, problems)
        for name, cls in _SECTIONS.items()
    }
    sections["state"] = _state_settings(sections["state"], base, secrets_file, env, problems)
    sections["smtp"] = _smtp_settings(sections["smtp"], base, secrets_file, env, problems)
    sections["slack"] = _slack_settings(sections["slack"], secrets_file, env, problems)
    if sections["digest"].enabled:
        problems.items.extend(digest_problems(sections["digest"], sections["smtp"], sections["slack"]))
    connections: dict[str, ConnectionSettings] = {}
    raw_connections = data.get("connections") or {}
    if not isinstance(raw_connections, Mapping):
        problems.add("connections", "must be a table of [connections.NAME] tables")
        raw_connections = {}
    stored_tables: dict[str, dict[str, Any]] = {}
    tenants: dict[str, str] = {}
    references: dict[str, dict[str, str]] = {}
    store_where = ""
    state_problem = any(p.startswith(("state.", "state:")) for p in problems.items)
    if sections["state"].connections_table and not state_problem:
        rows, store_where = stored.read_rows(sections["state"])
        if stored_connections:
            stored_tables, tenants, references = _stored_tables(
                rows, raw_connections, names, store_where, problems
            )
            raw_connections = {**raw_connections, **stored_tables}
        else:  # left out, but their variables (their secrets) are not "unknown connections"
            _match_connection_names(overrides, {**raw_connections, **{row.name: {} for row in rows}})
            for row in rows:
                if row.name not in raw_connections:
                    overrides.connections.pop(row.name, None)
    _match_connection_names(overrides, raw_connections)
    raw_connections = {
        **raw_connections,
        **_env_only_connections(overrides, raw_connections, problems),
    }
    raw_connections = {
        name: _apply_connection_env(name, table, overrides.connections.get(name, {}), problems)
        if isinstance(table, Mapping)
        else table
        for name, table in raw_connections.items()
    }
    for name, table in raw_connections.items():
        env_for = stored.environ_with_references(name, references.get(name, {}), env)
        connection = _connection(name, table, sections["rules"], secrets_file, env_for, base, problems)
        if connection is not None and name in stored_tables:
            connection = replace(connection, tenant=tenants[name], source=stored.STORE_SOURCE)
        if connection is not None:
            connections[name] = connection
    _check_frameworks(sections["rules"], raw_connections, str(base), problems)
    ops_token = _ops_token(secrets_file, env, problems)
    if problems:
        shown = (*names, f"state store {store_where}") if stored_tables else names
        raise ConfigError(problems.items, shown)
    return Settings(
        **sections,
        connections=connections,
        ops_token=ops_token,
        config_files=names,
        config_dir=str(base),
    )
