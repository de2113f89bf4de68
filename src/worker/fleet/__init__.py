"""The fleet: `bant-sync worker` processes that share one PostgreSQL job queue (procrastinate 3).

Opt-in. `serve` keeps one process's schedule in memory (APScheduler); the fleet keeps it in the state
store's PostgreSQL so any number of workers on any number of machines serve the same connections: a
periodic tick defers the due runs once per period however many workers run, `lock=` lets one run per
connection start at a time across the cluster, `queueing_lock=` folds repeated triggers into one waiting
job, and a periodic `retry_stalled_jobs` hands a killed worker's job to another one. The state store's
lease with its fencing token stays the last guard (docs/fleet.md).

Modules: `due` (which runs a tick defers: pure), `jobs` (the tasks, on a procrastinate Blueprint),
`app` (the App bound to the state store's PostgreSQL), `runner` (one worker process until SIGTERM).
"""
