"""A seed deal's changes as Salesforce history rows (`OpportunityFieldHistory`, `OpportunityHistory`).

Only deals that carry changes get rows (the closed ones of track-selling): an open seeded deal has neither
its 'created' row nor its first OpportunityHistory row (see `sandbox.salesforce.history`)."""

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
    """Insert the history of each (seed deal, its Opportunity record) whose deal carries changes: the
    'created' row (while the object tracks any field) and a first OpportunityHistory row at creation with
    the stage the deal started at, then a row per change of a tracked field and an OpportunityHistory row
    per stage move. The records already hold the final values; the rows reconstruct the path."""
    field_rows: list[Record] = []
    stage_rows: list[Record] = []
    for deal, rec in deals:
        if deal.changes:
            _deal_history(state, deal, rec, field_rows, stage_rows)
    state.insert_seed(history.FIELD_HISTORY, sorted(field_rows, key=_created))
    state.insert_seed(history.STAGE_HISTORY, sorted(stage_rows, key=_created))


def _created(row: Record) -> datetime:
    moment = row["CreatedDate"]
    assert isinstance(moment, datetime)
    return moment


def _deal_history(
    state: SalesforceState, deal: SeedDeal, rec: Record, field_rows: list[Record], stage_rows: list[Record]
) -> None:
    schema = state.schemas["Opportunity"]
    opportunity, owner = str(rec["Id"]), rec["OwnerId"]
    first_stage = next((int(c.old) for c in deal.changes if c.field == "stage" and c.old), 0)
    moment = dict(rec)

    def add_field(name: str, old: object, new: object, at: datetime) -> None:
        if name == "created" or state.is_tracked("Opportunity", name):
            spec = schema.fields.get(name)
            rid = state.next_id(history.FIELD_HISTORY)
            row = history.field_row(rid, opportunity, name, spec, old, new, at)
            field_rows.append({**row, "CreatedById": owner})

    def add_stage(stage: int, at: datetime) -> None:
        name = STAGES[stage][0]
        moment.update(StageName=name, Probability=float(STAGE_PROBABILITY[name]))
        row = history.stage_row(state.next_id(history.STAGE_HISTORY), moment, at)
        stage_rows.append({**row, "CreatedById": owner})

    if state.tracked.get("Opportunity"):
        add_field("created", None, None, deal.created)
    add_stage(first_stage, deal.created)
    for change in deal.changes:
        if change.field == "stage":
            old, new = int(change.old or 0), int(change.new or 0)
            add_field("StageName", STAGES[old][0], STAGES[new][0], change.at)
            add_stage(new, change.at)
        else:
            add_field(BANT_FIELDS[change.field], change.old, change.new, change.at)
