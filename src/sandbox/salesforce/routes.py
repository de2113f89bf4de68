"""The Salesforce front: auth, the API allocation, fault rendering and the URL map under
``/services/data/v{59..62}.0/``."""

from __future__ import annotations

import contextlib
import re

from sandbox.clock import SandboxClock
from sandbox.faultbook import Firing
from sandbox.faults import FaultRule
from sandbox.http import BodyError, Request, Response, json_response
from sandbox.salesforce.auth import Credentials, token_endpoint
from sandbox.salesforce.cdc import change_context, rest_origin
from sandbox.salesforce.collections import CollectionWriter
from sandbox.salesforce.errors import REQUEST_LEVEL, SfError, error_response, not_found
from sandbox.salesforce.limits import ApiUsage
from sandbox.salesforce.query import QueryService, batch_size
from sandbox.salesforce.records import RecordService, describe, global_describe, object_entry
from sandbox.salesforce.state import SalesforceState
from sandbox.tokens import TokenStore

VERSIONS = ("59.0", "60.0", "61.0", "62.0")
_ASYNC = "/services/async/"
"""The Bulk API (v1). The sandbox answers as an org without it, so clients fall back to REST queries."""
_DATA = re.compile(r"^/services/data/v(\d+\.\d)(/.*)?$")
_STATUS_CODES = {
    401: "INVALID_SESSION_ID",
    403: "REQUEST_LIMIT_EXCEEDED",
    404: "NOT_FOUND",
    503: "SERVER_UNAVAILABLE",
}


def bulk_error(status: int, code: str, message: str) -> Response:
    """A Bulk API (v1) error, in its own envelope (not the REST API's list of errors)."""
    return json_response(status, {"exceptionCode": code, "exceptionMessage": message})


def _allow(request: Request, *methods: str) -> None:
    if request.method not in methods:
        raise SfError(
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{request.method}' not allowed. Allowed are {','.join(methods)}",
            status=405,
        )


