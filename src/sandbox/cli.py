"""``bant-sync sandbox``: run the sandbox CRM until interrupted; print one JSON line on how to reach it (one
an account with ``--accounts N``)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.faults import FaultConfigError, load_fault_file
from sandbox.fleet import SandboxFleet
from sandbox.memory import tune_allocator
from sandbox.options import CRMS, SandboxOptions
from sandbox.sandbox import Sandbox
from sandbox.seeds import SEEDS, SeedError

DESCRIPTION = """\
Start a local Salesforce + HubSpot stand-in that the real client libraries talk to: try bant-sync's rules
against a CRM without credentials. Prints one JSON line (instance URL, tokens, CA bundle, control URL), then
serves until Ctrl-C / SIGTERM. Salesforce is HTTPS with a CA generated at start (pass ca_bundle to
requests.Session(verify=...)); HubSpot and the control API (/_sandbox/) are plain HTTP on loopback.

With --accounts N it serves N customers' CRMs in one process: N Salesforce orgs and N HubSpot portals, each
with its own org id / portal id, ports, tokens, rate limits, request log and seeded data (a fleet to test
bant-sync with many connections on one machine). It then prints one JSON line an account (its number, its
connection names, then the same keys as for one sandbox), and --write-config writes one config with the
connections sf-001 ... sf-N and hs-001 ... hs-N, every token in its secrets file, one state directory.
"""
EPILOG = """\
examples:
  bant-sync sandbox --seed track-selling --write-config /tmp/sandbox.toml
  bant-sync sandbox --deals 100000 --no-rate-limits --latency-ms 40
  bant-sync sandbox --deals 100000 --crm hubspot   # only HubSpot holds the deals (half the memory)
  bant-sync sandbox --faults faults.json     # a JSON list (or TOML [[faults]]) of fault rules
  bant-sync sandbox --accounts 20 --deals 1000 --write-config /tmp/fleet.toml   # 20 orgs + 20 portals
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options, on any parser (its own, or `bant-sync sandbox`'s subcommand parser)."""
    parser.add_argument("--port", type=int, default=0, help="Salesforce (HTTPS) port; default: a free port")
    parser.add_argument(
        "--hubspot-port", type=int, default=0, help="HubSpot + control API port; default: free"
    )
    parser.add_argument(
        "--pubsub-port", type=int, default=0, help="Salesforce Pub/Sub API (gRPC) port; default: free"
    )
    parser.add_argument(
        "--pubsub-keepalive",
        type=float,
        default=270.0,
        metavar="SECONDS",
        help="seconds an idle Subscribe stream waits before a keepalive (default 270, as Salesforce)",
    )
    parser.add_argument(
        "--no-change-events",
        action="store_true",
        help="keep no Opportunity change events (benchmarks that never subscribe)",
    )
    parser.add_argument("--seed", default="track-selling", help=f"seed story: {' | '.join(SEEDS)}")
    parser.add_argument(
        "--deals", type=int, default=0, help="generate N open deals instead of the story's deals"
    )
    parser.add_argument(
        "--closed-deals",
        type=int,
        default=0,
        metavar="N",
        help="add N synthetic closed deals with field history (for `bant-sync report` at scale)",
    )
    parser.add_argument(
        "--crm",
        action="append",
        choices=CRMS,
        help="seed only this CRM's deals (repeatable; default: both); the other answers with no deals",
    )
    parser.add_argument("--seed-value", type=int, default=7, help="random seed; same value, same data")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every CRM call")
    parser.add_argument("--faults", type=Path, help="fault rules file (JSON list, or TOML with [[faults]])")
    parser.add_argument(
        "--bare", action="store_true", help="leave out bant-sync's output fields (try `setup`)"
    )
    parser.add_argument(
        "--write-config", type=Path, metavar="PATH", help="write a bant-sync config for this sandbox"
    )
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="count HubSpot rate limits but never answer 429"
    )
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        metavar="N",
        help="serve N orgs and N portals (a fleet, free ports each); --write-config: all 2N connections",
    )
    parser.add_argument(
        "--account",
        type=int,
        default=1,
        metavar="N",
        help="the (first) account's number: its org id, portal id and data (default 1)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bant-sync sandbox",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Start the sandbox with parsed options and serve until SIGINT/SIGTERM; 2 on bad options."""
    try:
        if args.seed not in SEEDS:
            raise SeedError(f"unknown seed {args.seed!r}: choose one of {', '.join(SEEDS)}")
        faults = load_fault_file(args.faults) if args.faults else ()
        options = SandboxOptions(
            seed=args.seed,
            deals=args.deals,
            closed_deals=args.closed_deals,
            seed_value=args.seed_value,
            latency_ms=args.latency_ms,
            bare=args.bare,
            faults=faults,
            enforce_rate_limits=not args.no_rate_limits,
            port=args.port,
            hubspot_port=args.hubspot_port,
            pubsub_port=args.pubsub_port,
            pubsub_keepalive_seconds=args.pubsub_keepalive,
            salesforce_change_events=not args.no_change_events,
            crms=tuple(dict.fromkeys(args.crm)) if args.crm else CRMS,
            account=args.account,
        )
        tune_allocator()
        served = SandboxFleet.start(args.accounts, options) if args.accounts != 1 else Sandbox.start(options)
    except (FaultConfigError, SeedError, ValueError) as exc:
        print(f"bant-sync sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"bant-sync sandbox: cannot start: {exc.strerror or exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.write_config:
            served.write_config(args.write_config)
        lines = served.info if isinstance(served, SandboxFleet) else [served.info]
        sys.stdout.write("".join(json.dumps(info) + "\n" for info in lines))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        served.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
