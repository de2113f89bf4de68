"""Every HubSpot request bant-sync's connector makes, and every answer the sandbox gives it, matches HubSpot's
published OpenAPI specs (tests/specs/hubspot/, see its README).

The scenario covers what the connector sends: setup on a bare portal (property groups and properties),
preflight, a full sweep (search, batch updates, task creation with associations), reps' edits answered by an
incremental run (task lookups by key, a 207 for a deleted task, task updates), a one-deal run (get by id)
and a final full sweep; and the closed-deal history read (closed-deal searches, `batch/read` with
`propertiesWithHistory`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from connectors.hubspot import HubSpotConnector, HubSpotSettings
from connectors.model import HistoryWindow
from connectors.registry import ConnectorContext
from sandbox import Sandbox, SandboxOptions
from sandbox.gateway import Gateway
from sandbox.http import Request, Response
from tests.integration.conftest import sandbox_env
from tests.sandbox.clients import hs_client, hs_headers, hs_url
from tests.specs.openapi_check import Exchange, HubSpotSpecs
from worker.sync.run_model import RunRequest

KNOWN_CONNECTOR_DEVIATIONS: set[str] = set()
"""Request bodies the connector sends that the specs call incomplete (HubSpot accepts them): none left.
The test fails when a new one appears; every response conforms."""


@pytest.fixture(scope="module")
def specs() -> HubSpotSpecs:
    return HubSpotSpecs()


@pytest.fixture
def exchanges(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Exchange]]:
    """Every HubSpot call any sandbox serves during the test, with the response it gave."""
    seen: list[Exchange] = []
    serve = Gateway.__call__

    def recording(self: Gateway, request: Request) -> Response:
        response = serve(self, request)
        if self._front.crm == "hubspot":
            seen.append(
                Exchange(
                    request.method,
                    request.path,
                    request.query_string,
                    request.body,
                    request.header("content-type") or "",
                    response.status,
                    response.body,
                    response.header("content-type") or "",
                )
            )
        return response

    monkeypatch.setattr(Gateway, "__call__", recording)
    yield seen


def _problems(specs: HubSpotSpecs, exchanges: list[Exchange]) -> list[str]:
    return [p for e in exchanges for p in specs.request_problems(e) + specs.response_problems(e)]


def test_the_connectors_requests_and_the_sandboxs_answers_match_the_specs(
    specs: HubSpotSpecs, exchanges: list[Exchange], tmp_path: Path
) -> None:
    options = SandboxOptions(seed="track-selling", bare=True, enforce_rate_limits=False)
    with sandbox_env("hubspot", tmp_path, options) as env:
        worker, sb = env.worker, env.sb
        assert not worker.connector("hubspot").setup().problems
        assert worker.run(RunRequest("hubspot", mode="full")).status == "succeeded"
        reps = sb.people("hubspot")
        tasks = reps.bant_tasks()
        reps.delete_task(tasks[0]["id"])
        reps.complete_task(tasks[1]["id"])
        reps.fix_bant(tasks[2]["deal_id"])
        assert worker.run(RunRequest("hubspot")).status == "succeeded"
        assert (
            worker.run(RunRequest("hubspot", mode="deal", deal_id=tasks[3]["deal_id"])).status == "succeeded"
        )
        assert worker.run(RunRequest("hubspot", mode="full")).status == "succeeded"
        logged = [(r["method"], r["path"], r["query"]) for r in sb.requests()]
    assert logged == [(e.method, e.path, Request("GET", "/", e.query_string).log_query()) for e in exchanges]
    sent = {(e.method, e.path.rsplit("/", 1)[-1]) for e in exchanges}
    assert {("POST", "search"), ("POST", "read"), ("POST", "update"), ("POST", "create")} <= sent
    assert any(e.status == 207 for e in exchanges)
    assert any("archived=" in e.query_string for e in exchanges)
    problems = set(_problems(specs, exchanges))
    assert problems == KNOWN_CONNECTOR_DEVIATIONS, "\n".join(sorted(problems ^ KNOWN_CONNECTOR_DEVIATIONS))


def test_the_sandboxs_other_hubspot_endpoints_answer_per_the_specs(
    specs: HubSpotSpecs, exchanges: list[Exchange], sb: Sandbox
) -> None:
    """What other clients call: lists with paging, owners, pipelines, single reads, v4 associations,
    property and group reads, and error answers (404, 400)."""
    hs = hs_client(sb)
    deal = sb.hubspot.deals()[0]["id"]
    hs.crm.deals.basic_api.get_page(limit=5, properties=["dealname"], archived=False)
    hs.crm.deals.basic_api.get_by_id(deal, properties=["dealname"])
    hs.crm.owners.owners_api.get_page(limit=2)
    hs.crm.pipelines.pipelines_api.get_all("deals")
    hs.crm.properties.core_api.get_by_name("deals", "dealname")
    hs.crm.properties.groups_api.get_all("deals")
    hs.crm.associations.v4.schema.definitions_api.get_all("tasks", "deals")
    for path in ("/crm/v3/objects/deals/1", "/crm/v4/objects/deals/" + deal + "/associations/tasks"):
        requests.get(hs_url(sb, path), headers=hs_headers(sb), timeout=10)
    requests.post(
        hs_url(sb, "/crm/v3/objects/deals/search"), headers=hs_headers(sb), json={"limit": 500}, timeout=10
    )
    assert len(exchanges) == 10
    assert {e.status for e in exchanges} >= {200, 404, 400}
    problems = [p for e in exchanges for p in specs.response_problems(e)]
    assert problems == [], "\n".join(problems)


def test_a_capitalised_query_boolean_is_a_problem(specs: HubSpotSpecs) -> None:
    """The check itself: `archived=False` (what the SDK sends for a Python False) fails, `false` passes."""

    def ask(query: str) -> list[str]:
        return specs.request_problems(
            Exchange("GET", "/crm/v3/properties/deals", query, b"", "", 200, b"{}", "application/json")
        )

    assert ask("archived=false") == []
    (problem,) = ask("archived=False")
    assert "archived='False'" in problem
    assert "'bogus' is not in the spec" in ask("bogus=1")[0]


def test_a_response_off_the_spec_is_a_problem(specs: HubSpotSpecs) -> None:
    def answer(body: bytes) -> list[str]:
        return specs.response_problems(
            Exchange("GET", "/crm/v3/objects/deals/7", "", b"", "", 200, body, "application/json")
        )

    stamp = "2026-03-02T09:00:00Z"
    deal = {
        "id": "7",
        "properties": {"dealname": "x", "amount": None},
        "createdAt": stamp,
        "updatedAt": stamp,
    }
    assert answer(json.dumps({**deal, "archived": False}).encode()) == []
    assert answer(json.dumps(deal).encode()) == [
        "GET /crm/v3/objects/0-3/{dealId} 200 response: (top): 'archived' is a required property"
    ]
    assert answer(json.dumps({**deal, "archived": False, "properties": 3}).encode()) == [
        "GET /crm/v3/objects/0-3/{dealId} 200 response: properties: fails type"
    ]


def test_the_closed_deal_history_read_and_its_answers_match_the_specs(
    specs: HubSpotSpecs, exchanges: list[Exchange], sb: Sandbox
) -> None:
    """`closed_deals`: the closed-deal searches and the `batch/read` with `propertiesWithHistory` it sends,
    and the history the sandbox answers (a 207 for a deal deleted between the search and the read too);
    the SDK's own history reads (get_by_id, the list) answer per the specs as well."""
    settings = HubSpotSettings(
        host=sb.info["hubspot"]["host"], burst_limit_per_10s=10_000, search_per_second=1_000
    )
    context = ConnectorContext(
        "hs", {"access_token": sb.info["hubspot"]["access_token"]}, sb.clock.now, sb.clock.advance
    )
    connector = HubSpotConnector(settings, context)
    connector.preflight()
    today = sb.clock.now().date()
    window = HistoryWindow(today - timedelta(days=400), today, "contractsent")
    closed = [deal for batch in connector.closed_deals(window) for deal in batch]
    assert len(closed) == 85
    hs = hs_client(sb)
    deal = closed[0].deal.id
    hs.crm.deals.basic_api.get_by_id(deal, properties_with_history=["dealstage", "bant_budget"])
    hs.crm.deals.basic_api.get_page(limit=60, properties_with_history=["dealstage"], archived="false")
    requests.post(
        hs_url(sb, "/crm/v3/objects/deals/batch/read"),
        headers=hs_headers(sb),
        json={
            "inputs": [{"id": deal}, {"id": "1"}],
            "properties": [],
            "propertiesWithHistory": ["dealstage"],
        },
        timeout=10,
    )
    reads = [e for e in exchanges if e.path.endswith("/deals/batch/read")]
    assert len(reads) == 3 and {e.status for e in reads} == {200, 207}
    assert all(b"propertiesWithHistory" in e.response_body for e in reads)
    assert b'"sourceType"' in reads[0].response_body
    assert any(e.path.endswith("/deals/search") for e in exchanges)
    assert any("propertiesWithHistory=" in e.query_string for e in exchanges)
    problems = set(_problems(specs, exchanges))
    assert problems == KNOWN_CONNECTOR_DEVIATIONS, "\n".join(sorted(problems ^ KNOWN_CONNECTOR_DEVIATIONS))
