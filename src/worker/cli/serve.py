"""`bant-sync serve`: the long-running service — the schedule of every enabled connection plus the ops API.

Connections with `change_events = true` (Salesforce) also have a change-stream thread each
(worker.events.StreamRunner), started after the scheduler.

Shutdown (SIGTERM from systemd/containers, or Ctrl-C): `worker.stop` is set at once, so a run in progress
finishes its current page, checkpoints and ends "stopped"; the HTTP server stops accepting requests;
the change streams are cancelled and their threads joined (each resumes from its saved position next
time); then the scheduler is shut down waiting for its running job, accepted resyncs are joined, and the
process exits 0. The next start resumes from the checkpointed cursor.
"""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

import structlog
import uvicorn

from worker import exit_codes
from worker.config.settings import Settings
from worker.errors import BantSyncError, ConfigError, UsageError
from worker.events import EventCoalescer, StreamRunner
from worker.serve.ops_api import RunLauncher, create_app
from worker.serve.ops_server import server_config
from worker.serve.scheduler import build_coalescer, build_scheduler, build_stream_runner, schedule_reconcile
from worker.service import Worker

log = structlog.get_logger()

NO_OPS_CREDENTIAL_HELP = (
    "ops_token: `serve` needs a bearer token for its ops API: set BANT_SYNC_OPS_TOKEN (or "
    "BANT_SYNC_OPS_TOKEN_FILE naming a file that holds it, or `ops_token` in the secrets file), e.g. "
    "from `openssl rand -hex 32`; or run `serve --no-api` for the schedule alone"
)


class ListenError(BantSyncError):
    """The ops API could not listen on its address (in use, or not ours to bind)."""


class _Server(uvicorn.Server):
    """uvicorn's own SIGTERM/SIGINT handling, plus telling the worker to stop at the same moment."""

    def __init__(self, config: uvicorn.Config, stop: threading.Event) -> None:
        super().__init__(config)
        self._stop = stop

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._stop.set()
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        """Also exit when stop was set before uvicorn took over the signals (a SIGTERM during startup)."""
        return self._stop.is_set() or await super().on_tick(counter)


def _serve_http(
    app_host: str, port: int, worker: Worker, token: str, events: EventCoalescer | None
) -> RunLauncher:
    app = create_app(worker, token, worker.settings.ops_api.max_body_bytes, events=events)
    server = _Server(server_config(app, app_host, port), worker.stop)
    log.info("ops api listening", host=app_host, port=port)
    try:
        server.run()
    except SystemExit:
        worker.stop.set()
        raise ListenError(
            f"the ops API could not listen on {app_host}:{port} (see the log line above): choose another "
            "--port / [ops_api] port, or stop what is using it"
        ) from None
    launcher: RunLauncher = app.state.launcher
    return launcher


def run_serve(args: argparse.Namespace, settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns exit_codes.OK after a clean shutdown."""
    token = settings.ops_token.reveal() if settings.ops_token is not None else ""
    if not args.no_api and not token:
        raise ConfigError([NO_OPS_CREDENTIAL_HELP])
    if not settings.connections:
        raise UsageError(
            "no connection is configured: add a [connections.NAME] table to your config file "
            "(see config/examples/)"
        )
    host = args.host or settings.ops_api.host
    port = settings.ops_api.port if args.port is None else args.port
    worker = Worker(settings)
    shutdown = threading.Event()

    received: list[str] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        """Only sets flags: a log line here deadlocks when the signal lands while the main thread holds the
        log stream's lock (a SIGTERM right after "scheduler started" hung `serve --no-api`)."""
        received.append(signal.Signals(signum).name)
        worker.stop.set()
        shutdown.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    launcher: RunLauncher | None = None
    coalescer: EventCoalescer | None = None
    streams: StreamRunner | None = None
    try:
        scheduler = build_scheduler(worker)
        coalescer = build_coalescer(worker)
        if coalescer is not None:
            streams = build_stream_runner(
                worker, coalescer, lambda name: schedule_reconcile(scheduler, worker, name)
            )
        enabled = [c.name for c in settings.connections.values() if c.enabled]
        if not enabled:
            log.warning("no enabled connection: nothing is scheduled")
        scheduler.start()
        log.info("scheduler started", connections=enabled, jobs=[job.id for job in scheduler.get_jobs()])
        if streams is not None:
            streams.start()
        try:
            if args.no_api:
                while not shutdown.wait(1.0):
                    pass
            else:
                launcher = _serve_http(host, port, worker, token, coalescer)
        finally:
            if received:
                log.info("stopping: the current page finishes and is checkpointed", signal=received[0])
            worker.stop.set()
            if streams is not None:
                streams.stop()
            if coalescer is not None:
                coalescer.close(wait=True)
            scheduler.shutdown(wait=True)
            if launcher is not None:
                launcher.join()
        log.info("stopped cleanly")
        return exit_codes.OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        worker.close()


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "serve",
        parents=[common],
        help="run the scheduled sync service and the ops HTTP API (foreground; stop with SIGTERM)",
        description=(
            "Run every enabled connection on its schedule (an incremental run every "
            "incremental_every_minutes, a full sweep at full_sweep_cron) and serve the ops API "
            "(POST /resync, GET /runs, /runs/ID, /health, /metrics) on [ops_api] host:port, loopback by "
            "default. The API needs BANT_SYNC_OPS_TOKEN. SIGTERM/SIGINT finish the current page, "
            "checkpoint it and exit 0."
        ),
    )
    parser.add_argument("--host", metavar="ADDR", help="ops API address (default: [ops_api] host, 127.0.0.1)")
    parser.add_argument("--port", type=int, metavar="N", help="ops API port (default: [ops_api] port, 8787)")
    parser.add_argument(
        "--no-api", action="store_true", help="run the schedule only, without the HTTP API (no token needed)"
    )
    parser.set_defaults(handler=run_serve)
