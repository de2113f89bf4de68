"""The command line: help, global options anywhere, `sandbox` options passed through untouched, and the one
error boundary (user errors as one message, bugs as a bug report)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import QuotaExhaustedError
from worker import exit_codes
from worker.cli import app as cli_module
from worker.cli.app import main
from worker.cli.sync import exit_code_for, format_summary
from worker.config.settings import Settings
from worker.errors import ConfigError
from worker.state.errors import LeaseHeldError, StateUnavailableError
from worker.sync.run_model import RunSummary


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`bant-sync --help` names each command and the exit codes."""
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0
    for command in ("evaluate", "sync", "status", "setup", "check", "serve", "demo", "sandbox"):
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


def _handler_raising(error: BaseException) -> Any:
    def handler(args: Any, settings: Any) -> int:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (StateUnavailableError("the state store at db failed"), exit_codes.FAILURE),
        (LeaseHeldError("run-1", datetime(2026, 1, 1, tzinfo=UTC)), exit_codes.LEASE_HELD),
        (QuotaExhaustedError("the API allocation is spent"), exit_codes.QUOTA_STOPPED),
        (ConfigError(["rules.timezone: unknown"]), exit_codes.CONFIG),
    ],
)
def test_every_user_error_is_one_message_with_its_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: BaseException, code: int
) -> None:
    """State, connector and configuration errors all end in one `bant-sync: error:` line, no traceback."""
    monkeypatch.setattr(cli_module, "load_settings", lambda path: Settings())
    parser = cli_module.build_parser
    monkeypatch.setattr(cli_module, "build_parser", lambda: _with_handler(parser(), _handler_raising(error)))
    assert cli_module.main(["status"]) == code
    captured = capsys.readouterr()
    assert captured.err.count("bant-sync: error:") == 1
    assert "Traceback" not in captured.out + captured.err


def _with_handler(parser: argparse.ArgumentParser, handler: Any) -> argparse.ArgumentParser:
    original = parser.parse_args

    def parse_args(arguments: Any = None) -> argparse.Namespace:
        args = original(arguments)
        args.handler = handler
        return args

    parser.parse_args = parse_args  # type: ignore[method-assign, assignment]
    return parser


def test_an_unexpected_exception_is_called_a_bug_before_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A non-BantSyncError is a bug: the CLI says so, shows the traceback and exits 1."""
    monkeypatch.setattr(cli_module, "load_settings", lambda path: Settings())
    parser = cli_module.build_parser
    boom = _handler_raising(KeyError("oops"))
    monkeypatch.setattr(cli_module, "build_parser", lambda: _with_handler(parser(), boom))
    assert cli_module.main(["status"]) == exit_codes.FAILURE
    err = capsys.readouterr().err
    assert err.index("this is a bug, please report it") < err.index("Traceback")
    assert "KeyError: 'oops'" in err


def test_sandbox_needs_no_configuration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`bant-sync sandbox` is an ordinary subcommand that reads no bant-sync config: a broken config file
    does not stop it (here it stops at its own option check, an unknown seed)."""
    broken = tmp_path / "broken.toml"
    broken.write_text("[run]\nlease_ttl_secs = 1\n", encoding="utf-8")
    code = main(["--config", str(broken), "sandbox", "--seed", "no-such-seed"])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown seed" in err and "lease_ttl" not in err
