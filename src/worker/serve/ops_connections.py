"""The ops API's `/connections` routes: the connections kept in the state store, managed over HTTP as
`bant-sync connections` manages them (the same worker.config.connection_admin operations, so the same
validation and wording), behind the ops API's bearer token.

    GET    /connections                 {"connections": [...]} as `connections list --json`
    POST   /connections                 {"name", "crm", "tenant"?, "enabled"?, "settings"?} -> 201
    GET    /connections/{name}          one, as `connections show`
    POST   /connections/{name}/disable  -> 200 with the connection
    POST   /connections/{name}/enable   -> 200 with the connection
    DELETE /connections/{name}          -> 200 {"removed": name}

Errors are the API's one JSON shape: 422 `ConfigError` listing every problem of an invalid connection
(a secret among its settings included: secrets never go into the store), 409 a name already taken, 404
an unknown name, 400 a body that is not a JSON object. A change takes effect when the configuration is next
loaded (the next start of `serve` or of a worker): the running service keeps the connections it started
with.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from worker.config import connection_admin
from worker.errors import UsageError
from worker.serve.ops_api import MAX_JSON_DEPTH, ApiError, error_body, json_depth_exceeds, read_body
from worker.service import Worker

ADD_FIELDS: dict[str, type] = {"name": str, "crm": str, "tenant": str, "enabled": bool, "settings": dict}
"""The body of POST /connections: `settings` holds the keys a [connections.NAME] table would."""


def _refused(exc: ApiError) -> Response:
    return JSONResponse(exc.body, status_code=exc.status)


def parse_add(raw: bytes) -> dict[str, Any]:
    """Validate a POST /connections body's shape (its settings are validated by connection_admin.add)."""
    if json_depth_exceeds(raw, MAX_JSON_DEPTH):
        raise ApiError(400, f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        body = json.loads(raw) if raw.strip() else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        body = None
    if not isinstance(body, dict):
        raise ApiError(
            400, 'send a JSON object, e.g. {"name": "acme", "crm": "hubspot", "settings": {"host": "..."}}'
        )
    for key, value in body.items():
        if key not in ADD_FIELDS:
            raise ApiError(422, f"unknown field {key[:40]!r}; allowed: {', '.join(ADD_FIELDS)}")
        if type(value) is not ADD_FIELDS[key]:
            raise ApiError(422, f"field {key!r} must be a JSON {ADD_FIELDS[key].__name__}")
    for required in ("name", "crm"):
        if not body.get(required):
            raise ApiError(422, f"field {required!r} is required")
    return body


def connection_routes(worker: Worker, max_body_bytes: int) -> list[BaseRoute]:
    store = worker.store

    def listing(request: Request) -> Response:
        return JSONResponse({"connections": connection_admin.listing(store)})

    async def add(request: Request) -> Response:
        try:
            body = parse_add(await read_body(request, max_body_bytes))
        except ApiError as exc:
            return _refused(exc)
        try:
            row = await run_in_threadpool(
                lambda: connection_admin.add(
                    worker.settings,
                    store,
                    body["name"],
                    body["crm"],
                    body.get("settings", {}),
                    worker.clock(),
                    tenant=body.get("tenant", ""),
                    enabled=body.get("enabled", True),
                )
            )
        except UsageError as exc:
            status = 409 if "already in the state store" in str(exc) else 400
            return JSONResponse(error_body(status, str(exc), kind="UsageError"), status_code=status)
        return JSONResponse(connection_admin.describe(row, None), status_code=201)

    def _one(name: str, action: str) -> Response:
        try:
            if action == "show":
                row = connection_admin.get(store, name)
            elif action == "remove":
                connection_admin.remove(store, name)
                return JSONResponse({"removed": name})
            else:
                row = connection_admin.set_enabled(store, name, action == "enable", worker.clock())
        except UsageError as exc:
            return JSONResponse(error_body(404, str(exc)), status_code=404)
        return JSONResponse(connection_admin.describe(row, store.identity_of(row.name)))

    def show(request: Request) -> Response:
        return _one(request.path_params["name"], "show")

    def disable(request: Request) -> Response:
        return _one(request.path_params["name"], "disable")

    def enable(request: Request) -> Response:
        return _one(request.path_params["name"], "enable")

    def remove(request: Request) -> Response:
        return _one(request.path_params["name"], "remove")

    return [
        Route("/connections", listing, methods=["GET"]),
        Route("/connections", add, methods=["POST"]),
        Route("/connections/{name}", show, methods=["GET"]),
        Route("/connections/{name}", remove, methods=["DELETE"]),
        Route("/connections/{name}/disable", disable, methods=["POST"]),
        Route("/connections/{name}/enable", enable, methods=["POST"]),
    ]
