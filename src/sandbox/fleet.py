"""Many customers' CRMs in one process: N sandboxes, each a Salesforce org and a HubSpot portal of its own.

A bant-sync serving a RevOps agency or a SaaS vendor runs hundreds of connections, each a different org or
portal with its own tokens, rate limits, daily allocation and data. To test that on one machine the fleet
starts one `Sandbox` per account (accounts `options.account` .. `options.account + N - 1`, see
`sandbox.accounts`): each has its own ports, CA, tokens, limiter, request log, clock and seeded data, so a
token of one account is refused by another and one portal's exhausted burst window leaves the others
answering. Nothing is shared but the process, which is the point: a few MB and a few tens of ms an account
(docs/sandbox.md, "Many accounts") instead of a process each.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType

from sandbox.configfile import ConnectionPair, write_connections
from sandbox.memory import release_free_memory
from sandbox.options import SandboxOptions
from sandbox.sandbox import Sandbox


class SandboxFleet:
    """Start with :meth:`start`; use as a context manager or call :meth:`stop`."""

    def __init__(self, accounts: list[Sandbox]) -> None:
        self.accounts = accounts
        """One sandbox an account, in account order."""
        self._width = _width(accounts[-1].account.number) if accounts else 3

    @classmethod
    def start(cls, accounts: int, options: SandboxOptions | None = None) -> SandboxFleet:
        """`accounts` sandboxes with `options` each (their `account` numbered from `options.account`). Every
        account picks free ports, so fixed ones are refused when there is more than one account."""
        base = options or SandboxOptions()
        if accounts < 1:
            raise ValueError(f"a fleet has at least 1 account, not {accounts}")
        fixed = [name for name in ("port", "hubspot_port", "pubsub_port") if getattr(base, name)]
        if fixed and accounts > 1:
            ports = ", ".join(fixed)
            raise ValueError(f"a fleet of {accounts} accounts picks free ports: leave {ports} at 0")
        numbers = range(base.account, base.account + accounts)
        width = _width(numbers[-1])
        each = [
            dataclasses.replace(
                base,
                account=number,
                hubspot_webhook_url=base.hubspot_webhook_url.replace(
                    "{connection}", f"hs-{number:0{width}d}"
                ),
            )
            for number in numbers
        ]
        # In threads: an account's key generation and seeding are partly outside the GIL (OpenSSL, malloc).
        with ThreadPoolExecutor(_threads(accounts), thread_name_prefix="sandbox-fleet") as pool:
            futures = [pool.submit(Sandbox.start, option, release_memory=False) for option in each]
        failed = next((f.exception() for f in futures if f.exception() is not None), None)
        if failed is not None:
            _stop_all([f.result() for f in futures if f.exception() is None])
            raise failed
        release_free_memory()
        return cls([f.result() for f in futures])

    def stop(self) -> None:
        """Stop every account (idempotent); in threads, as each waits for its servers' loops to end."""
        _stop_all(self.accounts)

    def __enter__(self) -> SandboxFleet:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def connection_names(self, sandbox: Sandbox) -> tuple[str, str]:
        """The Salesforce and HubSpot connection names of one account in the fleet's config: `sf-001`,
        `hs-001` (zero-padded to at least three digits, by account number)."""
        number = f"{sandbox.account.number:0{self._width}d}"
        return f"sf-{number}", f"hs-{number}"

    def write_config(self, path: str | Path) -> Path:
        """One bant-sync config with two connections an account (`sf-001` … and `hs-001` …), every token
        in one secrets file beside it (0600) and one fresh state directory."""
        pairs = [ConnectionPair(*self.connection_names(sb), sb.info) for sb in self.accounts]  # type: ignore[arg-type]
        return write_connections(Path(path), pairs)

    @property
    def info(self) -> list[dict[str, object]]:
        """Each account's `Sandbox.info`, with its number and its connection names."""
        return [
            {"account": sb.account.number, "connections": list(self.connection_names(sb)), **sb.info}
            for sb in self.accounts
        ]

    def server_errors(self) -> list[str]:
        """Tracebacks of sandbox bugs seen by any account (empty in a healthy run)."""
        return [error for sandbox in self.accounts for error in sandbox.server_errors()]


def _width(last: int) -> int:
    """Digits of the account numbers in connection names: at least 3 (`sf-001`)."""
    return max(3, len(str(last)))


def _threads(accounts: int) -> int:
    return max(1, min(accounts, 2 * (os.cpu_count() or 1)))


def _stop_all(sandboxes: list[Sandbox]) -> None:
    if not sandboxes:
        return
    with ThreadPoolExecutor(_threads(len(sandboxes)), thread_name_prefix="sandbox-fleet") as pool:
        stopping: list[Future[None]] = [pool.submit(sandbox.stop) for sandbox in sandboxes]
    for done in stopping:
        done.result()
