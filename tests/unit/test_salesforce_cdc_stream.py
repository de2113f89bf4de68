"""The Salesforce change stream's gRPC side against a scripted Pub/Sub servicer (the generated one, over TLS
on loopback): auth metadata, flow control, decoding into batches, replay presets, and how each failure the
real API documents maps onto the error tree. The sandbox's own Pub/Sub endpoint is exercised in
tests/connectors/test_salesforce_cdc_sandbox.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ReplayExpiredError,
    TransientError,
)
from connectors.model import ChangeBatch
from connectors.salesforce.auth import Token
from connectors.salesforce.cdc import TOPIC, ChangeSubscription, StreamCredentials
from connectors.salesforce.cdc_decode import echo_fields, output_field_names
from connectors.salesforce.settings import DEFAULT_FIELDS, OUTPUT_KEYS, SalesforceSettings
from pubsub_api import pubsub_api_pb2 as pb
from pubsub_api import pubsub_api_pb2_grpc as pb_grpc
from sandbox.tls import TlsMaterial, make_tls_material
from tests.unit.test_salesforce_cdc_decode import SCHEMA, _payload

ORG = "00D000000000001AAA"
INSTANCE = "https://example.my.salesforce.com"
AUTH_ERROR = "sfdc.platform.eventbus.grpc.service.auth.error"
OWN = echo_fields(output_field_names(DEFAULT_FIELDS, OUTPUT_KEYS))


def _rid(n: int) -> bytes:
    return n.to_bytes(8, "big")


@dataclass
class Script:
    """What the servicer does: the events it holds, how many it puts in one response, and how the stream
    ends once they are sent (a keepalive, then `end`: "unavailable", "hang" until cancelled, or "close")."""

    events: list[tuple[bytes, bytes]] = field(default_factory=list)
    per_response: int = 1
    end: str = "hang"
    token: str = "good"
    abort: tuple[grpc.StatusCode, str, str] | None = None
    """Fail Subscribe at once with (status, details, error-code trailer)."""
    can_subscribe: bool = True


class Servicer(pb_grpc.PubSubServicer):  # type: ignore[misc]
    def __init__(self, script: Script) -> None:
        self.script = script
        self.metadata: list[dict[str, str]] = []
        self.requests: list[pb.FetchRequest] = []
        self.max_in_flight = 0
        self.schema_calls = 0

    def _auth(self, context: grpc.ServicerContext) -> None:
        metadata = {k: str(v) for k, v in context.invocation_metadata()}
        self.metadata.append(metadata)
        if metadata.get("accesstoken") != self.script.token:
            context.set_trailing_metadata((("error-code", AUTH_ERROR),))
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "Authentication exception")

    def GetTopic(self, request: pb.TopicRequest, context: grpc.ServicerContext) -> pb.TopicInfo:
        self._auth(context)
        return pb.TopicInfo(
            topic_name=request.topic_name,
            tenant_guid=ORG,
            can_subscribe=self.script.can_subscribe,
            schema_id="schema-1",
        )

    def GetSchema(self, request: pb.SchemaRequest, context: grpc.ServicerContext) -> pb.SchemaInfo:
        self._auth(context)
        self.schema_calls += 1
        return pb.SchemaInfo(schema_json=json.dumps(SCHEMA), schema_id=request.schema_id)

    def Subscribe(
        self, request_iterator: Iterator[pb.FetchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.FetchResponse]:
        self._auth(context)
        first = next(request_iterator)
        self.requests.append(first)
        if self.script.abort is not None:
            status, details, code = self.script.abort
            if code:
                context.set_trailing_metadata((("error-code", code),))
            context.abort(status, details)
        pending = first.num_requested
        events = list(self.script.events)
        last = _rid(0)
        while events:
            if pending == 0:
                more = next(request_iterator)
                self.requests.append(more)
                pending += more.num_requested
            self.max_in_flight = max(self.max_in_flight, pending)
            take = events[: min(pending, self.script.per_response)]
            events = events[len(take) :]
            pending -= len(take)
            last = take[-1][0]
            yield pb.FetchResponse(
                events=[
                    pb.ConsumerEvent(
                        event=pb.ProducerEvent(id=f"e{r.hex()}", schema_id="schema-1", payload=p), replay_id=r
                    )
                    for r, p in take
                ],
                latest_replay_id=last,
                pending_num_requested=pending,
            )
        yield pb.FetchResponse(latest_replay_id=last, pending_num_requested=pending)  # a keepalive
        if self.script.end == "unavailable":
            context.abort(grpc.StatusCode.UNAVAILABLE, "the server is going away")
        if self.script.end == "hang":
            done = threading.Event()
            context.add_callback(done.set)
            done.wait(20)


@dataclass
class Endpoint:
    servicer: Servicer
    address: str
    tls: TlsMaterial

    def settings(self, **kw: Any) -> SalesforceSettings:
        base: dict[str, Any] = {
            "auth": "token",
            "instance_url": INSTANCE,
            "pubsub_endpoint": self.address,
            "ca_bundle": str(self.tls.ca_path),
        }
        return SalesforceSettings(**{**base, **kw})


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return make_tls_material(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def endpoint(tls: TlsMaterial) -> Iterator[Endpoint]:
    servicer = Servicer(Script())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pb_grpc.add_PubSubServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials([(tls.key_path.read_bytes(), tls.cert_path.read_bytes())])
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield Endpoint(servicer, f"127.0.0.1:{port}", tls)
    finally:
        server.stop(grace=None)


class Logins:
    """The connector's Authenticator as the stream sees it: each login a new token."""

    def __init__(self, tokens: list[str], can_refresh: bool = True) -> None:
        self.tokens = tokens
        self.can_refresh = can_refresh
        self.count = 0

    def login(self) -> Token:
        token = self.tokens[min(self.count, len(self.tokens) - 1)]
        self.count += 1
        return Token(token, INSTANCE)


