"""`bant-sync sandbox` as a process (``python -m sandbox``): the JSON line, signals, config, bad input."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests

from sandbox.cli import main

STARTUP_BUDGET_S = 3.0


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sandbox", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_it_prints_one_json_line_within_three_seconds_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The info line (issue 3's keys) arrives in under 3 s; the sandbox answers; SIGTERM exits 0."""
    started = time.monotonic()
    process = _spawn("--seed", "track-selling", "--write-config", str(tmp_path / "sb.toml"))
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        elapsed = time.monotonic() - started
        info = json.loads(line)
        assert elapsed < STARTUP_BUDGET_S, f"startup took {elapsed:.2f}s"
        assert {"salesforce", "hubspot", "ca_bundle", "control"} <= set(info)
        assert {"instance_url", "login_url", "access_token"} <= set(info["salesforce"])
        assert {"host", "access_token"} <= set(info["hubspot"])
        assert info["control"] == info["hubspot"]["host"] + "/_sandbox"
        assert requests.get(info["control"] + "/info", timeout=10).json() == info
        config = tomllib.loads((tmp_path / "sb.toml").read_text())
        assert config["connections"]["hubspot"]["host"] == info["hubspot"]["host"]
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0
    assert not Path(info["ca_bundle"]).exists()


def test_sigint_also_stops_it_cleanly() -> None:
    """Ctrl-C (SIGINT) is a clean exit 0 without a traceback."""
    process = _spawn("--seed", "empty")
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert "Traceback" not in process.stderr.read()


@pytest.mark.parametrize(
    ("content", "suffix", "fragment"),
    [
        ('[{"kind": "stauts"}]', ".json", "unknown kind"),
        ('[{"kind": "status"}]', ".json", "needs status"),
        ("[{", ".json", "not valid JSON"),
        ('[[faults]]\nkind = "hang"\ncolour = "red"\n', ".toml", "unknown key(s) colour"),
    ],
    ids=["unknown-kind", "missing-parameter", "bad-json", "unknown-key"],
)
def test_a_bad_fault_file_is_one_line_on_stderr_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, suffix: str, fragment: str
) -> None:
    """The error names the file and the problem, with no traceback."""
    path = tmp_path / f"faults{suffix}"
    path.write_text(content)
    assert main(["--faults", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and str(path) in captured.err and fragment in captured.err


def test_a_missing_fault_file_and_an_unknown_seed_are_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Both are named on one stderr line."""
    assert main(["--faults", str(tmp_path / "nope.json")]) == 2
    assert "cannot read it" in capsys.readouterr().err
    assert main(["--seed", "lemonade-stand"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown seed 'lemonade-stand'" in err and "track-selling" in err


def test_help_describes_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """--help is argparse's, under the name bant-sync sandbox, and lists the options."""
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: bant-sync sandbox")
    for option in (
        "--port",
        "--hubspot-port",
        "--seed",
        "--deals",
        "--seed-value",
        "--latency-ms",
        "--faults",
        "--bare",
        "--write-config",
        "--no-rate-limits",
    ):
        assert option in text


def test_a_valid_fault_file_arms_its_rules(tmp_path: Path) -> None:
    """Rules from --faults are live: the first HubSpot call gets the injected 503."""
    path = tmp_path / "faults.json"
    path.write_text(json.dumps([{"kind": "status", "crm": "hubspot", "status": 503, "nth": 1}]))
    process = _spawn("--seed", "empty", "--faults", str(path))
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        headers = {"Authorization": f"Bearer {info['hubspot']['access_token']}"}
        url = info["hubspot"]["host"] + "/crm/v3/owners"
        assert [requests.get(url, headers=headers, timeout=10).status_code for _ in range(2)] == [503, 200]
    finally:
        process.terminate()
        process.wait(timeout=10)
