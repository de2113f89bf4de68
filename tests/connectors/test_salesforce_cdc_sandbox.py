"""The Salesforce connector's change stream against the sandbox's Pub/Sub API (gRPC over TLS, Avro change
events from the sandbox org): a rep's edit arrives as a change, bant-sync's own write as an echo; a saved
replay id resumes after it, an expired one is ReplayExpiredError; flow control, a dropped stream and a
refused token map as documented."""

from __future__ import annotations

import contextlib
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.errors import AuthenticationError, ReplayExpiredError, TransientError
from connectors.http import Timeouts, make_session
from connectors.model import ChangeBatch, DealChange, StatusWrite, WritePlan
from connectors.registry import ConnectorContext
from connectors.salesforce import SalesforceConnector, SalesforceSettings
from connectors.salesforce.cdc import ChangeSubscription
from rules.model import Status
from sandbox import People, Sandbox, SandboxOptions
from sandbox.faults import FaultRule

KEEPALIVE = 0.2
WAIT = 10.0


@dataclass
class Follower:
    """Iterates a subscription on its own thread, keeping what it yields and how it ended."""

    stream: ChangeSubscription
    batches: list[ChangeBatch] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def start(self) -> Follower:
        def run() -> None:
            try:
                for batch in self.stream:
                    self.batches.append(batch)
            except BaseException as exc:  # kept for the test to assert on
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        return self

    @property
    def changes(self) -> list[DealChange]:
        return [c for b in list(self.batches) for c in b.changes]

    @property
    def position(self) -> str | None:
        return self.batches[-1].position if self.batches else None

    def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT
        while not done():
            assert self.error is None, f"the stream failed: {self.error!r}"
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.01)

    def ended(self) -> BaseException | None:
        assert self.thread is not None
        self.thread.join(WAIT)
        assert not self.thread.is_alive(), "the stream did not end"
        return self.error

    def stop(self) -> None:
        self.stream.cancel()
        assert self.ended() is None


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    options = SandboxOptions(
        seed="track-selling", seed_value=7, enforce_rate_limits=False, pubsub_keepalive_seconds=KEEPALIVE
    )
    with Sandbox.start(options) as sandbox:
        yield sandbox


@pytest.fixture
def connector(sb: Sandbox, tmp_path: Path) -> Iterator[SalesforceConnector]:
    made = _connector(sb, tmp_path)
    yield made
    made.close()
    assert sb.pubsub is not None
    sb.pubsub.clear_faults()


def _connector(
    sb: Sandbox, tmp_path: Path, extra_secrets: dict[str, str] | None = None, **settings: Any
) -> SalesforceConnector:
    config = tmp_path / "sb.toml"
    sb.write_config(config)
    values = tomllib.loads(config.read_text(encoding="utf-8"))["connections"]["salesforce"]
    secrets = tomllib.loads(config.with_name("sb.secrets.toml").read_text(encoding="utf-8"))
    values.pop("crm")
    assert values["pubsub_endpoint"] == sb.info["salesforce"]["pubsub_endpoint"]  # type: ignore[index]
    options = SalesforceSettings(**{**values, "change_events": True, "read_timeout": 5.0, **settings})
    secret = {**secrets["connections"]["salesforce"], **(extra_secrets or {})}
    context = ConnectorContext("salesforce", secret, lambda: datetime.now(UTC), lambda s: None)
    return SalesforceConnector(options, context)


def _follow(sb: Sandbox, connector: SalesforceConnector, position: str | None = None) -> Follower:
    pubsub = sb.pubsub
    assert pubsub is not None
    deadline = time.monotonic() + WAIT
    while pubsub.active_streams:  # the server has seen the last test's stream end
        assert time.monotonic() < deadline, "an earlier stream is still open"
        time.sleep(0.01)
    follower = Follower(connector.change_stream(position)).start()
    # past its first FetchRequest: a LATEST subscription then sees every edit made next
    assert pubsub.wait_for_subscribers(1, WAIT), "the stream did not open"
    return follower


