"""Turn a TOML table into a frozen dataclass of plain types, collecting every problem with its key.

Supported field types: str, int, float, bool, tuple[str, ...], dict[str, str], a nested dataclass, and
`X | None` of those. Unknown keys are problems with a did-you-mean, so a typo never silently falls back
to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

from rules.errors import did_you_mean

T = TypeVar("T")


class Problems:
    """Accumulates "<key>: <message>" lines so a config is validated once with every error reported.

    `origins` maps a settings key (`connections.main.enabled`) to the environment variable that set it, so
    a problem with a value from the environment names the variable to fix, not a file that lacks the key.
    """

    def __init__(self) -> None:
        self.items: list[str] = []
        self.origins: dict[str, str] = {}

    def add(self, key: str, message: str) -> None:
        origin = self.origins.get(key)
        self.items.append(f"{key}: {message}" + (f" (set by env {origin})" if origin else ""))

    def __bool__(self) -> bool:
        return bool(self.items)


SECRET = "secret"  # noqa: S105 (a metadata key, not a secret)
"""Field metadata key marking a secret: never read from a settings table, only from a secret path."""


def field_names(cls: type[Any]) -> tuple[str, ...]:
    """The keys a settings table may hold for `cls` (secret fields are filled from secret paths)."""
    return tuple(
        f.name
        for f in dataclasses.fields(cls)
        if f.init and not f.name.startswith("_") and not f.metadata.get(SECRET)
    )


def _convert(value: Any, annotation: Any, key: str, problems: Problems) -> Any:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, options[0], key, problems)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        if not isinstance(value, Mapping):
            problems.add(key, "must be a table")
            return None
        return build(annotation, value, key, problems)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        problems.add(key, f"must be true or false, not {value!r}")
    elif annotation is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        problems.add(key, f"must be a whole number, not {value!r}")
    elif annotation is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        problems.add(key, f"must be a number, not {value!r}")
    elif annotation is str:
        if isinstance(value, str):
            return value
        problems.add(key, f"must be a string, not {value!r}")
    elif origin is tuple:
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return tuple(value)
        problems.add(key, "must be a list of strings")
    elif origin in (dict, Mapping, typing.Mapping):
        if isinstance(value, Mapping) and all(isinstance(v, str) for v in value.values()):
            return dict(value)
        problems.add(key, "must be a table of strings")
    else:
        raise TypeError(f"unsupported settings type {annotation!r} for {key}")
    return None


def build(cls: type[T], table: Mapping[str, Any], prefix: str, problems: Problems) -> T:
    """Build `cls` from `table`; missing keys keep the dataclass defaults. Problems are recorded, and the
    defaults stand in for bad values so validation can go on and report everything."""
    hints = typing.get_type_hints(cls)
    known = field_names(cls)
    for key in table:
        if key not in known:
            problems.add(f"{prefix}.{key}".lstrip("."), f"unknown key{did_you_mean(key, known)}")
    values: dict[str, Any] = {}
    for name in known:
        if name in table:
            converted = _convert(table[name], hints[name], f"{prefix}.{name}".lstrip("."), problems)
            if converted is not None or table[name] is None:
                values[name] = converted
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        problems.add(prefix or "config", str(exc))
        return cls()
