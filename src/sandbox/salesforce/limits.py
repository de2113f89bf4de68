"""The org's daily API allocation, reported on every response as ``Sforce-Limit-Info: api-usage=USED/MAX``
and by the ``limits`` resource; past MAX calls fail with 403 REQUEST_LIMIT_EXCEEDED (REST API Developer Guide,
"Limits" and "Sforce-Limit-Info Response Header")."""

from __future__ import annotations

import threading


class ApiUsage:
    def __init__(self, maximum: int) -> None:
        self._lock = threading.Lock()
        self.maximum = maximum
        self.used = 0

    def charge(self) -> bool:
        """Count one call; False when the allocation is spent (the call is refused and not counted)."""
        with self._lock:
            if self.used >= self.maximum:
                return False
            self.used += 1
            return True

    def header(self) -> tuple[str, str]:
        with self._lock:
            return ("Sforce-Limit-Info", f"api-usage={self.used}/{self.maximum}")

    def reset(self) -> None:
        with self._lock:
            self.used = 0

    def limits(self) -> dict[str, object]:
        with self._lock:
            remaining = max(0, self.maximum - self.used)
        return {
            "DailyApiRequests": {"Max": self.maximum, "Remaining": remaining},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 5120, "Remaining": 5000},
        }
