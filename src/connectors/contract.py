"""The Connector protocol's contract suite: one set of behaviour tests every connector must pass.

Built-in and third-party connectors run the same suite. In a test module::

    from connectors.contract import ConnectorContract

    class TestMyCrmContract(ConnectorContract):
        @pytest.fixture
        def connector_env(self, ...) -> ContractEnv:
            return MyCrmEnv(...)   # a connector factory against a seeded test account/sandbox

The environment needs at least 3 open deals, one of them with an owner, and must count the CRM write
requests it receives. Each call of `env.connector()` stands for a new run (a fresh connector instance).
Tasks are keyed from `connector.identity` as the worker keys them; `find_tasks` must fill each task's
`subject`, `due` and `priority` as the CRM holds them (the suite checks what an UPDATE leaves alone).
Needs pytest (a dev dependency); nothing at runtime imports this module.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Protocol

import pytest

from connectors.model import (
    CONTENT_FIELDS,
    Cursor,
    HistoryWindow,
    OutcomeKind,
    Page,
    StatusWrite,
    TaskAction,
    TaskField,
    TaskWrite,
    WritePlan,
)
from connectors.protocol import Connector, CountsDeals
from connectors.task_keys import sync_key
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


def _task(
    deal: Deal,
    action: TaskAction,
    identity: str,
    task_id: str | None = None,
    fields: frozenset[TaskField] = frozenset(),
) -> TaskWrite:
    """A task write keyed as the worker keys it: from the CRM account's identity and the deal id."""
    return TaskWrite(
        action,
        sync_key(identity, deal.id),
        deal.id,
        deal.owner_id,
        f"[contract] {deal.name}: confirm Budget, Timing",
        "Budget: 'TBD' is a placeholder.\nTiming: nothing entered.",
        date(2030, 1, 7),
        task_id=task_id,
        fields=fields,
    )


def _owned_deal(connector_env: ContractEnv) -> Deal:
    return next(d for d in _deals(_sweep(connector_env.connector())) if d.owner_id)


def _run(connector_env: ContractEnv) -> Connector:
    """A new run's connector, preflighted (its identity known)."""
    connector = connector_env.connector()
    connector.preflight()
    return connector


def _create(connector_env: ContractEnv, deal: Deal) -> tuple[str, str]:
    """Create the deal's task in a new run; its (sync key, task id)."""
    connector = _run(connector_env)
    write = _task(deal, TaskAction.CREATE, connector.identity)
    (outcome,) = connector.apply(WritePlan(task_writes=(write,)))
    assert outcome.kind is OutcomeKind.WRITTEN and outcome.task_id, outcome
    return write.sync_key, outcome.task_id


