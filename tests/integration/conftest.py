"""Whole runs against the sandbox CRM: a seeded sandbox, its generated config, and a Worker over it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog

from sandbox import People, Sandbox, SandboxOptions, TaskInfo
from tests.timing import FakeTime
from worker.cli.app import main
from worker.config.loader import load_settings
from worker.service import Worker
from worker.sync.run_model import RunRequest, RunSummary


class CrmView(People):
    """Reads one CRM of the sandbox in CRM-neutral terms, for assertions, and acts on it the way a rep or
    an admin would: the sandbox's people API (`sb.people(crm)`), plus the task lookups tests use."""

    @property
    def sb(self) -> Sandbox:
        return self.sandbox

    def tasks(self) -> list[dict[str, Any]]:
        """Every bant-sync task: deal id, key, open or not."""
        return [{"deal_id": t["deal_id"], "key": t["key"], "open": t["open"]} for t in self.bant_tasks()]

    def task_details(self) -> list[TaskInfo]:
        """Every bant-sync task with what a rep sees: id, deal_id, key, open, status (the CRM's value),
        subject, body, due (a date), priority (the CRM's value), owner, modified (the CRM's stamp)."""
        return self.bant_tasks()

    def tasks_of(self, deal_id: str) -> list[TaskInfo]:
        """The deal's bant-sync tasks (task_details), open or not."""
        return [t for t in self.bant_tasks() if t["deal_id"] == deal_id]

    def open_tasks_of(self, deal_id: str) -> list[TaskInfo]:
        """The deal's open bant-sync tasks (task_details)."""
        return [t for t in self.tasks_of(deal_id) if t["open"]]

    def task(self, task_id: str) -> TaskInfo:
        """One bant-sync task (task_details) by its CRM id."""
        found = [t for t in self.bant_tasks() if t["id"] == task_id]
        assert len(found) == 1, f"no bant-sync task {task_id}"
        return found[0]


@dataclass
class Env:
    sb: Sandbox
    worker: Worker
    view: CrmView
    crm: str
    config: Path
    time: FakeTime = field(default_factory=FakeTime)
    """The worker's clock; `advance_days` moves it together with the sandbox's."""
    connection: str = ""
    """The connection `run` syncs; empty means the one named like the CRM (as the sandbox writes it)."""

    def run(self, mode: str = "incremental", dry_run: bool = False, **kw: Any) -> RunSummary:
        request = RunRequest(self.connection or self.crm, mode=mode, dry_run=dry_run, **kw)
        return self.worker.run(request)

    def writes(self) -> int:
        """CRM write requests in the sandbox's request log since the last reset."""
        return len(self.write_requests())

    def write_requests(self) -> list[str]:
        """The CRM write requests since the last reset, as "METHOD path" (for assertion messages)."""
        return [
            f"{r['method']} {r['path']}"
            for r in self.sb.requests()
            if r["method"] in {"POST", "PATCH", "PUT", "DELETE"}
            and "/search" not in str(r["path"])
            and "/batch/read" not in str(r["path"])
            and "oauth2" not in str(r["path"])
        ]

    def advance_days(self, days: float) -> None:
        """Let days pass: the sandbox clock and the worker's clock move together."""
        self.time.shift += timedelta(days=days)
        self.sb.clock.advance(days * 86_400)

    def today(self) -> date:
        """The worker's today (the sandbox configs assess in UTC)."""
        return self.time.now().astimezone(UTC).date()

    def restart(
        self,
        config: Path | None = None,
        environ: Mapping[str, str] | None = None,
        connection: str | None = None,
    ) -> Worker:
        """A new bant-sync process: close the worker and open another on `config` (default: the same
        file, re-read) with `environ` as its environment, on the same clock; `connection` switches the
        connection `run` syncs."""
        self.worker.close()
        if config is not None:
            self.config = config
        if connection is not None:
            self.connection = connection
        settings = load_settings(str(self.config), environ=dict(environ or {}))
        self.worker = Worker(settings, clock=self.time.now, sleep=self.time.sleep)
        return self.worker

    def rename_connection(self, new: str) -> None:
        """Ops rename the connection in the config file (and its secrets file), then restart bant-sync
        syncing it under the new name."""
        old = self.connection or self.crm
        for path in (self.config, self.config.with_name(f"{self.config.stem}.secrets.toml")):
            text = path.read_text(encoding="utf-8")
            assert f"[connections.{old}]" in text, f"{path} has no [connections.{old}] table"
            path.write_text(text.replace(f"[connections.{old}]", f"[connections.{new}]"), encoding="utf-8")
        self.restart(connection=new)


def cli(env: Env, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`bant-sync ARGS` on the env's config: (exit code, stdout, stderr). structlog's configuration is put
    back afterwards (the CLI's `--log-level error` filter would otherwise hide later tests' warnings from
    their log captures), and what earlier runs logged is dropped first."""
    saved = structlog.get_config()
    capsys.readouterr()
    try:
        code = main(["--config", str(env.config), "--log-level", "error", *args])
    finally:
        structlog.configure(**saved)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@contextmanager
def sandbox_env(crm: str, tmp_path: Path, options: SandboxOptions, page: int | None = None) -> Iterator[Env]:
    """A started sandbox, its generated config (with `page` deals a page on both CRMs when given: HubSpot
    search pages and worker pages, Salesforce query batches) and a Worker on a fake clock over it."""
    with Sandbox.start(options) as sb:
        config = tmp_path / "sandbox.toml"
        sb.write_config(config)
        if page is not None:
            text = config.read_text(encoding="utf-8")
            text = text.replace(
                'crm = "hubspot"\n', f'crm = "hubspot"\npage_size = {page}\ndeals_per_page = {page}\n'
            )
            text = text.replace('crm = "salesforce"\n', f'crm = "salesforce"\nquery_batch_size = {page}\n')
            config.write_text(text, encoding="utf-8")
        time = FakeTime()
        worker = Worker(load_settings(str(config), environ={}), clock=time.now, sleep=time.sleep)
        env = Env(sb, worker, CrmView(sb, crm), crm, config, time)
        try:
            yield env
        finally:
            env.worker.close()


@pytest.fixture(params=["salesforce", "hubspot"])
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Env]:
    options = SandboxOptions(seed="track-selling", seed_value=7, enforce_rate_limits=False)
    with sandbox_env(str(request.param), tmp_path, options) as env:
        yield env
