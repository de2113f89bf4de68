"""The control API under ``/_sandbox/`` on the HubSpot port: JSON in and out, never logged or rate-limited.

=========================================  ===================================================================
``GET /_sandbox/info``                     the start-up JSON line
``GET|DELETE /_sandbox/requests``          the request log (``?crm=`` filters) / clear it
``GET|POST|DELETE /_sandbox/faults``       list / add (a rule or a list of rules) / clear fault rules
``GET /_sandbox/snapshot``                 every record of both CRMs
``GET|POST /_sandbox/clock``               read / move the clock: ``{"advance": seconds}`` or ``{"set": iso}``
``POST /_sandbox/search_lag``              ``{"seconds": N}``: HubSpot search lags every change by N seconds
``POST /_sandbox/reset``                   reseed both CRMs, clear the log and counters
``POST /_sandbox/records/<crm>/<object>/<id>``  a user edit (JSON object of fields/properties)
``GET|POST /_sandbox/pubsub``              Pub/Sub endpoint state / set ``{"keepalive_seconds": s}``
``POST|DELETE /_sandbox/pubsub/faults``    ``{"duplicate": b, "out_of_order": b, "drop_after": n}`` / clear
``POST /_sandbox/pubsub/expire``           drop every retained change event (a gap past 72 hours)
=========================================  ===================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from sandbox.faults import FaultConfigError, parse_rules
from sandbox.http import BodyError, Request, Response, empty_response, json_response
from sandbox.hubspot.errors import HsError
from sandbox.salesforce.errors import SfError
from sandbox.salesforce.values import to_json

if TYPE_CHECKING:
    from sandbox.sandbox import Sandbox


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": message})


class ControlApi:
    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def __call__(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p][1:]
        try:
            return self._route(request, parts)
        except (BodyError, FaultConfigError, ValueError) as exc:
            return _error(400, str(exc))
        except (SfError, HsError) as exc:
            return _error(getattr(exc, "status", 400), str(exc))
        except KeyError as exc:
            return _error(404, str(exc))

    def _route(self, request: Request, parts: list[str]) -> Response:
        sandbox, method = self._sandbox, request.method
        head = parts[0] if parts else ""
        if head == "info" and method == "GET":
            return json_response(200, sandbox.info)
        if head == "requests":
            if method == "GET":
                crm = request.param("crm")
                entries = [e for e in sandbox.requests() if crm is None or e["crm"] == crm]
                return json_response(200, entries)
            if method == "DELETE":
                return json_response(200, {"cleared": sandbox.reset_requests()})
        if head == "faults":
            if method == "GET":
                return json_response(200, [rule.to_dict() for rule in sandbox.faults.rules()])
            if method == "POST":
                rules = parse_rules(request.json(), where="faults")
                sandbox.add_faults(rules)
                return json_response(201, {"added": len(rules)})
            if method == "DELETE":
                sandbox.clear_faults()
                return empty_response(204)
        if head == "snapshot" and method == "GET":
            return json_response(200, self._snapshot())
        if head == "clock":
            return self._clock(request)
        if head == "search_lag" and method == "POST":
            body = request.json()
            seconds = float(body.get("seconds", 0)) if isinstance(body, Mapping) else 0.0
            sandbox.hubspot.set_search_lag(seconds)
            return json_response(200, {"seconds": sandbox.hubspot.search_lag_s})
        if head == "reset" and method == "POST":
            sandbox.reset()
            return json_response(200, {"reset": True, "now": _iso(sandbox.clock.now())})
        if head == "records" and method == "POST" and len(parts) == 4:
            return self._edit(request, parts[1], parts[2], parts[3])
        if head == "pubsub":
            return self._pubsub(request, parts[1:])
        return _error(404, f"no control endpoint {method} {request.path}; see GET /_sandbox/info")

    def _clock(self, request: Request) -> Response:
        clock = self._sandbox.clock
        if request.method == "POST":
            body = request.json()
            if not isinstance(body, Mapping) or not ({"advance", "set"} & set(body)):
                return _error(400, 'expected {"advance": seconds} or {"set": "2026-01-01T00:00:00Z"}')
            if "advance" in body:
                clock.advance(float(body["advance"]))
            if "set" in body:
                when = datetime.fromisoformat(str(body["set"]).replace("Z", "+00:00"))
                if when.tzinfo is None:
                    return _error(400, "the time must carry a UTC offset, e.g. 2026-01-01T00:00:00Z")
                clock.set(when)
        return json_response(200, {"now": _iso(clock.now()), "frozen": clock.frozen})

    def _edit(self, request: Request, crm: str, obj: str, record_id: str) -> Response:
        body = request.json()
        if not isinstance(body, Mapping):
            return _error(400, "expected a JSON object of fields")
        sandbox = self._sandbox
        if crm == "salesforce":
            record = sandbox.salesforce.update(obj, record_id, body)
            return json_response(200, {key: to_json(value) for key, value in record.items()})
        if crm == "hubspot" and obj in {"deals", "tasks"}:
            with sandbox.hubspot.lock:
                sandbox.hubspot.update(obj, record_id, body)
                found = [
                    o
                    for o in (sandbox.hubspot.deals() if obj == "deals" else sandbox.hubspot.tasks())
                    if o["id"] == record_id
                ]
            return json_response(200, found[0])
        return _error(404, f"unknown CRM object {crm}/{obj}")

    def _pubsub(self, request: Request, parts: list[str]) -> Response:
        pubsub, method = self._sandbox.pubsub, request.method
        if pubsub is None:
            return _error(404, "the Pub/Sub endpoint is not running")
        sub = parts[0] if parts else ""
        if sub == "" and method == "POST":
            body = request.json()
            if not isinstance(body, Mapping) or "keepalive_seconds" not in body:
                return _error(400, 'expected {"keepalive_seconds": seconds}')
            pubsub.keepalive_seconds = float(body["keepalive_seconds"])
        elif sub == "faults" and method == "POST":
            body = request.json()
            if not isinstance(body, Mapping) or set(body) - {"duplicate", "out_of_order", "drop_after"}:
                return _error(400, 'expected {"duplicate": bool, "out_of_order": bool, "drop_after": events}')
            drop_after = body.get("drop_after")
            pubsub.set_faults(
                duplicate=bool(body.get("duplicate", False)),
                out_of_order=bool(body.get("out_of_order", False)),
                drop_after=None if drop_after is None else int(drop_after),
            )
        elif sub == "faults" and method == "DELETE":
            pubsub.clear_faults()
        elif sub == "expire" and method == "POST":
            return json_response(200, {"expired": pubsub.expire_events()})
        elif sub != "" or method != "GET":
            return _error(404, f"no control endpoint {method} {request.path}")
        faults = pubsub.faults()
        log = pubsub.log
        return json_response(
            200,
            {
                "endpoint": pubsub.endpoint,
                "keepalive_seconds": pubsub.keepalive_seconds,
                "active_streams": pubsub.active_streams,
                "counters": pubsub.counters.snapshot(),
                "faults": {
                    "duplicate": faults.duplicate,
                    "out_of_order": faults.out_of_order,
                    "drop_after": faults.drop_after,
                },
                "retained_events": len(log.events()),
                "latest_replay_id": log.last.to_bytes(8, "big").hex(),
            },
        )

    def _snapshot(self) -> dict[str, object]:
        sandbox = self._sandbox
        salesforce = {
            name: [
                {key: to_json(value) for key, value in rec.items()}
                for rec in sandbox.salesforce.records(name)
            ]
            for name in sandbox.salesforce.schemas
        }
        hubspot = {
            "deals": sandbox.hubspot.deals(),
            "tasks": sandbox.hubspot.tasks(),
            "owners": sandbox.hubspot.owners,
        }
        return {"now": _iso(sandbox.clock.now()), "salesforce": salesforce, "hubspot": hubspot}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
