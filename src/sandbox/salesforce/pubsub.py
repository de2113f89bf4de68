"""The Salesforce Pub/Sub API (gRPC service `eventbus.v1.PubSub`) over the sandbox's change event log.

It serves `GetTopic`, `GetSchema` and `Subscribe` for `/data/OpportunityChangeEvent` as the real API does, so
any Pub/Sub API client works on it (forcedotcom/pub-sub-api `pubsub_api.proto`; the Pub/Sub API guide at
developer.salesforce.com/docs/platform/pub-sub-api):

- TLS, and on every call the metadata `accesstoken` (an OAuth access token of the org), `instanceurl` and
  `tenantid` (the org id). A wrong or expired token, or an instance URL / org id that is not the org's, fails
  the call with `UNAUTHENTICATED` and the trailer `error-code: sfdc.platform.eventbus.grpc.service.auth.error`
  (missing metadata: `...service.auth.headers.invalid`). Errors carry `rpcId: <id>` at the end of the
  message ("Handle Errors").
- `Subscribe` is pull-based: the first FetchRequest names the topic, the replay preset (LATEST, the default;
  EARLIEST; CUSTOM after `replay_id`) and `num_requested`; later FetchRequests only add to the number
  requested. At most 100 events are outstanding across all requests of a stream ("If a client requests
  more than 100 events in a Subscribe call, the server considers the number of requested events to be 100",
  "Pull Subscription and Flow Control"); the server never sends more than requested and each FetchResponse
  says how many are still pending (`pending_num_requested`). With nothing to send, the server answers with
  an empty FetchResponse carrying `latest_replay_id` as a keepalive ("the empty fetch response is sent
  within 270 seconds", pubsub_api.proto): `keepalive_seconds` of real time here, 270 by default.
- Replay errors end the stream with `INVALID_ARGUMENT` and an `error-code` trailer ("Handle Errors",
  "Retry Long-Lived RPC Calls After an Error Occurs"): `...subscription.fetch.replayid.corrupted` for a
  replay id that is invalid or no longer within the 72-hour retention window,
  `...subscription.fetch.replayid.validation.failed` for CUSTOM without a replay id, and
  `...subscription.fetch.requested.events.invalid` for `num_requested` below 1.
- The payload is the event in Avro binary (no container, "schemaless") in the schema `GetSchema` returns for
  the event's `schema_id` (`sandbox.salesforce.cdc`).

Sandbox choices, not checked against the real service: an unknown topic is `NOT_FOUND`
(`...grpc.topic.not.found`), an unknown schema id `INVALID_ARGUMENT` (`...grpc.schema.validation.failed`);
`Publish`, `PublishStream` and `ManagedSubscribe` answer `UNIMPLEMENTED` (a change event topic cannot be
published to: `can_publish` is false). The real API closes a stream that has had nothing requested for
about 70 seconds; the sandbox keeps it open.

Faults (`PubSubServer.set_faults`): `duplicate` sends every event twice in a row (the same replay id; each
copy counts against the number requested), `out_of_order` sends the events of each FetchResponse newest
first, `drop_after=N` cuts the stream with `UNAVAILABLE` ("RST_STREAM closed stream", no error-code: the
real API's transient network error) right after N more events were sent, once. `ChangeLog.expire_events()`
(or moving the sandbox clock past 72 hours) puts every saved replay id outside the retention window.

Calls are counted in `PubSubServer.counters` (streams opened, FetchRequests, events sent, ...), not in the
sandbox's HTTP request log.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any, Final, NoReturn

import grpc

from pubsub_api import pubsub_api_pb2 as pb
from pubsub_api import pubsub_api_pb2_grpc as pb_grpc
from sandbox.salesforce.auth import Credentials
from sandbox.salesforce.cdc import TOPIC, ChangeEvent, ChangeLog, decode_replay_id, encode_replay_id
from sandbox.tls import TlsMaterial
from sandbox.tokens import TokenStore

MAX_REQUESTED: Final = 100
PREFIX: Final = "sfdc.platform.eventbus.grpc."
AUTH_ERROR: Final = PREFIX + "service.auth.error"
AUTH_HEADERS_INVALID: Final = PREFIX + "service.auth.headers.invalid"
REPLAY_CORRUPTED: Final = PREFIX + "subscription.fetch.replayid.corrupted"
REPLAY_VALIDATION_FAILED: Final = PREFIX + "subscription.fetch.replayid.validation.failed"
REQUESTED_EVENTS_INVALID: Final = PREFIX + "subscription.fetch.requested.events.invalid"
TOPIC_MISMATCH: Final = PREFIX + "subscription.fetch.topic.mismatch"
TOPIC_NOT_FOUND: Final = PREFIX + "topic.not.found"
TOPIC_EMPTY: Final = PREFIX + "topic.validation.empty"
SCHEMA_INVALID: Final = PREFIX + "schema.validation.failed"
_EVENT_IDS: Final = uuid.UUID("6f1f4b8e-5c1d-4f7a-9a39-0c2f3e0b7d11")


@dataclass
class PubSubCounters:
    """What clients asked of the Pub/Sub endpoint (tests read these; the HTTP request log never sees gRPC)."""

    streams_opened: int = 0
    fetch_requests: int = 0
    events_sent: int = 0
    responses_sent: int = 0
    keepalives_sent: int = 0
    get_topic: int = 0
    get_schema: int = 0
    auth_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **amounts: int) -> None:
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def reset(self) -> None:
        with self._lock:
            for f in fields(self):
                if not f.name.startswith("_"):
                    setattr(self, f.name, 0)


@dataclass
class PubSubFaults:
    duplicate: bool = False
    out_of_order: bool = False
    drop_after: int | None = None
    """Events still to send before the next stream is cut (None: never)."""


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, error_code: str | None, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.error_code = error_code
        self.message = message


def _fail(context: grpc.ServicerContext, rpc_id: str, error: _Abort) -> NoReturn:
    trailers: list[tuple[str, str]] = [("rpc-id", rpc_id)]
    if error.error_code:
        trailers.insert(0, ("error-code", error.error_code))
    context.set_trailing_metadata(tuple(trailers))
    context.abort(error.code, f"{error.message} rpcId: {rpc_id}")


@dataclass
class _Stream:
    """One Subscribe call's flow-control state (guarded by the log's condition)."""

    pending: int
    position: int
    """The replay counter of the newest event taken from the log for this stream."""
    delivered: int
    """The replay counter of the newest event sent (the latest_replay_id clients store)."""
    outbox: deque[ChangeEvent] = field(default_factory=deque)
    error: _Abort | None = None
    ended: bool = False
    closed_by: str = ""
    """How the client's side ended, when it did not end cleanly (kept for debugging)."""


