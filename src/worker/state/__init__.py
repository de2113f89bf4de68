"""The worker's durable state: cursors, the per-connection lease, run history, audit log, task ledger.

from worker.state import StateStore
store = StateStore.open("sqlite:////var/lib/bant-sync/state.db")
"""

from worker.state.errors import (
    DuplicateRunError,
    LeaseHeldError,
    LeaseLostError,
    SchemaVersionError,
    StateConfigError,
    StateError,
    StateUnavailableError,
    UnknownRecordError,
)
from worker.state.ledger import LedgerEntry, StoreLedger
from worker.state.model import (
    FINISHED_STATUSES,
    MODES,
    OBSERVED_SOURCE,
    RUN_SOURCE,
    RUN_STATUSES,
    TRIGGERS,
    AuditRow,
    DealState,
    EventTally,
    InboundEvent,
    LagStats,
    Lease,
    Rejection,
    RunRecord,
    StatusChange,
    StoredConnection,
    StreamPosition,
)
from worker.state.progress import NO_OWNER
from worker.state.schema import SCHEMA_VERSION
from worker.state.store import StateStore

__all__ = [
    "FINISHED_STATUSES",
    "MODES",
    "NO_OWNER",
    "OBSERVED_SOURCE",
    "RUN_SOURCE",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "TRIGGERS",
    "AuditRow",
    "DealState",
    "DuplicateRunError",
    "EventTally",
    "InboundEvent",
    "LagStats",
    "Lease",
    "LeaseHeldError",
    "LeaseLostError",
    "LedgerEntry",
    "Rejection",
    "RunRecord",
    "SchemaVersionError",
    "StateConfigError",
    "StateError",
    "StateStore",
    "StateUnavailableError",
    "StatusChange",
    "StoreLedger",
    "StoredConnection",
    "StreamPosition",
    "UnknownRecordError",
]
