"""The sandbox's Salesforce Pub/Sub API, driven by a raw gRPC client built here from the committed stubs (not
bant-sync's connector): topic and schema, auth, change events of UI and API edits decoded with fastavro, flow
control, keepalives, replay, retention and the stream faults."""

from __future__ import annotations

import io
import json
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
import requests
from fastavro import parse_schema, schemaless_reader

from pubsub_api import pubsub_api_pb2 as pb
from pubsub_api import pubsub_api_pb2_grpc as pb_grpc
from sandbox import FaultRule, Sandbox
from sandbox.salesforce.cdc import TOPIC, build_schema
from tests.sandbox.clients import sf_session
from tests.sandbox.conftest import Factory

WAIT = 2.0
"""The longest any test waits on a stream (real seconds)."""


class Client:
    """A Pub/Sub API client as the forcedotcom examples write one: a TLS channel, auth metadata, stubs."""

    def __init__(self, sb: Sandbox, token: str | None = None, tenant: str | None = None) -> None:
        info = sb.info["salesforce"]
        with open(str(sb.info["ca_bundle"]), "rb") as handle:
            credentials = grpc.ssl_channel_credentials(root_certificates=handle.read())
        self.channel = grpc.secure_channel(info["pubsub_endpoint"], credentials)
        self.stub = pb_grpc.PubSubStub(self.channel)
        self.metadata = (
            ("accesstoken", token or info["access_token"]),
            ("instanceurl", info["instance_url"]),
            ("tenantid", tenant or info["org_id"]),
        )
        self._schemas: dict[str, Any] = {}

    def topic(self) -> Any:
        return self.stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=self.metadata, timeout=WAIT)

    def schema(self, schema_id: str) -> Any:
        if schema_id not in self._schemas:
            info = self.stub.GetSchema(pb.SchemaRequest(schema_id=schema_id), metadata=self.metadata)
            self._schemas[schema_id] = parse_schema(json.loads(info.schema_json))
        return self._schemas[schema_id]

    def decode(self, event: Any) -> dict[str, Any]:
        schema = self.schema(event.event.schema_id)
        return dict(schemaless_reader(io.BytesIO(event.event.payload), schema, schema))

    def subscribe(
        self, num_requested: int, preset: int = pb.ReplayPreset.LATEST, replay_id: bytes = b""
    ) -> Stream:
        return Stream(self, num_requested, preset, replay_id)

    def listen(self, sb: Sandbox, num_requested: int) -> Stream:
        """A LATEST subscription that is open on the server before the test edits anything."""
        assert sb.pubsub is not None
        opened = sb.pubsub.active_streams
        stream = self.subscribe(num_requested)
        assert sb.pubsub.wait_for_subscribers(opened + 1, WAIT)
        return stream


class Stream:
    """One Subscribe call: requests go in through a queue, responses are read on a thread."""

    def __init__(self, client: Client, num_requested: int, preset: int, replay_id: bytes) -> None:
        self.requests: queue.Queue[Any] = queue.Queue()
        self.requests.put(
            pb.FetchRequest(
                topic_name=TOPIC, replay_preset=preset, replay_id=replay_id, num_requested=num_requested
            )
        )
        self.responses: queue.Queue[Any] = queue.Queue()
        self.call = client.stub.Subscribe(self._outgoing(), metadata=client.metadata)
        self.error: grpc.RpcError | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _outgoing(self) -> Iterator[Any]:
        while True:
            item = self.requests.get()
            if item is None:
                return
            yield item

    def _read(self) -> None:
        try:
            for response in self.call:
                self.responses.put(response)
        except grpc.RpcError as error:
            self.error = error
        self.responses.put(None)

    def fetch(self, n: int) -> None:
        self.requests.put(pb.FetchRequest(topic_name=TOPIC, num_requested=n))

    def next(self, timeout: float = WAIT) -> Any:
        response = self.responses.get(timeout=timeout)
        if response is None:
            raise AssertionError(f"the stream ended: {self.error}")
        return response

    def events(self, count: int, timeout: float = WAIT) -> list[Any]:
        """Read responses until `count` events came (keepalives skipped)."""
        found: list[Any] = []
        while len(found) < count:
            found.extend(self.next(timeout).events)
        return found

    def end(self, timeout: float = WAIT) -> grpc.RpcError | None:
        """Wait for the stream to end; the error it ended with."""
        while True:
            if self.responses.get(timeout=timeout) is None:
                return self.error

    def close(self) -> None:
        self.requests.put(None)
        self.call.cancel()


