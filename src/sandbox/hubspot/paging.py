"""``paging.next`` for HubSpot's GET list endpoints.

Real HubSpot answers a list call with ``{"after": ..., "link": <full URL>}``, the link being the request's
own URL (every query parameter kept: ``limit``, ``properties``, ``associations``, ``archived`` …) with
``after`` set to the next cursor. Clients such as dlt's verified source follow the link as is, so a relative
link, or one that drops ``properties``, silently changes what the next page holds."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from sandbox.http import Request


def next_link(request: Request, after: str) -> str:
    """The request's URL (scheme and host as the client addressed the sandbox) with ``after`` set."""
    pairs = [(k, v) for k, v in parse_qsl(request.query_string, keep_blank_values=True) if k != "after"]
    pairs.append(("after", after))
    host = request.header("host") or "127.0.0.1"
    return f"http://{host}{request.path}?{urlencode(pairs)}"


def next_paging(request: Request, after: str) -> dict[str, object]:
    return {"next": {"after": after, "link": next_link(request, after)}}
