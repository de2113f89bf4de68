"""A seed deal's changes as Salesforce history (`OpportunityFieldHistory`, `OpportunityHistory`).

Only deals that carry changes get rows (the closed ones): an open seeded deal has neither its 'created' row
nor its first OpportunityHistory row (see `sandbox.salesforce.history`)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sandbox.salesforce import history
from sandbox.salesforce.schema import BANT_INPUTS, STAGE_PROBABILITY
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.seeds.model import STAGES, SeedDeal

BANT_FIELDS = dict(zip(("budget", "authority", "need", "timing"), BANT_INPUTS, strict=True))
"""A seed change's criterion -> the Opportunity field it edits."""


def load_history(state: SalesforceState, deals: Iterable[tuple[SeedDeal, Record]]) -> None:
    """Record the history of each (seed deal, its Opportunity record) whose deal carries changes, as its
    owner's edits: the 'created' row (while the object tracks any field) and a first OpportunityHistory row
    at creation with the stage the deal started at, then a row per change of a tracked field and an
    OpportunityHistory row per stage move. The records already hold the final values; the rows
    reconstruct the path."""
    with state.lock:
        for deal, rec in deals:
            if deal.changes:
                _deal_history(state, deal, rec)


def _deal_history(state: SalesforceState, deal: SeedDeal, rec: Record) -> None:
    schema, store = state.schemas["Opportunity"], state.history
    opportunity, owner = str(rec["Id"]), rec["OwnerId"]
    amount, close = rec.get("Amount"), rec.get("CloseDate")

    def stage_point(stage: int, at: datetime) -> None:
        name = STAGES[stage][0]
        store.add_stage(opportunity, name, amount, close, float(STAGE_PROBABILITY[name]), at, owner)

    if state.tracked.get("Opportunity"):
        store.add_field(opportunity, "created", history.data_type(None), None, None, deal.created, owner)
    stage_point(next((int(c.old) for c in deal.changes if c.field == "stage" and c.old), 0), deal.created)
    for change in deal.changes:
        if change.field == "stage":
            old, new = STAGES[int(change.old or 0)][0], STAGES[int(change.new or 0)][0]
            if state.is_tracked("Opportunity", "StageName"):
                kind = history.data_type(schema.fields["StageName"])
                store.add_field(opportunity, "StageName", kind, old, new, change.at, owner)
            stage_point(int(change.new or 0), change.at)
        else:
            name = BANT_FIELDS[change.field]
            if state.is_tracked("Opportunity", name):
                kind = history.data_type(schema.fields.get(name))
                store.add_field(opportunity, name, kind, change.old, change.new, change.at, owner)
