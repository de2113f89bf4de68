"""The HTML report as a leader opens it: from disk, in a real browser (headless Chromium), with its charts
drawn. The screenshot is checked for the pixels of the win-rate bars and the heat map, which a broken or
missing image would not have; printed to PDF, it keeps its charts on a few pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image

from sandbox import SandboxOptions
from tests.integration.conftest import sandbox_env
from worker.report.build import ReportRequest, report_on
from worker.report.render import BAR_COLOURS, write_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a Chromium browser: apt-get install chromium (.ci/run installs it where it can)",
)


def _rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)])


def _pixels_near(shot: np.ndarray, colour: str, tolerance: float = 0.06) -> int:
    distance = np.abs(shot[:, :, :3] - _rgb(colour)).max(axis=2)
    return int((distance < tolerance).sum())


def chromium(html: Path, *options: str) -> None:
    """Headless Chromium on the page from disk, with `options` saying what to make of it."""
    assert CHROMIUM is not None
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", *options, html.resolve().as_uri()]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def screenshot(html: Path, out: Path) -> np.ndarray:
    chromium(html, "--hide-scrollbars", "--window-size=1000,4000", f"--screenshot={out}")
    shot: np.ndarray = image.imread(str(out))
    return shot


def test_the_report_opens_from_disk_in_chromium_with_its_charts_drawn(tmp_path: Path) -> None:
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False, crms=("hubspot",))
    with sandbox_env("hubspot", tmp_path, options) as env:
        assert env.run("full").status == "succeeded"
        today = env.today()
        report = report_on(env.worker, ReportRequest("hubspot", today - timedelta(days=365), today, "bant"))
    files = write_report(report, tmp_path / "report")
    shot = screenshot(files.html, tmp_path / "shot.png")
    assert shot.shape[1] == 1000
    qualified_bar = _pixels_near(shot, BAR_COLOURS[0])
    unqualified_bar = _pixels_near(shot, BAR_COLOURS[1])
    assert qualified_bar > 20_000, f"the green win-rate bars are not drawn ({qualified_bar} pixels)"
    assert unqualified_bar > 1_000, f"the red win-rate bars are not drawn ({unqualified_bar} pixels)"
    reds = shot[:, :, 0] - shot[:, :, 2]
    heat_map = int((reds > 0.25).sum()) - unqualified_bar
    assert heat_map > 20_000, f"the compliance heat map is not drawn ({heat_map} reddish pixels)"
    first_green_row = int(
        np.argmax((np.abs(shot[:, :, :3] - _rgb(BAR_COLOURS[0])).max(axis=2) < 0.06).any(axis=1))
    )
    assert first_green_row < 1000, "the POC win rates should be the first thing on the page"
    pdf = print_to_pdf(files.html, tmp_path / "report.pdf")
    pages = len(re.findall(rb"/Type\s*/Page[^s]", pdf))
    images = len(re.findall(rb"/Subtype\s*/Image", pdf))
    assert 2 <= pages <= 6, f"the printed report has {pages} pages"
    assert images >= 2, f"the printed report carries {images} images; its charts are missing"


def print_to_pdf(html: Path, out: Path) -> bytes:
    """The page printed as a leader would print it (A4/Letter by the browser's default), as PDF bytes."""
    chromium(html, "--no-pdf-header-footer", f"--print-to-pdf={out}")
    return out.read_bytes()
