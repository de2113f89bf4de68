"""Writing a seed story into the Salesforce and HubSpot stores (bulk, without per-record validation).

Values that repeat across deals (close dates, amounts) are interned: one string each rather than one per deal
(about 12 MB of a 100,000-deal HubSpot portal)."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta

from sandbox.hubspot.properties import epoch_ms, iso_millis
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.store import HsObject
from sandbox.salesforce.schema import STAGE_PROBABILITY
from sandbox.salesforce.state import Record, SalesforceState
from sandbox.seeds.catalog import REPS, SELLER_DOMAIN
from sandbox.seeds.model import KINDS, STAGES, WON, Story

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
            BANT_Budget__c=deal.budget,
            BANT_Authority__c=deal.authority,
            BANT_Need__c=deal.need,
            BANT_Timing__c=deal.timing,
        )
        opportunities.append(rec)
    state.insert_seed("Opportunity", sorted(opportunities, key=lambda r: r["SystemModstamp"]))  # type: ignore[arg-type,return-value]
    return str(users[-1]["Id"])


def load_hubspot(state: HubSpotState, story: Story) -> None:
    owner_ids = [str(o["id"]) for o in state.owners]
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
        for name, value in (
            ("bant_budget", deal.budget),
            ("bant_authority", deal.authority),
            ("bant_need", deal.need),
            ("bant_timing", deal.timing),
        ):
            if value is not None:
                props[name] = value
        deals.append(HsObject(deal_id, num, props, deal.created, deal.modified, epoch_ms(deal.modified)))
    state.insert_seed("deals", sorted(deals, key=lambda o: o.modstamp_ms))


def organization_record(org_id: str, now: datetime) -> Record:
    """The org's Organization record."""
    return {
        "Id": org_id,
        "Name": "bant-sync sandbox",
        "OrganizationType": "Developer Edition",
        "IsSandbox": True,
        "CreatedDate": now,
        "LastModifiedDate": now,
        "SystemModstamp": now,
    }