class PubSubService(pb_grpc.PubSubServicer):
    def __init__(
        self,
        log: ChangeLog,
        tokens: TokenStore,
        creds: Credentials,
        counters: PubSubCounters,
        keepalive_seconds: float,
    ) -> None:
        self._log = log
        self._tokens = tokens
        self._creds = creds
        self.counters = counters
        self.keepalive_seconds = keepalive_seconds
        self._faults = PubSubFaults()
        self._faults_lock = threading.Lock()
        self.stopping = threading.Event()
        self.active = 0
        """Subscribe streams open now, past their first FetchRequest (guarded by the log's condition)."""

    # ----- faults -------------------------------------------------------------------------------------------
    def set_faults(self, faults: PubSubFaults) -> None:
        with self._faults_lock:
            self._faults = faults
        self._log.wake()

    def faults(self) -> PubSubFaults:
        with self._faults_lock:
            return PubSubFaults(**{f.name: getattr(self._faults, f.name) for f in fields(PubSubFaults)})

    def _allowance(self, wanted: int) -> tuple[int, bool]:
        """How many of `wanted` events may be sent now, and whether the stream is cut after them."""
        with self._faults_lock:
            left = self._faults.drop_after
            if left is None:
                return wanted, False
            allowed = min(wanted, left)
            self._faults.drop_after = left - allowed
            if self._faults.drop_after == 0:
                self._faults.drop_after = None
                return allowed, True
            return allowed, False

    # ----- auth ---------------------------------------------------------------------------------------------
    def _authenticate(self, context: grpc.ServicerContext, rpc_id: str) -> None:
        metadata = {key.lower(): value for key, value in context.invocation_metadata()}
        token = str(metadata.get("accesstoken", "")).strip()
        instance = str(metadata.get("instanceurl", "")).strip()
        tenant = str(metadata.get("tenantid", "")).strip()
        if not (token and instance and tenant):
            self.counters.add(auth_failures=1)
            _fail(
                context,
                rpc_id,
                _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    AUTH_HEADERS_INVALID,
                    "The accesstoken, instanceurl and tenantid metadata headers are required.",
                ),
            )
        org = self._creds.org_id
        ok = (
            self._tokens.valid(token)
            and instance.rstrip("/") == self._creds.instance_url.rstrip("/")
            and tenant in {org, org[:15]}
        )
        if not ok:
            self.counters.add(auth_failures=1)
            _fail(
                context,
                rpc_id,
                _Abort(
                    grpc.StatusCode.UNAUTHENTICATED,
                    AUTH_ERROR,
                    "An authentication exception occurred. "
                    "Provide valid authentication via metadata headers.",
                ),
            )

    def _check_topic(self, name: str) -> None:
        if not name:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, TOPIC_EMPTY, "The topic name is blank.")
        if name != TOPIC:
            raise _Abort(grpc.StatusCode.NOT_FOUND, TOPIC_NOT_FOUND, f"The topic {name} was not found.")

    # ----- unary RPCs ---------------------------------------------------------------------------------------
    def GetTopic(self, request: pb.TopicRequest, context: grpc.ServicerContext) -> pb.TopicInfo:
        rpc_id = str(uuid.uuid4())
        self._authenticate(context, rpc_id)
        self.counters.add(get_topic=1)
        try:
            self._check_topic(request.topic_name)
        except _Abort as error:
            _fail(context, rpc_id, error)
        return pb.TopicInfo(
            topic_name=TOPIC,
            tenant_guid=self._creds.org_id,
            can_publish=False,
            can_subscribe=True,
            schema_id=self._log.current_schema().schema_id,
            rpc_id=rpc_id,
        )

    def GetSchema(self, request: pb.SchemaRequest, context: grpc.ServicerContext) -> pb.SchemaInfo:
        rpc_id = str(uuid.uuid4())
        self._authenticate(context, rpc_id)
        self.counters.add(get_schema=1)
        self._log.current_schema()
        found = self._log.schema(request.schema_id) if request.schema_id else None
        if found is None:
            _fail(
                context,
                rpc_id,
                _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    SCHEMA_INVALID,
                    f"The schema ID {request.schema_id!r} is blank or unknown.",
                ),
            )
        return pb.SchemaInfo(schema_json=found.schema_json, schema_id=found.schema_id, rpc_id=rpc_id)

    def _unimplemented(self, context: grpc.ServicerContext, what: str) -> NoReturn:
        rpc_id = str(uuid.uuid4())
        self._authenticate(context, rpc_id)
        _fail(
            context,
            rpc_id,
            _Abort(grpc.StatusCode.UNIMPLEMENTED, None, f"The sandbox does not serve {what}."),
        )

    def Publish(self, request: pb.PublishRequest, context: grpc.ServicerContext) -> pb.PublishResponse:
        self._unimplemented(context, "Publish: change event topics cannot be published to")

    def PublishStream(
        self, request_iterator: Iterator[pb.PublishRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.PublishResponse]:
        self._unimplemented(context, "PublishStream: change event topics cannot be published to")

    def ManagedSubscribe(
        self, request_iterator: Iterator[pb.ManagedFetchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.ManagedFetchResponse]:
        self._unimplemented(context, "ManagedSubscribe (beta)")

    # ----- Subscribe ----------------------------------------------------------------------------------------
    def Subscribe(
        self, request_iterator: Iterator[pb.FetchRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.FetchResponse]:
        rpc_id = str(uuid.uuid4())
        self._authenticate(context, rpc_id)
        self.counters.add(streams_opened=1)
        log = self._log
        try:
            first = next(request_iterator, None)
            if first is None:
                return
            self.counters.add(fetch_requests=1)
            stream = self._open(first)
        except _Abort as error:
            _fail(context, rpc_id, error)
        context.add_callback(log.wake)
        with log.cond:
            self.active += 1
            log.cond.notify_all()
        try:
            yield from self._serve(request_iterator, context, stream, rpc_id)
        finally:
            with log.cond:
                self.active -= 1
                log.cond.notify_all()

    def _serve(
        self,
        request_iterator: Iterator[pb.FetchRequest],
        context: grpc.ServicerContext,
        stream: _Stream,
        rpc_id: str,
    ) -> Iterator[pb.FetchResponse]:
        log = self._log
        reader = threading.Thread(
            target=self._read_requests, args=(request_iterator, stream), daemon=True, name="pubsub-fetch"
        )
        reader.start()
        deadline = time.monotonic() + self.keepalive_seconds
        while True:
            with log.cond:
                while True:
                    if not context.is_active():
                        return
                    if self.stopping.is_set():
                        stream.error = _Abort(grpc.StatusCode.UNAVAILABLE, None, "RST_STREAM closed stream")
                    if stream.error is not None:
                        break
                    if stream.pending > 0 and (stream.outbox or log.last > stream.position):
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    log.cond.wait(remaining)
                failure = stream.error
                batch = self._take(stream) if failure is None else []
            if failure is not None:
                _fail(context, rpc_id, failure)
            if not batch and time.monotonic() < deadline:
                continue
            cut = False
            if batch:
                allowed, cut = self._allowance(len(batch))
                if allowed < len(batch):
                    with log.cond:
                        stream.outbox.extendleft(reversed(batch[allowed:]))
                        stream.pending += len(batch) - allowed
                    batch = batch[:allowed]
            yield self._response(stream, batch, rpc_id)
            deadline = time.monotonic() + self.keepalive_seconds
            if cut:
                _fail(
                    context,
                    rpc_id,
                    _Abort(grpc.StatusCode.UNAVAILABLE, None, "RST_STREAM closed stream"),
                )

    def _open(self, first: pb.FetchRequest) -> _Stream:
        self._check_topic(first.topic_name)
        if first.num_requested < 1:
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                REQUESTED_EVENTS_INVALID,
                "The number of requested events must be greater than zero.",
            )
        log = self._log
        preset = first.replay_preset
        if preset == pb.ReplayPreset.CUSTOM:
            if not first.replay_id:
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    REPLAY_VALIDATION_FAILED,
                    "The Replay ID validation failed: a CUSTOM replay preset needs a replay_id.",
                )
            position = decode_replay_id(first.replay_id)
            if position is None or not log.valid_position(position):
                raise _Abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    REPLAY_CORRUPTED,
                    "The Replay ID validation failed. Ensure that the replay_id field value in FetchRequest "
                    "is valid and refers to an event that is within the retention window.",
                )
        elif preset == pb.ReplayPreset.EARLIEST:
            position = log.earliest_position()
        else:
            position = log.last
        return _Stream(pending=min(MAX_REQUESTED, first.num_requested), position=position, delivered=position)

    def _read_requests(self, requests: Iterator[pb.FetchRequest], stream: _Stream) -> None:
        """Later FetchRequests add to the number requested (up to 100 outstanding)."""
        log = self._log
        try:
            for request in requests:
                self.counters.add(fetch_requests=1)
                with log.cond:
                    if request.topic_name and request.topic_name != TOPIC:
                        stream.error = _Abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            TOPIC_MISMATCH,
                            "The topic name can't change within a Subscribe call.",
                        )
                    elif request.num_requested < 1:
                        stream.error = _Abort(
                            grpc.StatusCode.INVALID_ARGUMENT,
                            REQUESTED_EVENTS_INVALID,
                            "The number of requested events must be greater than zero.",
                        )
                    else:
                        stream.pending = min(MAX_REQUESTED, stream.pending + request.num_requested)
                    log.cond.notify_all()
        except Exception as exc:  # a cancelled call ends its request iterator with an RpcError or others
            stream.closed_by = repr(exc)
        finally:
            with log.cond:
                stream.ended = True
                log.cond.notify_all()

    def _take(self, stream: _Stream) -> list[ChangeEvent]:
        """The events of the next response (callers hold the log's condition)."""
        if stream.pending <= 0:
            return []
        faults = self.faults()
        need = stream.pending - len(stream.outbox)
        if need > 0:
            found = self._log.after(stream.position, need)
            for event in found:
                stream.outbox.append(event)
                if faults.duplicate:
                    stream.outbox.append(event)
                stream.position = event.replay
            if not found:
                # What followed the stream's position was pruned (retention, cap) while it waited: skip on.
                stream.position = max(stream.position, self._log.last)
        count = min(stream.pending, len(stream.outbox))
        batch = [stream.outbox.popleft() for _ in range(count)]
        stream.pending -= count
        if faults.out_of_order:
            batch.reverse()
        return batch

    def _response(self, stream: _Stream, batch: list[ChangeEvent], rpc_id: str) -> pb.FetchResponse:
        log = self._log
        events = [
            pb.ConsumerEvent(
                event=pb.ProducerEvent(
                    id=str(uuid.uuid5(_EVENT_IDS, str(event.replay))),
                    schema_id=event.schema_id,
                    payload=log.encode(event),
                ),
                replay_id=event.replay_id,
            )
            for event in batch
        ]
        with log.cond:
            if batch:
                stream.delivered = max(stream.delivered, *(event.replay for event in batch))
            delivered, pending = stream.delivered, stream.pending
        self.counters.add(responses_sent=1, events_sent=len(events), keepalives_sent=0 if events else 1)
        return pb.FetchResponse(
            events=events,
            latest_replay_id=encode_replay_id(delivered),
            rpc_id=rpc_id,
            pending_num_requested=pending,
        )


