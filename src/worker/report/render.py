"""The outcome report as files people open: a self-contained HTML page, its charts as PNG, its tables as CSV
and JSON.

Charts are drawn with matplotlib (the Agg backend: no display, the same pixels everywhere) and embedded in
the HTML as data URIs, so the page opens from disk, mails as one file and prints cleanly (print CSS keeps
each chart and table whole on a page). After the win rates come the open pipeline's compliance as a heat
map (owners down, criteria across, the share of their open deals missing each: the gaps stand out without
reading a number) and its weekly trend as lines. The page is a Jinja2 template with autoescaping on,
because cohort and owner names come from the CRM. The first chart is the one the product exists for: the
win rate of POCs qualified at entry against those that were not, each bar with its 95% interval.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from jinja2 import Environment, PackageLoader

from worker.report.cohorts import WinRate
from worker.report.model import CohortSection, Compliance, ComplianceRow, OutcomeReport
from worker.report.snoozes import SnoozeEvent, SnoozeSummary, current_snooze_json

SNOOZE_COLOUR = "#5b6b8c"
"""Snoozed deals (blue-grey, as the CRM badge)."""
SHOWN_SNOOZE_ROWS = 20
"""Refused and ended snoozes the HTML page lists each (the JSON and snoozes.csv have them all)."""

BAR_COLOURS = ("#1b7f3b", "#b3261e")
"""Qualified (green) and unqualified (red): the first cohort of a comparison, then the second."""


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
        return _png(figure)
    finally:
        plt.close(figure)


def compliance_chart(compliance: Compliance, limit: int = 25) -> bytes | None:
    """Owners down (the least compliant first, at most `limit`), criteria across, each cell the share of the
    owner's open deals missing that criterion; PNG bytes, None without open deals."""
    rows = [r for r in compliance.by_owner if r.open_deals][:limit]
    if not rows:
        return None
    labels = [label for _, label in compliance.criteria]
    shares = [[(r.share(name) or 0.0) * 100 for name, _ in compliance.criteria] for r in rows]
    height = 1.6 + 0.38 * len(rows)
    figure, axes = plt.subplots(figsize=(6.4 + 0.4 * max(0, len(labels) - 4), height), dpi=120)
    try:
        image = axes.imshow(shares, cmap="Reds", vmin=0, vmax=100, aspect="auto")
        axes.set_xticks(range(len(labels)), labels)
        axes.set_yticks(range(len(rows)), [f"{r.group} ({r.open_deals})" for r in rows])
        axes.xaxis.tick_top()
        for y, line in enumerate(shares):
            for x, value in enumerate(line):
                colour = "white" if value >= 55 else "#222222"
                axes.text(x, y, f"{value:.0f}%", ha="center", va="center", fontsize=9, color=colour)
        figure.colorbar(image, ax=axes, label="open deals missing it (%)", shrink=0.8)
        axes.set_title("Open deals missing each criterion, by owner (open deals)", fontsize=11, pad=28)
        return _png(figure)
    finally:
        plt.close(figure)


