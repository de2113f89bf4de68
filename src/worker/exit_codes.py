"""Exit codes of `bant-sync`, documented in the README. Stable: scripts and systemd units rely on them."""

OK = 0
FAILURE = 1  # the run failed (CRM unreachable, credentials revoked, schema drift, …)
USAGE = 2  # bad arguments, or an input file that cannot be read
CONFIG = 3  # the configuration is invalid
ROWS_SKIPPED = 4  # `evaluate`: some input rows were invalid and skipped; the rest were assessed
LEASE_HELD = 5  # `sync`: another run holds this connection's lease; `unlock`: its holder is alive
QUOTA_STOPPED = 6  # `sync`: stopped before the CRM's API allocation ran out; the next run resumes
ROWS_REJECTED = 7  # `sync`: the run finished but the CRM rejected some rows (retried next run)
INTERRUPTED = 130  # SIGINT/SIGTERM: the current page was checkpointed, then the run stopped
