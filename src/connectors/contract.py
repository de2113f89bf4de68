"""The Connector protocol's contract suite: one set of behaviour tests every connector must pass.

Built-in and third-party connectors run the same suite. In a test module::

    from connectors.contract import ConnectorContract

    class TestMyCrmContract(ConnectorContract):
        @pytest.fixture
        def connector_env(self, ...) -> ContractEnv:
            return MyCrmEnv(...)   # a connector factory against a seeded test account/sandbox

The environment needs at least 3 open deals, one of them with an owner, and must count the CRM write
requests it receives. Each call of `env.connector()` stands for a new run (a fresh connector instance).
Needs pytest (a dev dependency); nothing at runtime imports this module.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime
from typing import Protocol

from connectors.model import Cursor, OutcomeKind, Page, StatusWrite, TaskAction, TaskWrite, WritePlan
from connectors.protocol import Connector
from connectors.tasks import sync_key, task_description, task_subject
from rules.model import Deal, Status

MAX_PAGE = 2000


class ContractEnv(Protocol):
    def connector(self) -> Connector:
        """A new connector instance (a new run) against the seeded CRM."""

    def now(self) -> datetime:
        """The CRM's current time (tz-aware UTC)."""

    def advance(self, seconds: float) -> None:
        """Move the CRM's clock forward (a real account may simply wait, or no-op if stamps differ)."""

    def edit_deal(self, deal_id: str, field: str, value: str) -> None:
        """Change one canonical input field (`budget`, `authority`, `need`, `timing`) as a user would."""

    def write_calls(self) -> int:
        """CRM write requests (create/update/upsert) received so far."""

    def open_tasks(self, deal_id: str) -> int:
        """How many open bant-sync tasks the CRM holds for this deal."""

    def open_deal_count(self) -> int:
        """How many open deals the seeded account holds."""

    def unknown_deal_id(self) -> str:
        """A well-formed deal id that does not exist."""


def _sweep(connector: Connector) -> list[Page]:
    connector.preflight()
    return list(connector.fetch_changed(None, full=True))


def _deals(pages: list[Page]) -> list[Deal]:
    return [deal for page in pages for deal in page.deals]


def _status(deal: Deal, now: datetime, missing: tuple[str, ...] = ("budget",)) -> StatusWrite:
    status = Status.NEEDS_QUALIFICATION if missing else Status.QUALIFIED
    return StatusWrite(deal.id, status, missing, 75 if missing else 100, now, now.date() if missing else None)


def _task(deal: Deal, action: TaskAction, connection: str = "contract") -> TaskWrite:
    missing = ("budget", "timing")
    return TaskWrite(
        action,
        sync_key(connection, deal.id),
        deal.id,
        deal.owner_id,
        task_subject(deal.name, missing),
        task_description(deal.name, missing),
        date(2030, 1, 7),
    )


