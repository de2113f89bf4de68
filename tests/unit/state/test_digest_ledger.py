"""The digest delivery ledger: claimed before a send, settled after, never claimed twice for a week."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from worker.state import DealState, StateStore

from .conftest import T0, Target

WEEK = "2025-W10"


def test_a_delivery_is_claimed_once_and_stays_sent(store: StateStore) -> None:
    """The first claim owns the send; once sent, no later claim does (not even --resend-uncertain)."""
    assert store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0)
    assert not store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0)
    store.settle_delivery("sf", WEEK, "ann@x.io", "email", "sent", T0 + timedelta(seconds=1))
    assert not store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0, resend_uncertain=True)
    [row] = store.deliveries("sf", WEEK)
    assert (row.state, row.attempts, row.last_error) == ("sent", 1, None)
    assert row.at == T0 + timedelta(seconds=1)


def test_other_channels_weeks_and_connections_are_separate(store: StateStore) -> None:
    """The ledger key is (connection, week, recipient, channel)."""
    assert store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0)
    assert store.claim_delivery("sf", WEEK, "ann@x.io", "slack", T0)
    assert store.claim_delivery("sf", "2025-W11", "ann@x.io", "email", T0)
    assert store.claim_delivery("hs", WEEK, "ann@x.io", "email", T0)
    assert [(d.recipient, d.channel) for d in store.deliveries("sf", WEEK)] == [
        ("ann@x.io", "email"),
        ("ann@x.io", "slack"),
    ]


def test_a_failed_delivery_is_claimed_again_counting_attempts(store: StateStore) -> None:
    """A failure is kept with its error, and the next claim (the next run) takes it again."""
    assert store.claim_delivery("sf", WEEK, "bob@x.io", "slack", T0)
    store.settle_delivery("sf", WEEK, "bob@x.io", "slack", "failed", T0, "users_not_found")
    [row] = store.deliveries("sf", WEEK)
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "users_not_found")
    assert store.claim_delivery("sf", WEEK, "bob@x.io", "slack", T0 + timedelta(days=1))
    [row] = store.deliveries("sf", WEEK)
    assert (row.state, row.attempts, row.last_error) == ("sending", 2, None)


def test_a_delivery_left_sending_is_only_claimed_when_asked(store: StateStore) -> None:
    """A crash between claim and settle leaves `sending`: in doubt, it is not sent again unless the
    caller says so (`digest --resend-uncertain`)."""
    assert store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0)
    assert not store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0 + timedelta(hours=1))
    assert store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0, resend_uncertain=True)
    assert store.deliveries("sf", WEEK)[0].attempts == 2


def test_settling_as_anything_but_sent_or_failed_is_refused(store: StateStore) -> None:
    """`settle` records an outcome; `sending` is only ever written by a claim."""
    store.claim_delivery("sf", WEEK, "ann@x.io", "email", T0)
    with pytest.raises(ValueError, match="settles as"):
        store.settle_delivery("sf", WEEK, "ann@x.io", "email", "sending", T0)


def test_concurrent_claims_give_the_send_to_one(target: Target) -> None:
    """Eight stores claiming the same delivery at once: exactly one owns it."""
    stores = [target.open() for _ in range(8)]
    won: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def claim(s: StateStore) -> None:
        barrier.wait()
        won.append(s.claim_delivery("sf", WEEK, "ann@x.io", "email", T0))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for s in stores:
            s.close()
    assert sorted(won) == [False] * 7 + [True]


def test_flagged_deals_are_the_unqualified_states_with_their_names(store: StateStore) -> None:
    """flagged_deals lists the unqualified deal states (any unqualified status) with name and clock."""
    lease = store.acquire_lease("sf", "r1", T0, timedelta(minutes=5))
    store.checkpoint(
        lease,
        None,
        [],
        [
            DealState("A", "005", "needs_qualification", ("budget",), T0, None, "Acme"),
            DealState("B", "005", "qualified", (), T0, None, "Beta"),
            DealState("C", None, "poc_unqualified", ("need", "timing"), T0, None, "Gamma POC"),
        ],
        {},
    )
    found = store.flagged_deals("sf")
    assert [(d.deal_id, d.owner_id, d.deal_name, d.missing) for d in found] == [
        ("C", None, "Gamma POC", ("need", "timing")),
        ("A", "005", "Acme", ("budget",)),
    ]
    assert store.flagged_deals("hs") == []
