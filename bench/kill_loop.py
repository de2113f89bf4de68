"""Long kill -9 loop: SIGKILL `bant-sync sync` after every request of a full run, rerun, check the CRM.

    .venv/bin/python bench/kill_loop.py [--deals 2000] [--crm salesforce hubspot] [--every 1]

For each kill point k (1, 1+every, …, up to the requests of an uninterrupted run) it starts a fresh sandbox,
kills a full sync after its k-th CRM request, reruns, and checks: the rerun succeeded, a dry run afterwards
has nothing left to write, no task key appears twice, and every unqualified open deal has exactly one open
task. Prints one line per kill point and a summary; exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' kill harness, run from anywhere

from tests.integration.conftest import CrmView
from tests.reliability.harness import assert_consistent, kill_and_rerun

from sandbox import Sandbox, SandboxOptions
from worker.logging_setup import configure_logging
from worker.run_model import RunRequest
from worker.service import Worker
from worker.settings_loader import load_settings


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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=2000)
    parser.add_argument("--crm", nargs="+", default=["salesforce", "hubspot"])
    parser.add_argument("--every", type=int, default=1, help="kill after every Nth request (default 1)")
    parser.add_argument("--latency-ms", type=int, default=10)
    args = parser.parse_args()
    configure_logging("error")
    options = SandboxOptions(
        deals=args.deals, seed_value=11, latency_ms=args.latency_ms, enforce_rate_limits=False
    )
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
