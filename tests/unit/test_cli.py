"""The command line: help, global options anywhere, and `sandbox` options passed through untouched."""

from __future__ import annotations

import pytest

from worker import exit_codes
from worker.cli import main
from worker.run_model import RunSummary
from worker.sync_cmd import exit_code_for, format_summary


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`bant-sync --help` names each command and the exit codes."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for command in ("evaluate", "sync", "status", "setup", "serve", "demo", "sandbox"):
        assert command in out
    assert "5 lease held by another run" in out


@pytest.mark.parametrize("prefix", [[], ["--log-level", "error"]], ids=["plain", "after-global-option"])
def test_sandbox_options_reach_the_sandbox(capsys: pytest.CaptureFixture[str], prefix: list[str]) -> None:
    """`bant-sync sandbox --seed NAME` is parsed by the sandbox: an unknown seed is its one-line error."""
    code = main([*prefix, "sandbox", "--seed", "no-such-seed"])
    err = capsys.readouterr().err
    assert code == 2
    assert "no-such-seed" in err
    assert "unrecognized arguments" not in err
    assert len(err.strip().splitlines()) == 1


def _summary_with(rejections: int) -> RunSummary:
    summary = RunSummary("run-1", "sf", "full", "succeeded", False, "2026-11-27T09:00:00+00:00")
    summary.deals = {"read": 20, "written": 20 - rejections, "rejected": rejections}
    summary.rejections = [
        {
            "deal_id": f"006{i:02d}",
            "operation": "status",
            "code": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": f"Close Date\nmust be in the future ({i})",
        }
        for i in range(rejections)
    ]
    return summary


def test_sync_summary_lists_the_first_rejections() -> None:
    """The human `sync` summary names the first 10 refused rows (operation, deal, code, message on one
    line) and how many more there are; `--json` carries them all."""
    summary = _summary_with(12)
    text = format_summary(summary)
    assert "  rejected rows (12):" in text
    assert (
        "    status        00600  FIELD_CUSTOM_VALIDATION_EXCEPTION: Close Date must be in the future (0)"
        in text
    )
    assert "00609" in text and "00610" not in text
    assert text.endswith("    ... and 2 more")
    assert len(summary.as_json()["rejections"]) == 12
    assert exit_code_for(summary) == exit_codes.ROWS_REJECTED


def test_sync_summary_without_rejections_has_no_rejection_lines() -> None:
    """A run nothing was refused in prints no rejection block, and its JSON has an empty list."""
    summary = _summary_with(0)
    assert "rejected rows" not in format_summary(summary)
    assert summary.as_json()["rejections"] == []
    assert exit_code_for(summary) == exit_codes.OK
