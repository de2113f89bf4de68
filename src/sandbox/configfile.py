"""``Sandbox.write_config``: a ready bant-sync config pointing at this sandbox, its secrets file (0600) and a
fresh state directory, so a new sandbox never inherits cursors or task ledgers of an old one."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path


def _toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string for everything written here.
    return json.dumps(value)


def write_config(path: Path, info: Mapping[str, Mapping[str, str] | str]) -> Path:
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.stem
    secrets_path = path.parent / f"{name}.secrets.toml"
    state_dir = path.parent / f"{name}.state"
    if state_dir.exists():
        shutil.rmtree(state_dir)
    state_dir.mkdir()
    salesforce = info["salesforce"]
    hubspot = info["hubspot"]
    assert isinstance(salesforce, Mapping) and isinstance(hubspot, Mapping)
    pubsub = salesforce.get("pubsub_endpoint")
    salesforce_extra = [f"pubsub_endpoint = {_toml_string(pubsub)}"] if pubsub else []
    config = "\n".join(
        [
            f"secrets_file = {_toml_string(secrets_path.name)}",
            "",
            "[state]",
            f"dir = {_toml_string(state_dir.name)}",
            "",
            "[connections.salesforce]",
            'crm = "salesforce"',
            f"instance_url = {_toml_string(salesforce['instance_url'])}",
            f"login_url = {_toml_string(salesforce['login_url'])}",
            'auth = "token"',
            f"ca_bundle = {_toml_string(str(info['ca_bundle']))}",
            *salesforce_extra,
            "",
            "[connections.hubspot]",
            'crm = "hubspot"',
            f"host = {_toml_string(hubspot['host'])}",
            "",
        ]
    )
    secrets = "\n".join(
        [
            "[connections.salesforce]",
            f"access_token = {_toml_string(salesforce['access_token'])}",
            "",
            "[connections.hubspot]",
            f"access_token = {_toml_string(hubspot['access_token'])}",
            "",
        ]
    )
    path.write_text(config, encoding="utf-8")
    secrets_path.unlink(missing_ok=True)
    fd = os.open(secrets_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secrets)
    return path
