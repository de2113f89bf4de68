"""`bant-sync evaluate` end to end through the CLI entry point."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from worker import exit_codes
from worker.cli.app import main

SAMPLE = ROOT / "config" / "examples" / "deals.csv"
HEADER = "id,name,owner_id,stage,deal_type,amount,close_date,budget,authority,need,timing,flagged_since\n"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["--log-level", "error", "evaluate", *args, "--today", "2026-11-27"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_sample_table(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped sample prints counts per status and the flagged deals, exit 0."""
    code, out, err = run(capsys, str(SAMPLE))
    assert code == exit_codes.OK, err
    assert "9 deals assessed against BANT on 2026-11-27" in out
    assert "poc_unqualified" in out and "OPP-1002" in out
    assert "Budget: 'TBD' is a placeholder" in out


def test_jsonl_has_one_object_per_deal(capsys: pytest.CaptureFixture[str]) -> None:
    """--format jsonl prints one object per deal with id, status, missing, score and reasons."""
    code, out, _ = run(capsys, str(SAMPLE), "--format", "jsonl")
    records = [json.loads(line) for line in out.splitlines()]
    assert code == exit_codes.OK
    assert len(records) == 9
    by_id = {r["id"]: r for r in records}
    assert by_id["OPP-1002"]["status"] == "poc_unqualified"
    assert by_id["OPP-1002"]["missing"] == ["budget"]
    assert by_id["OPP-1001"] == {**by_id["OPP-1001"], "status": "qualified", "missing": [], "score": 100}


def test_csv_output(capsys: pytest.CaptureFixture[str]) -> None:
    """--format csv is a spreadsheet with a header row."""
    _, out, _ = run(capsys, str(SAMPLE), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0].keys() >= {"id", "status", "missing", "score", "reasons"}
    assert {r["id"]: r["missing"] for r in rows}["OPP-1003"] == "budget;authority;need;timing"


