"""State store errors, typed by what the caller must do next.

    StateError
     ├── StateConfigError        the state URL or schema option is wrong: fix the setting
     ├── StateUnavailableError   the database is unreachable or stayed locked: retry, or fix the server
     ├── SchemaVersionError      the database was written by a newer bant-sync: upgrade bant-sync
     ├── LeaseHeldError          another run holds this connection's lease: wait, or stop that run
     │    └── UnlockRefusedError `unlock` found the holder alive: stop it, or --force if it is dead
     ├── LeaseLostError          this run's lease was taken over: stop the run, write nothing more
     ├── UnknownRecordError      a run id or task sync key the store has never seen: a caller bug
     └── DuplicateRunError       a run id started twice: a caller bug (run ids must be unique)

Every one is a `rules.errors.BantSyncError` (the one root; its docstring draws the whole tree).

Messages never contain passwords: URLs are rendered with the password hidden.
"""

from __future__ import annotations

from datetime import datetime

from rules.errors import CONFIG, LEASE_HELD, BantSyncError
from worker.state.model import Lease


class StateError(BantSyncError):
    """Base of every error the state store raises."""

    http_status = 503


class StateConfigError(StateError):
    """The state store setting (URL, schema) cannot work as given."""

    exit_code = CONFIG
    http_status = 422
    hint = "fix state.url (or state.dir), then run `bant-sync check`"


class StateUnavailableError(StateError):
    """The database did not answer, or a write lock was held longer than the busy timeout."""

    hint = "check that the state database is running and reachable at state.url, then retry"


class SchemaVersionError(StateError):
    """The state database's schema is newer than this bant-sync understands."""

    def __init__(self, found: int, supported: int, where: str) -> None:
        super().__init__(
            f"the state database at {where} has schema version {found}, but this bant-sync understands "
            f"versions up to {supported}: upgrade bant-sync (or point state_url at another database)"
        )
        self.found = found
        self.supported = supported


class LeaseHeldError(StateError):
    """Another run holds the connection's lease until `expires_at`; `holder_run_id` names it, and `lease`
    (when known) its process and last heartbeat."""

    exit_code = LEASE_HELD
    http_status = 409

    def __init__(
        self,
        holder_run_id: str,
        expires_at: datetime,
        connection: str | None = None,
        *,
        lease: Lease | None = None,
    ) -> None:
        where = f"connection {connection!r}" if connection is not None else "the connection"
        who = lease.describe() if lease is not None else f"run {holder_run_id}"
        super().__init__(
            f"{where} is busy: {who} holds its lease until {expires_at.isoformat()}; wait for that run to "
            f"finish and retry (a holder that died on this host is taken over at once; one on another host "
            f"when its lease expires, or by `bant-sync unlock`)"
        )
        self.holder_run_id = holder_run_id
        self.expires_at = expires_at
        self.connection = connection
        self.lease = lease


class UnlockRefusedError(LeaseHeldError):
    """`bant-sync unlock` found the lease's holder alive (or could not tell): nothing was released."""

    def __init__(self, lease: Lease, why: str, hint: str) -> None:
        super().__init__(lease.run_id, lease.expires_at, lease.connection, lease=lease)
        self.args = (
            f"refusing to unlock connection {lease.connection!r}: {lease.describe()} holds its lease "
            f"until {lease.expires_at.isoformat()} and {why}",
        )
        self.hint = hint


class LeaseLostError(StateError):
    """The lease this run held was released or taken over; its writes would now race another run."""

    def __init__(self, connection: str, run_id: str, token: int, holder_run_id: str | None) -> None:
        now_held = f"run {holder_run_id} holds it now" if holder_run_id else "nobody holds it now"
        super().__init__(
            f"run {run_id} lost the lease on connection {connection!r} (fencing token {token} is no longer "
            f"current; {now_held}): stop this run without writing; the next run resumes from the last "
            f"checkpoint"
        )
        self.connection = connection
        self.run_id = run_id
        self.token = token
        self.holder_run_id = holder_run_id


class UnknownRecordError(StateError):
    """A run id or sync key that was never recorded (e.g. finish_run before start_run)."""

    http_status = 404


class DuplicateRunError(StateError):
    """start_run was called twice with the same run id."""

    http_status = 409
