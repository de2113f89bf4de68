"""Any value a CRM can hold reads as a Deal or as one UnreadableDeal naming its field — never an exception
that stops the run — and every Deal read can be judged (issue 12, item 3). Generated values (hypothesis)
go through each CRM's field table and through the rules."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.fieldtable import UnreadableValue
from connectors.hubspot import mapping as hs
from connectors.hubspot.settings import DEFAULT_PROPERTIES
from connectors.model import UnreadableDeal
from connectors.salesforce.pull import OpportunityReader
from connectors.salesforce.settings import DEFAULT_FIELDS
from rules import Framework, evaluate
from rules.model import Deal
from tests.connectors.sf_support import TYPES, opp_record

TODAY = date(2026, 11, 27)
HS_TABLE = hs.deal_table(DEFAULT_PROPERTIES)
SF_READER = OpportunityReader(DEFAULT_FIELDS, {}, TYPES)

texts = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.sampled_from(["Infinity", "-Infinity", "NaN", "1e999999", "9" * 30, "-" + "9" * 30, "2026-02-30"]),
    st.integers().map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
)
json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["2026-02-30", "10000-01-01", "2026-13-01T00:00:00.000+0000", "9" * 30]),
)


def _judged(result: Deal | UnreadableDeal, framework: Framework) -> None:
    if isinstance(result, Deal):
        evaluate(result, framework, TODAY)
    else:
        assert result.field and result.crm_field and result.reason


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(DEFAULT_PROPERTIES)), texts))
def test_any_hubspot_property_strings_read_or_quarantine(
    bant: Framework, values: dict[str, str | None]
) -> None:
    props = {DEFAULT_PROPERTIES[k]: v for k, v in values.items()}
    props.setdefault(DEFAULT_PROPERTIES["modified_at"], "2026-03-01T10:00:00.000Z")
    try:
        result: Deal | UnreadableDeal = hs.to_deal("1", props, HS_TABLE)
    except UnreadableValue as exc:
        result = exc.for_deal("1")
    _judged(result, bant)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(sorted(k for k in DEFAULT_FIELDS if k != "modified_at")), json_values))
def test_any_salesforce_json_values_read_or_quarantine(bant: Framework, values: dict[str, Any]) -> None:
    record = opp_record(1, **{DEFAULT_FIELDS[k]: v for k, v in values.items()})
    _judged(SF_READER.read(record), bant)


@pytest.mark.parametrize(
    ("key", "raw", "reason"),
    [
        ("score", "Infinity", "cannot convert Infinity"),
        ("score", "1e999999999", "out of range"),
        ("checked_at", "9" * 15, "out of range"),
        ("flagged_since", "9" * 15, "out of range"),
    ],
)
def test_hubspot_values_that_stopped_every_run_are_named(key: str, raw: str, reason: str) -> None:
    """`bant_score = "Infinity"` raised OverflowError in every run; so did an epoch past year 9999; and
    `1e999999999` stalled the run building a billion-digit integer (the hypothesis test found 1e999999)."""
    props: dict[str, str | None] = {name: None for name in DEFAULT_PROPERTIES.values()}
    props[DEFAULT_PROPERTIES["modified_at"]] = "2026-03-01T10:00:00.000Z"
    props[DEFAULT_PROPERTIES[key]] = raw
    with pytest.raises(UnreadableValue) as raised:
        hs.to_deal("7", props, HS_TABLE)
    bad = raised.value.for_deal("7")
    assert (bad.deal_id, bad.field, bad.crm_field) == ("7", key, DEFAULT_PROPERTIES[key])
    assert repr(raw)[:20] in bad.value and reason in bad.reason
    assert f"{DEFAULT_PROPERTIES[key]} ({key}) holds" in bad.message


def test_a_salesforce_nan_score_is_quarantined_and_keeps_its_place_in_the_stream() -> None:
    bad = SF_READER.read(opp_record(3, BANT_Score__c=math.nan))
    assert isinstance(bad, UnreadableDeal)
    assert (bad.field, bad.crm_field) == ("score", "BANT_Score__c")
    assert bad.modified_at is not None, "the cursor moves past it"
