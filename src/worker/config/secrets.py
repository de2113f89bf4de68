"""Secrets: values that only come from the environment or a secrets file, and never print.

Lookup order for a connection's secret `access_token` of connection `hubspot`:
  1. env BANT_SYNC_CONNECTIONS__HUBSPOT__ACCESS_TOKEN
  2. env BANT_SYNC_CONNECTIONS__HUBSPOT__ACCESS_TOKEN_FILE (a path; the file's content, stripped)
  3. the secrets file (`secrets_file` in the config, or env BANT_SYNC_SECRETS_FILE), table
     [connections.hubspot], key access_token
The ops API token is BANT_SYNC_OPS_TOKEN (or _FILE, or `ops_token` at the top of the secrets file); the
state store's password is BANT_SYNC_STATE__PASSWORD (or _FILE, or `password` in the secrets file's [state]).

A secrets file or a `_FILE` secret that other users can read (or change) is refused with the `chmod` that
fixes it: a secret is only as private as the file holding it.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "BANT_SYNC_"
MIN_TOKEN_LENGTH = 32
"""The ops API token's minimum length: 32 random characters are beyond guessing over HTTP."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret value. `repr`/`str` never show it; call `reveal()` at the one place that sends it."""

    _value: str
    source: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(<hidden>, from {self.source})"

    __str__ = __repr__


def env_name(*path: str) -> str:
    return ENV_PREFIX + "__".join(part.upper() for part in path)


OTHERS_MASK = stat.S_IRWXG | stat.S_IRWXO


def check_private(path: Path, what: str) -> None:
    """Raise ValueError when users other than the owner may read or write the file at `path`."""
    mode = path.stat().st_mode
    if os.name == "posix" and mode & OTHERS_MASK:
        raise ValueError(
            f"{what} {path} can be read by other users (mode {stat.S_IMODE(mode):04o}): "
            f"run `chmod 600 {path}`"
        )


def load_secrets_file(path: Path) -> Mapping[str, Any]:
    """Read a secrets file; errors name the file but never quote its content."""
    try:
        with path.open("rb") as handle:
            check_private(path, "secrets file")
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ValueError(f"secrets file {path} does not exist: create it or fix `secrets_file`") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"secrets file {path} is not valid TOML ({exc})") from None
    except OSError as exc:
        raise ValueError(f"secrets file {path} cannot be read: {exc.strerror}") from None


def lookup(
    path: tuple[str, ...], secrets_file: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> Secret | None:
    """Find one secret by its settings path, e.g. ("connections", "hubspot", "access_token")."""
    env = os.environ if environ is None else environ
    name = env_name(*path)
    if env.get(name):
        return Secret(env[name], f"env {name}")
    file_var = name + "_FILE"
    if env.get(file_var):
        file = Path(env[file_var])
        try:
            check_private(file, f"{file_var} names")
            return Secret(file.read_text(encoding="utf-8").strip(), f"file from env {file_var}")
        except OSError as exc:
            raise ValueError(
                f"{file_var} points to {env[file_var]!r}, which cannot be read: {exc.strerror}"
            ) from None
        except UnicodeDecodeError:
            raise ValueError(f"{file_var} points to {env[file_var]!r}, which is not UTF-8 text") from None
    node: Any = secrets_file
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, str) and node:
        return Secret(node, "secrets file")
    return None
