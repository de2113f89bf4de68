"""What hubspot-api-client hands back for `_preload_content=False`: the urllib3 response, unread."""

from __future__ import annotations

import json
from typing import Any


class RawResponse:
    """A stand-in for an unread urllib3 response holding a JSON body; records whether it was released."""

    def __init__(self, payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
        self.data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.status = status
        self.headers = headers or {}
        self.released = False

    def release_conn(self) -> None:
        self.released = True
