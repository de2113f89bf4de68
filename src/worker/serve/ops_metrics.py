"""GET /metrics: the state store rendered in the Prometheus text exposition format 0.0.4, by hand.

Format: https://prometheus.io/docs/instrumenting/exposition_formats/ — `# HELP` and `# TYPE` once per
metric family, then `name{label="value",...} number` lines; label values escape `\\`, `"` and newline.
Everything is read from the store at scrape time, so several `serve` processes on one store agree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from worker.service import Worker

RUN_WINDOW = 1000
"""Runs by status are counted over each connection's latest RUN_WINDOW runs (the store keeps them all)."""


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{escape_label(value)}"' for key, value in labels.items()) + "}"


class Exposition:
    """Collects metric families and renders them; a family with no samples still gets its HELP/TYPE."""

    def __init__(self) -> None:
        self._lines: list[str] = []

    def family(
        self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
    ) -> None:
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            number = int(value) if float(value).is_integer() else value
            self._lines.append(f"{name}{_labels(labels)} {number}")

    def render(self) -> str:
        return "\n".join(self._lines) + "\n"


def render_metrics(worker: Worker) -> str:
    """The metrics text for every configured connection."""
    store, now = worker.store, worker.clock()
    runs: list[tuple[Mapping[str, str], float]] = []
    deals: list[tuple[Mapping[str, str], float]] = []
    finished: list[tuple[Mapping[str, str], float]] = []
    api_calls: list[tuple[Mapping[str, str], float]] = []
    leases: list[tuple[Mapping[str, str], float]] = []
    for name in worker.settings.connections:
        records = store.list_runs(name, RUN_WINDOW)
        for status, count in sorted(Counter(r.status for r in records).items()):
            runs.append(({"connection": name, "status": status}, count))
        for status, count in sorted(store.status_counts(name).items()):
            deals.append(({"connection": name, "status": status}, count))
        last = next((r for r in records if r.finished_at is not None), None)
        if last is not None and last.finished_at is not None:
            finished.append(({"connection": name}, last.finished_at.timestamp()))
            api_calls.append(({"connection": name}, last.api_calls))
        leases.append(({"connection": name}, 1 if store.lease_holder(name, now) else 0))
    out = Exposition()
    out.family(
        "bant_sync_runs",
        "gauge",
        f"Runs by connection and status, over each connection's latest {RUN_WINDOW} runs.",
        runs,
    )
    out.family("bant_sync_deals", "gauge", "Known open deals by connection and qualification status.", deals)
    out.family(
        "bant_sync_last_run_finished_timestamp_seconds",
        "gauge",
        "Unix time the latest finished run of the connection ended.",
        finished,
    )
    out.family(
        "bant_sync_last_run_api_calls", "gauge", "CRM API calls made by the latest finished run.", api_calls
    )
    out.family("bant_sync_lease_held", "gauge", "1 while a run holds the connection's lease, else 0.", leases)
    return out.render()
