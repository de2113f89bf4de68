"""What bant-sync's deployed metadata gives both CRMs alike: the values of its status field (a Salesforce
restricted picklist, a HubSpot enumeration), in the order the shipped metadata lists them."""

from __future__ import annotations

BANT_STATUSES = (
    "qualified",
    "needs_qualification",
    "poc_unqualified",
    "qualify_out",
    "not_evaluated",
    "snoozed",
)