@pytest.fixture
def sb(make_sandbox: Factory) -> Sandbox:
    sandbox = make_sandbox(deals=5, pubsub_keepalive_seconds=30)
    return sandbox


@pytest.fixture
def client(sb: Sandbox) -> Iterator[Client]:
    made = Client(sb)
    yield made
    made.channel.close()


def _deal(sb: Sandbox, index: int = 0) -> str:
    return str(sorted(sb.people("salesforce").deals())[index])


def _trailer(error: grpc.RpcError, key: str) -> str | None:
    for name, value in error.trailing_metadata() or ():  # type: ignore[attr-defined]
        if name == key:
            return str(value)
    return None


def _api(sb: Sandbox, method: str, path: str, body: Any, client_name: str | None = "bant-sync") -> Any:
    session = sf_session(sb)
    headers = {"Authorization": f"Bearer {sb.info['salesforce']['access_token']}"}
    if client_name is not None:
        headers["Sforce-Call-Options"] = f"client={client_name}"
    url = f"{sb.info['salesforce']['instance_url']}/services/data/v62.0/{path}"
    response = session.request(method, url, json=body, headers=headers, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


# ----- topic, schema, auth -----
def test_get_topic_and_schema_describe_opportunity_change_events(sb: Sandbox, client: Client) -> None:
    topic = client.topic()
    assert topic.topic_name == TOPIC
    assert topic.tenant_guid == sb.info["salesforce"]["org_id"]
    assert topic.can_subscribe and not topic.can_publish
    info = client.stub.GetSchema(pb.SchemaRequest(schema_id=topic.schema_id), metadata=client.metadata)
    assert info.schema_id == topic.schema_id
    schema = json.loads(info.schema_json)
    assert (schema["name"], schema["namespace"]) == ("OpportunityChangeEvent", "com.sforce.eventbus")
    names = [f["name"] for f in schema["fields"]]
    assert names[0] == "ChangeEventHeader"
    assert "Id" not in names and "SystemModstamp" not in names
    assert {"StageName", "Amount", "CloseDate", "LastModifiedDate", "BANT_Budget__c"} <= set(names)
    header = [f["name"] for f in schema["fields"][0]["type"]["fields"]]
    assert header == [
        "entityName",
        "recordIds",
        "changeType",
        "changeOrigin",
        "transactionKey",
        "sequenceNumber",
        "commitTimestamp",
        "commitNumber",
        "commitUser",
        "nulledFields",
        "diffFields",
        "changedFields",
    ]
    close = next(f for f in schema["fields"] if f["name"] == "CloseDate")
    assert close["type"] == ["null", {"type": "int", "logicalType": "date"}]


@pytest.mark.parametrize("which", ["token", "tenant"])
def test_a_bad_token_or_org_is_unauthenticated_with_the_auth_error_code(sb: Sandbox, which: str) -> None:
    bad = (
        Client(sb, token="00D000000000001!AQbogus")
        if which == "token"
        else Client(sb, tenant="00D9" * 4 + "AA")
    )
    with pytest.raises(grpc.RpcError) as raised:
        bad.topic()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert _trailer(raised.value, "error-code") == "sfdc.platform.eventbus.grpc.service.auth.error"
    assert "rpcId:" in raised.value.details()  # type: ignore[attr-defined]
    stream = bad.subscribe(1)
    error = stream.end()
    assert error is not None and error.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert sb.pubsub is not None and sb.pubsub.counters.auth_failures == 2
    bad.channel.close()


# ----- events -----
def test_a_ui_edit_arrives_decoded_with_its_origin_changed_fields_and_values(
    sb: Sandbox, client: Client
) -> None:
    stream = client.listen(sb, 10)
    deal = _deal(sb)
    rep = "005000000000002AAA"
    sb.people("salesforce").set_deal_fields(deal, {"budget": "50k approved"}, by=None)
    (event,) = stream.events(1)
    payload = client.decode(event)
    header = payload["ChangeEventHeader"]
    assert header["entityName"] == "Opportunity"
    assert header["recordIds"] == [deal]
    assert header["changeType"] == "UPDATE"
    assert header["changeOrigin"] == "com/salesforce/api/soap/62.0;client=SfdcInternalAPI/"
    assert header["sequenceNumber"] == 1
    record = sb.salesforce.get("Opportunity", deal)
    assert record is not None
    assert header["commitUser"] == record["LastModifiedById"] != rep
    assert header["commitTimestamp"] == int(record["LastModifiedDate"].timestamp() * 1000)  # type: ignore[attr-defined]
    schema = sb.change_events.schema(event.event.schema_id)
    assert schema is not None
    assert schema.fields_of(header["changedFields"]) == ["LastModifiedDate", "BANT_Budget__c"]
    assert header["nulledFields"] == [] and header["diffFields"] == []
    assert payload["BANT_Budget__c"] == "50k approved"
    assert payload["LastModifiedDate"] == record["LastModifiedDate"]
    assert payload["StageName"] is None
    stream.close()


def test_an_api_write_names_its_client_and_a_collection_shares_one_transaction(
    sb: Sandbox, client: Client
) -> None:
    first, second = _deal(sb, 0), _deal(sb, 1)
    sb.salesforce.update("Opportunity", second, {"BANT_Missing__c": "budget"})
    stream = client.listen(sb, 100)
    _api(
        sb,
        "PATCH",
        "composite/sobjects",
        {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Opportunity"}, "Id": first, "BANT_Status__c": "qualified"},
                {"attributes": {"type": "Opportunity"}, "Id": second, "BANT_Missing__c": None},
            ],
        },
    )
    _api(sb, "PATCH", f"sobjects/Opportunity/{first}", {"StageName": "Closed Won"}, client_name=None)
    events = stream.events(3)
    headers = [client.decode(e)["ChangeEventHeader"] for e in events]
    assert [h["changeOrigin"] for h in headers] == [
        "com/salesforce/api/rest/62.0;client=bant-sync",
        "com/salesforce/api/rest/62.0;client=bant-sync",
        "com/salesforce/api/rest/62.0",
    ]
    assert headers[0]["transactionKey"] == headers[1]["transactionKey"] != headers[2]["transactionKey"]
    assert [h["sequenceNumber"] for h in headers] == [1, 2, 1]
    schema = sb.change_events.current_schema()
    # The API user saved them: LastModifiedById changed from the rep who last edited the deal.
    assert schema.fields_of(headers[0]["changedFields"]) == [
        "LastModifiedDate",
        "LastModifiedById",
        "BANT_Status__c",
    ]
    assert "BANT_Missing__c" in schema.fields_of(headers[1]["changedFields"])
    assert schema.fields_of(headers[1]["nulledFields"]) == ["BANT_Missing__c"]
    stage = schema.fields_of(headers[2]["changedFields"])
    assert {"StageName", "IsClosed", "IsWon", "LastModifiedDate"} <= set(stage)
    assert client.decode(events[2])["StageName"] == "Closed Won"
    replays = [e.replay_id for e in events]
    assert replays == sorted(replays) and len(set(replays)) == 3
    stream.close()