class ConnectorContract:
    """Mixin of contract tests; the test class provides the `connector_env` fixture."""

    def test_is_a_connector(self, connector_env: ContractEnv) -> None:
        """The object satisfies the Connector protocol and has a name."""
        connector = connector_env.connector()
        assert isinstance(connector, Connector)
        assert connector.name

    def test_full_sweep_sees_every_open_deal_once(self, connector_env: ContractEnv) -> None:
        """Pages hold at most 2,000 deals, no deal twice, every open deal once, cursors never go back, the
        last page carries one (earlier pages of a sweep out of modified order may carry none)."""
        pages = _sweep(connector_env.connector())
        ids = [deal.id for deal in _deals(pages)]
        assert len(ids) == len(set(ids)) == connector_env.open_deal_count()
        assert all(0 < len(page.deals) <= MAX_PAGE for page in pages)
        assert pages[-1].cursor is not None
        cursors = [page.cursor for page in pages if page.cursor is not None]
        assert all(a <= b for a, b in itertools.pairwise(cursors))

    def test_deals_are_filled(self, connector_env: ContractEnv) -> None:
        """Every deal has an id and a tz-aware modified_at no later than the cursor of its page, or of the
        sweep's last page when its own carries none."""
        pages = _sweep(connector_env.connector())
        last = pages[-1].cursor
        assert last is not None
        for page in pages:
            for deal in page.deals:
                assert deal.id and deal.modified_at is not None and deal.modified_at.tzinfo is not None
                assert Cursor(deal.modified_at, deal.id) <= (page.cursor or last)

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

    def test_identity_is_stable_across_runs_and_names_the_crm(self, connector_env: ContractEnv) -> None:
        """identity is `<connector name>:<account id>` and the same in every run against one account."""
        first, second = _run(connector_env), _run(connector_env)
        crm, _, account = first.identity.partition(":")
        assert crm == first.name and account
        assert second.identity == first.identity

    def test_a_second_create_under_one_key_never_makes_a_second_task(
        self, connector_env: ContractEnv
    ) -> None:
        """Creating the same keyed task in two runs leaves one open task: the second create is written onto
        the same task (an upsert) or refused (the key is taken); completing it by id leaves none open."""
        deal = _owned_deal(connector_env)
        key, task_id = _create(connector_env, deal)
        connector = _run(connector_env)
        (again,) = connector.apply(
            WritePlan(task_writes=(_task(deal, TaskAction.CREATE, connector.identity),))
        )
        assert again.kind in (OutcomeKind.WRITTEN, OutcomeKind.REJECTED)
        if again.kind is OutcomeKind.WRITTEN:
            assert again.task_id == task_id
        assert connector_env.open_tasks(deal.id) == 1
        complete = _task(deal, TaskAction.COMPLETE, connector.identity, task_id)
        (done,) = _run(connector_env).apply(WritePlan(task_writes=(complete,)))
        assert done.kind is OutcomeKind.WRITTEN and done.sync_key == key
        assert connector_env.open_tasks(deal.id) == 0

    def test_find_tasks_reads_a_task_by_key_open_then_completed(self, connector_env: ContractEnv) -> None:
        """find_tasks finds a created task under its key, open; after COMPLETE it reports it closed; an
        unknown key is left out, and no key at all finds nothing."""
        deal = _owned_deal(connector_env)
        key, task_id = _create(connector_env, deal)
        connector = _run(connector_env)
        unknown = sync_key(connector.identity, connector_env.unknown_deal_id())
        found = connector.find_tasks([key, unknown])
        assert list(found) == [key]
        assert (found[key].task_id, found[key].sync_key, found[key].is_open) == (task_id, key, True)
        complete = _task(deal, TaskAction.COMPLETE, connector.identity, task_id)
        assert connector.apply(WritePlan(task_writes=(complete,)))[0].kind is OutcomeKind.WRITTEN
        later = _run(connector_env).find_tasks([key])
        assert (later[key].task_id, later[key].is_open) == (task_id, False)
        assert connector.find_tasks([]) == {}

    def test_reopen_makes_a_completed_task_open_again(self, connector_env: ContractEnv) -> None:
        """REOPEN of a completed task opens that same task again: one open task, under the same id."""
        deal = _owned_deal(connector_env)
        key, task_id = _create(connector_env, deal)
        connector = _run(connector_env)
        identity = connector.identity
        connector.apply(WritePlan(task_writes=(_task(deal, TaskAction.COMPLETE, identity, task_id),)))
        assert connector_env.open_tasks(deal.id) == 0
        reopen = _task(deal, TaskAction.REOPEN, identity, task_id, CONTENT_FIELDS | {TaskField.DUE})
        (outcome,) = _run(connector_env).apply(WritePlan(task_writes=(reopen,)))
        assert (outcome.kind, outcome.task_id) == (OutcomeKind.WRITTEN, task_id)
        assert connector_env.open_tasks(deal.id) == 1
        found = _run(connector_env).find_tasks([key])[key]
        assert (found.task_id, found.is_open) == (task_id, True)

    def test_an_update_of_the_subject_changes_only_the_subject(self, connector_env: ContractEnv) -> None:
        """An UPDATE with fields={SUBJECT} rewrites the subject and leaves due date, priority and owner as
        they were, though the write carries other values for them."""
        deal = _owned_deal(connector_env)
        key, task_id = _create(connector_env, deal)
        connector = _run(connector_env)
        before = connector.find_tasks([key])[key]
        update = replace(
            _task(deal, TaskAction.UPDATE, connector.identity, task_id, frozenset({TaskField.SUBJECT})),
            subject="[bant-sync] contract: the subject alone changed",
            description="not to be written",
            due=date(2031, 6, 2),
            priority="Low",
        )
        (outcome,) = connector.apply(WritePlan(task_writes=(update,)))
        assert outcome.kind is OutcomeKind.WRITTEN
        after = _run(connector_env).find_tasks([key])[key]
        assert before.subject != update.subject
        assert after == replace(before, subject=update.subject)
        assert connector_env.open_tasks(deal.id) == 1

    def test_one_outcome_per_row_in_order(self, connector_env: ContractEnv) -> None:
        """apply returns status outcomes then task outcomes, one per write, naming their deals."""
        connector = connector_env.connector()
        deals = [d for d in _deals(_sweep(connector)) if d.owner_id][:2]
        now = connector_env.now().replace(microsecond=0)
        plan = WritePlan(
            status_writes=tuple(_status(d, now, ("timing",)) for d in deals),
            task_writes=tuple(_task(d, TaskAction.CREATE, connector.identity) for d in deals),
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

    def test_fetch_many_reads_the_open_deals_among_the_ids(self, connector_env: ContractEnv) -> None:
        """fetch_many returns each named open deal once, as the sweep reads it, leaves an unknown id out,
        and its pages carry no cursor (an EVENTS run never moves the incremental cursor)."""
        connector = connector_env.connector()
        swept = {d.id: d for d in _deals(_sweep(connector))}
        wanted = sorted(swept)[:3]
        assert wanted, "the seeded account holds no open deal"
        pages = list(connector.fetch_many([*wanted, connector_env.unknown_deal_id(), wanted[0]]))
        assert all(page.cursor is None for page in pages)
        read = _deals(pages)
        assert sorted(d.id for d in read) == wanted
        for deal in read:
            assert deal == swept[deal.id]
        assert list(connector.fetch_many([])) == []

    def test_setup_check_on_a_ready_crm_reports_no_problem(self, connector_env: ContractEnv) -> None:
        """setup(check_only=True) on a ready account changes nothing and says what is in place."""
        connector = connector_env.connector()
        before = connector_env.write_calls()
        report = connector.setup(check_only=True)
        assert report.ready and report.problems == () and report.created == ()
        assert report.ok
        assert connector_env.write_calls() == before

    def test_owners_name_every_deal_owner(self, connector_env: ContractEnv) -> None:
        """owners() is one counted read naming every deal's owner: ids unique, names never empty, e-mails
        look like e-mails."""
        connector = connector_env.connector()
        owned = {d.owner_id for d in _deals(_sweep(connector)) if d.owner_id}
        before = connector.api_calls
        owners = connector.owners()
        assert connector.api_calls > before
        by_id = {o.id: o for o in owners}
        assert len(by_id) == len(owners)
        assert owned and owned <= set(by_id)
        assert all(o.name.strip() for o in owners)
        assert all(o.email is None or "@" in o.email for o in owners)
        assert {o.id for o in connector_env.connector().owners()} == set(by_id)

    def test_closed_deals_are_read_once_each_with_their_entry(self, connector_env: ContractEnv) -> None:
        """closed_deals(window) yields closed deals only, each once, closed within the window, entered no
        later than they closed (or never, None); a window in the future yields none; the reads are
        counted. record_url links a deal over HTTPS."""
        connector = connector_env.connector()
        connector.preflight()
        today = connector_env.now().date()
        open_ids = {d.id for d in _deals(_sweep(connector))}
        before = connector.api_calls
        window = HistoryWindow(today - timedelta(days=3650), today)
        closed = [deal for batch in connector.closed_deals(window) for deal in batch]
        assert connector.api_calls > before
        ids = [c.deal.id for c in closed]
        assert len(ids) == len(set(ids)) and not set(ids) & open_ids
        for deal in closed:
            assert window.closed_from <= deal.closed_on <= window.closed_to
            assert deal.entered_at is None or deal.entered_at.date() <= deal.closed_on
            assert isinstance(deal.won, bool)
        future = HistoryWindow(today + timedelta(days=400), today + timedelta(days=800))
        assert [deal for batch in connector.closed_deals(future) for deal in batch] == []
        some_id = next(iter(open_ids))
        url = connector.record_url(some_id)
        assert url.startswith("https://") and some_id in url

    def test_expected_total_is_the_number_of_deals_then_read(self, connector_env: ContractEnv) -> None:
        """A connector that counts (`CountsDeals`, optional) says how many open deals the fetch_changed it
        makes next reads: every open deal for a full sweep; the changed ones after a cursor (an int, or
        None where the CRM cannot say cheaply)."""
        connector = connector_env.connector()
        if not isinstance(connector, CountsDeals):
            pytest.skip(f"{connector.name} does not count the deals a run reads (CountsDeals is optional)")
        connector.preflight()
        total = connector.expected_total(None, full=True)
        pages = list(connector.fetch_changed(None, full=True))
        assert total is None or total == len(_deals(pages)) == connector_env.open_deal_count()
        cursor = pages[-1].cursor
        target = _deals(pages)[0]
        connector_env.advance(60)
        connector_env.edit_deal(target.id, "budget", "USD 80k approved")
        rerun = connector_env.connector()
        assert isinstance(rerun, CountsDeals)
        rerun.preflight()
        since = rerun.expected_total(cursor, full=False)
        changed = _deals(list(rerun.fetch_changed(cursor)))
        assert target.id in {deal.id for deal in changed}
        assert since is None or since == len(changed)
        assert since is None or total is None or since <= total

    def test_api_calls_are_counted(self, connector_env: ContractEnv) -> None:
        """api_calls grows with the requests a connector makes."""
        connector = connector_env.connector()
        assert connector.api_calls == 0
        _sweep(connector)
        assert connector.api_calls >= 2


__all__ = ["MAX_PAGE", "ConnectorContract", "ContractEnv"]
