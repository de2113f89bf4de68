"""Which CRM accounts a sandbox is: the Salesforce org and HubSpot portal of `SandboxOptions.account`.

bant-sync tells accounts apart by their ids (`salesforce:<15-character org id>`, `hubspot:<portal id>`): it
files its task ledger under them and refuses two connections to one account. So sandboxes that stand for
different customers must differ in those ids, while account 1 keeps the ids every test and benchmark was
written against. The ids are derived, never random, so a restarted sandbox is the same account again.

Record ids (`006…`, deal `10000000001`, …) are the same numbers in every account. Real ones are unique
across orgs and portals; repeating them here is deliberate, because a client that mixed accounts up by
record id alone would then write into the wrong account and fail a test, instead of passing by luck.
"""

from __future__ import annotations

from dataclasses import dataclass

from sandbox.hubspot.portal import PORTAL_ID
from sandbox.hubspot.webhooks import APP_ID
from sandbox.salesforce.ids import make_id

SEED_STRIDE = 1_000
"""Account n seeds its data with `seed_value + SEED_STRIDE * (n - 1)`: each account has data of its own
(a mix-up between accounts shows in the data), the same data on every start, and account 1 today's data."""
_USERNAME = "integration@bant-sync.sandbox"
_ORG_NAME = "bant-sync sandbox"


@dataclass(frozen=True)
class Account:
    """The ids of account `number` (1, 2, …) in both CRMs."""

    number: int

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError(f"a sandbox account is numbered from 1, not {self.number}")

    @property
    def org_id(self) -> str:
        """The Salesforce org's 18-character id (`00D…`); account 1 is `make_id("00D", 1)`."""
        return make_id("00D", self.number)

    @property
    def portal_id(self) -> int:
        """The HubSpot portal's id; account 1 is `PORTAL_ID`."""
        return PORTAL_ID + self.number - 1

    @property
    def app_id(self) -> int:
        """The id of the portal's private app (its `pat-` token, client id and secret are the portal's own
        too); account 1 is `APP_ID`."""
        return APP_ID + self.number - 1

    @property
    def username(self) -> str:
        """The Salesforce integration user's username: usernames are unique across all orgs."""
        if self.number == 1:
            return _USERNAME
        local, _, domain = _USERNAME.partition("@")
        return f"{local}@account-{self.number:03d}.{domain}"

    @property
    def org_name(self) -> str:
        """The Organization record's `Name`."""
        return _ORG_NAME if self.number == 1 else f"{_ORG_NAME} {self.number:03d}"

    def seed_value(self, base: int) -> int:
        """The random seed of this account's data, from the sandbox's `seed_value`."""
        return base + SEED_STRIDE * (self.number - 1)