def test_create_and_delete_events(sb: Sandbox, client: Client) -> None:
    stream = client.listen(sb, 10)
    created = _api(
        sb,
        "POST",
        "sobjects/Opportunity",
        {"Name": "New POC", "StageName": "Prospecting", "CloseDate": "2026-04-01", "Type": "POC"},
    )
    _api(sb, "DELETE", f"sobjects/Opportunity/{created['id']}", None)
    create, delete = (client.decode(e) for e in stream.events(2))
    assert create["ChangeEventHeader"]["changeType"] == "CREATE"
    assert create["ChangeEventHeader"]["changedFields"] == []
    assert (create["Name"], create["Type"], str(create["CloseDate"])) == ("New POC", "POC", "2026-04-01")
    assert delete["ChangeEventHeader"]["changeType"] == "DELETE"
    assert delete["ChangeEventHeader"]["recordIds"] == [created["id"]]
    assert delete["Name"] is None
    stream.close()


# ----- flow control, keepalive, replay -----
def test_flow_control_never_sends_more_than_requested(sb: Sandbox, client: Client) -> None:
    deal = _deal(sb)
    for i in range(5):
        sb.salesforce.update("Opportunity", deal, {"BANT_Need__c": f"need {i}"})
    stream = client.subscribe(2, pb.ReplayPreset.EARLIEST)
    first = stream.events(2)
    assert len(first) == 2
    with pytest.raises(queue.Empty):
        stream.next(timeout=0.3)
    stream.fetch(500)
    rest = stream.events(3)
    assert len(rest) == 3
    assert [client.decode(e)["BANT_Need__c"] for e in first + rest] == [f"need {i}" for i in range(5)]
    assert sb.pubsub is not None
    counts = sb.pubsub.counters.snapshot()
    assert counts["fetch_requests"] == 2 and counts["events_sent"] == 5 and counts["streams_opened"] == 1
    stream.close()


