"""The HubSpot front: bearer tokens, rate limits, fault rendering and the URL map of the CRM v3/v4 subset."""

from __future__ import annotations

import contextlib
import hmac
import uuid
from collections.abc import Mapping

from sandbox.clock import SandboxClock
from sandbox.faultbook import Firing
from sandbox.faults import FaultRule
from sandbox.http import BodyError, Request, Response, json_response
from sandbox.hubspot.batch import BatchService
from sandbox.hubspot.errors import HsError, rate_limited, status_category
from sandbox.hubspot.objects import archive_object, create_object, get_object, list_objects, update_object
from sandbox.hubspot.portal import PORTAL_ID, PortalService
from sandbox.hubspot.properties import epoch_ms
from sandbox.hubspot.properties_api import PropertiesService
from sandbox.hubspot.ratelimit import RateLimiter
from sandbox.hubspot.search import render_row, run_search
from sandbox.hubspot.state import HubSpotState
from sandbox.tokens import TokenStore

_NO_CREDENTIALS = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more "
    "details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)


class HubSpotFront:
    crm = "hubspot"

    def __init__(
        self,
        state: HubSpotState,
        clock: SandboxClock,
        tokens: TokenStore,
        limiter: RateLimiter,
        oauth: Mapping[str, str],
        portal_id: int = PORTAL_ID,
    ) -> None:
        self.state = state
        self._clock = clock
        self._tokens = tokens
        self._limiter = limiter
        self._oauth = dict(oauth)
        self._batch = BatchService(state, clock)
        self._properties = PropertiesService(state, clock)
        self._portal = PortalService(state, clock, portal_id)

    # ----- gateway hooks ------------------------------------------------------------------------------------
    def exempt(self, request: Request) -> bool:
        return request.path.startswith("/oauth/")

    def authenticate(self, request: Request) -> Response | None:
        scheme, _, token = (request.header("authorization") or "").partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and self._tokens.valid(token):
            return None
        if scheme.lower() == "bearer" and self._tokens.revoked(token):
            return HsError(
                "EXPIRED_AUTHENTICATION", "The OAuth token used to make this call expired 0 second(s) ago."
            ).response()
        return HsError("INVALID_AUTHENTICATION", _NO_CREDENTIALS).response()

    def admit(self, request: Request) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        return self._limiter.admit(search=request.method == "POST" and request.path.endswith("/search"))

    def fault_response(self, rule: FaultRule, request: Request, firing: Firing) -> Response | None:
        headers = tuple(rule.headers.items())
        if rule.kind == "status":
            status = rule.status or 500
            if rule.body is not None:
                return json_response(status, rule.body, headers)
            if status == 429:
                policy = "SECONDLY" if request.path.endswith("/search") else "TEN_SECONDLY_ROLLING"
                message = rule.message or f"You have reached your {policy.lower()} limit."
                extra = tuple((k, v) for k, v in headers if k.lower() != "retry-after")
                retry = next((v for k, v in headers if k.lower() == "retry-after"), "1")
                return rate_limited(policy, message, retry, extra)
            message = rule.message or f"sandbox: injected HTTP {status}"
            return HsError(status_category(status), message, status=status).response(headers)
        category = rule.error_code or "INTERNAL_ERROR"
        return HsError(category, rule.message or f"sandbox: injected {category}").response(headers)

    def apply_effect(self, rule: FaultRule) -> None:
        if rule.kind == "session_expiry":
            self._tokens.revoke_all()
        elif rule.kind == "schema_change" and rule.object_name and rule.field_name:
            with contextlib.suppress(KeyError, HsError):
                if rule.rename_to:
                    self.state.rename_property(rule.object_name, rule.field_name, rule.rename_to)
                else:
                    self.state.delete_property(rule.object_name, rule.field_name)

    def handle(self, request: Request, firing: Firing) -> Response:
        try:
            return self._route(request, firing)
        except HsError as exc:
            return exc.response()
        except BodyError as exc:
            return HsError("VALIDATION_ERROR", f"Invalid input JSON on line 1: {exc}").response()

    # ----- routing ------------------------------------------------------------------------------------------
    def _route(self, request: Request, firing: Firing) -> Response:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if parts[:3] == ["oauth", "v1", "token"] and method == "POST":
            return self._refresh(request)
        if parts[:3] == ["crm", "v3", "objects"] and len(parts) >= 4:
            return self._objects(request, parts[3:], firing)
        if parts[:3] == ["crm", "v3", "properties"] and len(parts) >= 4:
            return self._properties.handle(request, parts[3:])
        if parts[:3] == ["crm", "v3", "pipelines"] and method == "GET":
            return self._portal.pipelines(request, parts[3:])
        if parts == ["account-info", "v3", "details"] and method == "GET":
            return self._portal.account_details()
        if parts[:3] == ["crm", "v3", "owners"] and method == "GET":
            return self._portal.owners(request, parts[3:])
        if parts[:3] == ["crm", "v4", "associations"] and len(parts) == 6 and parts[5] == "labels":
            return self._portal.labels(request, parts[3], parts[4])
        if parts[:3] == ["crm", "v4", "objects"] and len(parts) >= 7 and parts[5] == "associations":
            return self._portal.associations(request, parts[3:])
        raise HsError("OBJECT_NOT_FOUND", f"No route for {method} {request.path}", status=404)

    def _objects(self, request: Request, parts: list[str], firing: Firing) -> Response:
        state, method = self.state, request.method
        store = state.store(parts[0])
        if len(parts) == 1:
            if method == "GET":
                return list_objects(state, store, request)
            if method == "POST":
                return create_object(state, store, request)
        elif len(parts) == 2 and parts[1] == "search" and method == "POST":
            return self._search(request, parts[0], firing)
        elif len(parts) == 3 and parts[1] == "batch" and method == "POST":
            return self._batch.handle(store, parts[2], request, firing)
        elif len(parts) == 2:
            if method == "GET":
                return get_object(state, store, parts[1], request)
            if method == "PATCH":
                return update_object(state, store, parts[1], request, firing)
            if method == "DELETE":
                return archive_object(state, store, parts[1], firing)
        raise HsError("OBJECT_NOT_FOUND", f"No route for {method} {request.path}", status=404)

    def _search(self, request: Request, object_type: str, firing: Firing) -> Response:
        body = request.json() or {}
        if not isinstance(body, Mapping):
            raise HsError("VALIDATION_ERROR", "Invalid input JSON: expected an object")
        state = self.state
        lag_ms = int(max(state.search_lag_s, firing.search_lag_s) * 1000)
        wanted = body.get("properties")
        names = [str(p) for p in wanted] if isinstance(wanted, list) else []
        with state.lock:
            store = state.store(object_type)
            page = run_search(store, body, lag_ms, epoch_ms(self._clock.now()))
            results = [render_row(store, version, names) for version in page.rows]
        payload: dict[str, object] = {"total": page.total, "results": results}
        if page.next_after is not None:
            payload["paging"] = {"next": {"after": str(page.next_after), "link": f"?after={page.next_after}"}}
        return json_response(200, payload)

    def _refresh(self, request: Request) -> Response:
        """``POST /oauth/v1/token``, refresh_token grant: a new access token after a session expiry."""
        form = request.form()
        ok = (
            form.get("grant_type") == "refresh_token"
            and form.get("client_id") == self._oauth["client_id"]
            and hmac.compare_digest(form.get("client_secret", ""), self._oauth["client_secret"])
            and hmac.compare_digest(form.get("refresh_token", ""), self._oauth["refresh_token"])
        )
        if not ok:
            body = {
                "status": "BAD_REFRESH_TOKEN",
                "message": "missing or unknown refresh token",
                "correlationId": str(uuid.uuid4()),
            }
            return json_response(400, body)
        token = self._tokens.issue()
        return json_response(
            200,
            {
                "token_type": "bearer",
                "refresh_token": self._oauth["refresh_token"],
                "access_token": token,
                "expires_in": 1800,
            },
        )