class ConnectorContract:
    """Mixin of contract tests; the test class provides the `connector_env` fixture."""

    def test_is_a_connector(self, connector_env: ContractEnv) -> None:
        """The object satisfies the Connector protocol and has a name."""
        connector = connector_env.connector()
        assert isinstance(connector, Connector)
        assert connector.name

    def test_full_sweep_sees_every_open_deal_once(self, connector_env: ContractEnv) -> None:
        """Pages hold at most 2,000 deals, no deal twice, every open deal once, cursors never go back."""
        pages = _sweep(connector_env.connector())
        ids = [deal.id for deal in _deals(pages)]
        assert len(ids) == len(set(ids)) == connector_env.open_deal_count()
        assert all(0 < len(page.deals) <= MAX_PAGE for page in pages)
        cursors = [page.cursor for page in pages]
        assert all(c is not None for c in cursors)
        assert all(a <= b for a, b in itertools.pairwise(cursors))  # type: ignore[operator]

    def test_deals_are_filled(self, connector_env: ContractEnv) -> None:
        """Every deal has an id and a tz-aware modified_at no later than its page cursor."""
        for page in _sweep(connector_env.connector()):
            assert page.cursor is not None
            for deal in page.deals:
                assert deal.id and deal.modified_at is not None and deal.modified_at.tzinfo is not None
                assert Cursor(deal.modified_at, deal.id) <= page.cursor

    def test_status_write_is_read_back_and_an_unchanged_rerun_writes_nothing(
        self, connector_env: ContractEnv
    ) -> None:
        """A written status shows in the deal's flags; a rerun that diffs against them makes 0 writes."""
        connector = connector_env.connector()
        deals = _deals(_sweep(connector))[:3]
        now = connector_env.now().replace(microsecond=0)
        outcomes = connector.apply(WritePlan(status_writes=tuple(_status(d, now) for d in deals)))
        assert [o.kind for o in outcomes] == [OutcomeKind.WRITTEN] * 3
        rerun = connector_env.connector()
        rerun.preflight()
        before = connector_env.write_calls()
        wanted = {d.id: _status(d, now) for d in deals}
        changed = []
        for deal in deals:
            fresh = rerun.fetch_one(deal.id)
            assert fresh is not None
            shown = (fresh.flags.status, fresh.flags.missing, fresh.flags.score)
            want = wanted[deal.id]
            if shown != (want.status.value, want.missing, want.score):
                changed.append(want)
        assert changed == []
        assert rerun.apply(WritePlan(status_writes=tuple(changed))) == []
        assert connector_env.write_calls() == before

    def test_changes_after_the_cursor_are_seen(self, connector_env: ContractEnv) -> None:
        """A deal edited after a sweep is in the next incremental read from the sweep's last cursor."""
        pages = _sweep(connector_env.connector())
        cursor = pages[-1].cursor
        target = _deals(pages)[0]
        connector_env.advance(60)
        connector_env.edit_deal(target.id, "budget", "USD 50k approved")
        connector = connector_env.connector()
        connector.preflight()
        seen = {deal.id: deal for deal in _deals(list(connector.fetch_changed(cursor)))}
        assert target.id in seen
        assert seen[target.id].budget == "USD 50k approved"

    def test_task_create_is_idempotent_and_completes(self, connector_env: ContractEnv) -> None:
        """Creating the same keyed task twice (two runs) leaves one open task; completing leaves none."""
        deal = next(d for d in _deals(_sweep(connector_env.connector())) if d.owner_id)
        for _ in range(2):
            connector = connector_env.connector()
            connector.preflight()
            (outcome,) = connector.apply(WritePlan(task_writes=(_task(deal, TaskAction.CREATE),)))
            assert outcome.kind is OutcomeKind.WRITTEN and outcome.task_id
        assert connector_env.open_tasks(deal.id) == 1
        connector = connector_env.connector()
        connector.preflight()
        task_id = outcome.task_id
        complete = replace(_task(deal, TaskAction.COMPLETE), task_id=task_id)
        (done,) = connector.apply(WritePlan(task_writes=(complete,)))
        assert done.kind is OutcomeKind.WRITTEN
        assert connector_env.open_tasks(deal.id) == 0

    def test_one_outcome_per_row_in_order(self, connector_env: ContractEnv) -> None:
        """apply returns status outcomes then task outcomes, one per write, naming their deals."""
        connector = connector_env.connector()
        deals = [d for d in _deals(_sweep(connector)) if d.owner_id][:2]
        now = connector_env.now().replace(microsecond=0)
        plan = WritePlan(
            status_writes=tuple(_status(d, now, ("timing",)) for d in deals),
            task_writes=tuple(_task(d, TaskAction.CREATE, "contract-order") for d in deals),
        )
        outcomes = connector.apply(plan)
        assert [o.deal_id for o in outcomes] == [d.id for d in deals] * 2
        assert [o.target.value for o in outcomes] == ["status"] * len(deals) + ["task"] * len(deals)

    def test_scoped_reads(self, connector_env: ContractEnv) -> None:
        """fetch_one finds a deal and returns None for an unknown id; fetch_by_owner keeps to the owner."""
        connector = connector_env.connector()
        deal = next(d for d in _deals(_sweep(connector)) if d.owner_id)
        found = connector.fetch_one(deal.id)
        assert found is not None and found.id == deal.id
        assert connector.fetch_one(connector_env.unknown_deal_id()) is None
        owned = _deals(list(connector.fetch_by_owner(str(deal.owner_id))))
        assert deal.id in {d.id for d in owned}
        assert {d.owner_id for d in owned} == {deal.owner_id}

    def test_api_calls_are_counted(self, connector_env: ContractEnv) -> None:
        """api_calls grows with the requests a connector makes."""
        connector = connector_env.connector()
        assert connector.api_calls == 0
        _sweep(connector)
        assert connector.api_calls >= 2


__all__ = ["MAX_PAGE", "ConnectorContract", "ContractEnv"]
