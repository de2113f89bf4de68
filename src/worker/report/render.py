"""The outcome report as files people open: a self-contained HTML page, its charts as PNG, its tables as CSV
and JSON.

Charts are drawn with matplotlib (the Agg backend: no display, the same pixels everywhere) and embedded in
the HTML as data URIs, so the page opens from disk, mails as one file and prints cleanly (print CSS keeps
each chart and table whole on a page). The page is a Jinja2 template with autoescaping on, because cohort
and owner names come from the CRM. The first chart is the one the product exists for: the win rate of POCs
qualified at entry against those that were not, each bar with its 95% interval.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader

from worker.report.cohorts import Comparison, WinRate

BAR_COLOURS = ("#1b7f3b", "#b3261e")
"""Qualified (green) and unqualified (red): the first cohort of a comparison, then the second."""


@dataclass(frozen=True, slots=True)
class CohortSection:
    """One comparison of the report: its title, the two cohorts, and where their statuses came from."""

    key: str
    title: str
    comparison: Comparison
    source: str
    """How each deal's status at entry was known ("field history", or "values at close: no history")."""


@dataclass(frozen=True, slots=True)
class OutcomeReport:
    connection: str
    since: date
    until: date
    framework: str
    sections: tuple[CohortSection, ...]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    html: Path
    charts: tuple[Path, ...]
    csv: Path
    json: Path


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def win_rate_chart(section: CohortSection) -> bytes:
    """Two bars, each cohort's win rate with its 95% interval as an error bar, labelled with the rate and
    "won of closed"; PNG bytes."""
    cohorts = (section.comparison.first, section.comparison.second)
    rates = [(c.rate or 0.0) * 100 for c in cohorts]
    below = [((c.rate or 0.0) - (c.low or 0.0)) * 100 for c in cohorts]
    above = [((c.high or 0.0) - (c.rate or 0.0)) * 100 for c in cohorts]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    try:
        names = [c.cohort for c in cohorts]
        bars = axes.bar(names, rates, color=BAR_COLOURS, width=0.55)
        axes.errorbar(names, rates, yerr=[below, above], fmt="none", ecolor="#222222", capsize=8, lw=1.2)
        for bar, cohort in zip(bars, cohorts, strict=True):
            label = f"{_percent(cohort.rate)}\n{cohort.won} of {cohort.closed} won"
            axes.annotate(
                label,
                (bar.get_x() + bar.get_width() / 2, (cohort.high or cohort.rate or 0.0) * 100),
                xytext=(0, 6),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=10,
            )
        axes.set_ylim(0, 125)
        axes.set_yticks(range(0, 101, 20))
        axes.set_ylabel("win rate (%), with 95% interval")
        axes.set_title(section.title, fontsize=12)
        axes.spines[["top", "right"]].set_visible(False)
        buffer = io.BytesIO()
        figure.tight_layout()
        figure.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(figure)


def rows(report: OutcomeReport) -> list[dict[str, Any]]:
    """One row per cohort of every section: the table behind the charts, as CSV and JSON carry it."""
    out: list[dict[str, Any]] = []
    for section in report.sections:
        result = section.comparison
        for cohort in (result.first, result.second):
            out.append(
                {
                    "section": section.key,
                    "cohort": cohort.cohort,
                    "closed": cohort.closed,
                    "won": cohort.won,
                    "lost": cohort.lost,
                    "win_rate": cohort.rate,
                    "interval_low": cohort.low,
                    "interval_high": cohort.high,
                    "difference": result.difference,
                    "p_value": result.p_value,
                    "source": section.source,
                }
            )
    return out


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("worker.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: OutcomeReport, charts: Sequence[bytes]) -> str:
    """The self-contained page: every chart inlined as a PNG data URI."""
    template = _environment().get_template("report.html.j2")
    inlined = [base64.b64encode(png).decode("ascii") for png in charts]
    return template.render(
        report=report,
        sections=list(zip(report.sections, inlined, strict=True)),
        percent=_percent,
        cohorts=_cohorts,
    )


def _cohorts(section: CohortSection) -> tuple[WinRate, WinRate]:
    return section.comparison.first, section.comparison.second


def write_report(report: OutcomeReport, directory: Path) -> ReportFiles:
    """Write the report into `directory` (created if missing): report.html, one PNG per section,
    cohorts.csv and cohorts.json. Returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = [win_rate_chart(section) for section in report.sections]
    chart_paths = []
    for section, png in zip(report.sections, charts, strict=True):
        path = directory / f"{section.key}-win-rates.png"
        path.write_bytes(png)
        chart_paths.append(path)
    html = directory / "report.html"
    html.write_text(render_html(report, charts), encoding="utf-8")
    table = rows(report)
    csv_path = directory / "cohorts.csv"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]) if table else ["section"])
        writer.writeheader()
        writer.writerows(table)
    json_path = directory / "cohorts.json"
    body = {
        "connection": report.connection,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "framework": report.framework,
        "cohorts": table,
    }
    json_path.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    return ReportFiles(html, tuple(chart_paths), csv_path, json_path)
