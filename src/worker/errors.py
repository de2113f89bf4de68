"""Errors the command line turns into one clear message and a documented exit code (see exit_codes).

`BantSyncError` is the one root of every user-caused error (defined in rules.errors, whose docstring
draws the whole tree); it is re-exported here so `from worker.errors import BantSyncError` keeps working.
"""

from __future__ import annotations

from rules.errors import BantSyncError
from worker import exit_codes

__all__ = ["BantSyncError", "ConfigError", "InputFileError", "RunStopped", "UsageError"]


class UsageError(BantSyncError):
    """Bad arguments or a missing choice (which connection, which file)."""

    exit_code = exit_codes.USAGE
    http_status = 400


class ConfigError(BantSyncError):
    """The configuration is invalid; `problems` lists every one, each with its key and file."""

    exit_code = exit_codes.CONFIG
    http_status = 422
    hint = "fix every problem listed, then run `bant-sync check`"

    def __init__(self, problems: list[str], sources: tuple[str, ...] = ()) -> None:
        self.problems = tuple(problems)
        where = f" (from {', '.join(sources)})" if sources else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration{where}, {len(problems)} problem(s):\n{lines}")


class InputFileError(BantSyncError):
    """An input file is missing, unreadable, empty or not in a format we read."""

    exit_code = exit_codes.USAGE
    http_status = 400


class RunStopped(Exception):
    """A stop (SIGTERM/SIGINT, `serve` shutting down) came while the run waited before a retry or for the
    rate limit: the run ends at its last checkpoint instead of waiting the wait out. Not a user error."""
