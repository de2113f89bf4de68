"""Errors the command line turns into one clear message and a documented exit code (see exit_codes)."""

from __future__ import annotations

from worker import exit_codes


class BantSyncError(Exception):
    """Base of the errors a user can cause; `exit_code` is what the CLI exits with."""

    exit_code = exit_codes.FAILURE


class UsageError(BantSyncError):
    """Bad arguments or a missing choice (which connection, which file)."""

    exit_code = exit_codes.USAGE


class ConfigError(BantSyncError):
    """The configuration is invalid; `problems` lists every one, each with its key and file."""

    exit_code = exit_codes.CONFIG

    def __init__(self, problems: list[str], sources: tuple[str, ...] = ()) -> None:
        self.problems = tuple(problems)
        where = f" (from {', '.join(sources)})" if sources else ""
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration{where}, {len(problems)} problem(s):\n{lines}")


class InputFileError(BantSyncError):
    """An input file is missing, unreadable, empty or not in a format we read."""

    exit_code = exit_codes.USAGE


class RunStopped(Exception):
    """A stop (SIGTERM/SIGINT, `serve` shutting down) came while the run waited before a retry or for the
    rate limit: the run ends at its last checkpoint instead of waiting the wait out. Not a user error."""
