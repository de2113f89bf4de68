"""A console served the way `serve` serves it (the ops API app on uvicorn with `serve`'s limits) on a free
loopback port, over a worker on the sandbox CRM: for the browser tests and the docs screenshot."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from sandbox import SandboxOptions
from sandbox.faults import FaultRule
from tests.integration.conftest import Env, sandbox_env
from worker.serve.ops_api import RunLauncher, create_app
from worker.serve.ops_server import server_config
from worker.sync.run_model import RunSummary

TOKEN = "console-browser-token-0123456789abcdef"
CHROMIUM = "/usr/bin/chromium"
REJECTED_CODE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
REJECTED_MESSAGE = "Close Date must be in the future"


@dataclass
class Console:
    env: Env
    url: str
    """The console's address, e.g. http://127.0.0.1:PORT/ui"""
    launcher: RunLauncher
    rejected_run: RunSummary
    """A full run in which the CRM refused two status writes (a validation rule)."""


def run_with_rejections(env: Env) -> RunSummary:
    """A full run whose status write for rows 0 and 2 of its first batch the CRM refuses."""
    path = r"/composite/sobjects$" if env.crm == "salesforce" else r"/deals/batch/update$"
    env.sb.add_fault(
        FaultRule(
            kind="partial_batch",
            crm=env.crm,
            path=path,
            rows=(0, 2),
            times=1,
            error_code=REJECTED_CODE,
            message=REJECTED_MESSAGE,
        )
    )
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    assert len(summary.rejections) == 2, summary.rejections
    return summary


@contextmanager
def console_server(tmp_path: Path, crm: str = "hubspot") -> Iterator[Console]:
    """The sandbox (one CRM), a full run with two rejections, and the ops API with its console on uvicorn
    in a thread, listening on a socket bound before it starts (so no wait for it to come up)."""
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False, crms=(crm,))
    with sandbox_env(crm, tmp_path, options) as env:
        rejected = run_with_rejections(env)
        app = create_app(env.worker, TOKEN, env.worker.settings.ops_api.max_body_bytes)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(server_config(app, "127.0.0.1", port))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="console", daemon=True)
        thread.start()
        launcher: RunLauncher = app.state.launcher
        try:
            yield Console(env, f"http://127.0.0.1:{port}/ui", launcher, rejected)
        finally:
            server.should_exit = True
            thread.join(15)
            launcher.join(15)
            sock.close()