def _open_deals(sb: Sandbox, count: int) -> list[str]:
    deals = sb.people("salesforce").deals()
    return sorted(d for d, info in deals.items() if info["open"])[:count]


def _view(sb: Sandbox) -> People:
    return sb.people("salesforce")


def test_a_reps_edit_is_a_change_and_bant_syncs_own_write_is_an_echo(
    sb: Sandbox, connector: SalesforceConnector
) -> None:
    assert connector.changes_enabled
    deal, other = _open_deals(sb, 2)
    follower = _follow(sb, connector)
    try:
        _view(sb).fix_bant(deal)
        follower.until(lambda: len(follower.changes) == 1, "the rep's edit")
        (edit,) = follower.changes
        assert edit.deal_ids == (deal,) and edit.echo is False
        assert follower.batches[-1].position == edit.event_id
        write = StatusWrite(other, Status.QUALIFIED, (), 100, datetime.now(UTC), None)
        assert [o.kind for o in connector.apply(WritePlan(status_writes=(write,)))] == ["written"]
        follower.until(lambda: len(follower.changes) == 2, "the write's echo")
        echo = follower.changes[1]
        assert echo.deal_ids == (other,) and echo.echo is True
    finally:
        follower.stop()


def test_a_saved_replay_id_resumes_after_it_and_an_expired_one_is_refused(
    sb: Sandbox, connector: SalesforceConnector
) -> None:
    first, second, third = _open_deals(sb, 3)
    follower = _follow(sb, connector)
    _view(sb).set_deal_field(first, "budget", "approved 40k")
    follower.until(lambda: len(follower.changes) == 1, "the first edit")
    saved = follower.position
    follower.stop()
    assert saved is not None

    _view(sb).set_deal_field(second, "budget", "approved 50k")  # while nobody listens
    _view(sb).set_deal_field(third, "need", "replace the spreadsheets")
    resumed = _follow(sb, connector, saved)
    resumed.until(lambda: len(resumed.changes) == 2, "the edits made while disconnected")
    assert [c.deal_ids for c in resumed.changes] == [(second,), (third,)]
    resumed.stop()

    assert sb.pubsub is not None and sb.pubsub.expire_events() > 0
    expired = connector.change_stream(saved)
    with pytest.raises(ReplayExpiredError, match="72 hours"):
        list(expired)


def test_flow_control_asks_for_the_batch_size_again_as_events_arrive(sb: Sandbox, tmp_path: Path) -> None:
    connector = _connector(sb, tmp_path, change_events_batch=2)
    try:
        first, *deals = _open_deals(sb, 6)
        follower = _follow(sb, connector)
        _view(sb).set_deal_field(first, "timing", "next quarter")
        follower.until(lambda: bool(follower.changes), "an edit")
        start = follower.changes[-1].event_id
        follower.stop()
        for deal in deals:
            _view(sb).set_deal_field(deal, "timing", "this quarter")
        assert sb.pubsub is not None
        before = sb.pubsub.counters.snapshot()
        resumed = _follow(sb, connector, start)
        resumed.until(lambda: len(resumed.changes) == 5, "five edits")
        assert [c.deal_ids[0] for c in resumed.changes] == deals
        assert max(len(b.changes) for b in resumed.batches) <= 2
        after = sb.pubsub.counters.snapshot()
        assert after["fetch_requests"] - before["fetch_requests"] >= 3  # 2 + 2 + 2 requested for 5
        resumed.stop()
    finally:
        connector.close()


def test_a_stream_the_server_drops_is_transient(sb: Sandbox, connector: SalesforceConnector) -> None:
    deal, other = _open_deals(sb, 2)
    assert sb.pubsub is not None
    sb.pubsub.set_faults(drop_after=1)
    follower = _follow(sb, connector)
    _view(sb).set_deal_field(deal, "budget", "approved 60k")
    _view(sb).set_deal_field(other, "budget", "approved 70k")
    assert isinstance(follower.ended(), TransientError)
    assert [c.deal_ids for c in follower.changes] == [(deal,)]


