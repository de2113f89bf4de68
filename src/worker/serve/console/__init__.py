"""The ops console: web pages under `/ui` of `serve`'s ops API (see worker.serve.console.app)."""

from worker.serve.console.app import console_app

__all__ = ["console_app"]