def test_a_keepalive_carries_the_latest_replay_id(sb: Sandbox, client: Client) -> None:
    assert sb.pubsub is not None
    sb.pubsub.keepalive_seconds = 0.2
    sb.salesforce.update("Opportunity", _deal(sb), {"BANT_Timing__c": "Q3"})
    stream = client.subscribe(5)
    keepalive = stream.next()
    assert list(keepalive.events) == []
    assert keepalive.latest_replay_id == sb.change_events.events()[-1].replay_id
    assert keepalive.pending_num_requested == 5
    assert sb.pubsub.counters.keepalives_sent >= 1
    stream.close()


def test_custom_replay_resumes_after_the_saved_replay_id(sb: Sandbox, client: Client) -> None:
    deal = _deal(sb)
    stream = client.listen(sb, 10)
    sb.salesforce.update("Opportunity", deal, {"BANT_Timing__c": "one"})
    (seen,) = stream.events(1)
    stream.close()
    sb.salesforce.update("Opportunity", deal, {"BANT_Timing__c": "two"})
    sb.salesforce.update("Opportunity", deal, {"BANT_Timing__c": "three"})
    resumed = client.subscribe(10, pb.ReplayPreset.CUSTOM, seen.replay_id)
    values = [client.decode(e)["BANT_Timing__c"] for e in resumed.events(2)]
    assert values == ["two", "three"]
    resumed.close()


@pytest.mark.parametrize("how", ["clock", "expire", "unknown"])
def test_a_replay_id_outside_the_retention_window_fails_the_stream(
    sb: Sandbox, client: Client, how: str
) -> None:
    sb.salesforce.update("Opportunity", _deal(sb), {"BANT_Timing__c": "old"})
    saved = sb.change_events.events()[-1].replay_id
    if how == "clock":
        sb.clock.advance(72 * 3600 + 1)
    elif how == "expire":
        assert sb.pubsub is not None and sb.pubsub.expire_events() == 1
    else:
        saved = (10**9).to_bytes(8, "big")
    error = client.subscribe(10, pb.ReplayPreset.CUSTOM, saved).end()
    assert error is not None
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert (
        _trailer(error, "error-code") == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted"
    )


def test_custom_without_a_replay_id_and_a_zero_request_are_refused(client: Client) -> None:
    error = client.subscribe(10, pb.ReplayPreset.CUSTOM).end()
    assert error is not None
    assert (
        _trailer(error, "error-code")
        == "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed"
    )
    error = client.subscribe(0).end()
    assert error is not None
    assert (
        _trailer(error, "error-code")
        == "sfdc.platform.eventbus.grpc.subscription.fetch.requested.events.invalid"
    )


# ----- faults -----
def _edits(sb: Sandbox, count: int) -> None:
    deal = _deal(sb)
    for i in range(count):
        sb.salesforce.update("Opportunity", deal, {"BANT_Need__c": f"need {i}"})


def test_duplicate_sends_every_event_twice_within_the_requested_number(sb: Sandbox, client: Client) -> None:
    assert sb.pubsub is not None
    sb.pubsub.set_faults(duplicate=True)
    _edits(sb, 2)
    stream = client.subscribe(3, pb.ReplayPreset.EARLIEST)
    first = stream.next()
    assert len(first.events) == 3 and first.pending_num_requested == 0
    stream.fetch(10)
    rest = stream.events(1)
    replays = [e.replay_id for e in [*first.events, *rest]]
    assert replays[0] == replays[1] and replays[2] == replays[3] and replays[0] < replays[2]
    stream.close()


def test_out_of_order_sends_each_response_newest_first(sb: Sandbox, client: Client) -> None:
    assert sb.pubsub is not None
    sb.pubsub.set_faults(out_of_order=True)
    _edits(sb, 3)
    stream = client.subscribe(10, pb.ReplayPreset.EARLIEST)
    response = stream.next()
    replays = [e.replay_id for e in response.events]
    assert len(replays) == 3 and replays == sorted(replays, reverse=True)
    assert response.latest_replay_id == max(replays)
    stream.close()


def test_drop_after_cuts_the_stream_and_a_resume_loses_nothing(sb: Sandbox, client: Client) -> None:
    assert sb.pubsub is not None
    sb.pubsub.set_faults(drop_after=2)
    _edits(sb, 4)
    stream = client.subscribe(10, pb.ReplayPreset.EARLIEST)
    got = stream.next()
    assert len(got.events) == 2
    error = stream.end()
    assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
    resumed = client.subscribe(10, pb.ReplayPreset.CUSTOM, got.latest_replay_id)
    values = [client.decode(e)["BANT_Need__c"] for e in [*got.events, *resumed.events(2)]]
    assert values == [f"need {i}" for i in range(4)]
    resumed.close()


