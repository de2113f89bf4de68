"""Find and read a framework file: a name from config/frameworks/ (the user's config dir first), or a path."""

from __future__ import annotations

import tomllib
from pathlib import Path

from rules import Framework, FrameworkError, framework_from_mapping
from worker.config.settings import PROJECT_CONFIG_DIR
from worker.errors import ConfigError


def framework_dirs(config_dir: str = "") -> list[Path]:
    dirs = [Path(config_dir) / "frameworks"] if config_dir else []
    return [*dirs, PROJECT_CONFIG_DIR / "frameworks"]


def available_frameworks(config_dir: str = "") -> list[str]:
    names = {p.stem for d in framework_dirs(config_dir) if d.is_dir() for p in d.glob("*.toml")}
    return sorted(names)


def load_framework(name_or_path: str, config_dir: str = "") -> Framework:
    """Load a framework by name or path, raising ConfigError with every problem in the file."""
    candidate = Path(name_or_path).expanduser()
    if candidate.suffix == ".toml" or "/" in name_or_path:
        path = candidate
    else:
        found = [d / f"{name_or_path}.toml" for d in framework_dirs(config_dir)]
        existing = [p for p in found if p.is_file()]
        if not existing:
            known = ", ".join(available_frameworks(config_dir)) or "none"
            raise ConfigError(
                [
                    f"framework {name_or_path!r} not found (available: {known}); "
                    f"give a name or a path to a .toml file"
                ]
            )
        path = existing[0]
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError([f"framework file {path} does not exist"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"framework file {path} is not valid TOML: {exc}"]) from None
    try:
        return framework_from_mapping(data, str(path))
    except FrameworkError as exc:
        raise ConfigError([f"{path}: {p}" for p in exc.problems]) from None
