"""Portal-level endpoints: deal pipelines, owners, and v4 association labels and associations."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sandbox.clock import SandboxClock
from sandbox.http import Request, Response, empty_response, json_response
from sandbox.hubspot.associations import PAIRS
from sandbox.hubspot.errors import HsError, not_found
from sandbox.hubspot.paging import next_paging
from sandbox.hubspot.properties import iso_millis
from sandbox.hubspot.schema import pipelines
from sandbox.hubspot.state import ALIASES, HubSpotState

TYPE_IDS = {"deals": "0-3", "tasks": "0-27"}
_PORTAL_CREATED = "2024-01-01T00:00:00.000Z"


PORTAL_ID = 24681357
"""The sandbox portal's id (account 1's; `sandbox.accounts` numbers the others): fixed, so a reset (a
sandbox refresh) keeps it, as a real portal does."""


class PortalService:
    def __init__(self, state: HubSpotState, clock: SandboxClock, portal_id: int = PORTAL_ID) -> None:
        self._state = state
        self._clock = clock
        self._portal_id = portal_id

    def pipelines(self, request: Request, parts: list[str]) -> Response:
        """``/crm/v3/pipelines/deals[/{id}[/stages]]``."""
        if not parts or ALIASES.get(parts[0]) != "deals":
            raise HsError("OBJECT_NOT_FOUND", "Pipelines exist for deals only in the sandbox", status=404)
        listing = pipelines(_PORTAL_CREATED)
        if len(parts) == 1:
            return json_response(200, listing)
        pipeline = next((p for p in listing["results"] if p["id"] == parts[1]), None)  # type: ignore[attr-defined]
        if pipeline is None:
            raise HsError("OBJECT_NOT_FOUND", f"Pipeline {parts[1]} does not exist", status=404)
        if len(parts) == 3 and parts[2] == "stages":
            return json_response(200, {"results": pipeline["stages"]})
        return json_response(200, pipeline)

    def account_details(self) -> Response:
        """``GET /account-info/v3/details``: the portal's id and settings (Account Information API)."""
        return json_response(
            200,
            {
                "portalId": self._portal_id,
                "accountType": "DEVELOPER_TEST",
                "timeZone": "US/Eastern",
                "companyCurrency": "USD",
                "additionalCurrencies": [],
                "utcOffset": "-05:00",
                "utcOffsetMilliseconds": -18000000,
                "uiDomain": "app.hubspot.com",
                "dataHostingLocation": "na1",
            },
        )

    def owners(self, request: Request, parts: list[str]) -> Response:
        owners = self._state.owners
        if parts:
            found = next((o for o in owners if o["id"] == parts[0]), None)
            if found is None:
                raise HsError("OBJECT_NOT_FOUND", f"Owner {parts[0]} does not exist", status=404)
            return json_response(200, found)
        email = request.param("email")
        selected = [o for o in owners if email is None or str(o["email"]).lower() == email.lower()]
        after = int(request.param("after") or 0)
        limit = max(1, min(500, int(request.param("limit") or 100)))
        page = selected[after : after + limit]
        body: dict[str, object] = {"results": page}
        if after + limit < len(selected):
            body["paging"] = next_paging(request, str(after + limit))
        return json_response(200, body)

    def labels(self, request: Request, from_type: str, to_type: str) -> Response:
        """``GET /crm/v4/associations/{from}/{to}/labels``."""
        pair = PAIRS.get((ALIASES.get(from_type, from_type), ALIASES.get(to_type, to_type)))
        results = [{"category": "HUBSPOT_DEFINED", "typeId": pair[0], "label": None}] if pair else []
        return json_response(200, {"results": results})

    def associations(self, request: Request, parts: list[str]) -> Response:
        """``/crm/v4/objects/{from}/{id}/associations/{to}[/{toId}]`` and ``.../default/{to}/{toId}``."""
        state = self._state
        from_type = ALIASES.get(parts[0])
        if from_type is None:
            raise HsError("OBJECT_NOT_FOUND", f"Unable to infer object type from: {parts[0]}", status=400)
        from_id, rest = parts[1], parts[3:]
        default = bool(rest) and rest[0] == "default"
        if default:
            rest = rest[1:]
        to_type = ALIASES.get(rest[0]) if rest else None
        if to_type is None:
            raise HsError("OBJECT_NOT_FOUND", "Unknown association target type", status=400)
        with state.lock:
            if from_id not in state.stores[from_type].objects:
                raise not_found(from_id)
            if len(rest) == 1 and request.method == "GET":
                return _association_page(request, state.associations.targets(from_type, from_id, to_type))
            if len(rest) != 2:
                raise HsError("VALIDATION_ERROR", "Unsupported association path", status=404)
            to_id = rest[1]
            if to_id not in state.stores[to_type].objects:
                raise not_found(to_id)
            if request.method == "DELETE":
                state.associations.unlink(from_type, from_id, to_type, to_id)
                return empty_response(204)
            if request.method != "PUT":
                raise HsError("VALIDATION_ERROR", f"{request.method} is not supported here", status=405)
            return self._put(request, default, from_type, from_id, to_type, to_id)

    def _put(
        self, request: Request, default: bool, from_type: str, from_id: str, to_type: str, to_id: str
    ) -> Response:
        state = self._state
        expected = state.associations.default_type(from_type, to_type)
        if expected is None:
            raise HsError("VALIDATION_ERROR", f"{from_type} cannot be associated with {to_type}")
        type_ids = [expected]
        if not default:
            specs = request.json()
            if not isinstance(specs, list) or not specs:
                raise HsError("VALIDATION_ERROR", "Expected a list of association specs")
            type_ids = [int(s.get("associationTypeId", 0)) for s in specs if isinstance(s, Mapping)]
            if any(not state.associations.valid_type(from_type, to_type, t) for t in type_ids):
                raise HsError(
                    "VALIDATION_ERROR", f"Invalid association type for {from_type} -> {to_type}: {type_ids}"
                )
        for type_id in type_ids:
            state.associations.link(from_type, from_id, to_type, to_id, type_id)
        if default:
            now = iso_millis(self._clock.now())
            result = {
                "from": {"id": from_id},
                "to": {"id": to_id},
                "associationSpec": {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": expected},
            }
            return json_response(
                200, {"status": "COMPLETE", "results": [result], "startedAt": now, "completedAt": now}
            )
        body = {
            "fromObjectTypeId": TYPE_IDS[from_type],
            "fromObjectId": from_id,
            "toObjectTypeId": TYPE_IDS[to_type],
            "toObjectId": to_id,
            "labels": [],
        }
        return json_response(201, body)


def _association_page(request: Request, found: Iterable[tuple[str, Iterable[int]]]) -> Response:
    """One page of ``GET /crm/v4/objects/{from}/{id}/associations/{to}``: by target id, at most ``limit``
    (default and cap 500), ``after`` the last target id of the previous page."""
    try:
        limit = max(1, min(500, int(request.param("limit") or 500)))
        after = int(request.param("after") or 0)
    except ValueError as exc:
        raise HsError("VALIDATION_ERROR", "limit and after must be integers") from exc
    targets = sorted((int(target), sorted(types)) for target, types in found if int(target) > after)
    results = [
        {
            "toObjectId": target,
            "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": t, "label": None} for t in types],
        }
        for target, types in targets[:limit]
    ]
    body: dict[str, object] = {"results": results}
    if len(targets) > limit:
        body["paging"] = next_paging(request, str(targets[limit - 1][0]))
    return json_response(200, body)
