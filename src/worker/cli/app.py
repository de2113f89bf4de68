"""The `bant-sync` command line. Every command accepts --config, --log-level and --log-format.

The one CLI error boundary is in `main`: every error a user can cause is a `rules.errors.BantSyncError`
(the one root: configuration, connector and state errors beneath it) and prints one message, its problem
list and what to do, then exits with its documented code (exit_codes), never a traceback. Anything else is
a bug: main says so and shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import structlog

from sandbox import cli as sandbox_cli
from worker import exit_codes
from worker.cli import check as check_cmd
from worker.cli import connections as connections_cmd
from worker.cli import demo as demo_cmd
from worker.cli import digest as digest_cmd
from worker.cli import report as report_cmd
from worker.cli import serve as serve_cmd
from worker.cli import status as status_cmd
from worker.cli import sync as sync_cmd
from worker.cli import unlock as unlock_cmd
from worker.cli import worker as worker_cmd
from worker.cli.arguments import parse_day
from worker.cli.evaluate import run_evaluate
from worker.config.frameworks import load_framework
from worker.config.loader import load_settings
from worker.config.settings import Settings
from worker.errors import BantSyncError, UsageError
from worker.logging_setup import configure_logging

Handler = Callable[[argparse.Namespace, Settings], int]


def _common_options(suppress: bool) -> argparse.ArgumentParser:
    default = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", metavar="FILE", default=default, help="config file (default: $BANT_SYNC_CONFIG if set)"
    )
    common.add_argument(
        "--log-level", choices=("debug", "info", "warning", "error"), default=default, help="log verbosity"
    )
    common.add_argument(
        "--log-format", choices=("auto", "console", "json"), default=default, help="log format on stderr"
    )
    return common


def today_in(settings: Settings) -> date:
    try:
        zone = ZoneInfo(settings.rules.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(f"rules.timezone {settings.rules.timezone!r} is not a known time zone") from None
    return datetime.now(zone).date()


def _evaluate(args: argparse.Namespace, settings: Settings) -> int:
    framework = load_framework(args.framework or settings.rules.framework, settings.config_dir)
    today = args.today or today_in(settings)
    return run_evaluate(Path(args.file), framework, today, args.format)


def _add_evaluate(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        parents=[common],
        help="assess deals in a CSV or JSON Lines export, offline",
        description=(
            "Assess every deal in FILE (CSV with a header row, or JSON Lines) against a qualification "
            "framework and print which criteria each is missing. Columns: id, name, owner_id, stage, "
            "deal_type, amount, close_date, budget, authority, need, timing, optional flagged_since; other "
            "columns are kept for custom frameworks. Bad rows are reported by line number and skipped "
            f"(exit code {exit_codes.ROWS_SKIPPED})."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the export to assess (.csv or .jsonl)")
    parser.add_argument(
        "--framework", metavar="NAME|PATH", help="framework name or .toml path (default: bant)"
    )
    parser.add_argument("--today", type=parse_day, metavar="YYYY-MM-DD", help="assess as of this date")
    parser.add_argument(
        "--format", choices=("table", "jsonl", "csv"), default="table", help="output format (default: table)"
    )
    parser.set_defaults(handler=_evaluate)


def _add_sandbox(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        parents=[common],
        help="run the local sandbox CRM (Salesforce + HubSpot stand-in); see `bant-sync sandbox --help`",
        description=sandbox_cli.DESCRIPTION,
        epilog=sandbox_cli.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sandbox_cli.add_arguments(parser)
    parser.set_defaults(handler=lambda args, settings: sandbox_cli.run(args), needs_settings=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bant-sync",
        parents=[_common_options(suppress=False)],
        allow_abbrev=False,
        description=(
            "Keep BANT qualification status and one follow-up task true on every open deal in Salesforce "
            "or HubSpot. Exit codes: 0 ok, 1 run failed, 2 usage, 3 invalid config, 4 rows skipped, "
            "5 lease held by another run, 6 stopped for API quota, 7 rows rejected by the CRM."
        ),
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common_options(suppress=True)
    _add_evaluate(subparsers, common)
    sync_cmd.add_parser(subparsers, common)
    status_cmd.add_parsers(subparsers, common)
    check_cmd.add_parser(subparsers, common)
    unlock_cmd.add_parser(subparsers, common)
    demo_cmd.add_parser(subparsers, common)
    serve_cmd.add_parser(subparsers, common)
    worker_cmd.add_parser(subparsers, common)
    digest_cmd.add_parser(subparsers, common)
    report_cmd.add_parser(subparsers, common)
    connections_cmd.add_parser(subparsers, common)
    _add_sandbox(subparsers, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        settings = load_settings(args.config) if getattr(args, "needs_settings", True) else Settings()
        configure_logging(
            args.log_level or settings.logging.level, args.log_format or settings.logging.format
        )
        return int(args.handler(args, settings))
    except BantSyncError as exc:
        sys.stderr.write(f"bant-sync: error: {exc.render()}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        structlog.get_logger().warning("interrupted")
        return exit_codes.INTERRUPTED
    except BrokenPipeError:
        return exit_codes.OK
    except Exception:
        sys.stderr.write(
            "bant-sync: internal error: this is a bug, please report it "
            "(with the command and the traceback below)\n"
        )
        traceback.print_exc()
        return exit_codes.FAILURE


if __name__ == "__main__":
    sys.exit(main())