class SalesforceFront:
    crm = "salesforce"

    def __init__(
        self,
        state: SalesforceState,
        clock: SandboxClock,
        creds: Credentials,
        tokens: TokenStore,
        usage: ApiUsage,
    ) -> None:
        self.state = state
        self._creds = creds
        self._tokens = tokens
        self._usage = usage
        self._queries = QueryService(state)
        self._collections = CollectionWriter(state, clock)
        self._records = RecordService(state, clock)

    # ----- gateway hooks ------------------------------------------------------------------------------------
    def exempt(self, request: Request) -> bool:
        return request.path.startswith("/services/oauth2/") or request.path.rstrip("/") == "/services/data"

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith(_ASYNC):
            if self._tokens.valid((request.header("x-sfdc-session") or "").strip()):
                return None
            return bulk_error(400, "InvalidSessionId", "Invalid session id")
        header = request.header("authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() in {"bearer", "oauth"} and self._tokens.valid(token.strip()):
            return None
        return error_response(401, "INVALID_SESSION_ID", "Session expired or invalid")

    def admit(self, request: Request) -> tuple[Response | None, tuple[tuple[str, str], ...]]:
        if not self._usage.charge():
            refused = error_response(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
            return refused, (self._usage.header(),)
        return None, (self._usage.header(),)

    def fault_response(self, rule: FaultRule, request: Request, firing: Firing) -> Response | None:
        if rule.kind == "status":
            status = rule.status or 500
            headers = tuple(rule.headers.items())
            if rule.body is not None:
                return json_response(status, rule.body, headers)
            code = _STATUS_CODES.get(status, "UNKNOWN_EXCEPTION")
            message = rule.message or f"sandbox: injected HTTP {status}"
            return error_response(status, code, message).with_headers(*headers)
        code = rule.error_code or "UNKNOWN_EXCEPTION"
        if code not in REQUEST_LEVEL and "/composite/sobjects" in request.path and request.method != "GET":
            return None
        return SfError(code, rule.message).response()

    def apply_effect(self, rule: FaultRule) -> None:
        if rule.kind == "session_expiry":
            self._tokens.revoke_all()
        elif rule.kind == "schema_change" and rule.object_name and rule.field_name:
            with contextlib.suppress(KeyError, SfError):
                if rule.rename_to:
                    self.state.rename_field(rule.object_name, rule.field_name, rule.rename_to)
                else:
                    self.state.delete_field(rule.object_name, rule.field_name)

    def handle(self, request: Request, firing: Firing) -> Response:
        """Serve one call; its Opportunity saves are one transaction whose change events name the REST API
        version of the URL and the `client` of its `Sforce-Call-Options` header (sandbox.salesforce.cdc)."""
        match = _DATA.match(request.path.rstrip("/"))
        version = match.group(1) if match is not None else VERSIONS[-1]
        try:
            with change_context(rest_origin(version, request.header("sforce-call-options"))):
                return self._route(request, firing)
        except SfError as exc:
            return exc.response()
        except BodyError as exc:
            return error_response(400, "JSON_PARSER_ERROR", str(exc))

    # ----- routing ------------------------------------------------------------------------------------------
    def _route(self, request: Request, firing: Firing) -> Response:
        path = request.path.rstrip("/")
        if path.startswith("/services/oauth2/token"):
            return token_endpoint(request, self._creds, self._tokens)
        if path == "/services/data":
            return json_response(
                200, [{"label": f"v{v}", "url": f"/services/data/v{v}", "version": v} for v in VERSIONS]
            )
        if path.startswith(_ASYNC):
            return bulk_error(400, "FeatureNotEnabled", "Async API not enabled")
        match = _DATA.match(path)
        if match is None or match.group(1) not in VERSIONS:
            return not_found()
        version, rest = match.group(1), (match.group(2) or "")
        parts = [p for p in rest.split("/") if p]
        if not parts:
            _allow(request, "GET")
            base = f"/services/data/v{version}"
            return json_response(
                200, {name: f"{base}/{name}" for name in ("sobjects", "query", "limits", "composite")}
            )
        head = parts[0]
        if head == "limits" and len(parts) == 1:
            _allow(request, "GET")
            return json_response(200, self._usage.limits())
        if head in {"query", "queryAll"}:
            _allow(request, "GET")
            if len(parts) == 2:
                return self._queries.more(parts[1], version)
            text = request.param("q")
            if not text:
                raise SfError("MALFORMED_QUERY", "A query string has to be specified")
            return self._queries.run(text, version, batch_size(request))
        if head == "sobjects":
            return self._sobjects(request, parts[1:], version, firing)
        if head == "composite" and len(parts) >= 2 and parts[1] == "sobjects":
            return self._composite(request, parts[2:], firing)
        return not_found()

    def _sobjects(self, request: Request, parts: list[str], version: str, firing: Firing) -> Response:
        state = self.state
        if not parts:
            _allow(request, "GET")
            return json_response(200, global_describe(state, version))
        schema = state.require_schema(parts[0])
        if len(parts) == 1:
            _allow(request, "GET", "POST")
            if request.method == "POST":
                return self._records.create(schema, request)
            return json_response(200, {"objectDescribe": object_entry(schema, version), "recentItems": []})
        if len(parts) == 2 and parts[1] == "describe":
            _allow(request, "GET")
            with state.lock:
                return json_response(200, describe(schema, version))
        if len(parts) == 2:
            _allow(request, "GET", "PATCH", "DELETE")
            if request.method == "GET":
                return self._records.read(schema, parts[1], request, version)
            if request.method == "PATCH":
                return self._records.update(schema, parts[1], request, firing)
            return self._records.delete(schema, parts[1], firing)
        _allow(request, "GET", "PATCH")
        return self._records.by_external_id(schema, parts[1], "/".join(parts[2:]), request, version)

    def _composite(self, request: Request, parts: list[str], firing: Firing) -> Response:
        if not parts:
            _allow(request, "POST", "PATCH")
            if request.method == "POST":
                return self._collections.create(request, firing)
            return self._collections.update(request, firing)
        if len(parts) == 2:
            _allow(request, "PATCH")
            return self._collections.upsert(request, firing, parts[0], parts[1])
        return not_found()
