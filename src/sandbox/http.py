"""Plain request/response values passed between the socket layer and the CRM handlers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal
from urllib.parse import parse_qs

Action = Literal["send", "hang", "drop"]


class BodyError(ValueError):
    """The request body is not the JSON (or form) the endpoint needs."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query_string: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.query_string, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """The first value of a query parameter, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        """Every value of a repeated or comma-separated query parameter, blanks dropped."""
        out: list[str] = []
        for value in self.query.get(name, []):
            out.extend(part.strip() for part in value.split(",") if part.strip())
        return out

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> object:
        """The body parsed as JSON; an empty body is None."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise BodyError(f"request body is not valid JSON: {exc}") from exc

    def form(self) -> dict[str, str]:
        """The body parsed as application/x-www-form-urlencoded (first value of each key)."""
        try:
            parsed = parse_qs(self.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError as exc:
            raise BodyError("form body is not UTF-8") from exc
        return {key: values[0] for key, values in parsed.items()}

    def log_query(self) -> dict[str, str]:
        """Query parameters for the request log: repeated values joined by commas."""
        return {key: ",".join(values) for key, values in self.query.items()}


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    action: Action = "send"
    payload: object = None
    """The JSON value the body was made from, kept for the request log and tests."""

    def with_headers(self, *extra: tuple[str, str]) -> Response:
        return replace(self, headers=self.headers + tuple(extra))

    def header(self, name: str) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return None


def json_response(status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(
        status=status,
        body=body,
        headers=(("Content-Type", "application/json;charset=UTF-8"), *headers),
        payload=payload,
    )


def empty_response(status: int = 204, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    return Response(status=status, headers=headers)
