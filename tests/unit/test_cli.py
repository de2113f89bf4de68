"""The command line: help, global options anywhere, and `sandbox` options passed through untouched."""

from __future__ import annotations

import pytest

from worker.cli import main


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
