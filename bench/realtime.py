"""Near-real-time: from a person's edit in the CRM to bant-sync's write-back on that deal, through the real
`bant-sync serve` (its scheduled runs pushed far into the future, so only events re-assess deals).

    .venv/bin/python bench/realtime.py [--crm hubspot|salesforce] [--edits 50] [--burst 10000]
                                       [--deals N] [--json]

Per CRM, three processes: the sandbox (bench/_realtime_sandbox.py: the CRM, seeded with `--deals` open
deals, HubSpot's rate limits enforced, and the people editing it), `bant-sync serve` (the ops server, the
event source and the coalescer, as deployed), and this script, which only orchestrates and times.

1. Setup: `serve` starts, and its catch-up run (the connection's first) writes a verdict on every deal
   before anything is measured; the CRM's events are pointed at it (HubSpot: the sandbox app's signed
   webhooks to `POST /webhooks/hubspot/hubspot`; Salesforce: `serve` subscribes to OpportunityChangeEvent
   over the sandbox's Pub/Sub API), and the events already on their way (Salesforce: the echoes of the
   catch-up's own writes) are taken in.
2. Single edits (`--edits`): one at a time, a rep flips a deal's Budget (filled in where it was missing,
   blanked where it was not), and the time until the deal shows bant-sync's new verdict (Budget joins or
   leaves its missing criteria) is taken, in the sandbox's process, polling every 5 ms; the next edit waits
   for the event run to end. p50, p95, p99.
3. Burst (`--burst`): an admin's bulk import flips Budget on that many deals, one save each. Measured:
   bant-sync's calls to the CRM (the sandbox's request log, which the people's edits never reach) against
   the batch budget of the EVENTS runs that re-assessed them (below), the 429s the sandbox answered, and
   the drain: from the last edit to the moment no deal is marked dirty and every edited deal shows its new
   verdict.

Budget per EVENTS run, from its counts (D deals re-read, K task keys looked up, M status writes, C tasks
created, U tasks updated: completed, reopened or changed) and the connectors' batch size B (HubSpot 100,
Salesforce 200): ceil(D/B) batch reads (HubSpot batch/read, Salesforce `Id IN` query) + ceil(K/B) task
lookups + ceil(M/B) deal updates + ceil(C/B) task creates (Salesforce: upserts by the sync key) + ceil(U/B)
task updates, plus each run's preflight reads (HubSpot 4, Salesforce 3); a run with nothing to re-read
should make no call at all, so its budget is 0. The burst's budget is the sum over its runs.

`--json` prints one object: {"<crm>": {"p50_s", "p95_s", "p99_s", "burst": {"edits", "calls", "budget",
"rate_limited", "drain_s"}}}. Progress goes to stderr. A CRM whose event source is missing or never
delivers prints "<crm>: change stream not available" and makes the exit status 1: no figures are made up.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import PACED_ENV, PREFLIGHT_CALLS

HERE = Path(__file__).resolve().parent
CRMS = ("salesforce", "hubspot")
TOKEN = "bench-realtime-ops-token-0123456789abcdef"
DEBOUNCE_S = 2.0
MAX_DELAY_S = 10.0
"""The event windows measured by default: bant-sync's defaults (event_debounce_seconds,
event_max_delay_seconds)."""
BATCH = {"salesforce": 200, "hubspot": 100}
"""Records per batch call: deals re-read by an EVENTS run (Salesforce `Id IN` query, HubSpot batch/read),
task keys looked up, records written (Salesforce composite collections, HubSpot batch create/update)."""
HUBSPOT_WINDOW_S = 10.5
"""Before the single edits and before the burst, HubSpot's 10-second window is left to empty (`--settle`), so
neither starts behind the calls of what came before it."""
FAR_CRON = "0 0 29 2 *"
"""No scheduled full sweep while the bench runs (next 29 February)."""
FAR_MINUTES = 1_000_000
UNAVAILABLE = "change stream not available"
EVENT_COUNTERS = ("received", "duplicates", "echoes")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Unavailable(Exception):
    """The CRM's event source is missing, or delivered nothing: no figures for this CRM."""


