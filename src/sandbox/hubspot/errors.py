"""HubSpot error bodies: ``{"status": "error", "message", "correlationId", "category", ...}`` for a failed
call, and StandardError objects (with ``context``, ``links`` and ``errors``) inside 207 batch results."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from sandbox.http import Response, json_response

CATEGORY_STATUS = {
    "VALIDATION_ERROR": 400,
    "INVALID_AUTHENTICATION": 401,
    "EXPIRED_AUTHENTICATION": 401,
    "MISSING_SCOPES": 403,
    "OBJECT_NOT_FOUND": 404,
    "CONFLICT": 409,
    "OBJECT_ALREADY_EXISTS": 409,
    "RATE_LIMITS": 429,
    "INTERNAL_ERROR": 500,
    "SERVICE_UNAVAILABLE": 503,
}
_STATUS_CATEGORY = {status: category for category, status in reversed(list(CATEGORY_STATUS.items()))}


def status_category(status: int) -> str:
    return _STATUS_CATEGORY.get(status, "INTERNAL_ERROR" if status >= 500 else "VALIDATION_ERROR")


class HsError(Exception):
    """A HubSpot error that fails a call (or one row of a batch)."""

    def __init__(
        self,
        category: str,
        message: str,
        status: int | None = None,
        context: Mapping[str, Sequence[str]] | None = None,
        sub_category: str | None = None,
    ) -> None:
        super().__init__(f"{category}: {message}")
        self.category = category
        self.message = message
        self.status = status or CATEGORY_STATUS.get(category, 400)
        self.context = {key: list(values) for key, values in (context or {}).items()}
        self.sub_category = sub_category

    def response(self, headers: tuple[tuple[str, str], ...] = ()) -> Response:
        body: dict[str, object] = {
            "status": "error",
            "message": self.message,
            "correlationId": str(uuid.uuid4()),
            "category": self.category,
        }
        if self.sub_category:
            body["subCategory"] = self.sub_category
        if self.context:
            body["context"] = self.context
        return json_response(self.status, body, headers)

    def standard_error(self) -> dict[str, object]:
        out: dict[str, object] = {
            "status": "error",
            "category": self.category,
            "message": self.message,
            "context": self.context,
            "links": {},
            "errors": [],
        }
        if self.sub_category:
            out["subCategory"] = self.sub_category
        return out


def not_found(object_id: str) -> HsError:
    return HsError(
        "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric.", context={"id": [object_id]}
    )


def rate_limited(
    policy: str, message: str, retry_after: int | str, headers: tuple[tuple[str, str], ...]
) -> Response:
    """HubSpot's 429. `retry_after` is sent as given: seconds, or an HTTP-date a fault rule chose."""
    body = {
        "status": "error",
        "message": message,
        "errorType": "RATE_LIMIT",
        "correlationId": str(uuid.uuid4()),
        "policyName": policy,
    }
    return json_response(429, body, (("Retry-After", str(retry_after)), *headers))
