"""observed_changes: the statuses the CRM shows that the audit log does not end with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rules.model import Deal, DealFlags
from worker.state import StatusChange
from worker.sync.audit_recovery import observed_changes

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
CHECKED = NOW - timedelta(hours=3)


def _deal(deal_id: str, status: str | None, checked: datetime | None = CHECKED) -> Deal:
    missing = ("budget",) if status not in (None, "qualified") else ()
    return Deal(deal_id, flags=DealFlags(status=status, missing=missing, checked_at=checked))


CASES = [
    pytest.param(_deal("A", "poc_unqualified"), {"A": "qualified"}, ("qualified", CHECKED), id="differs"),
    pytest.param(_deal("A", "qualified"), {}, (None, CHECKED), id="never-audited"),
    pytest.param(_deal("A", "qualified"), {"A": None}, (None, CHECKED), id="known-as-none"),
    pytest.param(
        _deal("A", "qualify_out", None),
        {"A": "needs_qualification"},
        ("needs_qualification", NOW),
        id="no-checked-at-uses-now",
    ),
    pytest.param(_deal("A", "qualified"), {"A": "qualified"}, None, id="same"),
    pytest.param(_deal("A", None), {"A": "qualified"}, None, id="field-emptied"),
    pytest.param(_deal("A", "Qualified!"), {"A": "qualified"}, None, id="not-a-status"),
    pytest.param(_deal("A", None), {}, None, id="nothing-anywhere"),
]


@pytest.mark.parametrize(("deal", "known", "expected"), CASES)
def test_one_deal(
    deal: Deal, known: dict[str, str | None], expected: tuple[str | None, datetime] | None
) -> None:
    """A shown bant-sync status other than the last known one is an observed change dated by the deal's
    checked-at (else now); an empty field or a value that is no status is not."""
    changes = observed_changes([deal], known, NOW)
    if expected is None:
        assert changes == []
        return
    old, at = expected
    assert changes == [
        StatusChange("A", old, deal.flags.status or "", deal.flags.missing or (), at, "observed")
    ]


def test_page_order_and_duplicates() -> None:
    """Changes come in deal order, one per deal even when a deal is listed twice; the input map is not
    modified."""
    known: dict[str, str | None] = {"A": "qualified", "B": "qualified"}
    deals = [_deal("B", "needs_qualification"), _deal("A", "qualified"), _deal("B", "needs_qualification")]
    changes = observed_changes(deals, known, NOW)
    assert [(c.deal_id, c.old_status, c.new_status, c.source) for c in changes] == [
        ("B", "qualified", "needs_qualification", "observed")
    ]
    assert known == {"A": "qualified", "B": "qualified"}


def test_a_naive_checked_at_falls_back_to_now() -> None:
    """A checked-at without a time zone cannot be placed in time: the change is dated now."""
    deal = _deal("A", "qualified", datetime(2025, 3, 1, 8, 0))
    assert observed_changes([deal], {}, NOW)[0].at == NOW
