"""The outcome report's files (issue 13): a self-contained HTML page, a PNG per chart, CSV and JSON tables."""

from __future__ import annotations

import csv
import json
from datetime import date
from pathlib import Path

import pytest

from worker.report.cohorts import compare, win_rate
from worker.report.render import CohortSection, OutcomeReport, render_html, win_rate_chart, write_report

PNG = b"\x89PNG\r\n\x1a\n"


def _report(poc_name: str = "qualified at entry") -> OutcomeReport:
    pocs = CohortSection(
        "pocs",
        "POCs: qualified at entry vs not",
        compare(win_rate(poc_name, 16, 4), win_rate("unqualified at entry", 3, 62)),
        "field history",
    )
    deals = CohortSection(
        "deals",
        "All deals",
        compare(win_rate("qualified at entry", 40, 20), win_rate("unqualified at entry", 10, 90)),
        "values at close (no field history)",
    )
    return OutcomeReport("hubspot", date(2026, 1, 1), date(2026, 11, 30), "bant", (pocs, deals))


def test_write_report_writes_every_file(tmp_path: Path) -> None:
    files = write_report(_report(), tmp_path / "out")
    assert files.html.read_text(encoding="utf-8").count("data:image/png;base64,") == 2
    assert [p.name for p in files.charts] == ["pocs-win-rates.png", "deals-win-rates.png"]
    assert files.json.name == "report.json"
    assert all(p.read_bytes().startswith(PNG) for p in files.charts)
    with files.csv.open(encoding="utf-8") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["section"], r["cohort"], r["won"], r["closed"]) for r in table[:2]] == [
        ("pocs", "qualified at entry", "16", "20"),
        ("pocs", "unqualified at entry", "3", "65"),
    ]
    body = json.loads(files.json.read_text(encoding="utf-8"))
    first = body["cohorts"][0]
    assert first["win_rate"] == pytest.approx(0.8) and first["interval_low"] == pytest.approx(0.584, abs=1e-3)
    assert body["cohorts"][3]["source"] == "values at close (no field history)"


def test_the_page_says_what_the_numbers_mean_and_escapes_crm_text() -> None:
    """Cohort names can come from the CRM: the template escapes them."""
    page = render_html(_report("<script>alert(1)</script>"), {"pocs-win-rates": PNG, "deals-win-rates": PNG})
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "80%" in page and "16" in page and "Fisher" in page and "unlikely to be chance" in page
    assert "values at close (no field history)" in page
    assert "@media print" in page


def test_the_chart_is_a_png_of_readable_size() -> None:
    png = win_rate_chart(_report().sections[0])
    assert png.startswith(PNG)
    width = int.from_bytes(png[16:20], "big")
    height = int.from_bytes(png[20:24], "big")
    assert (width, height) == (768, 480)