def test_bad_rows_are_reported_and_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Bad rows name their line and reason; the rest are assessed; the exit code says rows were skipped."""
    path = tmp_path / "deals.csv"
    path.write_text(
        HEADER
        + "D1,Good,r,Qualification,POC,1,2027-01-01,1000,CEO,needs a long enough need,2027-01-01,\n"
        + ",No id,r,Qualification,,1,2027-01-01,1,CEO,x,2027-01-01,\n"
        + "D3,Bad date,r,Qualification,,1,31/12/2026,1,CEO,x,2027-01-01,\n"
        + "D1,Duplicate,r,Qualification,,1,2027-01-01,1,CEO,x,2027-01-01,\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, str(path), "--format", "jsonl")
    assert code == exit_codes.ROWS_SKIPPED
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["D1"]
    assert f"{path}:3: skipped: missing id" in err
    assert f"{path}:4: skipped: close_date '31/12/2026' is not a date" in err
    assert f"{path}:5: skipped: duplicate id 'D1'" in err


def test_jsonl_input_with_extra_fields_and_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON Lines input works, keeps extra columns for custom frameworks, and reports a broken line."""
    path = tmp_path / "deals.jsonl"
    lines = [
        {
            "id": "M1",
            "stage": "Negotiation/Review",
            "need": "Month-end close takes 12 days",
            "authority": "CFO",
            "metrics": "close in 5 days",
            "champion": "Controller",
            "decision_criteria": "SOC2, SSO, NetSuite",
            "decision_process": "yes",
        },
        {"id": "M2", "stage": "Needs Analysis", "need": "Month-end close takes 12 days"},
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n{broken\n", encoding="utf-8")
    code, out, err = run(capsys, str(path), "--framework", "meddic", "--format", "jsonl")
    statuses = {json.loads(line)["id"]: json.loads(line)["status"] for line in out.splitlines()}
    assert statuses == {"M1": "qualified", "M2": "needs_qualification"}
    assert code == exit_codes.ROWS_SKIPPED
    assert ":3: skipped: not valid JSON" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"", "the file is empty"),
        (b"\xff\xfe\x00bad", "not UTF-8 text"),
        (b"name,stage\nx,y\n", "has no 'id' column"),
    ],
    ids=["missing", "empty", "encoding", "no-id-column"],
)
def test_unreadable_input_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, message: str
) -> None:
    """A missing, empty, badly encoded or headerless file is a one-line error, no traceback."""
    path = tmp_path / "in.csv"
    if content is not None:
        path.write_bytes(content)
    code, _, err = run(capsys, str(path))
    assert code == exit_codes.USAGE
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_framework(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown framework name lists the available ones."""
    code, _, err = run(capsys, str(SAMPLE), "--framework", "spiced")
    assert code == exit_codes.CONFIG
    assert "framework 'spiced' not found (available: bant, meddic" in err


def test_bad_today_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """--today must be YYYY-MM-DD."""
    with pytest.raises(SystemExit) as info:
        main(["evaluate", str(SAMPLE), "--today", "27/11/2026"])
    assert info.value.code == 2
    assert "is not a date in YYYY-MM-DD form" in capsys.readouterr().err


GAMING = ROOT / "config" / "examples" / "gaming.csv"


def test_every_gaming_attempt_is_missing_with_its_value_quoted(capsys: pytest.CaptureFixture[str]) -> None:
    """Each row of the gaming example misses exactly the criterion it games, with a reason quoting it."""
    with GAMING.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    code, out, err = run(capsys, str(GAMING), "--format", "jsonl")
    assert code == exit_codes.OK, err
    records = {r["id"]: r for r in map(json.loads, out.splitlines())}
    assert len(records) == len(rows) >= 10
    for row in rows:
        criterion = row["name"].removeprefix("Gamed ").partition(":")[0]
        record = records[row["id"]]
        assert record["status"] == "needs_qualification", row["id"]
        assert record["missing"] == [criterion], row["id"]
        assert f"'{row[criterion].strip()}'" in record["reasons"][0], row["id"]


def test_the_issue_s_gaming_values_are_all_in_the_example() -> None:
    """The example keeps every value the issue reported as passing, so the test above covers them."""
    text = GAMING.read_text(encoding="utf-8")
    for value in [
        "no budget yet",
        "not sure yet",
        "no idea",
        "TBC",
        "TBA",
        "T.B.D.",
        "N/A.",
        "a" * 20,
        "Q1 2024",
        "12/31/2024",
    ]:
        assert f",{value}," in text, value


@pytest.mark.parametrize(
    ("broken", "line", "message"),
    [
        (
            'D2,"Broken,r,Qualification,,1,2027-01-01,1000,CEO,a long enough need,2027-01-01,\n',
            3,
            "unbalanced quote: a quoted value starts on this line and is never closed",
        ),
        (
            'D2,"Bro"ken,r,Qualification,,1,2027-01-01,1000,CEO,a long enough need,2027-01-01,\n',
            3,
            "unbalanced quote: a quoted value starts on this line and its closing quote is followed",
        ),
    ],
    ids=["never-closed", "stray-quote"],
)
def test_an_unbalanced_quote_is_a_bad_row_not_fewer_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], broken: str, line: int, message: str
) -> None:
    """A stray quote is reported with its line and exit 4; the rows after it are still assessed."""
    good = "D{n},Good,r,Qualification,,1,2027-01-01,1000,CEO,needs a long enough need,2027-01-01,\n"
    path = tmp_path / "deals.csv"
    path.write_text(
        HEADER + good.format(n=1) + broken + good.format(n=3) + good.format(n=4), encoding="utf-8"
    )
    code, out, err = run(capsys, str(path), "--format", "jsonl")
    assert code == exit_codes.ROWS_SKIPPED
    assert [json.loads(row)["id"] for row in out.splitlines()] == ["D1", "D3", "D4"]
    assert f"{path}:{line}: skipped: {message}" in err
    assert "1 row(s) skipped, 3 assessed" in err


def test_a_quote_that_swallows_later_rows_is_caught(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An opened quote closed rows later (so the record has the wrong number of values) is reported at the
    line it opens on, and the swallowed rows are read on their own."""
    good = "D{n},Good,r,Qualification,,1,2027-01-01,1000,CEO,needs a long enough need,2027-01-01,\n"
    path = tmp_path / "deals.csv"
    path.write_text(
        HEADER
        + good.format(n=1)
        + 'D2,"Broken,r,Qualification,,1,2027-01-01,1000,CEO,a long enough need,2027-01-01,\n'
        + good.format(n=3)
        + 'D4,Quoted,r,Qualification,,1,2027-01-01,1000,CEO,"needs a long enough need",2027-01-01,\n',
        encoding="utf-8",
    )
    code, out, err = run(capsys, str(path), "--format", "jsonl")
    assert code == exit_codes.ROWS_SKIPPED
    assert [json.loads(row)["id"] for row in out.splitlines()] == ["D1", "D3", "D4"]
    assert f"{path}:3: skipped: unbalanced quote" in err


def test_a_quoted_value_may_span_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A multi-line note inside quotes, with one value per column, is a normal row."""
    path = tmp_path / "deals.csv"
    path.write_text(
        HEADER
        + 'D1,Notes,r,Qualification,,1,2027-01-01,1000,CEO,"Replace the nightly ETL\n'
        + 'that misses SLAs",2027-01-01,\n'
        + "D2,Good,r,Qualification,,1,2027-01-01,1000,CEO,needs a long enough need,2027-01-01,\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, str(path), "--format", "jsonl")
    assert code == exit_codes.OK, err
    assert [json.loads(row)["status"] for row in out.splitlines()] == ["qualified", "qualified"]


def test_an_export_with_snooze_columns_is_judged_with_its_snooze(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`snooze_until` and `snooze_reason` columns are read as on the CRM: a valid snooze shows `snoozed`,
    one on a POC stays flagged, and a bad snooze date is a bad row naming the column."""
    path = tmp_path / "deals.csv"
    path.write_text(
        HEADER.rstrip("\n")
        + ",snooze_until,snooze_reason\n"
        + "D1,Waits,r,Qualification,,1,2027-01-01,TBD,CEO,needs a long enough need,2027-01-01,,"
        + "2026-12-10,Budget cycle opens in January\n"
        + "D2,Pilot,r,Qualification,POC,1,2027-01-01,TBD,CEO,needs a long enough need,2027-01-01,,"
        + "2026-12-10,Budget cycle opens in January\n"
        + "D3,Typo,r,Qualification,,1,2027-01-01,TBD,CEO,needs a long enough need,2027-01-01,,next week,x\n",
        encoding="utf-8",
    )
    code, out, err = run(capsys, str(path), "--format", "jsonl")
    assert code == exit_codes.ROWS_SKIPPED
    statuses = {row["id"]: row["status"] for row in map(json.loads, out.splitlines())}
    assert statuses == {"D1": "snoozed", "D2": "poc_unqualified"}
    assert f"{path}:4: skipped: snooze_until 'next week' is not a date" in err
