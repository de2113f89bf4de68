"""The keys that find bant-sync's follow-up tasks in a CRM: one per CRM account and deal.

A key fits both CRMs' key fields (Salesforce External ID text, HubSpot unique property): at most 64
characters. A key carries the deal id for people reading it, but is unique by its digest of the whole id:
an id too long to carry (a plugin CRM's UUIDs) is not cut, the key is then the digest alone.
"""

from __future__ import annotations

import hashlib

KEY_MAX = 64


def _sha(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


def sync_key(identity: str, deal_id: str) -> str:
    """The key of a deal's bant-sync task: the CRM account's identity (Salesforce org id, HubSpot portal
    id) and the deal id, so renaming a connection or a second install against the same CRM finds the same
    task. At most 64 characters, safe for Salesforce's external id and HubSpot's unique property."""
    digest = _sha(identity, deal_id)
    key = f"bs2-{digest[:16]}-{deal_id}"
    return key if len(key) <= KEY_MAX else f"bs2-{digest[: KEY_MAX - 4]}"


def legacy_sync_key(connection: str, deal_id: str) -> str:
    """The key bant-sync used before 0.2, hashed from the connection's name: tasks keyed this way are
    adopted (re-keyed with `sync_key`), never duplicated."""
    digest = _sha(connection, deal_id)[:24]
    return f"bs1-{digest}-{deal_id}"[:KEY_MAX]


def retired_key(key: str, task_id: str) -> str:
    """Where a completed task's key goes when `completed_tasks = "new_task"` frees it for a new task: the
    key's first 40 characters (its digest of the deal) and the task id, hashed when too long to carry."""
    retired = f"{key[:40]}~done-{task_id}"
    return retired if len(retired) <= KEY_MAX else f"{key[:40]}~done-{_sha(task_id)[:18]}"
