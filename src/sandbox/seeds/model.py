"""CRM-neutral seed records: one story, told to Salesforce and HubSpot alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

# Stage index -> (Salesforce StageName, HubSpot dealstage); 8 and 9 are the closed stages.
STAGES = (
    ("Prospecting", "appointmentscheduled"),
    ("Qualification", "qualifiedtobuy"),
    ("Needs Analysis", "qualifiedtobuy"),
    ("Value Proposition", "presentationscheduled"),
    ("Id. Decision Makers", "decisionmakerboughtin"),
    ("Perception Analysis", "decisionmakerboughtin"),
    ("Proposal/Price Quote", "contractsent"),
    ("Negotiation/Review", "contractsent"),
    ("Closed Won", "closedwon"),
    ("Closed Lost", "closedlost"),
)
OPEN_STAGE_COUNT = 8
WON, LOST = 8, 9
# Deal kind -> (Salesforce Type, HubSpot dealtype)
KINDS = {
    "POC": ("POC", "poc"),
    "New": ("New Business", "newbusiness"),
    "Existing": ("Existing Business", "existingbusiness"),
}


@dataclass(frozen=True, slots=True)
class SeedChange:
    """One edit made to a deal after it was created, before it closed: a BANT field (`budget`, `authority`,
    `need`, `timing`) or `stage` (old and new as stage indexes in text). The sandboxes keep these as field
    history (Salesforce `OpportunityFieldHistory`/`OpportunityHistory`, HubSpot property history)."""

    field: str
    old: str | None
    new: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class SeedDeal:
    name: str
    owner: int
    stage: int
    kind: str
    amount: int | None
    close_date: date
    created: datetime
    modified: datetime
    budget: str | None
    authority: str | None
    need: str | None
    timing: str | None
    changes: tuple[SeedChange, ...] = ()
    """Oldest first; the fields above hold the values after the last change (at close for a closed deal)."""

    @property
    def is_open(self) -> bool:
        return self.stage < OPEN_STAGE_COUNT


@dataclass(frozen=True)
class Story:
    deals: tuple[SeedDeal, ...]