def trend_chart(compliance: Compliance) -> bytes | None:
    """One line per criterion (share of open deals missing it) and a thick one for unqualified deals,
    week by week; PNG bytes, None with fewer than two weeks that had open deals."""
    points = [p for p in compliance.trend if p.open_deals]
    if len(points) < 2:
        return None
    weeks = list(range(len(points)))
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    try:
        axes.plot(
            weeks,
            [p.unqualified / p.open_deals * 100 for p in points],
            color=BAR_COLOURS[1],
            lw=2.6,
            label="unqualified",
        )
        if any(p.snoozed for p in points):
            axes.plot(
                weeks,
                [p.snoozed / p.open_deals * 100 for p in points],
                color=SNOOZE_COLOUR,
                lw=1.8,
                ls="--",
                label="snoozed",
            )
        for name, label in compliance.criteria:
            shares = [dict(p.missing)[name] / p.open_deals * 100 for p in points]
            axes.plot(weeks, shares, lw=1.2, label=label)
        axes.set_ylim(0, 100)
        axes.set_ylabel("share of open deals (%)")
        axes.set_title("Open pipeline, week by week", fontsize=11)
        axes.legend(fontsize=8, frameon=False, ncol=3)
        axes.spines[["top", "right"]].set_visible(False)
        step = max(1, len(points) // 8)
        axes.set_xticks(weeks[::step], [p.week_ending.strftime("%d %b %y") for p in points[::step]])
        axes.set_xlabel("week ending")
        figure.autofmt_xdate()
        return _png(figure)
    finally:
        plt.close(figure)


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def charts(report: OutcomeReport) -> dict[str, bytes]:
    """Every chart of the report by file stem, the win rates first."""
    drawn = {f"{section.key}-win-rates": win_rate_chart(section) for section in report.sections}
    if report.compliance is not None:
        for stem, png in (
            ("compliance-by-owner", compliance_chart(report.compliance)),
            ("compliance-trend", trend_chart(report.compliance)),
        ):
            if png is not None:
                drawn[stem] = png
    return drawn


def rows(report: OutcomeReport) -> list[dict[str, Any]]:
    """One row per cohort of every section: the table behind the win-rate charts."""
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


def compliance_rows(
    rows_: Sequence[ComplianceRow], criteria: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Owners' (or teams') compliance as flat rows: counts and, per criterion, the share missing it."""
    out = []
    for row in rows_:
        item: dict[str, Any] = {
            "group": row.group,
            "email": row.email,
            "open_deals": row.open_deals,
            "unqualified": row.unqualified,
            "unqualified_share": row.unqualified_share,
            "snoozed": row.snoozed,
            "snoozed_share": row.snoozed_share,
        }
        for name, _ in criteria:
            item[f"missing_{name}"] = dict(row.missing).get(name, 0)
            item[f"missing_{name}_share"] = row.share(name)
        out.append(item)
    return out


def report_json(report: OutcomeReport) -> dict[str, Any]:
    """The whole report as one JSON document (what `report --format json` prints and report.json holds)."""
    body: dict[str, Any] = {
        "connection": report.connection,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "framework": report.framework,
        "closed_deals": report.closed_deals,
        "not_entered": report.not_entered,
        "api_calls": report.api_calls,
        "cohorts": rows(report),
        "notes": list(report.notes),
    }
    compliance = report.compliance
    if compliance is not None:
        body["compliance"] = {
            "criteria": [{"name": n, "label": label} for n, label in compliance.criteria],
            "by_owner": compliance_rows(compliance.by_owner, compliance.criteria),
            "by_team": compliance_rows(compliance.by_team, compliance.criteria),
            "trend": [
                {
                    "week_ending": p.week_ending.isoformat(),
                    "open_deals": p.open_deals,
                    "unqualified": p.unqualified,
                    "snoozed": p.snoozed,
                    "missing": dict(p.missing),
                }
                for p in compliance.trend
            ],
            "follow_through": asdict(compliance.follow_through) if compliance.follow_through else None,
            "snoozes": snoozes_json(compliance.snoozes) if compliance.snoozes is not None else None,
        }
    return body


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _event_json(e: SnoozeEvent) -> dict[str, Any]:
    return {
        "deal_id": e.deal_id,
        "name": e.name,
        "owner_id": e.owner_id,
        "owner": e.owner,
        "at": e.at.isoformat(),
        "by": e.by,
        "why": e.why,
        "status": e.status,
    }


def snoozes_json(summary: SnoozeSummary) -> dict[str, Any]:
    """The report's snoozes: the deals snoozed now, the snoozes refused in the period (with a count per
    kind of reason) and those that ended in it with the deal flagged again."""
    return {
        "current": len(summary.current),
        "refused": len(summary.refused),
        "ended_reflagged": len(summary.ended),
        "refused_by_why": [{"why": why, "count": count} for why, count in summary.refused_by_why()],
        "current_snoozes": [current_snooze_json(s) for s in summary.current],
        "refused_snoozes": [_event_json(e) for e in summary.refused],
        "ended_snoozes": [_event_json(e) for e in summary.ended],
    }


SNOOZE_CSV_FIELDS = ("kind", "deal_id", "deal", "owner", "at", "until", "by", "reason", "status")


def snooze_rows(summary: SnoozeSummary) -> list[dict[str, Any]]:
    """snoozes.csv: one row per current snooze ("current": until, who, reason), refused one ("refused":
    when, who, why) and ended one ("ended": when, the status it left the deal in)."""
    out: list[dict[str, Any]] = [
        {
            "kind": "current",
            "deal_id": s.deal_id,
            "deal": s.name,
            "owner": s.owner or s.owner_id,
            "at": _iso(s.snoozed_at),
            "until": _iso(s.until),
            "by": s.by,
            "reason": s.reason,
            "status": "snoozed",
        }
        for s in summary.current
    ]
    for kind, events in (("refused", summary.refused), ("ended", summary.ended)):
        out.extend(
            {
                "kind": kind,
                "deal_id": e.deal_id,
                "deal": e.name,
                "owner": e.owner or e.owner_id,
                "at": e.at.isoformat(),
                "until": None,
                "by": e.by,
                "reason": e.why,
                "status": e.status,
            }
            for e in events
        )
    return out


def _csv(table: Sequence[Mapping[str, Any]], empty: Sequence[str] = ("section",)) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(table[0]) if table else list(empty), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return buffer.getvalue()


def cohort_csv(report: OutcomeReport) -> str:
    return _csv(rows(report))


def summary_lines(report: OutcomeReport) -> list[str]:
    """What a terminal shows: each cohort's win rate with its interval, and the test's verdict."""
    lines = [
        f"{report.connection}: {report.closed_deals:,} deals closed {report.since} to {report.until} "
        f"(framework {report.framework}, {report.api_calls:,} API calls)"
    ]
    for section in report.sections:
        result = section.comparison
        lines.append(f"  {section.title}  [status at entry from {section.source}]")
        for cohort in (result.first, result.second):
            interval = f"{_percent(cohort.low)}–{_percent(cohort.high)}" if cohort.rate is not None else "–"
            lines.append(
                f"    {cohort.cohort:<22} {cohort.closed:>6} closed {cohort.won:>6} won  "
                f"win rate {_percent(cohort.rate):>4} (95% {interval})"
            )
        if result.p_value is not None:
            difference = _percent(result.difference)
            lines.append(f"    difference {difference} points, Fisher's exact p = {result.p_value:.2g}")
    snoozes = report.compliance.snoozes if report.compliance is not None else None
    if snoozes is not None and (snoozes.current or snoozes.refused or snoozes.ended):
        lines.append(
            f"  snoozes: {len(snoozes.current)} deal(s) snoozed now; in the period {len(snoozes.refused)} "
            f"snooze(s) refused, {len(snoozes.ended)} ended with the deal flagged again"
        )
    lines.extend(f"  note: {note}" for note in report.notes)
    return lines


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("worker.report", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(report: OutcomeReport, drawn: Mapping[str, bytes]) -> str:
    """The self-contained page: every chart inlined as a PNG data URI."""
    template = _environment().get_template("report.html.j2")
    inlined = {stem: base64.b64encode(png).decode("ascii") for stem, png in drawn.items()}
    return template.render(
        report=report,
        charts=inlined,
        percent=_percent,
        cohorts=_cohorts,
        share=_share,
        shown_snoozes=SHOWN_SNOOZE_ROWS,
    )


def _share(row: ComplianceRow, criterion: str) -> str:
    return _percent(row.share(criterion))


def _cohorts(section: CohortSection) -> tuple[WinRate, WinRate]:
    return section.comparison.first, section.comparison.second


def write_report(report: OutcomeReport, directory: Path) -> ReportFiles:
    """Write the report into `directory` (created if missing): report.html, one PNG per chart, cohorts.csv,
    compliance.csv, snoozes.csv and report.json. Returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    drawn = charts(report)
    chart_paths = []
    for stem, png in drawn.items():
        path = directory / f"{stem}.png"
        path.write_bytes(png)
        chart_paths.append(path)
    html = directory / "report.html"
    html.write_text(render_html(report, drawn), encoding="utf-8")
    csv_path = directory / "cohorts.csv"
    csv_path.write_text(cohort_csv(report), encoding="utf-8")
    if report.compliance is not None:
        table = compliance_rows(report.compliance.by_owner, report.compliance.criteria)
        (directory / "compliance.csv").write_text(_csv(table), encoding="utf-8")
        if report.compliance.snoozes is not None:
            snoozed = _csv(snooze_rows(report.compliance.snoozes), SNOOZE_CSV_FIELDS)
            (directory / "snoozes.csv").write_text(snoozed, encoding="utf-8")
    json_path = directory / "report.json"
    json_path.write_text(json.dumps(report_json(report), indent=2) + "\n", encoding="utf-8")
    return ReportFiles(html, tuple(chart_paths), csv_path, json_path)
