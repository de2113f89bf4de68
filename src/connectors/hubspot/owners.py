"""HubSpot owners (`GET /crm/v3/owners`, paged): the people a deal's `hubspot_owner_id` names.

An owner carries `id` (what deals hold), `firstName`, `lastName`, `email`, `userId` and `archived`. The
list endpoint answers active owners by default; HubSpot has no manager of an owner (managers come from
configuration for HubSpot portals), so `manager_id` is None. Reads go through the client seam under the
`other` rate-limit kind, like every non-search request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.ratelimit import OTHER
from connectors.model import Owner

PAGE = 500
"""The owners endpoint's largest page."""


def to_owner(record: Mapping[str, Any]) -> Owner:
    """One owner as an Owner: named "First Last", else by its e-mail, else by its id."""
    owner_id = str(record["id"])
    email = str(record["email"]) if record.get("email") else None
    full = " ".join(str(record[k]).strip() for k in ("firstName", "lastName") if record.get(k)).strip()
    user = str(record["userId"]) if record.get("userId") is not None else None
    return Owner(owner_id, full or email or owner_id, email, None, not bool(record.get("archived")), user)


def read_owners(client: HubSpotClient) -> list[Owner]:
    """Every active owner of the portal, page after page."""
    owners: list[Owner] = []
    after: str | None = None
    while True:
        query: dict[str, Any] = {"limit": PAGE, "archived": "false"}
        if after is not None:
            query["after"] = after
        response = client.call_json(OTHER, "owners", "get_page", expect="results", **query)
        owners.extend(to_owner(r) for r in response.get("results") or [])
        after = ((response.get("paging") or {}).get("next") or {}).get("after")
        if after is None:
            return owners
        after = str(after)
