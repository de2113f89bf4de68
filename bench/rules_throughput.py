"""Rules throughput: assessments per second on synthetic deals, one core.

    .venv/bin/python bench/rules_throughput.py [--deals 1000000] [--framework bant]

Bar (docs/design.md §8): at least 100,000 assessments per second on one core.
"""

from __future__ import annotations

import argparse
import random
import time
import tomllib
from datetime import date, timedelta
from pathlib import Path

from rules import Deal, evaluate, framework_from_mapping

ROOT = Path(__file__).resolve().parents[1]
TODAY = date(2026, 11, 27)
# Genuine values, placeholders and the gaming attempts the junk-text and date rules catch.
BUDGETS = ["85000", "$120,000", "TBD", "", None, "n/a", "approved in FY27 plan", "0", "1.5M"]
BUDGETS += ["no budget yet"]
AUTHORITIES = ["Dana Whitfield (CFO)", "IT Director", None, "unknown", "?", "VP Operations"]
AUTHORITIES += ["N/A.", "not sure"]
NEEDS = ["Replace three nightly ETL jobs that miss SLAs", "help", None, "Consolidate reporting", "TBD"]
NEEDS += ["a" * 20]
TIMINGS = ["2027-01-15", "2026-06-30", "Q1 2027", None, "?", "end of year"]
TIMINGS += ["12/31/2024", "Dec 2027"]
STAGES = ["Prospecting", "Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review"]


def synthetic_deals(count: int, seed: int) -> list[Deal]:
    rng = random.Random(seed)
    return [
        Deal(
            id=f"D{i}",
            name=f"Deal {i}",
            owner_id=f"rep{i % 40}",
            stage=rng.choice(STAGES),
            deal_type="POC" if rng.random() < 0.2 else "New Business",
            budget=rng.choice(BUDGETS),
            authority=rng.choice(AUTHORITIES),
            need=rng.choice(NEEDS),
            timing=rng.choice(TIMINGS),
            flagged_since=TODAY - timedelta(days=rng.randrange(90)) if rng.random() < 0.3 else None,
        )
        for i in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--framework", default="bant")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    with (ROOT / "config" / "frameworks" / f"{args.framework}.toml").open("rb") as handle:
        framework = framework_from_mapping(tomllib.load(handle), args.framework)
    print(f"generating {args.deals:,} synthetic deals…", flush=True)
    deals = synthetic_deals(args.deals, args.seed)
    started_cpu, started = time.process_time(), time.perf_counter()
    unqualified = sum(1 for deal in deals if evaluate(deal, framework, TODAY).status.is_unqualified)
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    print(f"framework        {framework.name}")
    print(f"deals assessed   {args.deals:,} ({unqualified:,} unqualified)")
    print(f"CPU time         {cpu:.2f} s (wall {wall:.2f} s)")
    print(f"throughput       {args.deals / cpu:,.0f} assessments/s on one core (bar: 100,000)")


if __name__ == "__main__":
    main()
