"""Owners by name: each connector's owners() against the sandbox, and how a record becomes an Owner."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.owners import read_owners as hs_read_owners
from connectors.hubspot.owners import to_owner as hs_owner
from connectors.model import Owner
from connectors.salesforce.owners import to_owner as sf_owner
from sandbox import Sandbox, SandboxOptions
from tests.connectors.sf_sandbox_support import SfSandboxEnv
from tests.connectors.test_hubspot_sandbox import HubSpotContractEnv


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox.start(SandboxOptions(seed="track-selling", enforce_rate_limits=False)) as started:
        yield started


def test_salesforce_owners_are_the_seeded_users(sb: Sandbox) -> None:
    """Every seeded User, with its name and e-mail; the sandbox's User has no ManagerId, so the read is
    made again without it (managers None) instead of failing."""
    owners = SfSandboxEnv(sb).connector().owners()
    users = sb.salesforce.records("User")
    assert {o.id for o in owners} == {str(u["Id"]) for u in users}
    first = next(o for o in owners if o.id == str(users[0]["Id"]))
    assert first == Owner(str(users[0]["Id"]), str(users[0]["Name"]), str(users[0]["Email"]), None, True)


def test_hubspot_owners_are_the_seeded_owners(sb: Sandbox, hubspot_ledger: Any) -> None:
    """Every seeded owner, named "First Last", in one counted call of the owners API."""
    connector = HubSpotContractEnv(sb, hubspot_ledger).connector()
    owners = connector.owners()
    assert connector.api_calls == 1
    seeded = sb.hubspot.owners
    assert [o.id for o in owners] == [str(o["id"]) for o in seeded]
    assert owners[0].name == f"{seeded[0]['firstName']} {seeded[0]['lastName']}"
    assert owners[0].email == seeded[0]["email"] and owners[0].active


def test_a_nameless_owner_is_named_by_email_then_id() -> None:
    assert hs_owner({"id": "7", "email": "a@b.c", "firstName": "", "archived": True}) == Owner(
        "7", "a@b.c", "a@b.c", None, False
    )
    assert hs_owner({"id": "7"}).name == "7"
    assert sf_owner({"Id": "005x", "Name": None, "Email": None, "IsActive": False}).name == "005x"
    assert sf_owner({"Id": "005x", "Name": "A B", "ManagerId": "005y", "IsActive": True}).manager_id == "005y"


class PagedOwners:
    """The client seam answering the owners API in pages of two, recording each call's kind and query."""

    def __init__(self, count: int) -> None:
        self.records = [{"id": str(i), "email": f"rep{i}@x.io", "archived": False} for i in range(count)]
        self.calls: list[tuple[str, str, str, dict[str, Any]]] = []

    def call_json(self, kind: str, api: str, method: str, **query: Any) -> dict[str, Any]:
        self.calls.append((kind, api, method, query))
        start = int(query.get("after") or 0)
        body: dict[str, Any] = {"results": self.records[start : start + 2]}
        if start + 2 < len(self.records):
            body["paging"] = {"next": {"after": str(start + 2)}}
        return body


def test_hubspot_owners_are_read_page_after_page_under_the_other_kind() -> None:
    """Five owners in pages of two: three calls of the owners API, each after the last page's cursor."""
    seam = PagedOwners(5)
    owners = hs_read_owners(cast(HubSpotClient, seam))
    assert [o.id for o in owners] == ["0", "1", "2", "3", "4"]
    assert [(k, a, m) for k, a, m, _q in seam.calls] == [("other", "owners", "get_page")] * 3
    assert [q.get("after") for *_x, q in seam.calls] == [None, "2", "4"]
    assert all(q["archived"] == "false" and q["expect"] == "results" for *_x, q in seam.calls)
