"""Writing a seed story into the Salesforce and HubSpot stores (bulk, without per-record validation).

Values that repeat across deals (close dates, amounts) are interned: one string each rather than one per deal
(about 12 MB of a 100,000-deal HubSpot portal)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from sandbox.hubspot import history
from sandbox.hubspot.properties import epoch_ms, iso_millis
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.store import Edit, HsObject
from sandbox.salesforce.schema import STAGE_PROBABILITY
from sandbox.salesforce.seed_history import load_history
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.seeds.catalog import REPS, SELLER_DOMAIN
from sandbox.seeds.model import KINDS, OPEN_STAGE_COUNT, STAGES, WON, SeedDeal, Story

INTEGRATION_USER = ("bant-sync", "Integration")
_OWNER_BASE = 52_000_101
_USER_BASE = 9_100_001


def hubspot_owners(now: datetime) -> list[dict[str, object]]:
    since = iso_millis(now - timedelta(days=400))
    return [
        {
            "id": str(_OWNER_BASE + i),
            "email": f"{first.lower()}.{last.lower()}@{SELLER_DOMAIN}",
            "firstName": first,
            "lastName": last,
            "userId": _USER_BASE + i,
            "createdAt": since,
            "updatedAt": since,
            "archived": False,
            "type": "PERSON",
            "teams": [],
        }
        for i, (first, last) in enumerate(REPS)
    ]


def load_salesforce(state: SalesforceState, story: Story, now: datetime, username: str) -> str:
    """Seed users and opportunities; returns the integration user's id."""
    since = now - timedelta(days=400)
    user_schema = state.schemas["User"]
    users: list[Record] = []
    for first, last in (*REPS, INTEGRATION_USER):
        rec = dict.fromkeys(user_schema.fields)
        login = (
            username
            if (first, last) == INTEGRATION_USER
            else f"{first.lower()}.{last.lower()}@{SELLER_DOMAIN}"
        )
        rec.update(
            Id=state.next_id("User"),
            Name=f"{first} {last}",
            Username=login,
            Email=login,
            IsActive=True,
            CreatedDate=since,
            LastModifiedDate=since,
            SystemModstamp=since,
        )
        users.append(rec)
    state.insert_seed("User", users)
    rep_ids = [str(u["Id"]) for u in users[: len(REPS)]]
    template = dict.fromkeys(state.schemas["Opportunity"].fields)
    opportunities: list[Record] = []
    for deal in story.deals:
        stage_name = STAGES[deal.stage][0]
        rec = dict(template)
        rec.update(
            Id=state.next_id("Opportunity"),
            Name=deal.name,
            OwnerId=rep_ids[deal.owner],
            StageName=stage_name,
            Type=KINDS[deal.kind][0],
            Amount=float(deal.amount) if deal.amount is not None else None,
            CloseDate=deal.close_date,
            IsClosed=not deal.is_open,
            IsWon=deal.stage == WON,
            Probability=float(STAGE_PROBABILITY[stage_name]),
            CreatedDate=deal.created,
            LastModifiedDate=deal.modified,
            SystemModstamp=deal.modified,
            LastModifiedById=rep_ids[deal.owner],
            BANT_Budget__c=deal.budget,
            BANT_Authority__c=deal.authority,
            BANT_Need__c=deal.need,
            BANT_Timing__c=deal.timing,
        )
        opportunities.append(rec)
    state.insert_seed("Opportunity", sorted(opportunities, key=lambda r: r["SystemModstamp"]))  # type: ignore[arg-type,return-value]
    load_history(state, zip(story.deals, opportunities, strict=True))
    return str(users[-1]["Id"])


_HS_BANT = {
    "budget": "bant_budget",
    "authority": "bant_authority",
    "need": "bant_need",
    "timing": "bant_timing",
}


def load_hubspot(state: HubSpotState, story: Story) -> None:
    """Seed the deals; a deal's `changes` become its property history (edits by its owner in HubSpot)."""
    owner_ids = [str(o["id"]) for o in state.owners]
    user_ids = [o.get("userId") for o in state.owners]
    deals: list[HsObject] = []
    for deal in story.deals:
        num = state.new_id("deals")
        deal_id = str(num)
        stage = STAGES[deal.stage][1]
        props: dict[str, str | None] = {
            "hs_object_id": deal_id,
            "dealname": deal.name,
            "dealstage": stage,
            "pipeline": "default",
            "dealtype": KINDS[deal.kind][1],
            "closedate": sys.intern(f"{deal.close_date.isoformat()}T00:00:00.000Z"),
            "hubspot_owner_id": owner_ids[deal.owner],
            "hs_is_closed": "false" if deal.is_open else "true",
            "hs_is_closed_won": "true" if deal.stage == WON else "false",
            "createdate": iso_millis(deal.created),
            "hs_lastmodifieddate": iso_millis(deal.modified),
        }
        if deal.amount is not None:
            props["amount"] = sys.intern(str(deal.amount))
        if isinstance(user_ids[deal.owner], int):
            props["hs_updated_by_user_id"] = str(user_ids[deal.owner])
        for field, name in _HS_BANT.items():
            value = getattr(deal, field)
            if value is not None:
                props[name] = value
        obj = HsObject(deal_id, num, props, deal.created, deal.modified, epoch_ms(deal.modified))
        if deal.changes:
            user = user_ids[deal.owner]
            obj.edits = _hubspot_edits(deal, user if isinstance(user, int) else None)
        deals.append(obj)
    state.insert_seed("deals", sorted(deals, key=lambda o: o.modstamp_ms))


def _hubspot_edits(deal: SeedDeal, user_id: int | None) -> tuple[Edit, ...]:
    """A seed deal's changes as HubSpot property edits by its owner (CRM_UI), one edit per moment: a BANT
    field's old value, or the deal stage's (closing also flips hs_is_closed and hs_is_closed_won)."""
    by_moment: dict[int, dict[str, str | None]] = {}
    for change in deal.changes:
        olds = by_moment.setdefault(epoch_ms(change.at), {})
        if change.field != "stage":
            olds[_HS_BANT[change.field]] = change.old
            continue
        old = STAGES[int(change.old)][1] if change.old is not None else None
        new = STAGES[int(change.new)][1] if change.new is not None else None
        if old == new:
            continue  # two Salesforce stages share one HubSpot stage
        olds["dealstage"] = old
        if change.new is not None and int(change.new) >= OPEN_STAGE_COUNT:
            olds["hs_is_closed"] = "false"
            olds["hs_is_closed_won"] = "false"
    return tuple(
        history.shared(
            (at, history.CRM_UI, tuple(sorted(olds)), tuple(olds[n] for n in sorted(olds)), user_id)
        )
        for at, olds in sorted(by_moment.items())
        if olds
    )


def organization_record(org_id: str, now: datetime, name: str = "bant-sync sandbox") -> Record:
    """The org's Organization record."""
    return {
        "Id": org_id,
        "Name": name,
        "OrganizationType": "Developer Edition",
        "IsSandbox": True,
        "CreatedDate": now,
        "LastModifiedDate": now,
        "SystemModstamp": now,
    }
