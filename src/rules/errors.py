"""The one root of every error a user can cause, with its exit code and what to do.

Every package imports it (imports point worker -> connectors -> rules, and rules imports nothing of
ours), so it lives here, at the bottom. The CLI (`worker.cli.app`) and the ops API (`worker.serve.ops_api`)
each have one boundary that turns a `BantSyncError` into one message: the CLI prints
"bant-sync: error: <message>" (plus the problem list and a "what to do" line) and exits with
`exit_code`; the ops API answers one JSON object `{"error": ..., "problems": [...], "hint": ...}` with
`http_status`. Anything else that escapes is a bug: the CLI says so, then shows the traceback.

    BantSyncError                      exit 1   base: every user-caused error
     ├── UsageError                    exit 2   bad arguments, missing choice          (worker.errors)
     ├── InputFileError                exit 2   an input file missing/unreadable       (worker.errors)
     ├── ConfigError                   exit 3   invalid configuration; `problems`      (worker.errors)
     ├── FrameworkError                exit 3   invalid framework definition           (rules.framework)
     ├── ConnectorError                exit 1   a CRM connector failed                 (connectors.errors)
     │    ├── ConfigurationError       exit 1   fix settings, fields or permissions
     │    │    └── SchemaDriftError    exit 1   a mapped field vanished or became read-only
     │    ├── AuthenticationError      exit 1   credentials rejected: check the token/secret
     │    ├── QuotaExhaustedError      exit 6   API allocation spent: the next run resumes
     │    ├── TransientError           exit 1   timeouts, 5xx, 429, unreachable: retry later
     │    ├── ReplayExpiredError       exit 1   a change stream's position expired: resubscribe, reconcile
     │    └── RowRejectedError         exit 7   one record refused by the CRM
     └── StateError                    exit 1   the state store failed                 (worker.state.errors)
          ├── StateConfigError         exit 3   state URL or schema option is wrong
          ├── StateUnavailableError    exit 1   database unreachable or locked
          ├── SchemaVersionError       exit 1   written by a newer bant-sync: upgrade
          ├── LeaseHeldError           exit 5   another run holds the lease: wait
          │    └── UnlockRefusedError  exit 5   `unlock` found the holder alive: stop it, or --force
          ├── LeaseLostError           exit 1   this run's lease was taken over
          ├── UnknownRecordError       exit 1   caller bug
          └── DuplicateRunError        exit 1   caller bug

`RunStopped` (worker.errors) is not an error a user causes: a stop signal ending a wait.

Exit codes (worker.exit_codes, stable): 0 ok, 1 failure, 2 usage, 3 invalid configuration, 4 rows
skipped (`evaluate`), 5 lease held, 6 stopped for API quota, 7 rows rejected, 130 interrupted.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Literal values of worker.exit_codes (rules cannot import worker); a test keeps them equal.
FAILURE = 1
USAGE = 2
CONFIG = 3
LEASE_HELD = 5
QUOTA_STOPPED = 6
ROWS_REJECTED = 7


class BantSyncError(Exception):
    """Base of every error a user can cause: `exit_code` for the CLI, `http_status` for the ops API,
    `hint` says what to do (empty when the message already does), `problems` lists every problem found."""

    exit_code: int = FAILURE
    http_status: int = 500
    hint: str = ""
    problems: tuple[str, ...] = ()

    def render(self) -> str:
        """The one message a person sees: the error, its problems one a line, then what to do."""
        text = str(self) or type(self).__name__
        listed = [p for p in self.problems if f"  - {p}" not in text]
        lines = [text, *(f"  - {p}" for p in listed)]
        if self.hint and self.hint not in text:
            lines.append(f"what to do: {self.hint}")
        return "\n".join(lines)

    def as_json(self) -> dict[str, object]:
        """The ops API's body for this error: one message, the problem list and the hint."""
        first = (str(self) or type(self).__name__).splitlines()[0]
        kind = type(self).__name__
        return {"error": first, "kind": kind, "problems": list(self.problems), "hint": self.hint}


def did_you_mean(value: str, known: Iterable[str], cutoff: float = 0.6) -> str:
    """ " (did you mean 'x'?)" for the closest of `known` to a mistyped `value`, or "" when none is close."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=cutoff)
    return f" (did you mean {close[0]!r}?)" if close else ""
