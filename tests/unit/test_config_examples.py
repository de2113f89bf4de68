"""The shipped example configs load as they are (secrets from the environment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from worker.config.loader import load_settings

EXAMPLES = ROOT / "config" / "examples"


@pytest.mark.parametrize(
    ("name", "connection", "crm"), [("salesforce", "sales", "salesforce"), ("hubspot", "portal", "hubspot")]
)
def test_example_config_is_valid(name: str, connection: str, crm: str, tmp_path: Path) -> None:
    """Each example validates with only its secret supplied, and the secret stays hidden."""
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[connections.{connection}]\nprivate_key = "k"\naccess_token = "t"\n', encoding="utf-8"
    )
    secrets.chmod(0o600)
    env = {"BANT_SYNC_SECRETS_FILE": str(secrets)}
    settings = load_settings(str(EXAMPLES / f"{name}.toml"), environ=env)
    assert settings.connection(connection).crm == crm
    assert settings.connection(connection).secrets
