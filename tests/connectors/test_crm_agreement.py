"""HubSpot and Salesforce translate the same CRM values into the same Deal (the disagreements the codecs
settled: `missing` whitespace and emptiness, `amount` as Decimal)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from connectors.hubspot.mapping import deal_table, to_deal
from connectors.hubspot.settings import DEFAULT_PROPERTIES
from connectors.salesforce.pull import OpportunityReader
from connectors.salesforce.settings import DEFAULT_FIELDS
from rules.model import Deal
from tests.connectors.sf_support import TYPES, opp_record


def hubspot_deal(**values: str | None) -> Deal:
    """A Deal read from HubSpot property strings, given by canonical key."""
    props: dict[str, str | None] = dict.fromkeys(DEFAULT_PROPERTIES.values())
    props.update({DEFAULT_PROPERTIES[key]: value for key, value in values.items()})
    return to_deal("1", props, deal_table(DEFAULT_PROPERTIES))


def salesforce_deal(**values: Any) -> Deal:
    """A Deal read from one Opportunity record's JSON values, given by canonical key."""
    reader = OpportunityReader(DEFAULT_FIELDS, {}, TYPES)
    return reader.deal(opp_record(1, **{DEFAULT_FIELDS[key]: value for key, value in values.items()}))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("budget;need", ("budget", "need")),
        ("budget; need", ("budget", "need")),
        (" budget ;need ; ", ("budget", "need")),
        ("", None),
        ("  ", None),
        (None, None),
    ],
    ids=["plain", "space-after-separator", "padded-trailing-separator", "empty", "blank", "null"],
)
def test_missing_reads_the_same_on_both_crms(raw: str | None, expected: tuple[str, ...] | None) -> None:
    """`missing` is stripped of whitespace and an empty field is None, from HubSpot and Salesforce alike."""
    assert hubspot_deal(missing=raw).flags.missing == expected
    assert salesforce_deal(missing=raw).flags.missing == expected


@pytest.mark.parametrize(
    ("hubspot", "salesforce", "expected"),
    [
        ("12000", 12000, Decimal("12000")),
        ("12000.50", 12000.5, Decimal("12000.5")),
        ("12000.0", 12000.0, Decimal("12000")),
        ("0.1", 0.1, Decimal("0.1")),
        ("", None, None),
        (None, None, None),
    ],
    ids=["integer", "fraction", "whole-float", "binary-inexact", "empty", "null"],
)
def test_amount_reads_the_same_on_both_crms(
    hubspot: str | None, salesforce: float | None, expected: Decimal | None
) -> None:
    """`amount` is a Decimal (or None when empty) from HubSpot text and Salesforce JSON numbers alike."""
    from_hubspot = hubspot_deal(amount=hubspot).amount
    from_salesforce = salesforce_deal(amount=salesforce).amount
    assert from_hubspot == from_salesforce == expected
    assert type(from_hubspot) is type(from_salesforce) is type(expected)


def test_dates_and_datetimes_read_the_same_on_both_crms() -> None:
    """Each CRM's datetime and date forms give the same UTC instants and dates."""
    hs = hubspot_deal(
        checked_at="2026-03-01T09:00:00.000Z", close_date="2026-06-30", flagged_since="2026-02-20"
    )
    sf = salesforce_deal(
        checked_at="2026-03-01T09:00:00.000+0000", close_date="2026-06-30", flagged_since="2026-02-20"
    )
    assert hs.flags.checked_at == sf.flags.checked_at == datetime(2026, 3, 1, 9, tzinfo=UTC)
    assert (hs.close_date, hs.flagged_since) == (sf.close_date, sf.flagged_since)
    assert (sf.close_date, sf.flagged_since) == (date(2026, 6, 30), date(2026, 2, 20))


@pytest.mark.parametrize(
    "raw", ["last Tuesday", "2026-03-01T09:00:00", "31/12/2026"], ids=["word", "no-zone", "dmy"]
)
def test_unreadable_dates_are_none_on_both_crms(raw: str) -> None:
    """A date or datetime field mapped to a text field holding no readable value is None, not an error."""
    types = {
        **TYPES,
        "BANT_Checked_At__c": "string",
        "CloseDate": "string",
        "BANT_Flagged_Since__c": "string",
    }
    sf = OpportunityReader(DEFAULT_FIELDS, {}, types).deal(
        opp_record(1, BANT_Checked_At__c=raw, CloseDate=raw, BANT_Flagged_Since__c=raw)
    )
    hs = hubspot_deal(checked_at=raw, close_date=raw, flagged_since=raw)
    for deal in (hs, sf):
        assert (deal.flags.checked_at, deal.close_date, deal.flagged_since) == (None, None, None)
