"""`bant-sync evaluate FILE`: run the rules offline on an export and print the verdicts."""

from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TextIO

import structlog

from rules import Assessment, Deal, Framework, Status, evaluate
from worker import exit_codes
from worker.cli.deal_files import BadRow, read_deals

log = structlog.get_logger()

STATUS_ORDER = (
    Status.QUALIFY_OUT,
    Status.POC_UNQUALIFIED,
    Status.NEEDS_QUALIFICATION,
    Status.SNOOZED,
    Status.QUALIFIED,
    Status.NOT_EVALUATED,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    deal: Deal
    assessment: Assessment


def assessment_record(verdict: Verdict) -> dict[str, object]:
    a = verdict.assessment
    return {
        "id": a.deal_id,
        "name": verdict.deal.name,
        "owner_id": verdict.deal.owner_id,
        "status": a.status.value,
        "missing": list(a.missing),
        "score": a.score,
        "reasons": list(a.reasons),
        "is_poc": a.is_poc,
        "flagged_since": a.flagged_since.isoformat() if a.flagged_since else None,
    }


def write_jsonl(verdicts: Iterable[Verdict], out: TextIO) -> None:
    for verdict in verdicts:
        out.write(json.dumps(assessment_record(verdict), ensure_ascii=False) + "\n")


def write_csv(verdicts: Iterable[Verdict], out: TextIO) -> None:
    columns = ["id", "name", "owner_id", "status", "missing", "score", "is_poc", "flagged_since", "reasons"]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for verdict in verdicts:
        record = assessment_record(verdict)
        record["missing"] = ";".join(verdict.assessment.missing)
        record["reasons"] = " | ".join(verdict.assessment.reasons)
        writer.writerow(record)


def _cell(text: str | None, width: int) -> str:
    value = (text or "").replace("\n", " ")
    return value if len(value) <= width else value[: width - 1] + "…"


def write_table(verdicts: list[Verdict], framework: Framework, today: date, out: TextIO) -> None:
    counts = Counter(v.assessment.status for v in verdicts)
    pocs = [v for v in verdicts if v.assessment.is_poc]
    out.write(f"{len(verdicts)} deals assessed against {framework.name} on {today.isoformat()}\n\n")
    out.write(f"  {'status':<22}{'deals':>7}\n")
    for status in STATUS_ORDER:
        out.write(f"  {status.value:<22}{counts.get(status, 0):>7}\n")
    unqualified_pocs = sum(1 for v in pocs if v.assessment.status.is_unqualified)
    out.write(f"\n  POCs: {len(pocs)}, of which {unqualified_pocs} are missing qualification\n")
    flagged = [v for v in verdicts if v.assessment.status.is_unqualified]
    if not flagged:
        out.write("\nNo deal is missing qualification.\n")
        return
    flagged.sort(key=lambda v: (STATUS_ORDER.index(v.assessment.status), v.assessment.score, v.deal.id))
    out.write(f"\nFlagged deals ({len(flagged)}):\n")
    out.write(f"  {'id':<12} {'name':<30} {'status':<20} {'score':>5}  what is missing\n")
    for verdict in flagged:
        a = verdict.assessment
        out.write(
            f"  {_cell(a.deal_id, 12):<12} {_cell(verdict.deal.name, 30):<30} {a.status.value:<20} "
            f"{a.score:>5}  {'; '.join(a.reasons)}\n"
        )


def run_evaluate(
    path: Path,
    framework: Framework,
    today: date,
    fmt: str,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Assess every readable row, report bad rows on stderr by line number, return the exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    verdicts: list[Verdict] = []
    bad: list[BadRow] = []
    seen: set[str] = set()
    for row in read_deals(path):
        if isinstance(row, BadRow):
            bad.append(row)
            continue
        if row.deal.id in seen:
            bad.append(BadRow(row.line, f"duplicate id {row.deal.id!r}"))
            continue
        seen.add(row.deal.id)
        verdicts.append(Verdict(row.deal, evaluate(row.deal, framework, today)))
    if fmt == "jsonl":
        write_jsonl(verdicts, out)
    elif fmt == "csv":
        write_csv(verdicts, out)
    else:
        write_table(verdicts, framework, today, out)
    for row in bad:
        err.write(f"{path}:{row.line}: skipped: {row.reason}\n")
    if bad:
        err.write(f"{len(bad)} row(s) skipped, {len(verdicts)} assessed\n")
        return exit_codes.ROWS_SKIPPED
    return exit_codes.OK
