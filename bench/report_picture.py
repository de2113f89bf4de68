"""Makes docs/report.png, the README's picture of the outcome report, from the sandbox's story.

    .venv/bin/python bench/report_picture.py [--output docs/report.png]

Starts the sandbox (HubSpot, track-selling), runs one full sync so compliance has verdicts, builds the
report as `bant-sync report` does, opens the HTML from disk in headless Chromium (apt-get install chromium)
and keeps the top of the page: the title and the POC win rates with their intervals and table.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from datetime import timedelta
from pathlib import Path

from matplotlib import image

from sandbox import Sandbox, SandboxOptions
from worker.config.loader import load_settings
from worker.report.build import ReportRequest, report_on
from worker.report.render import write_report
from worker.service import Worker
from worker.sync.run_model import RunRequest

WINDOW_PX = 900
TOP_PX = 815
"""The title, the POC chart, its table and the test's line, at a 1000-pixel-wide window."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("docs/report.png"))
    args = parser.parse_args()
    browser = shutil.which("chromium") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("needs Chromium: apt-get install chromium")
    options = SandboxOptions(seed="track-selling", crms=("hubspot",), enforce_rate_limits=False)
    with tempfile.TemporaryDirectory() as tmp, Sandbox.start(options) as sb:
        config = Path(tmp) / "sandbox.toml"
        sb.write_config(config)
        worker = Worker(load_settings(str(config), environ={}))
        try:
            worker.run(RunRequest("hubspot", mode="full", trigger="cli"))
            today = worker.today()
            report = report_on(worker, ReportRequest("hubspot", today - timedelta(days=365), today, "bant"))
        finally:
            worker.close()
        files = write_report(report, Path(tmp) / "report")
        shot = Path(tmp) / "shot.png"
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--window-size=1000,{WINDOW_PX}",
                f"--screenshot={shot}",
                files.html.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        image.imsave(args.output, image.imread(str(shot))[:TOP_PX])
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
