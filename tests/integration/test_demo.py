"""`bant-sync demo` end to end: both CRMs synced, rerun, reps at work, the nightly sweep repairing it all
and the promise checked in the CRM; and the promise check itself, holding and broken."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sandbox import People
from tests.integration.conftest import Env
from worker import exit_codes
from worker.cli.app import main
from worker.cli.demo import promise_report


def _section(out: str, crm: str) -> str:
    start = out.index(f"== {crm}: full sync")
    end = out.find("\n== ", start + 1)
    return out[start:] if end < 0 else out[start:end]


def test_demo_shows_reps_at_work_and_the_promise(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Per CRM: six rep actions, the sweep recreates/reopens/completes/flags 1 each, honours one snooze and
    refuses one on a POC (saying who snoozed, by name, and why the POC's was refused), the promise holds;
    then the outcome report from the closed POCs' history, written as HTML."""
    code = main(["demo", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == exit_codes.OK, out
    for crm in ("salesforce", "hubspot"):
        section = _section(out, crm)
        assert "nothing rewritten, no duplicate task" in section
        assert section.count("    - a rep ") == 6, section
        sweep = (
            "  the nightly sweep (a full sync): recreated 1, reopened 1, completed 1, flagged 1, snoozed 1, "
            "refused 1  ("
        )
        assert sweep in section
        assert '    the reopened task now starts: "Reopened by bant-sync: ' in section
        assert "is still missing" in section
        assert "    the snoozed deal's task was completed with: \"Snoozed by Maya Chen until " in section
        assert '    the POC stays flagged; its task says: "Snooze ignored: POCs cannot be snoozed' in section
        assert (
            "  the promise holds: 88 unqualified deals, 88 open follow-up tasks, exactly one on each\n"
            in section
        )
        assert "unexpected" not in section and "BROKEN" not in section
        report = out[out.index(f"== {crm}: does qualifying pay off?") :]
        assert "    qualified at entry         20 closed     16 won  win rate  80% (95% 58%–92%)\n" in report
        assert "    unqualified at entry       65 closed      3 won  win rate   5% (95% 2%–13%)\n" in report
        assert f"  report with charts: {(tmp_path / crm / 'report.html').resolve()}\n" in report
        assert (tmp_path / crm / "report.html").is_file()


def test_demo_fails_when_the_sweep_does_not_do_its_part(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A BANT edit that never lands leaves a task the sweep cannot complete: the demo says so and exits 1."""
    monkeypatch.setattr(People, "fix_bant", lambda self, deal_id: None)
    code = main(["demo", "--report-dir", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == exit_codes.FAILURE
    assert "recreated 1, reopened 1, completed 0, flagged 1, snoozed 1, refused 1" in out
    assert "reported tasks {'created': 2, 'reopened': 1, 'completed': 1}, expected" in out


def test_promise_report_counts_the_crm(env: Env) -> None:
    """The promise check reads the CRM: a deleted task breaks it, the next full sweep mends it."""
    assert env.run("full").status == "succeeded"
    people = env.sb.people(env.crm)
    out = io.StringIO()
    assert promise_report(out, people)
    assert out.getvalue() == (
        "  the promise holds: 89 unqualified deals, 89 open follow-up tasks, exactly one on each\n"
    )
    people.delete_task(people.bant_tasks()[0]["id"])
    out = io.StringIO()
    assert not promise_report(out, people)
    assert out.getvalue() == (
        "  the promise is BROKEN: 89 unqualified deals, 88 open follow-up tasks, "
        "88 of those deals with exactly one\n"
    )
    assert env.run("full").status == "succeeded"
    assert promise_report(io.StringIO(), people)