class PubSubServer:
    """The gRPC server: started and stopped with the sandbox, on `host:port` (0 picks a free port)."""

    def __init__(
        self,
        log: ChangeLog,
        tokens: TokenStore,
        creds: Credentials,
        tls: TlsMaterial,
        host: str,
        port: int,
        keepalive_seconds: float = 270.0,
        max_streams: int = 32,
    ) -> None:
        self.log = log
        self.counters = PubSubCounters()
        self.service = PubSubService(log, tokens, creds, self.counters, keepalive_seconds)
        self._server: Any = grpc.server(
            ThreadPoolExecutor(max_workers=max_streams, thread_name_prefix="sandbox-pubsub")
        )
        pb_grpc.add_PubSubServicer_to_server(self.service, self._server)  # type: ignore[no-untyped-call]
        credentials = grpc.ssl_server_credentials([(tls.key_path.read_bytes(), tls.cert_path.read_bytes())])
        self.host = host
        self.port: int = self._server.add_secure_port(f"{host}:{port}", credentials)
        if not self.port:
            raise OSError(f"the Pub/Sub API endpoint cannot listen on {host}:{port}")
        self._started = False

    @property
    def endpoint(self) -> str:
        """`host:port` of the Pub/Sub API (the real one is `api.pubsub.salesforce.com:7443`)."""
        return f"{self.host}:{self.port}"

    @property
    def keepalive_seconds(self) -> float:
        return self.service.keepalive_seconds

    @keepalive_seconds.setter
    def keepalive_seconds(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("keepalive_seconds must be more than 0")
        self.service.keepalive_seconds = seconds
        self.log.wake()

    def start(self) -> None:
        self._server.start()
        self._started = True

    def stop(self) -> None:
        self.service.stopping.set()
        self.log.wake()
        if self._started:
            self._server.stop(grace=None).wait(5)
            self._started = False

    def set_faults(
        self, *, duplicate: bool = False, out_of_order: bool = False, drop_after: int | None = None
    ) -> None:
        """Replace the stream faults (see the module docstring); no arguments clears them."""
        if drop_after is not None and drop_after < 1:
            raise ValueError("drop_after must be 1 or more events")
        self.service.set_faults(PubSubFaults(duplicate, out_of_order, drop_after))

    def clear_faults(self) -> None:
        self.set_faults()

    def faults(self) -> PubSubFaults:
        return self.service.faults()

    def expire_events(self) -> int:
        """Drop every retained event (a gap past the retention window); returns how many."""
        return self.log.expire_events()

    @property
    def active_streams(self) -> int:
        """Subscribe streams open now (past their first FetchRequest)."""
        with self.log.cond:
            return self.service.active

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait (real time) until at least `count` Subscribe streams are open, so that an edit made next
        reaches a LATEST subscription; False when `timeout` passed first."""
        with self.log.cond:
            return self.log.cond.wait_for(lambda: self.service.active >= count, timeout)
