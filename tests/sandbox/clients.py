"""The real client libraries pointed at a sandbox.

When REQUESTS_CA_BUNDLE is set in the environment, requests lets it override ``Session.verify`` (it merges
environment settings over the session's); the Salesforce sessions here set ``trust_env = False`` so the
sandbox's CA bundle is the one that counts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import requests
from hubspot import HubSpot
from simple_salesforce import Salesforce
from urllib3.util.retry import Retry

from sandbox import Sandbox

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def sf_info(sb: Sandbox) -> dict[str, Any]:
    return sb.info["salesforce"]


def hs_info(sb: Sandbox) -> dict[str, Any]:
    return sb.info["hubspot"]


def sf_session(sb: Sandbox) -> requests.Session:
    session = requests.Session()
    session.verify = str(sb.info["ca_bundle"])
    session.trust_env = False
    return session


def sf_client(sb: Sandbox, token: str | None = None, version: str = "59.0") -> Salesforce:
    return Salesforce(
        session_id=token or sf_info(sb)["access_token"],
        instance_url=sf_info(sb)["instance_url"],
        session=sf_session(sb),
        version=version,
    )


def hs_client(sb: Sandbox, token: str | None = None) -> HubSpot:
    """The SDK with its own retries off, so every request the test makes is exactly one call."""
    return HubSpot(
        access_token=token or hs_info(sb)["access_token"],
        host=hs_info(sb)["host"],
        retry=Retry(total=0, connect=0, read=0, redirect=0, status=0, raise_on_status=False),
    )


def control(sb: Sandbox, path: str) -> str:
    return f"{sb.info['control']}/{path.lstrip('/')}"


def hs_url(sb: Sandbox, path: str) -> str:
    return f"{hs_info(sb)['host']}/{path.lstrip('/')}"


def hs_headers(sb: Sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {hs_info(sb)['access_token']}"}
