"""The keys that find bant-sync's follow-up tasks in a CRM: one per CRM account and deal.

A key fits both CRMs' key fields (Salesforce External ID text, HubSpot unique property): at most 64
characters.
"""

from __future__ import annotations

import hashlib


def sync_key(identity: str, deal_id: str) -> str:
    """The key of a deal's bant-sync task: the CRM account's identity (Salesforce org id, HubSpot portal
    id) and the deal id, so renaming a connection or a second install against the same CRM finds the same
    task. At most 64 characters, safe for Salesforce's external id and HubSpot's unique property."""
    digest = hashlib.sha256(f"{identity}\x00{deal_id}".encode()).hexdigest()[:16]
    return f"bs2-{digest}-{deal_id}"[:64]


def legacy_sync_key(connection: str, deal_id: str) -> str:
    """The key bant-sync used before 0.2, hashed from the connection's name: tasks keyed this way are
    adopted (re-keyed with `sync_key`), never duplicated."""
    digest = hashlib.sha256(f"{connection}\x00{deal_id}".encode()).hexdigest()[:24]
    return f"bs1-{digest}-{deal_id}"[:64]


def retired_key(key: str, task_id: str) -> str:
    """Where a completed task's key goes when `completed_tasks = "new_task"` frees it for a new task."""
    return f"{key[:40]}~done-{task_id}"[:64]
