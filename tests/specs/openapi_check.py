"""Check HubSpot requests and responses against HubSpot's published OpenAPI specs (tests/specs/hubspot/).

openapi-core does the matching and the schema work (parameters, request bodies, responses by status). Two
checks are added because it is lenient where HubSpot's spec is not: a query boolean must be exactly ``true``
or ``false`` (openapi-core also takes ``False``, which the hubspot SDK sends for a Python ``False``), and a
query parameter the operation does not declare is a problem (openapi-core ignores it).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPECS = Path(__file__).parent / "hubspot"
SERVER = "https://api.hubapi.com"
OBJECT_TYPE_IDS = {"deals": "0-3"}
"""The deals spec is published under the object type id (``/crm/v3/objects/0-3``); HubSpot serves both."""


@dataclass(frozen=True)
class Exchange:
    """One HubSpot call as sent and as answered."""

    method: str
    path: str
    query_string: str
    body: bytes
    content_type: str
    status: int
    response_body: bytes
    response_content_type: str


@dataclass(frozen=True)
class Operation:
    spec: str
    api: OpenAPI
    template: str
    raw: dict[str, Any]
    path_parameters: list[dict[str, Any]]


def _nullable_values(schema: dict[str, Any]) -> None:
    schema["properties"]["properties"]["additionalProperties"]["nullable"] = True


def _nullable_label(schema: dict[str, Any]) -> None:
    schema["properties"]["label"]["nullable"] = True


def _sort_objects(schema: dict[str, Any]) -> None:
    sort = {
        "type": "object",
        "required": ["propertyName"],
        "properties": {
            "propertyName": {"type": "string"},
            "direction": {"type": "string", "enum": ["ASCENDING", "DESCENDING"]},
        },
    }
    schema["properties"]["sorts"]["items"] = {"oneOf": [{"type": "string"}, sort]}


ERRATA: dict[str, Callable[[dict[str, Any]], None]] = {
    # HubSpot answers a requested property that has no value with null (the SDK's models allow None).
    "SimplePublicObject": _nullable_values,
    "SimplePublicObjectWithAssociations": _nullable_values,
    # The labels endpoint gives the unlabelled (default) association types "label": null.
    "AssociationSpecWithLabel": _nullable_label,
    # HubSpot's CRM search guide documents sorts as {"propertyName", "direction"} objects.
    "PublicObjectSearchRequest": _sort_objects,
}
"""Where HubSpot's published specs are known to disagree with the API HubSpot runs and documents, by schema
name: applied to the loaded specs (the files stay as published). Everything else is checked as written."""


def _json_for_any_media_type(node: Any) -> None:
    """Error responses are specified under ``*/*``, which openapi-core matches but cannot decode; HubSpot
    sends them as JSON, so they are read as ``application/json``."""
    if isinstance(node, dict):
        content = node.get("content")
        if isinstance(content, dict) and set(content) == {"*/*"}:
            node["content"] = {"application/json": content["*/*"]}
        for value in node.values():
            _json_for_any_media_type(value)
    elif isinstance(node, list):
        for value in node:
            _json_for_any_media_type(value)


