"""The one error tree and `bant-sync check` without a CRM: every configuration problem in one run."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors import errors as connector_errors
from rules import errors as root
from rules.framework import FrameworkError
from tests.conftest import ROOT
from worker import errors, exit_codes
from worker.cli import check as check_cmd
from worker.cli.app import main
from worker.cli.check import CheckReport
from worker.config.settings import Settings, StateSettings
from worker.state import errors as state_errors

EIGHT_MISTAKES = """
[logging]
level = "verbose"

[state]
url = "postgress://bant@db/bant"

[rules]
timezone = "Europe/Berln"

[run]
lease_ttl_secs = 900

[ops_api]
port = 70000

[connections.sf]
crm = "salesforce"
auth = "jwt_bearer"
fields = { budgt = "Budget__c" }

[connections.hs]
crm = "hubspot"
auth = "private-app"
"""


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No BANT_SYNC_* variable of the machine running the tests reaches the settings."""
    import os

    for name in list(os.environ):
        if name.startswith("BANT_SYNC_"):
            monkeypatch.delenv(name)


def test_every_error_class_is_under_the_one_root() -> None:
    """Configuration, connector, state and framework errors all derive from rules.errors.BantSyncError."""
    classes = [
        errors.UsageError,
        errors.ConfigError,
        errors.InputFileError,
        FrameworkError,
        connector_errors.ConnectorError,
        connector_errors.SchemaDriftError,
        connector_errors.QuotaExhaustedError,
        state_errors.StateError,
        state_errors.LeaseHeldError,
    ]
    assert [c for c in classes if not issubclass(c, root.BantSyncError)] == []
    assert errors.BantSyncError is root.BantSyncError
    assert issubclass(FrameworkError, ValueError)
    assert not issubclass(errors.RunStopped, root.BantSyncError)


def test_exit_codes_of_the_tree_match_the_documented_ones() -> None:
    """Each branch carries the documented exit code; rules.errors' copies equal worker.exit_codes."""
    assert (root.FAILURE, root.USAGE, root.CONFIG) == (
        exit_codes.FAILURE,
        exit_codes.USAGE,
        exit_codes.CONFIG,
    )
    assert (root.LEASE_HELD, root.QUOTA_STOPPED, root.ROWS_REJECTED) == (
        exit_codes.LEASE_HELD,
        exit_codes.QUOTA_STOPPED,
        exit_codes.ROWS_REJECTED,
    )
    assert errors.ConfigError(["x: y"]).exit_code == exit_codes.CONFIG
    assert FrameworkError("f.toml", ["a: b"]).exit_code == exit_codes.CONFIG
    assert state_errors.StateConfigError("bad").exit_code == exit_codes.CONFIG
    assert state_errors.StateUnavailableError("down").exit_code == exit_codes.FAILURE
    assert connector_errors.QuotaExhaustedError("spent").exit_code == exit_codes.QUOTA_STOPPED
    assert connector_errors.AuthenticationError("no").exit_code == exit_codes.FAILURE


def test_render_lists_problems_once_and_says_what_to_do() -> None:
    """A rendered ConfigError has its problems one a line, once, and the what-to-do line."""
    text = errors.ConfigError(["a: wrong", "b: worse"]).render()
    assert text.count("  - a: wrong") == 1 and text.count("  - b: worse") == 1
    assert text.splitlines()[-1].startswith("what to do: ")


def test_check_reports_eight_mistakes_in_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Eight mistakes across every section, connector settings included: all eight, exit 3, no traceback."""
    config = tmp_path / "bad.toml"
    config.write_text(EIGHT_MISTAKES, encoding="utf-8")
    code = main(["--config", str(config), "check"])
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert code == exit_codes.CONFIG
    assert "Traceback" not in output
    assert "8 problem(s)" in output
    for key in (
        "logging",
        "state.url",
        "rules.timezone 'Europe/Berln'",
        "run.lease_ttl_secs",
        "ops_api.port",
        "connections.sf.auth",
        "connections.sf.fields.budgt",
        "connections.hs.auth",
    ):
        assert key in output, key
    assert "did you mean 'private_app'" in output
    assert "did you mean 'Europe/Berlin'" in output
    assert "did you mean 'lease_ttl_seconds'" in output
    assert "did you mean 'budget'" in output


def test_a_broken_framework_file_is_listed_with_the_settings_problems(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The eight mistakes plus a framework file with a typo of its own: all nine in one run, so fixing the
    settings does not reveal a framework problem in a second round."""
    framework = tmp_path / "ours.toml"
    bant = (ROOT / "config" / "frameworks" / "bant.toml").read_text(encoding="utf-8")
    framework.write_text(bant.replace("qualify_out_after_days", "qualify_out_after_dayz"), encoding="utf-8")
    config = tmp_path / "bad.toml"
    text = EIGHT_MISTAKES.replace('crm = "hubspot"\n', f'crm = "hubspot"\nframework = "{framework}"\n')
    config.write_text(text, encoding="utf-8")
    code = main(["--config", str(config), "check"])
    output = "".join(capsys.readouterr())
    assert code == exit_codes.CONFIG
    assert "Traceback" not in output
    assert "9 problem(s)" in output
    assert f"connections.hs.framework: {framework}: qualify_out_after_dayz: unknown key" in output


def test_check_exit_code_prefers_configuration_problems() -> None:
    """Exit 3 when any configuration problem was found, 1 for readiness problems only, 0 for none."""
    assert CheckReport().exit_code == exit_codes.OK
    assert CheckReport(readiness=["hs: down"]).exit_code == exit_codes.FAILURE
    assert CheckReport(config=["hs: no secret"], readiness=["sf: down"]).exit_code == exit_codes.CONFIG


def test_check_reports_a_missing_framework_and_an_unreachable_state_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A framework that does not exist is a configuration problem; a state store that cannot open is not."""

    def refuse(url: str) -> None:
        raise state_errors.StateUnavailableError("the state store at x failed (refused)")

    monkeypatch.setattr("worker.cli.check.StateStore.open", refuse)
    settings = Settings(state=StateSettings(dir=str(tmp_path)))
    settings = Settings(
        state=settings.state, rules=type(settings.rules)(framework="spiced"), config_dir=str(tmp_path)
    )
    report = check_cmd.check(settings)
    assert [line.split(":")[0] for line in report.config] == ["framework 'spiced'"]
    assert report.readiness[0].startswith("state store sqlite:///")
    assert "refused" in report.readiness[0]


def test_check_help_says_what_it_checks(capsys: pytest.CaptureFixture[str]) -> None:
    """`bant-sync check --help` names the configuration, the state store, the CRMs and the exit codes."""
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for words in ("whole configuration", "connector settings", "state store", "setup check", "Exit 0"):
        assert words in text, words