def test_duplicated_events_carry_the_same_id(sb: Sandbox, connector: SalesforceConnector) -> None:
    (deal,) = _open_deals(sb, 1)
    assert sb.pubsub is not None
    sb.pubsub.set_faults(duplicate=True)
    follower = _follow(sb, connector)
    try:
        _view(sb).set_deal_field(deal, "authority", "the CFO signs")
        follower.until(lambda: len(follower.changes) == 2, "the event and its copy")
        first, copy = follower.changes
        assert first == copy
    finally:
        follower.stop()


@pytest.fixture
def own_sb() -> Iterator[Sandbox]:
    """A sandbox of its own, for tests that revoke its sessions."""
    options = SandboxOptions(seed="track-selling", seed_value=7, pubsub_keepalive_seconds=KEEPALIVE)
    with Sandbox.start(options) as sandbox:
        yield sandbox


def _expire_sessions(sb: Sandbox, connector: SalesforceConnector) -> None:
    """Salesforce ends every session (the sandbox's `session_expiry`, on the connector's next request)."""
    sb.add_fault(FaultRule(kind="session_expiry", crm="salesforce", times=1))
    with contextlib.suppress(AuthenticationError):
        list(connector.client.query("SELECT Id FROM User LIMIT 1"))
    sb.clear_faults()


def test_a_token_the_pubsub_api_refuses_logs_in_again_once(own_sb: Sandbox, tmp_path: Path) -> None:
    info = own_sb.info["salesforce"]
    assert isinstance(info, dict)
    secrets = {"client_secret": str(info["client_secret"])}
    connector = _connector(own_sb, tmp_path, secrets, auth="client_credentials", client_id=info["client_id"])
    try:
        first = _follow(own_sb, connector)
        first.stop()
        # Sessions end: the REST client logs in again by itself, the stream's token is now stale.
        _expire_sessions(own_sb, connector)
        logins = connector.client.authenticator.logins
        (deal,) = _open_deals(own_sb, 1)
        again = _follow(own_sb, connector)
        _view(own_sb).set_deal_field(deal, "budget", "approved 80k")
        again.until(lambda: len(again.changes) == 1, "the edit after logging in again")
        again.stop()
        assert own_sb.pubsub is not None and own_sb.pubsub.counters.snapshot()["auth_failures"] >= 1
        assert connector.client.authenticator.logins == logins + 1  # the stream's one new login
    finally:
        connector.close()


def test_a_fixed_token_the_pubsub_api_refuses_is_an_authentication_error(
    own_sb: Sandbox, tmp_path: Path
) -> None:
    connector = _connector(own_sb, tmp_path)
    try:
        connector.tenant_id()
        _expire_sessions(own_sb, connector)
        with pytest.raises(AuthenticationError, match="refused the access token"):
            list(connector.change_stream(None))
    finally:
        connector.close()


def test_a_write_of_only_output_fields_is_an_echo_whoever_sent_it(
    sb: Sandbox, connector: SalesforceConnector
) -> None:
    """Another integration's REST write (no bant-sync client name) of bant-sync's output fields only is an
    echo by its changed fields (read from the sandbox's bitmaps); one that changes an input is not."""
    info = sb.info["salesforce"]
    assert isinstance(info, dict)
    session = make_session(Timeouts(5, 10), str(sb.info["ca_bundle"]))
    session.headers["Authorization"] = f"Bearer {info['access_token']}"
    base = f"{info['instance_url']}/services/data/v{connector.settings.api_version}/sobjects/Opportunity"
    outputs, inputs = _open_deals(sb, 2)
    follower = _follow(sb, connector)
    try:
        answer = session.patch(
            f"{base}/{outputs}", json={"BANT_Status__c": "qualified", "BANT_Score__c": 100}
        )
        assert answer.status_code == 204, answer.text
        answer = session.patch(f"{base}/{inputs}", json={"BANT_Status__c": "qualified", "BANT_Need__c": "x"})
        assert answer.status_code == 204, answer.text
        follower.until(lambda: len(follower.changes) == 2, "two writes")
        assert [(c.deal_ids, c.echo) for c in follower.changes] == [((outputs,), True), ((inputs,), False)]
    finally:
        follower.stop()
