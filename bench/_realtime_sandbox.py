"""The sandbox host of bench/realtime.py: a sandbox CRM in its own process that also plays the people.

    python bench/_realtime_sandbox.py --crm hubspot --deals 10000 --config /tmp/x/bench.toml

Starts a sandbox seeding only `--crm` (HubSpot's burst and search limits enforced), writes a bant-sync
config for it, prints the sandbox's info as one JSON line, then answers one JSON command per stdin line with
one JSON line on stdout, until stdin closes or SIGTERM. Edits are made here, through the sandbox's people API
(`Sandbox.people(crm)`: a person's edit in the CRM's UI, which the CRM turns into change events: HubSpot
webhooks with changeSource CRM_UI, Salesforce change events with the UI's change origin), so they never
reach the request log, and the bench's own reading of the CRM never counts as one of bant-sync's calls.

Commands (`{"op": ..., ...}`; every answer has `"ok": true`, or `"error"`):

- `subscribe_webhooks {url}`: point the sandbox's HubSpot app at the ops server's webhook endpoint.
- `candidates`: the open deals bant-sync has written a verdict on (`ids`).
- `edit {deal, timeout}`: a rep flips the deal's Budget (`toggle`); waits here, polling every
  POLL_S, until bant-sync's write-back shows the new verdict; `latency_s` (None: not within `timeout`).
- `burst {deals}`: an admin's bulk import flips Budget on every deal, one save each; `edit_s`, and
  `last_edit_at` (time.monotonic(), comparable across processes on one machine).
- `pending`: how many burst deals do not show their new verdict yet.
- `requests {clear}`: bant-sync's calls to this CRM since the last clear (`calls`, `rate_limited`: 429s,
  `by_kind`); `clear` empties the log afterwards.
- `webhooks`: the HubSpot webhook requests sent so far (`requests`, `retries`, `statuses`).
- `flush`: wait for queued webhook deliveries.

The edit: a deal whose missing criteria name Budget gets a budget that meets it; any other deal has its
Budget blanked. Either way bant-sync's verdict must change: Budget joins or leaves the missing criteria.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from sandbox import People, Sandbox, SandboxOptions
from sandbox.memory import tune_allocator
from sandbox.people import GOOD_BANT

POLL_S = 0.005
"""How often `edit` looks at the deal for bant-sync's write-back (the latency's resolution)."""


def budget_missing(people: People, deal_id: str) -> bool:
    return "budget" in people.missing_of(deal_id)


def toggle(people: People, deal_id: str) -> bool:
    """Flip the deal's Budget as a person would; whether Budget should be missing afterwards."""
    if budget_missing(people, deal_id):
        people.set_deal_fields(deal_id, {"budget": GOOD_BANT["budget"]})
        return False
    people.set_deal_fields(deal_id, {"budget": None})
    return True


class Host:
    def __init__(self, sandbox: Sandbox, crm: str) -> None:
        self.sandbox = sandbox
        self.crm = crm
        self.people = sandbox.people(crm)
        self.expected: dict[str, bool] = {}

    def handle(self, command: Mapping[str, Any]) -> dict[str, Any]:
        op = command.get("op")
        if op == "subscribe_webhooks":
            self.sandbox.subscribe_hubspot_webhooks(str(command["url"]), retry_delays=(0.2, 1.0, 5.0))
            return {}
        if op == "candidates":
            deals = self.people.deals()
            return {"ids": sorted(d for d, info in deals.items() if info["open"] and info["status"])}
        if op == "edit":
            return self.edit(str(command["deal"]), float(command.get("timeout", 60)))
        if op == "burst":
            started = time.monotonic()
            self.expected = {deal: toggle(self.people, deal) for deal in command["deals"]}
            last = time.monotonic()
            return {"edit_s": last - started, "last_edit_at": last}
        if op == "pending":
            return {
                "pending": sum(1 for d, e in self.expected.items() if budget_missing(self.people, d) != e)
            }
        if op == "requests":
            return self.requests(bool(command.get("clear")))
        if op == "webhooks":
            attempts = self.sandbox.webhooks.attempts()
            return {
                "requests": len(attempts),
                "retries": sum(1 for a in attempts if a.attempt > 0),
                "statuses": dict(Counter(str(a.status) for a in attempts)),
            }
        if op == "flush":
            if self.crm == "hubspot" and self.sandbox.webhooks.subscription is not None:
                self.sandbox.hubspot.flush_webhooks(float(command.get("timeout", 60)))
            return {}
        raise ValueError(f"unknown op {op!r}")

    def edit(self, deal: str, timeout: float) -> dict[str, Any]:
        expect = toggle(self.people, deal)
        started = time.monotonic()
        deadline = started + timeout
        while time.monotonic() < deadline:
            if budget_missing(self.people, deal) == expect:
                return {"latency_s": time.monotonic() - started}
            time.sleep(POLL_S)
        return {"latency_s": None}

    def requests(self, clear: bool) -> dict[str, Any]:
        entries = [e for e in self.sandbox.requests() if e["crm"] == self.crm]
        if clear:
            self.sandbox.reset_requests()
        kinds = Counter(_kind(e) for e in entries)
        return {
            "calls": len(entries),
            "rate_limited": sum(1 for e in entries if e["status"] == 429),
            "by_kind": dict(kinds),
        }


def _kind(entry: Mapping[str, object]) -> str:
    """A short name for a logged call: method and path without ids (and SOQL's object)."""
    path = str(entry["path"])
    parts = [p if not any(c.isdigit() for c in p) else "{id}" for p in path.split("/") if p]
    if path.endswith("/query") or path.endswith("/query/"):
        query = entry.get("query")
        soql = str(query.get("q", "")) if isinstance(query, Mapping) else ""
        words = soql.split()
        target = words[words.index("FROM") + 1] if "FROM" in words else "?"
        return f"GET query {target}"
    return f"{entry['method']} /{'/'.join(parts[-4:])}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crm", choices=("salesforce", "hubspot"), required=True)
    parser.add_argument("--deals", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    args = parser.parse_args()

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench (its parent) handles Ctrl-C and stops us
    tune_allocator()
    sandbox = Sandbox.start(SandboxOptions(deals=args.deals, crms=(args.crm,)))
    try:
        sandbox.write_config(args.config)
        print(json.dumps(sandbox.info), flush=True)
        host = Host(sandbox, args.crm)
        for line in sys.stdin:
            try:
                answer = {"ok": True, **host.handle(json.loads(line))}
            except Exception as exc:  # the bench shows it
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            print(json.dumps(answer), flush=True)
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
