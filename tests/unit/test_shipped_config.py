"""The shipped configuration (config/default.toml, config/frameworks/) is found from a source checkout and
from a wheel install, which copies it under <prefix>/share/bant-sync/config."""

from __future__ import annotations

import tomllib
from pathlib import Path

from worker.config.settings import PROJECT_CONFIG_DIR, shipped_config_dir

ROOT = Path(__file__).resolve().parents[2]


def _config(at: Path) -> Path:
    (at / "frameworks").mkdir(parents=True)
    (at / "default.toml").write_text("", encoding="utf-8")
    return at


def test_the_first_candidate_holding_default_toml_wins(tmp_path: Path) -> None:
    """A site-packages install has no config/ beside the code: the installed share/ copy is used."""
    missing = tmp_path / "lib" / "config"
    installed = _config(tmp_path / "share" / "bant-sync" / "config")
    user = _config(tmp_path / "user" / "share" / "bant-sync" / "config")
    assert shipped_config_dir([missing, installed, user]) == installed


def test_with_none_found_the_first_candidate_is_named(tmp_path: Path) -> None:
    """Nothing installed: the checkout's path is returned so errors name where the files should be."""
    assert shipped_config_dir([tmp_path / "a", tmp_path / "b"]) == tmp_path / "a"


def test_a_checkout_uses_its_own_config() -> None:
    assert PROJECT_CONFIG_DIR == ROOT / "config"


def test_the_wheel_carries_every_shipped_file() -> None:
    """pyproject's data-files name default.toml and every framework, so a wheel install has them all."""
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"][
        "data-files"
    ]
    packaged = {
        (target, path.relative_to(ROOT).as_posix())
        for target, patterns in data_files.items()
        for pattern in patterns
        for path in ROOT.glob(pattern)
    }
    expected = {("share/bant-sync/config", "config/default.toml")} | {
        ("share/bant-sync/config/frameworks", p.relative_to(ROOT).as_posix())
        for p in (ROOT / "config" / "frameworks").glob("*.toml")
    }
    assert expected <= packaged and len(expected) >= 3
