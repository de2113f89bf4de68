"""Salesforce users as deal owners: one paged SOQL read of `User`.

`ManagerId` is a standard field of `User` (Object Reference, "User"), read for the manager roll-ups of the
digest. An org (or the sandbox) that does not expose it to the integration user answers INVALID_FIELD:
the read is then made once more without it, and every manager is None, rather than the names failing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connectors.errors import SchemaDriftError
from connectors.model import Owner
from connectors.salesforce.client import SalesforceClient

SOQL = "SELECT Id, Name, Email, ManagerId, IsActive FROM User ORDER BY Id"
WITHOUT_MANAGER = "SELECT Id, Name, Email, IsActive FROM User ORDER BY Id"
PAGE = 2000
"""The most records a REST query page carries."""


def to_owner(record: Mapping[str, Any]) -> Owner:
    """One `User` record as an Owner; a user without a name is named by its e-mail, else its id."""
    user_id = str(record["Id"])
    email = str(record["Email"]) if record.get("Email") else None
    name = str(record.get("Name") or email or user_id)
    manager = record.get("ManagerId")
    return Owner(user_id, name, email, str(manager) if manager else None, bool(record.get("IsActive", True)))


def read_owners(client: SalesforceClient) -> list[Owner]:
    """Every user of the org, active or not (a deactivated user may still own open deals)."""
    try:
        return [to_owner(r) for r in client.query(SOQL, batch_size=PAGE)]
    except SchemaDriftError as error:
        if "ManagerId" not in error.fields:
            raise
    return [to_owner(r) for r in client.query(WITHOUT_MANAGER, batch_size=PAGE)]
