"""dlt's verified HubSpot source (tests/sandbox/dlt_sources, unmodified) reading every deal of a sandbox of N
open deals into duckdb at the sandbox's limits (190 calls per 10 s, 5 searches per second): the read that
bant-sync's full sweep is compared with in docs/performance.md (bench/hubspot_calls.py, "unchanged full").

    .venv/bin/python bench/dlt_hubspot_read.py [--deals 100000]

The sandbox runs as its own process, as in bench/sync_bench.py. dlt paces nothing itself: it sends until the
sandbox answers 429 and waits out the Retry-After. Prints the rows read and the wall time of dlt's extract
step (its HubSpot reads) and of the whole run (with normalize and load).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _hubspot(config: Path) -> tuple[str, str]:
    """The sandbox's HubSpot host and access token, as its written config and secrets file hold them."""
    settings = tomllib.loads(config.read_text())
    secrets = tomllib.loads((config.parent / settings["secrets_file"]).read_text())
    return settings["connections"]["hubspot"]["host"], secrets["connections"]["hubspot"]["access_token"]


def measure(deals: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bant-sync-dlt-") as tmp:
        os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
        os.environ["DLT_DATA_DIR"] = str(Path(tmp) / "dlt-data")
        os.chdir(tmp)
        config = Path(tmp) / "bench.toml"
        command = [sys.executable, "-m", "sandbox", "--deals", str(deals), "--write-config", str(config)]
        sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        try:
            assert sandbox.stdout is not None
            if not sandbox.stdout.readline():
                raise SystemExit("the sandbox did not start")
            # imported once DLT_DATA_DIR and the telemetry switch are set, so dlt writes nothing elsewhere
            import dlt
            from tests.sandbox.dlt_sources import hubspot as dlt_hubspot
            from tests.sandbox.dlt_sources.hubspot import helpers as dlt_hubspot_helpers

            host, token = _hubspot(config)
            dlt_hubspot_helpers.BASE_URL = host + "/"
            pipeline = dlt.pipeline(
                pipeline_name="hubspot_deals",
                pipelines_dir=str(Path(tmp) / "pipelines"),
                destination=dlt.destinations.duckdb(str(Path(tmp) / "read.duckdb")),
                dataset_name="hubspot_deals",
            )
            source = dlt_hubspot.hubspot(api_key=token).with_resources("deals")
            wall, cpu = time.perf_counter(), time.process_time()
            pipeline.extract(source)
            extracted = time.perf_counter() - wall
            pipeline.normalize()
            pipeline.load()
            total = time.perf_counter() - wall
            with pipeline.sql_client() as client:
                rows = client.execute_sql("SELECT count(*) FROM deals")[0][0]
            print(f"\ndlt verified HubSpot source, {deals:,} open deals: {rows:,} rows read")
            print(f"  extract (the HubSpot reads) {extracted:.1f} s; with normalize and load {total:.1f} s")
            print(f"  CPU {time.process_time() - cpu:.1f} s")
        finally:
            sandbox.terminate()
            sandbox.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--deals", type=int, nargs="+", default=[100_000])
    args = parser.parse_args()
    for deals in args.deals:
        measure(deals)


if __name__ == "__main__":
    main()
