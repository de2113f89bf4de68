"""`sync --owner` by e-mail, and the full sweep's staleness rule, over a real store and a scripted CRM."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.errors import QuotaExhaustedError, TransientError
from connectors.model import Owner
from connectors.protocol import Connector
from tests.unit.serve_support import FakeConnector
from worker.errors import UsageError
from worker.state import StateStore
from worker.sync.owners import is_stale, refresh_owners, resolve_owner

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
ANN = Owner("005A", "Ann Lee", "Ann@X.io", None, True)
OLD_ANN = Owner("005O", "Ann Lee (old)", "ann@x.io", None, False)


class OwnersCrm(FakeConnector):
    """A CRM whose owners read answers `owners` (or raises `error`), counting each read."""

    def __init__(self, owners: list[Owner], error: Exception | None = None) -> None:
        super().__init__()
        self.listed, self.error, self.reads = owners, error, 0

    def owners(self) -> list[Owner]:
        self.reads += 1
        if self.error is not None:
            raise self.error
        return list(self.listed)


@pytest.fixture
def store() -> Iterator[StateStore]:
    opened = StateStore.open("sqlite://")
    yield opened
    opened.close()


def _resolve(store: StateStore, crm: OwnersCrm, value: str) -> str:
    def connector_for(name: str) -> Connector:
        return crm

    return resolve_owner(store, "sf", value, connector_for, lambda: T0)


def test_an_id_is_taken_as_it_is_and_a_cached_email_reads_nothing(store: StateStore) -> None:
    crm = OwnersCrm([ANN])
    assert _resolve(store, crm, "005Z") == "005Z" and crm.reads == 0
    store.replace_owners("sf", [ANN], T0)
    assert _resolve(store, crm, "ANN@x.IO") == "005A" and crm.reads == 0


def test_an_unknown_email_reads_the_owners_once_then_names_the_closest(store: StateStore) -> None:
    crm = OwnersCrm([ANN])
    assert _resolve(store, crm, "ann@x.io") == "005A" and crm.reads == 1
    with pytest.raises(
        UsageError, match=r"no owner of connection 'sf' has this e-mail \(did you mean 'ann@x.io'"
    ):
        _resolve(store, crm, "anne@x.io")
    assert crm.reads == 2


def test_a_shared_email_picks_the_active_owner_and_refuses_two_active(store: StateStore) -> None:
    store.replace_owners("sf", [OLD_ANN, ANN], T0)
    assert _resolve(store, OwnersCrm([]), "ann@x.io") == "005A"
    store.replace_owners("sf", [ANN, Owner("005B", "Ann Lee", "ann@x.io", None, True)], T0)
    with pytest.raises(UsageError, match="several active owners have this e-mail"):
        _resolve(store, OwnersCrm([]), "ann@x.io")


def test_an_unreadable_crm_is_a_usage_message_asking_for_the_id(store: StateStore) -> None:
    crm = OwnersCrm([], TransientError("HubSpot 503"))
    with pytest.raises(UsageError, match=r"could not be read .*HubSpot 503.*pass the owner's id"):
        _resolve(store, crm, "ann@x.io")


def test_stale_by_the_clock_and_a_failed_refresh_keeps_the_cache(store: StateStore) -> None:
    assert is_stale(store, "sf", T0)
    store.replace_owners("sf", [ANN], T0)
    assert not is_stale(store, "sf", T0 + timedelta(hours=23))
    assert is_stale(store, "sf", T0 + timedelta(days=1))
    assert refresh_owners(store, "sf", OwnersCrm([], TransientError("503")), lambda: T0) is None
    assert store.owners("sf") == [ANN]
    with pytest.raises(QuotaExhaustedError):
        refresh_owners(store, "sf", OwnersCrm([], QuotaExhaustedError("out")), lambda: T0)
