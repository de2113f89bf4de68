"""dlt's verified HubSpot and Salesforce sources, unmodified (tests/sandbox/dlt_sources/), read the sandbox
into a local duckdb: what they read is what the sandbox was seeded with.

They are pointed at the sandbox only through what a user may set: the HubSpot source's base URL constant and
the Salesforce source's credentials and session. Nothing here reaches the internet (dlt's telemetry is off).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlt
import pytest

from sandbox import Sandbox
from tests.sandbox.clients import hs_info, sf_info, sf_session
from tests.sandbox.dlt_sources import hubspot as dlt_hubspot
from tests.sandbox.dlt_sources import salesforce as dlt_salesforce
from tests.sandbox.dlt_sources.hubspot import helpers as dlt_hubspot_helpers
from tests.sandbox.dlt_sources.salesforce.helpers.client import InstanceAuth


@pytest.fixture(autouse=True)
def _offline_dlt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNTIME__DLTHUB_TELEMETRY", "false")
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt-data"))
    monkeypatch.chdir(tmp_path)


def _pipeline(tmp_path: Path, name: str) -> Any:
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(str(tmp_path / "sandbox_read.duckdb")),
        dataset_name=name,
    )


def _rows(pipeline: Any, sql: str) -> list[tuple[Any, ...]]:
    with pipeline.sql_client() as client:
        return [tuple(row) for row in client.execute_sql(sql)]


def test_dlt_hubspot_source_reads_every_deal(
    sb: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dlt_hubspot_helpers, "BASE_URL", hs_info(sb)["host"] + "/")
    source = dlt_hubspot.hubspot(api_key=hs_info(sb)["access_token"]).with_resources("deals")
    pipeline = _pipeline(tmp_path, "hubspot_deals")
    pipeline.run(source)
    read = _rows(pipeline, "SELECT id, dealname, dealstage, bant_need FROM deals")
    seeded = [
        (
            d["id"],
            d["properties"].get("dealname"),
            d["properties"].get("dealstage"),
            d["properties"].get("bant_need"),
        )
        for d in sb.hubspot.deals()
    ]
    assert len(seeded) > 100
    assert sorted(read, key=str) == sorted(seeded, key=str)


def test_dlt_salesforce_source_reads_every_opportunity(sb: Sandbox, tmp_path: Path) -> None:
    credentials = InstanceAuth(
        session_id=sf_info(sb)["access_token"], instance_url=sf_info(sb)["instance_url"]
    )
    source = dlt_salesforce.salesforce_source(credentials=credentials, session=sf_session(sb))
    pipeline = _pipeline(tmp_path, "salesforce_opportunities")
    pipeline.run(source.with_resources("opportunity"))
    read = _rows(pipeline, "SELECT id, name, stage_name, bant_need__c FROM opportunity")
    seeded = [
        (r["Id"], r["Name"], r["StageName"], r["BANT_Need__c"]) for r in sb.salesforce.records("Opportunity")
    ]
    assert len(seeded) > 100
    assert sorted(read, key=str) == sorted(seeded, key=str)