def _subscribe(
    endpoint: Endpoint, position: str | None = None, logins: Logins | None = None, **settings: Any
) -> ChangeSubscription:
    credentials = StreamCredentials(logins or Logins(["good"]), lambda: ORG)
    return ChangeSubscription(endpoint.settings(**settings), credentials, position, OWN)


def _take(stream: ChangeSubscription, count: int) -> list[ChangeBatch]:
    batches: list[ChangeBatch] = []
    for batch in stream:
        batches.append(batch)
        if len(batches) == count:
            stream.cancel()
    return batches


def test_batches_follow_flow_control_and_carry_decoded_changes_and_positions(endpoint: Endpoint) -> None:
    rep_edit = _payload(changed=["0x120"], record_ids=["006A"])  # LastModifiedDate + BANT_Budget__c
    echo = _payload(
        changed=["0x220"], record_ids=["006B"], origin="com/salesforce/api/rest/62.0;client=bant-sync"
    )
    endpoint.servicer.script = Script(
        events=[
            (_rid(1), rep_edit),
            (_rid(2), echo),
            (_rid(3), rep_edit),
            (_rid(4), rep_edit),
            (_rid(5), rep_edit),
        ],
        per_response=2,
    )
    batches = _take(_subscribe(endpoint, change_events_batch=2), 4)
    assert [len(b.changes) for b in batches] == [2, 2, 1, 0]  # the last: a keepalive
    assert [b.position for b in batches] == [_rid(2).hex(), _rid(4).hex(), _rid(5).hex(), _rid(5).hex()]
    first, second = batches[0].changes
    assert (first.event_id, first.deal_ids, first.echo) == (_rid(1).hex(), ("006A",), False)
    assert (second.deal_ids, second.echo) == (("006B",), True)
    assert batches[0].position_at == first.occurred_at and batches[3].position_at is None
    servicer = endpoint.servicer
    assert servicer.max_in_flight == 2  # never more in flight than asked for
    assert [r.num_requested for r in servicer.requests] == [2, 2, 2]  # another 2 each time none are pending
    assert servicer.requests[0].topic_name == TOPIC
    assert servicer.requests[0].replay_preset == pb.ReplayPreset.LATEST
    assert servicer.schema_calls == 1  # one GetSchema per schema id
    assert servicer.metadata[0] == {**servicer.metadata[0], "accesstoken": "good", "instanceurl": INSTANCE}
    assert servicer.metadata[0]["tenantid"] == ORG


