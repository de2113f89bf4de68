"""`bant-sync serve` as a process: refuses to start without a token; SIGTERM stops it cleanly with exit 0."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from worker import exit_codes
from worker.cli.app import main

TOKEN = "serve-test-token-0123456789abcdef"


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "bant.toml"
    config.write_text(
        f'[state]\ndir = "{tmp_path / "state"}"\n[connections.hub]\ncrm = "hubspot"\nenabled = false\n',
        encoding="utf-8",
    )
    return config


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serve_refuses_to_start_without_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without BANT_SYNC_OPS_TOKEN, serve exits with the config code and a message naming the variable."""
    monkeypatch.delenv("BANT_SYNC_OPS_TOKEN", raising=False)
    monkeypatch.delenv("BANT_SYNC_OPS_TOKEN_FILE", raising=False)
    monkeypatch.delenv("BANT_SYNC_SECRETS_FILE", raising=False)
    code = main(["serve", "--config", str(write_config(tmp_path)), "--port", str(free_port())])
    assert code == exit_codes.CONFIG
    assert "BANT_SYNC_OPS_TOKEN" in capsys.readouterr().err


def get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_until_up(process: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("serve did not start listening within 20 s")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_serve_stops_cleanly_on_signal(tmp_path: Path, sig: signal.Signals) -> None:
    """serve answers /health and authenticated /runs, then exits 0 within seconds of SIGTERM/SIGINT."""
    port = free_port()
    env = {**os.environ, "BANT_SYNC_OPS_TOKEN": TOKEN}
    env.pop("BANT_SYNC_CONFIG", None)
    command = [sys.executable, "-m", "worker.cli", "serve", "--config", str(write_config(tmp_path))]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--log-format", "json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(process, f"{base}/health")
        status, health = get(f"{base}/health")
        assert (status, health["status"]) == (200, "ok")
        assert health["connections"]["hub"]["lease_holder"] is None
        assert get(f"{base}/runs", TOKEN) == (200, {"runs": []})
        assert get(f"{base}/runs")[0] == 401
        process.send_signal(sig)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    _out, err = process.communicate()
    assert TOKEN.encode() not in err
    assert b"stopped cleanly" in err


def test_serve_no_api_stops_on_sigterm(tmp_path: Path) -> None:
    """--no-api needs no token and still exits 0 on SIGTERM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANT_SYNC_")}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worker.cli.app",
            "serve",
            "--config",
            str(write_config(tmp_path)),
            "--no-api",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        assert process.stderr is not None
        line = b""
        while b"scheduler started" not in line and time.monotonic() < deadline:
            line = process.stderr.readline()
            assert line or process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
