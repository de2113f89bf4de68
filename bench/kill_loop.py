"""Long kill -9 loops: SIGKILL `bant-sync sync` after every request of a full run, rerun, check the CRM; or,
with --edits, kill it at random moments with reps editing deals and tasks in between.

    .venv/bin/python bench/kill_loop.py [--deals 2000] [--crm salesforce hubspot] [--every 1]
    .venv/bin/python bench/kill_loop.py --edits 300 [--rounds 20] [--seed 1] [--deals 2000] [--crm ...]

For each kill point k (1, 1+every, …, up to the requests of an uninterrupted run) it starts a fresh sandbox,
kills a full sync after its k-th CRM request, reruns, and checks: the rerun succeeded, a dry run afterwards
has nothing left to write, no task key appears twice, and every unqualified open deal has exactly one open
task. Prints one line per kill point and a summary; exits 1 on any failure.

With --edits N, per CRM: a fresh sandbox and one uninterrupted full sync, then --rounds rounds of N random
rep edits (BANT fields fixed, blanked or filled with junk; tasks deleted or completed) each followed by a
sync (full or incremental) SIGKILLed at a random moment, then one full sweep. It prints, per CRM: unqualified
deals without an open task, open tasks on qualified deals, duplicates, deals whose last audit-log status
differs from the CRM's, and what a dry run still wants to write — all must be 0 (see
tests/reliability/edit_loop.py).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' kill harness, run from anywhere

from tests.integration.conftest import CrmView
from tests.reliability.edit_loop import run_edit_loop
from tests.reliability.harness import assert_consistent, kill_and_rerun

from sandbox import Sandbox, SandboxOptions
from worker.config.loader import load_settings
from worker.logging_setup import configure_logging
from worker.service import Worker
from worker.sync.run_model import RunRequest


def requests_of_a_full_run(options: SandboxOptions, crm: str) -> int:
    with Sandbox.start(options) as sb, tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "sandbox.toml"
        sb.write_config(config)
        sb.reset_requests()
        worker = Worker(load_settings(str(config), environ={}))
        try:
            worker.run(RunRequest(crm, mode="full"))
        finally:
            worker.close()
        return len(sb.requests())


def edit_loop(options: SandboxOptions, crms: list[str], rounds: int, edits: int, seed: int) -> int:
    failures = 0
    for crm in crms:
        print(f"{crm}: {options.deals:,} deals, {rounds} rounds of {edits} rep edits and a kill", flush=True)
        with Sandbox.start(options) as sb, tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "sandbox.toml"
            sb.write_config(config)
            report = run_edit_loop(sb, config, crm, rounds=rounds, edits=edits, rng=random.Random(seed))
        print("  " + report.line(), flush=True)
        for problem in report.problems:
            print(f"  FAIL {problem}", flush=True)
        failures += bool(report.problems)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=2000)
    parser.add_argument("--crm", nargs="+", default=["salesforce", "hubspot"])
    parser.add_argument("--every", type=int, default=1, help="kill after every Nth request (default 1)")
    parser.add_argument("--latency-ms", type=int, default=10)
    parser.add_argument(
        "--edits", type=int, default=0, metavar="N", help="rep edits between kills (enables the edit loop)"
    )
    parser.add_argument("--rounds", type=int, default=20, help="edit loop: kill rounds per CRM (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="edit loop: seed of the edits and kill moments")
    args = parser.parse_args()
    configure_logging("error")
    options = SandboxOptions(
        deals=args.deals, seed_value=11, latency_ms=args.latency_ms, enforce_rate_limits=False
    )
    if args.edits > 0:
        return edit_loop(options, args.crm, args.rounds, args.edits, args.seed)
    failures = 0
    for crm in args.crm:
        total = requests_of_a_full_run(options, crm)
        print(f"{crm}: an uninterrupted full run of {args.deals:,} deals makes {total} requests", flush=True)
        for kill_at in range(1, total, args.every):
            started = time.perf_counter()
            with Sandbox.start(options) as sb, tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "sandbox.toml"
                sb.write_config(config)
                result = kill_and_rerun(sb, config, crm, kill_at)
                problems = []
                if result.rerun.status != "succeeded":
                    problems.append(f"rerun {result.rerun.status}: {result.rerun.error}")
                if result.leftover:
                    problems.append(f"{len(result.leftover)} writes still needed")
                try:
                    assert_consistent(CrmView(sb, crm))
                except AssertionError as exc:
                    problems.append(str(exc).splitlines()[0])
            failures += bool(problems)
            verdict = "ok" if not problems else "FAIL " + "; ".join(problems)
            print(
                f"  kill after request {kill_at:>3} (killed={result.killed!s:<5}) "
                f"{time.perf_counter() - started:5.1f} s  {verdict}",
                flush=True,
            )
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
