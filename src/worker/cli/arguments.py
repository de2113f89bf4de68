"""Argument types shared by the subcommands."""

from __future__ import annotations

import argparse
from datetime import date


def parse_day(text: str) -> date:
    """A YYYY-MM-DD day, or argparse's usage error naming the text."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None
