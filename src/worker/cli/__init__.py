"""The command line: one module per command; `app.main` is the entry point and the one error boundary."""

from worker.cli.app import main

__all__ = ["main"]
