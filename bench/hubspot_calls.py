"""HubSpot: whole sync runs of 10,000 and 100,000 open deals against a sandbox enforcing HubSpot's limits
(190 calls per 10 s, 5 searches per second).

    .venv/bin/python bench/hubspot_calls.py [--deals 10000 100000] [--latency-ms 0]

For each size: a first full run, an unchanged rerun, the run after it and an unchanged full sweep (which
reads through the list endpoint where that ends sooner than search), through the real worker.
Prints API calls vs the docs/design.md §5 budget (bar: within 1.1x) and vs a naive per-record script, wall
time vs the floor the rate limits set (bar: within 1.2x), CPU time and peak RSS.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sync_bench import main

if __name__ == "__main__":
    main("hubspot", __doc__ or "")