def test_a_saved_position_resumes_with_a_custom_replay_id(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(events=[(_rid(8), _payload(changed=["0x100"]))])
    _take(_subscribe(endpoint, position=_rid(7).hex()), 1)
    (request,) = endpoint.servicer.requests
    assert request.replay_preset == pb.ReplayPreset.CUSTOM and request.replay_id == _rid(7)


def test_an_overflow_asks_for_reconciliation(endpoint: Endpoint) -> None:
    overflow = _payload(change_type="GAP_OVERFLOW", record_ids=[])
    endpoint.servicer.script = Script(events=[(_rid(1), overflow)])
    (batch,) = _take(_subscribe(endpoint), 1)
    assert batch.reconcile is True and batch.changes == ()


def test_an_unreadable_event_is_skipped_and_asks_for_reconciliation(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(events=[(_rid(1), b"\xff\xff"), (_rid(2), _payload(changed=["0x100"]))])
    batches = _take(_subscribe(endpoint, change_events_batch=2), 1)
    endpoint.servicer.script = Script()
    assert batches[0].reconcile is True  # the first event could not be read


def test_a_stream_the_server_drops_is_transient(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(events=[(_rid(1), _payload(changed=["0x100"]))], end="unavailable")
    received: list[ChangeBatch] = []
    with pytest.raises(TransientError, match="UNAVAILABLE"):
        for batch in _subscribe(endpoint):
            received.append(batch)
    assert len(received) == 2


def test_a_stream_the_server_ends_is_transient(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(end="close")
    with pytest.raises(TransientError, match="ended the change stream"):
        list(_subscribe(endpoint))


@pytest.mark.parametrize(
    "code",
    [
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted",
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed",
    ],
)
def test_a_replay_id_the_server_refuses_is_replay_expired(endpoint: Endpoint, code: str) -> None:
    endpoint.servicer.script = Script(
        abort=(grpc.StatusCode.INVALID_ARGUMENT, "The Replay ID validation failed.", code)
    )
    with pytest.raises(ReplayExpiredError, match="72 hours"):
        list(_subscribe(endpoint, position=_rid(3).hex()))


def test_a_refused_token_logs_in_again_once(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(events=[(_rid(1), _payload(changed=["0x100"]))], token="fresh")
    logins = Logins(["stale", "fresh"])
    assert len(_take(_subscribe(endpoint, logins=logins), 1)) == 1
    assert logins.count == 2


def test_a_token_refused_after_logging_in_again_is_an_authentication_error(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(token="never")
    logins = Logins(["stale", "still-stale"])
    with pytest.raises(AuthenticationError, match="refused the access token"):
        list(_subscribe(endpoint, logins=logins))
    assert logins.count == 2


def test_a_fixed_token_the_server_refuses_is_an_authentication_error_at_once(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(token="never")
    logins = Logins(["stale"], can_refresh=False)
    with pytest.raises(AuthenticationError):
        list(_subscribe(endpoint, logins=logins))
    assert logins.count == 1


def test_a_permission_problem_is_a_configuration_error_saying_what_to_check(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(
        abort=(grpc.StatusCode.PERMISSION_DENIED, "Insufficient permissions", "sfdc.platform.eventbus.grpc.x")
    )
    with pytest.raises(ConfigurationError, match="Change Data Capture") as raised:
        list(_subscribe(endpoint))
    assert "pubsub_endpoint" in str(raised.value) and "View All Data" in str(raised.value)


def test_a_topic_the_user_cannot_subscribe_to_is_a_configuration_error(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(can_subscribe=False)
    with pytest.raises(ConfigurationError, match="subscribe"):
        list(_subscribe(endpoint))


def test_an_endpoint_signed_by_an_unknown_ca_asks_for_ca_bundle(endpoint: Endpoint, tmp_path: Path) -> None:
    other = make_tls_material(tmp_path)
    with pytest.raises(ConfigurationError, match="ca_bundle"):
        list(_subscribe(endpoint, ca_bundle=str(other.ca_path)))


def test_an_unreadable_ca_bundle_is_a_configuration_error(endpoint: Endpoint, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"ca_bundle: .* cannot be read"):
        list(_subscribe(endpoint, ca_bundle=str(tmp_path / "missing.pem")))


def test_an_endpoint_nobody_listens_on_is_transient(endpoint: Endpoint) -> None:
    with pytest.raises(TransientError):
        list(_subscribe(endpoint, pubsub_endpoint="127.0.0.1:1"))


def test_cancel_from_another_thread_ends_the_iteration_quietly(endpoint: Endpoint) -> None:
    endpoint.servicer.script = Script(events=[(_rid(1), _payload(changed=["0x100"]))], end="hang")
    stream = _subscribe(endpoint)
    received: list[ChangeBatch] = []
    for batch in stream:
        received.append(batch)
        if len(received) == 2:  # the event, then the keepalive: now the server waits
            threading.Timer(0.05, stream.cancel).start()
    assert len(received) == 2


def test_a_position_that_is_not_hex_is_replay_expired(endpoint: Endpoint) -> None:
    with pytest.raises(ReplayExpiredError):
        _subscribe(endpoint, position="not-hex")
