"""Salesforce error envelopes: a JSON array of ``{"errorCode", "message", "fields"}`` (REST API Developer
Guide, "Status Codes and Error Responses"); SaveResult errors use ``statusCode`` instead of ``errorCode``."""

from __future__ import annotations

from collections.abc import Sequence

from sandbox.http import Response, json_response

# The HTTP status each error code comes with when it fails a whole request.
REQUEST_STATUS = {
    "INVALID_SESSION_ID": 401,
    "REQUEST_LIMIT_EXCEEDED": 403,
    "API_DISABLED_FOR_ORG": 403,
    "INSUFFICIENT_ACCESS": 403,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "SERVER_UNAVAILABLE": 503,
    "UNKNOWN_EXCEPTION": 500,
}
# Codes that fail a whole request even inside a collection call; every other code fails rows.
REQUEST_LEVEL = frozenset(
    {
        *REQUEST_STATUS,
        "MALFORMED_QUERY",
        "INVALID_FIELD",
        "INVALID_TYPE",
        "INVALID_QUERY_LOCATOR",
        "QUERY_TIMEOUT",
        "JSON_PARSER_ERROR",
        "EXCEEDED_ID_LIMIT",
    }
)
DEFAULT_MESSAGES = {
    "INVALID_SESSION_ID": "Session expired or invalid",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record or 1 records",
    "SERVER_UNAVAILABLE": "Server temporarily unavailable. Please try again later.",
    "NOT_FOUND": "The requested resource does not exist",
    "FIELD_CUSTOM_VALIDATION_EXCEPTION": "A validation rule blocked this change.",
}


class SfError(Exception):
    """A Salesforce error; ``status`` is the HTTP status when it fails the whole request."""

    def __init__(
        self, code: str, message: str | None = None, fields: Sequence[str] = (), status: int = 0
    ) -> None:
        text = message or DEFAULT_MESSAGES.get(code, code.replace("_", " ").lower())
        super().__init__(f"{code}: {text}")
        self.code = code
        self.message = text
        self.fields = list(fields)
        self.status = status or REQUEST_STATUS.get(code, 400)

    def response(self) -> Response:
        return error_response(self.status, self.code, self.message, self.fields)

    def save_error(self) -> dict[str, object]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def error_response(status: int, code: str, message: str, fields: Sequence[str] = ()) -> Response:
    return json_response(status, [{"message": message, "errorCode": code, "fields": list(fields)}])


def not_found() -> Response:
    return error_response(404, "NOT_FOUND", DEFAULT_MESSAGES["NOT_FOUND"])
