"""requirements.lock pins the service's dependencies, with hashes, for the container image and installs
that must repeat (issue 12, item 10). `make test` still installs from pyproject.toml; this keeps the two
agreeing."""

from __future__ import annotations

import re
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

LOCK = ROOT / "requirements.lock"
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", re.MULTILINE)


def _pins() -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(LOCK.read_text("utf-8"))}


def _dependencies() -> list[Requirement]:
    with (ROOT / "pyproject.toml").open("rb") as handle:
        return [Requirement(r) for r in tomllib.load(handle)["project"]["dependencies"]]


def test_every_dependency_is_locked_at_a_version_pyproject_admits() -> None:
    pins = _pins()
    for requirement in _dependencies():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement.specifier}: run `make lock`"
        )


def test_every_pin_carries_a_hash() -> None:
    """`pip install --require-hashes` (the Containerfile's) refuses a pin without one."""
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text("utf-8").split("\n\n")[-1])
    pinned = [e for e in entries if PIN.match(e)]
    assert len(pinned) == len(_pins())
    for entry in pinned:
        assert "--hash=sha256:" in entry, entry.splitlines()[0]


def test_the_floors_exclude_releases_with_advisories() -> None:
    """Floors raised past known advisories: requests 2.32.4 (CVE-2024-47081), urllib3 2.5 (CVE-2025-50181),
    cryptography 44.0.1 (CVE-2024-12797), PyJWT 2.10.1 (CVE-2024-53861), starlette 0.49.1 (CVE-2025-54121,
    CVE-2025-62727), h11 0.16 (CVE-2025-43859)."""
    refused = {
        "requests": "2.32.3",
        "urllib3": "2.4.0",
        "cryptography": "44.0.0",
        "pyjwt": "2.10.0",
        "starlette": "0.49.0",
        "h11": "0.15.0",
    }
    found = {canonicalize_name(r.name): r for r in _dependencies()}
    for name, version in refused.items():
        assert not found[name].specifier.contains(version), f"{name} {version} is still admitted"