class BenchError(Exception):
    """Something in the setup failed (a run, the server, the sandbox): the message says what."""


@dataclass(frozen=True)
class Options:
    deals: int
    edits: int
    burst: int
    timeout: float = 60.0
    """Seconds to wait for one single edit's write-back."""
    debounce: float = DEBOUNCE_S
    max_delay: float = MAX_DELAY_S
    settle: float = HUBSPOT_WINDOW_S


# ----- the event sources ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventSource:
    """How one CRM's change events reach `serve`: the connection's settings and secrets that turn them on,
    and what the sandbox must be told once `serve` listens."""

    crm: str
    settings: Callable[[Mapping[str, Any]], dict[str, object]]
    secrets: Callable[[Mapping[str, Any]], dict[str, str]]
    missing: Callable[[Mapping[str, Any]], str | None]
    """Why the source cannot work with this sandbox (None: it can)."""
    connect: Callable[[SandboxHost, str], None]
    """(sandbox, ops URL): point the CRM's events at `serve`."""


def _hubspot_connect(host: SandboxHost, ops_url: str) -> None:
    host.call("subscribe_webhooks", url=f"{ops_url}/webhooks/hubspot/hubspot")


def _salesforce_missing(info: Mapping[str, Any]) -> str | None:
    if not info["salesforce"].get("pubsub_endpoint"):
        return "the sandbox serves no Pub/Sub API (no pubsub_endpoint in its info)"
    try:
        from connectors.salesforce.settings import SalesforceSettings
    except ImportError:
        return "no Salesforce settings"
    if "change_events" not in SalesforceSettings.__dataclass_fields__:
        return "the Salesforce connection has no change_events setting"
    return None


SOURCES = {
    "hubspot": EventSource(
        "hubspot",
        settings=lambda info: {"webhooks": True, "app_id": str(info["hubspot"]["app_id"])},
        secrets=lambda info: {"client_secret": str(info["hubspot"]["client_secret"])},
        missing=lambda info: None,
        connect=_hubspot_connect,
    ),
    "salesforce": EventSource(
        "salesforce",
        settings=lambda info: {"change_events": True},
        secrets=lambda info: {},
        missing=_salesforce_missing,
        connect=lambda host, url: None,  # serve subscribes to the change stream itself
    ),
}


# ----- processes --------------------------------------------------------------------------------------------
class SandboxHost:
    """bench/_realtime_sandbox.py in its own process: one JSON command a line, one JSON answer a line."""

    def __init__(self, process: subprocess.Popen[str], info: dict[str, Any]) -> None:
        self.process = process
        self.info = info

    def call(self, op: str, **args: object) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the sandbox process ended (exit {self.process.poll()}) during {op}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise BenchError(f"sandbox {op}: {answer['error']}")
        return answer