class HubSpotSpecs:
    def __init__(self, directory: Path = SPECS) -> None:
        self._documents = {
            p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(directory.glob("*.json"))
        }
        for doc in self._documents.values():
            _json_for_any_media_type(doc)
            schemas = doc.get("components", {}).get("schemas", {})
            for name, patch in ERRATA.items():
                if name in schemas:
                    patch(schemas[name])

    @cached_property
    def _apis(self) -> dict[str, OpenAPI]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return {name: OpenAPI.from_dict(doc) for name, doc in self._documents.items()}

    def find(self, method: str, path: str) -> Operation | None:
        """The operation serving ``method path``; literal segments beat template variables."""
        path = _spec_path(path)
        found: list[tuple[int, Operation]] = []
        for name, doc in self._documents.items():
            for template, item in doc["paths"].items():
                op = item.get(method.lower())
                if op is None or not _matches(template, path):
                    continue
                literals = sum(1 for part in template.split("/") if part and not part.startswith("{"))
                params = [self._resolve(name, p) for p in item.get("parameters", [])]
                found.append((literals, Operation(name, self._apis[name], template, op, params)))
        return max(found, key=lambda pair: pair[0])[1] if found else None

    def _resolve(self, spec: str, node: dict[str, Any]) -> dict[str, Any]:
        ref = node.get("$ref")
        if not isinstance(ref, str):
            return node
        target: Any = self._documents[spec]
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        return self._resolve(spec, target)

    def query_parameters(self, op: Operation) -> dict[str, dict[str, Any]]:
        params = op.path_parameters + [self._resolve(op.spec, p) for p in op.raw.get("parameters", [])]
        return {p["name"]: p for p in params if p.get("in") == "query"}

    def request_problems(self, exchange: Exchange) -> list[str]:
        """What in the request departs from the spec, one line per problem naming the operation (the same
        problem on two calls gives the same line)."""
        op = self.find(exchange.method, exchange.path)
        if op is None:
            return [f"{exchange.method} {exchange.path}: no operation in HubSpot's specs"]
        where = f"{exchange.method} {op.template} request"
        problems = []
        declared = self.query_parameters(op)
        for name, values in parse_qs(exchange.query_string, keep_blank_values=True).items():
            param = declared.get(name)
            if param is None:
                problems.append(f"{where}: query parameter {name!r} is not in the spec")
                continue
            if self._resolve(op.spec, param.get("schema", {})).get("type") == "boolean":
                problems += [
                    f"{where}: query boolean {name}={value!r} (the spec's booleans are true/false)"
                    for value in values
                    if value not in {"true", "false"}
                ]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                op.api.validate_request(self._mock_request(exchange))
        except Exception as exc:
            problems += [f"{where}: {leaf}" for leaf in _leaves(exc)]
        return list(dict.fromkeys(problems))

    def response_problems(self, exchange: Exchange) -> list[str]:
        """What in the response departs from the spec, in the same form as `request_problems`."""
        op = self.find(exchange.method, exchange.path)
        if op is None:
            return [f"{exchange.method} {exchange.path}: no operation in HubSpot's specs"]
        if exchange.status == 204 and not exchange.response_body:
            return []
        response = MockResponse(
            exchange.response_body,
            status_code=exchange.status,
            content_type=exchange.response_content_type.split(";")[0],
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                op.api.validate_response(self._mock_request(exchange), response)
        except Exception as exc:
            where = f"{exchange.method} {op.template} {exchange.status} response"
            return list(dict.fromkeys(f"{where}: {leaf}" for leaf in _leaves(exc)))
        return []

    def _mock_request(self, exchange: Exchange) -> MockRequest:
        args = {k: v[-1] for k, v in parse_qs(exchange.query_string, keep_blank_values=True).items()}
        return MockRequest(
            SERVER,
            exchange.method.lower(),
            _spec_path(exchange.path),
            args=args,
            headers={"Authorization": "Bearer sandbox"},
            data=exchange.body or None,
            content_type=exchange.content_type.split(";")[0] or "application/json",
        )


def _spec_path(path: str) -> str:
    parts = path.rstrip("/").split("/")
    if parts[1:4] == ["crm", "v3", "objects"] and len(parts) > 4:
        parts[4] = OBJECT_TYPE_IDS.get(parts[4], parts[4])
    return "/".join(parts)


def _matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def _leaves(exc: Exception) -> list[str]:
    """The leaf schema errors behind an openapi-core exception: where in the document (list indexes as
    ``*``) and what, without the offending values."""
    leaves: list[str] = []
    pending: list[Any] = [exc]
    while pending:
        error = pending.pop(0)
        nested = list(getattr(error, "schema_errors", None) or []) + list(
            getattr(error, "context", None) or []
        )
        if error.__cause__ is not None:
            nested.append(error.__cause__)
        if nested:
            pending += nested
            continue
        path = getattr(error, "absolute_path", None) or []
        where = "/".join("*" if isinstance(p, int) else str(p) for p in path) or "(top)"
        validator = getattr(error, "validator", None)
        what = (
            str(getattr(error, "message", error)) if validator in {"required", None} else f"fails {validator}"
        )
        leaves.append(f"{where}: {what[:200]}")
    return list(dict.fromkeys(leaves))
