"""The qualify-out clock belongs to bant-sync: the date a deal was first flagged comes from the state store;
the CRM's flagged-since field only shows it, and is put back when a person blanks or changes it."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from tests.integration.conftest import Env


def _flagged_ordinary_deal(env: Env) -> str:
    return next(
        deal_id
        for deal_id, deal in sorted(env.view.deals().items())
        if deal["open"] and deal["status"] == "needs_qualification"
    )


def _shown(env: Env, deal_id: str) -> date | None:
    raw = env.view.deal_field(deal_id, "flagged_since")
    if raw in (None, ""):
        return None
    return raw if isinstance(raw, date) else date.fromisoformat(str(raw)[:10])


@pytest.mark.parametrize("edit", [None, "today"], ids=["blanked", "reset-to-today"])
def test_a_person_cannot_reset_the_clock_and_the_field_is_put_back(env: Env, edit: str | None) -> None:
    """A rep blanks the flagged-since field or sets it to today: the next run writes the stored date back,
    and the deal still turns qualify_out once 30 days have passed since it was first flagged."""
    assert env.run("full").status == "succeeded"
    deal_id = _flagged_ordinary_deal(env)
    first_flagged = _shown(env, deal_id)
    assert first_flagged == env.today()
    env.advance_days(20)
    value = None if edit is None else env.today().isoformat()
    env.view.set_deal_field(deal_id, "flagged_since", value)
    summary = env.run()
    assert summary.status == "succeeded", summary.error
    assert _shown(env, deal_id) == first_flagged
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    env.advance_days(11)
    env.view.set_deal_field(deal_id, "flagged_since", value)
    assert env.run("full").status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "qualify_out"
    assert _shown(env, deal_id) == first_flagged
    assert first_flagged is not None and env.today() - first_flagged > timedelta(days=30)


def test_the_clock_starts_again_only_after_the_deal_qualified(env: Env) -> None:
    """A deal that qualifies and later loses BANT again is flagged from the day it lost it, not from its
    first flag."""
    assert env.run("full").status == "succeeded"
    deal_id = _flagged_ordinary_deal(env)
    env.advance_days(10)
    env.view.fix_bant(deal_id)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "qualified"
    assert _shown(env, deal_id) is None
    env.advance_days(5)
    env.view.set_deal_field(deal_id, "budget", None)
    assert env.run().status == "succeeded"
    assert env.view.deals()[deal_id]["status"] == "needs_qualification"
    assert _shown(env, deal_id) == env.today()
