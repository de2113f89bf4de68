"""Salesforce: whole sync runs of 10,000 and 100,000 open opportunities against the sandbox.

    .venv/bin/python bench/salesforce_calls.py [--deals 10000 100000] [--latency-ms 0]

For each size: a first full run, an unchanged rerun and the run after it, through the real worker.
Prints API calls vs the docs/design.md §5 budget (bar: within 1.1x) and vs a naive one-call-per-record script,
wall and CPU time, and peak RSS (bar: under 250 MB at 100,000).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import main

if __name__ == "__main__":
    main("salesforce", __doc__ or "")