def _stop(process: subprocess.Popen[Any], timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def sandbox_host(crm: str, deals: int, config: Path) -> Iterator[SandboxHost]:
    command = [sys.executable, str(HERE / "_realtime_sandbox.py"), "--crm", crm, "--deals", str(deals)]
    process = subprocess.Popen(
        [*command, "--config", str(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        started = process.stdout.readline()
        if not started:
            raise BenchError("the sandbox did not start")
        yield SandboxHost(process, json.loads(started))
    finally:
        if process.stdin is not None:
            process.stdin.close()  # its command loop ends and it stops the sandbox
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            _stop(process)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def bant_sync(*args: str) -> list[str]:
    return [sys.executable, "-m", "worker.cli", *args]


@dataclass
class Ops:
    """The ops API of the `serve` under test."""

    url: str
    crm: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.headers["Authorization"] = f"Bearer {TOKEN}"

    def runs(self, limit: int = 50) -> list[dict[str, Any]]:
        answer = self.session.get(
            f"{self.url}/runs", params={"connection": self.crm, "limit": str(limit)}, timeout=30
        )
        answer.raise_for_status()
        runs: list[dict[str, Any]] = answer.json()["runs"]
        return runs

    def events(self) -> dict[str, int]:
        """The connection's event counters (EVENT_COUNTERS) and its dirty deals (`dirty`), from /metrics."""
        answer = self.session.get(f"{self.url}/metrics", timeout=30)
        answer.raise_for_status()
        names = {f"bant_sync_events_{key}_total": key for key in EVENT_COUNTERS}
        names["bant_sync_events_dirty_deals"] = "dirty"
        found = dict.fromkeys(names.values(), 0)
        label = f'{{connection="{self.crm}"}} '
        for line in answer.text.splitlines():
            name, _, rest = line.partition(label)
            if rest and name in names:
                found[names[name]] = int(float(rest))
        return found

    def dirty(self) -> int:
        return self.events()["dirty"]

    def idle(self) -> bool:
        """No run going and nothing waiting for one."""
        return all(r["finished_at"] for r in self.runs(5)) and self.dirty() == 0


@contextmanager
def serve_process(config: Path, crm: str, env: Mapping[str, str], log_path: Path) -> Iterator[Ops]:
    port = free_port()
    with log_path.open("w", encoding="utf-8") as stderr:
        process = subprocess.Popen(
            bant_sync("--config", str(config), "--log-level", "warning", "serve", "--port", str(port)),
            env={**env, "BANT_SYNC_OPS_TOKEN": TOKEN},
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise BenchError(f"serve exited {process.returncode}: {_tail(log_path)}")
                try:
                    if requests.get(f"{url}/health", timeout=5).status_code < 600:
                        break
                except requests.ConnectionError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"serve did not listen within 60 s: {_tail(log_path)}")
                time.sleep(0.1)
            yield Ops(url, crm)
        finally:
            _stop(process)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# ----- configuration ----------------------------------------------------------------------------------------
def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def configure(config: Path, crm: str, source: EventSource, info: Mapping[str, Any], options: Options) -> None:
    """The sandbox's config, with the other CRM's connection off, the schedule pushed out of the bench's
    way, the default event windows and the event source on; its secrets in the secrets file."""
    settings: dict[str, object] = {
        "incremental_every_minutes": FAR_MINUTES,
        "full_sweep_cron": FAR_CRON,
        "event_debounce_seconds": options.debounce,
        "event_max_delay_seconds": options.max_delay,
        **source.settings(info),
    }
    other = next(c for c in CRMS if c != crm)
    text = config.read_text(encoding="utf-8")
    lines = "".join(f"{key} = {_toml(value)}\n" for key, value in settings.items())
    text = text.replace(f'crm = "{crm}"\n', f'crm = "{crm}"\n{lines}', 1)
    text = text.replace(f'crm = "{other}"\n', f'crm = "{other}"\nenabled = false\n', 1)
    config.write_text(text, encoding="utf-8")
    secrets = source.secrets(info)
    if secrets:
        path = config.with_name(f"{config.stem}.secrets.toml")
        table = f"[connections.{crm}]\n"
        extra = "".join(f"{key} = {_toml(value)}\n" for key, value in secrets.items())
        path.write_text(path.read_text(encoding="utf-8").replace(table, table + extra, 1), encoding="utf-8")


# ----- measuring --------------------------------------------------------------------------------------------
@dataclass
class Burst:
    edits: int
    calls: int
    budget: int
    rate_limited: int
    drain_s: float
    runs: list[dict[str, Any]]
    by_kind: dict[str, int]
    edit_s: float
    events: dict[str, int] = field(default_factory=dict)
    """serve's event counters over the burst (received, duplicates, echoes)."""
    recorded_s: float = 0.0
    """From the last edit until serve had recorded an event for every edit (its counters, polled)."""
    deliveries: dict[str, Any] = field(default_factory=dict)
    """The sandbox's webhook requests over the burst (HubSpot): requests, retries, statuses."""

    def as_json(self) -> dict[str, object]:
        return {
            "edits": self.edits,
            "calls": self.calls,
            "budget": self.budget,
            "rate_limited": self.rate_limited,
            "drain_s": round(self.drain_s, 3),
        }


@dataclass
class Figures:
    crm: str
    latencies: list[float]
    burst: Burst | None
    options: Options
    setup_s: float = 0.0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile of the single-edit latencies."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {
            "p50_s": round(self.percentile(50), 3),
            "p95_s": round(self.percentile(95), 3),
            "p99_s": round(self.percentile(99), 3),
        }
        if self.burst is not None:
            body["burst"] = self.burst.as_json()
        return body


def run_budget(crm: str, run: Mapping[str, Any]) -> int:
    """The batch budget of one EVENTS run, from its counts (see FORMULA)."""
    deals: Mapping[str, int] = run["deals"]
    tasks: Mapping[str, int] = run["tasks"]
    d, m, k = deals.get("read", 0), deals.get("written", 0), tasks.get("checked", 0)
    created = tasks.get("created", 0)
    changed = sum(tasks.get(key, 0) for key in ("updated", "reopened", "completed"))
    size = BATCH[crm]
    if not (d or m or k or created or changed):
        return 0  # a run with nothing to re-read needs no call at all, not even its preflight reads
    writes = math.ceil(m / size) + math.ceil(created / size) + math.ceil(changed / size)
    return math.ceil(d / size) + math.ceil(k / size) + writes + PREFLIGHT_CALLS[crm]


def _wait(what: str, done: Callable[[], bool], timeout: float, every: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise BenchError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


def quiet(crm: str, ops: Ops, timeout: float = 300) -> None:
    """Wait until serve has taken in the events already on their way (Salesforce: the catch-up run's own
    10,000 status writes come back as change events, echoes, ahead of any rep's edit), so the single edits
    are timed in the steady state: the counters stand still for a second."""
    deadline = time.monotonic() + timeout
    last = ops.events()["received"]
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = ops.events()["received"]
        if now == last:
            return
        log(f"{crm}: serve is taking in earlier events ({now:,} so far) ...")
        last = now
    raise BenchError(f"serve's event counters still moving after {timeout:.0f} s")


def single_edits(crm: str, host: SandboxHost, ops: Ops, deals: list[str], timeout: float) -> list[float]:
    latencies: list[float] = []
    for i, deal in enumerate(deals):
        latency = host.call("edit", deal=deal, timeout=timeout)["latency_s"]
        if latency is None:
            if not latencies:
                raise Unavailable(f"the first edit was not written back within {timeout:.0f} s")
            raise BenchError(f"edit {i + 1} (deal {deal}) was not written back within {timeout:.0f} s")
        latencies.append(float(latency))
        _wait("the event run to end", ops.idle, 120, 0.05)
        if (i + 1) % 10 == 0 or i + 1 == len(deals):
            log(f"{crm}: {i + 1}/{len(deals)} single edits, last {latency:.2f} s")
    events = [r for r in ops.runs(len(deals) + 10) if r["mode"] == "events"]
    if not events:
        raise Unavailable("deals were written back, but by no EVENTS run")
    return latencies


def burst(crm: str, host: SandboxHost, ops: Ops, deals: list[str], timeout: float, settle: float) -> Burst:
    if crm == "hubspot":
        time.sleep(settle)
    before = {r["run_id"] for r in ops.runs(200)}
    host.call("requests", clear=True)
    events_before = ops.events()
    hooks_before = host.call("webhooks") if crm == "hubspot" else {}
    log(f"{crm}: burst of {len(deals):,} edits ...")
    edited = host.call("burst", deals=deals)
    last_edit = float(edited["last_edit_at"])
    log(f"{crm}: {len(deals):,} edits made in {edited['edit_s']:.1f} s; draining ...")
    deadline = time.monotonic() + timeout
    shown = time.monotonic()
    recorded: float | None = None
    while True:
        pending = int(host.call("pending")["pending"])
        counts = ops.events()
        dirty = counts["dirty"]
        now = time.monotonic()
        delta = {key: counts[key] - events_before[key] for key in EVENT_COUNTERS}
        if recorded is None and delta["received"] - delta["duplicates"] - delta["echoes"] >= len(deals):
            recorded = now  # every edit's event is in (an echo is bant-sync's own write coming back)
        if pending == 0 and dirty == 0:
            host.call("flush")  # every event delivered: none can mark a deal after this
            if ops.dirty() == 0:
                drained = now
                break
        if now > deadline:
            raise BenchError(f"not drained within {timeout:.0f} s: {pending} deals pending, {dirty} dirty")
        if now - shown > 5:
            log(f"{crm}: {pending:,} edited deals without their new verdict, {dirty:,} dirty")
            shown = now
        time.sleep(0.1)
    _wait("the last event run to end", ops.idle, 120)
    logged = host.call("requests")
    events_after = ops.events()
    hooks_after = host.call("webhooks") if crm == "hubspot" else {}
    deliveries: dict[str, Any] = {}
    if hooks_after:
        deliveries = {key: hooks_after[key] - hooks_before[key] for key in ("requests", "retries")}
        deliveries["statuses"] = hooks_after["statuses"]
    runs = [r for r in ops.runs(200) if r["run_id"] not in before]
    if any(r["mode"] != "events" for r in runs):
        raise BenchError(f"a run other than an EVENTS run ran during the burst: {[r['mode'] for r in runs]}")
    return Burst(
        edits=len(deals),
        calls=int(logged["calls"]),
        budget=sum(run_budget(crm, r) for r in runs),
        rate_limited=int(logged["rate_limited"]),
        drain_s=drained - last_edit,
        runs=runs,
        by_kind=dict(logged["by_kind"]),
        edit_s=float(edited["edit_s"]),
        events={key: events_after[key] - events_before[key] for key in EVENT_COUNTERS},
        recorded_s=(recorded or drained) - last_edit,
        deliveries=deliveries,
    )


def measure(crm: str, options: Options) -> Figures:
    """Setup, single edits and the burst on one CRM (see the module docstring)."""
    source = SOURCES[crm]
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bant-sync-realtime-") as tmp:
        config = Path(tmp) / "bench.toml"
        log(f"{crm}: seeding {options.deals:,} open deals ...")
        with sandbox_host(crm, options.deals, config) as host:
            why = source.missing(host.info)
            if why is not None:
                raise Unavailable(why)
            configure(config, crm, source, host.info, options)
            serve_log = Path(tmp) / "serve.log"
            with serve_process(config, crm, dict(PACED_ENV), serve_log) as ops:
                # serve's catch-up run is the connection's first: it writes a verdict on every deal (and
                # learns the HubSpot portal, without which the webhook endpoint answers 503)
                log(f"{crm}: serve is up; its catch-up run writes the first verdicts ...")
                _wait("serve's catch-up run", lambda: bool(ops.runs(5)) and ops.idle(), 900, 0.5)
                first = ops.runs(5)[0]
                if first["status"] != "succeeded":
                    raise BenchError(f"serve's catch-up run {first['status']}: {first['error']}")
                source.connect(host, ops.url)
                if crm == "hubspot":
                    time.sleep(options.settle)
                quiet(crm, ops)
                candidates: list[str] = host.call("candidates")["ids"]
                if len(candidates) < max(options.edits, options.burst):
                    raise BenchError(f"only {len(candidates)} open deals with a verdict")
                setup = time.monotonic() - started
                log(f"{crm}: {options.edits} single edits ...")
                try:
                    latencies = single_edits(crm, host, ops, candidates[: options.edits], options.timeout)
                except Unavailable as exc:
                    raise Unavailable(f"{exc}; serve's log:\n{_tail(serve_log)}") from None
                result = None
                if options.burst:
                    deals = candidates[: options.burst]
                    result = burst(crm, host, ops, deals, max(options.timeout, 900), options.settle)
                return Figures(crm, latencies, result, options, setup)


# ----- output -----------------------------------------------------------------------------------------------
FORMULA = (
    "budget per EVENTS run, with B the batch size (HubSpot 100, Salesforce 200), D deals re-read, K task "
    "keys looked up, M status writes, C tasks created, U tasks updated (completed, reopened, changed): "
    "ceil(D/B) batch reads (HubSpot batch/read, Salesforce Id IN query) + ceil(K/B) task lookups + "
    "ceil(M/B) deal updates + ceil(C/B) task creates (Salesforce: upserts) + ceil(U/B) task updates + the "
    "preflight reads (HubSpot 4, Salesforce 3), none for a run with nothing to re-read; the burst's budget "
    "is the sum over its runs"
)


def print_table(figures: Figures, out: TextIO = sys.stdout) -> None:
    """The readable figures (with `--json`, on stderr beside the progress)."""

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    f = figures
    say(f"\n{f.crm}: {len(f.latencies)} single edits, edit to write-back through serve")
    say(
        f"  p50 {f.percentile(50):.2f} s   p95 {f.percentile(95):.2f} s   p99 {f.percentile(99):.2f} s   "
        f"min {min(f.latencies):.2f} s   max {max(f.latencies):.2f} s"
    )
    say(
        f"  (event_debounce_seconds {f.options.debounce:g}, event_max_delay_seconds {f.options.max_delay:g}; "
        "goal: p95 < 5 s)"
    )
    b = f.burst
    if b is None:
        return
    say(f"{f.crm}: burst of {b.edits:,} edits (made in {b.edit_s:.1f} s)")
    say(
        f"  calls {b.calls:,}   budget {b.budget:,} ({b.calls / b.budget:.2f}x)   429s {b.rate_limited}   "
        f"drain {b.drain_s:.1f} s after the last edit   EVENTS runs {len(b.runs)}"
    )
    for run in sorted(b.runs, key=lambda r: str(r["started_at"])):
        deals, tasks = run["deals"], run["tasks"]
        changed = sum(tasks.get(k, 0) for k in ("updated", "reopened", "completed"))
        say(
            f"    run {run['run_id']}: D {deals.get('read', 0):,}, M {deals.get('written', 0):,}, "
            f"K {tasks.get('checked', 0):,}, C {tasks.get('created', 0):,}, U {changed:,}: "
            f"{run['api_calls']:,} calls (budget {run_budget(f.crm, run):,})"
        )
    say(
        "    events: "
        + ", ".join(f"{k} {v:,}" for k, v in b.events.items() if k != "dirty")
        + f"; every edit's event recorded {b.recorded_s:.1f} s after the last edit"
    )
    if b.deliveries:
        d = b.deliveries
        say(
            f"    webhook requests {d['requests']:,}, retries {d['retries']:,} "
            f"(answers so far: {d['statuses']})"
        )
    say("    calls by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(b.by_kind.items())))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--crm", choices=CRMS, action="append", help="default: both")
    parser.add_argument("--edits", type=int, default=50, help="single edits, one at a time (default 50)")
    parser.add_argument("--burst", type=int, default=10_000, help="edits in the bulk import (default 10000)")
    parser.add_argument(
        "--deals", type=int, help="open deals in the sandbox (default: 10000, or more for --burst/--edits)"
    )
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for one write-back")
    parser.add_argument(
        "--debounce", type=float, default=DEBOUNCE_S, help="event_debounce_seconds (default: bant-sync's, 2)"
    )
    parser.add_argument(
        "--max-delay",
        type=float,
        default=MAX_DELAY_S,
        help="event_max_delay_seconds (default: bant-sync's, 10)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=HUBSPOT_WINDOW_S,
        help="seconds for HubSpot's 10-second window to empty before the edits and the burst (default 10.5)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.edits < 1 or args.burst < 0:
        parser.error("--edits must be at least 1 and --burst at least 0")
    deals = args.deals or max(10_000, args.burst, args.edits)
    if deals < max(args.burst, args.edits):
        parser.error("--deals must be at least --burst and --edits")
    options = Options(
        deals,
        args.edits,
        args.burst,
        args.timeout,
        args.debounce,
        max(args.max_delay, args.debounce),
        args.settle,
    )
    crms = tuple(dict.fromkeys(args.crm)) if args.crm else ("hubspot", "salesforce")
    results: dict[str, object] = {}
    failed = False
    for crm in crms:
        try:
            figures = measure(crm, options)
        except Unavailable as exc:
            failed = True
            print(f"{crm}: {UNAVAILABLE}", file=sys.stderr if args.json else sys.stdout, flush=True)
            log(f"{crm}: {exc}")
            continue
        except BenchError as exc:
            failed = True
            log(f"{crm}: failed: {exc}")
            continue
        results[crm] = figures.as_json()
        print_table(figures, sys.stderr if args.json else sys.stdout)
    print(f"\n{FORMULA}", file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print(json.dumps(results))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