def test_deleting_a_field_gives_a_new_schema_id(sb: Sandbox, client: Client) -> None:
    before = client.topic().schema_id
    sb.salesforce.delete_field("Opportunity", "BANT_Timing__c")
    after = client.topic().schema_id
    assert after != before
    assert build_schema(sb.salesforce.schemas["Opportunity"]).schema_id == after
    old = client.stub.GetSchema(pb.SchemaRequest(schema_id=before), metadata=client.metadata)
    assert "BANT_Timing__c" in old.schema_json


def test_the_endpoint_is_in_info_and_the_http_log_never_sees_grpc(sb: Sandbox, client: Client) -> None:
    assert sb.info["salesforce"]["pubsub_endpoint"].startswith("127.0.0.1:")
    sb.reset_requests()
    client.topic()
    assert sb.requests() == []


def test_the_control_api_sets_faults_expires_events_and_reads_counters(sb: Sandbox, client: Client) -> None:
    control = str(sb.info["control"])
    set_faults = requests.post(
        f"{control}/pubsub/faults", json={"out_of_order": True, "drop_after": 5}, timeout=5
    )
    assert set_faults.status_code == 200
    assert set_faults.json()["faults"] == {"duplicate": False, "out_of_order": True, "drop_after": 5}
    assert requests.post(f"{control}/pubsub/faults", json={"bogus": 1}, timeout=5).status_code == 400
    assert requests.delete(f"{control}/pubsub/faults", timeout=5).json()["faults"]["drop_after"] is None
    sb.salesforce.update("Opportunity", _deal(sb), {"BANT_Timing__c": "soon"})
    client.topic()
    state = requests.get(f"{control}/pubsub", timeout=5).json()
    assert state["endpoint"] == sb.info["salesforce"]["pubsub_endpoint"]
    assert state["counters"]["get_topic"] == 1 and state["retained_events"] == 1
    assert requests.post(f"{control}/pubsub/expire", timeout=5).json() == {"expired": 1}
    keepalive = requests.post(f"{control}/pubsub", json={"keepalive_seconds": 0.5}, timeout=5).json()
    assert keepalive["keepalive_seconds"] == 0.5
    sb.reset()
    assert requests.get(f"{control}/pubsub", timeout=5).json()["counters"]["get_topic"] == 0


def test_a_stream_whose_next_events_were_pruned_skips_on_without_spinning(
    sb: Sandbox, client: Client
) -> None:
    assert sb.pubsub is not None
    stream = client.listen(sb, 1)
    _edits(sb, 1)
    assert len(stream.events(1)) == 1
    _edits(sb, 2)
    sb.pubsub.expire_events()
    sent = sb.pubsub.counters.responses_sent
    stream.fetch(10)
    with pytest.raises(queue.Empty):
        stream.next(timeout=0.3)
    assert sb.pubsub.counters.responses_sent == sent
    _edits(sb, 1)
    assert len(stream.events(1)) == 1
    stream.close()


def test_stopping_the_sandbox_ends_open_streams_promptly(make_sandbox: Factory) -> None:
    sandbox = make_sandbox(deals=1)
    client = Client(sandbox)
    stream = client.listen(sandbox, 5)
    started = time.monotonic()
    sandbox.stop()
    assert time.monotonic() - started < 2
    error = stream.end()
    assert error is not None and error.code() in {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}  # type: ignore[attr-defined]
    client.channel.close()


def test_a_session_expiry_rejects_the_token_on_the_pubsub_api_too(sb: Sandbox, client: Client) -> None:
    """The `session_expiry` fault revokes every token: the Pub/Sub API then refuses it as expired."""
    client.topic()
    sb.add_fault(FaultRule(kind="session_expiry", crm="salesforce", after_calls=0))
    session = sf_session(sb)
    session.get(
        f"{sb.info['salesforce']['instance_url']}/services/data/v62.0/limits",
        headers={"Authorization": f"Bearer {sb.info['salesforce']['access_token']}"},
        timeout=10,
    )
    with pytest.raises(grpc.RpcError) as raised:
        client.topic()
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED  # type: ignore[attr-defined]
    assert _trailer(raised.value, "error-code") == "sfdc.platform.eventbus.grpc.service.auth.error"
