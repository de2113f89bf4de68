"""Salesforce Change Data Capture on Opportunity, over the Pub/Sub API (gRPC): the connection's change stream.

There is no maintained official Python client: this speaks the vendored protocol (`pubsub_api`, CC0) the
way forcedotcom/pub-sub-api's own Python example does. One `ChangeSubscription` is one `Subscribe` call:

- a TLS channel to `pubsub_endpoint`, trusting the connection's `ca_bundle` when set (else the system's
  roots), and on every RPC the metadata `accesstoken`, `instanceurl` and `tenantid` (the org id), taken
  from the connector's own login (`auth.Authenticator`);
- `GetTopic` (`/data/OpportunityChangeEvent`, must be subscribable), then `Subscribe` with flow control: a
  FetchRequest for `change_events_batch` events, and another once the server's `pending_num_requested`
  reaches 0, so Salesforce never has more in flight than asked for;
- every FetchResponse becomes one ChangeBatch: its events decoded (`cdc_decode`, schemas by `GetSchema`,
  once per schema id) and its `latest_replay_id` as the position to resume from. A keepalive (no events,
  about every 270 s) moves the position too, so a quiet org's saved position never ages past retention.

Errors (Pub/Sub API guide, "Handle Errors"; the Salesforce code is the `error-code` trailer):
`UNAUTHENTICATED` logs in again once, then is an AuthenticationError; a replay id the server refuses
(`…fetch.replayid.corrupted` / `…replayid.validation.failed`: older than the 72 hours Salesforce keeps
events, or unknown) is a ReplayExpiredError; `UNAVAILABLE`, `DEADLINE_EXCEEDED` and the like, and a stream
the server ends, are TransientErrors (the caller subscribes again from its saved position); anything else is
a ConfigurationError saying what to check. `cancel()` (any thread) ends the iteration quietly.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import grpc
import structlog

from connectors.errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectorError,
    ReplayExpiredError,
    TransientError,
)
from connectors.model import ChangeBatch, DealChange
from connectors.salesforce.auth import Token
from connectors.salesforce.cdc_decode import OVERFLOW, DecodeError, SchemaCache, deal_change
from connectors.salesforce.settings import SalesforceSettings
from pubsub_api import pubsub_api_pb2 as pb
from pubsub_api import pubsub_api_pb2_grpc as pb_grpc

log = structlog.get_logger()

TOPIC = "/data/OpportunityChangeEvent"
ERROR_CODE_KEY = "error-code"
REPLAY_ERROR_CODES = frozenset(
    {
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.corrupted",
        "sfdc.platform.eventbus.grpc.subscription.fetch.replayid.validation.failed",
    }
)
"""The Pub/Sub API's answer to a CUSTOM replay id it cannot resume from (past retention, or unknown)."""
TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)
_TLS_HINTS = ("handshake", "certificate", "ssl")
CHECK = (
    "check pubsub_endpoint, that Opportunity is selected in Setup → Change Data Capture, and that the "
    "integration user has API Enabled and View All Records on Opportunity (permission set BANT_Sync) or "
    "View All Data"
)


class Login(Protocol):
    """What the stream needs of `auth.Authenticator`: a token, and whether its mode can get a new one."""

    @property
    def can_refresh(self) -> bool: ...

    def login(self) -> Token: ...


class StreamCredentials:
    """The access token and org id every Pub/Sub RPC carries, shared by the subscriptions of one connector:
    logged in once, and again (`renew`) when the Pub/Sub API refuses the token."""

    def __init__(self, authenticator: Login, tenant_id: Callable[[], str]) -> None:
        self._authenticator = authenticator
        self._tenant_id = tenant_id
        self._token: Token | None = None
        self._tenant: str | None = None
        self._lock = threading.Lock()

    def metadata(self) -> tuple[tuple[str, str], ...]:
        with self._lock:
            if self._token is None:
                self._token = self._authenticator.login()
            if self._tenant is None:
                self._tenant = self._tenant_id()
            return (
                ("accesstoken", self._token.access_token),
                ("instanceurl", self._token.instance_url),
                ("tenantid", self._tenant),
            )

    def renew(self) -> bool:
        """Log in again; False when the auth mode cannot (a fixed `token`)."""
        if not self._authenticator.can_refresh:
            return False
        with self._lock:
            self._token = self._authenticator.login()
        log.info("salesforce pubsub: the access token was refused; logged in again")
        return True


def open_channel(settings: SalesforceSettings) -> grpc.Channel:
    """A TLS channel to the Pub/Sub API, trusting `ca_bundle` when set (else the system's roots)."""
    roots = None
    if settings.ca_bundle:
        try:
            roots = Path(settings.ca_bundle).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"ca_bundle: {settings.ca_bundle!r} cannot be read ({exc.strerror}); point it at the PEM "
                "file of the CA that signs the Salesforce and Pub/Sub API certificates, or remove it"
            ) from None
    credentials = grpc.ssl_channel_credentials(root_certificates=roots)
    return grpc.secure_channel(settings.pubsub_endpoint, credentials)


def _trailer(error: grpc.Call) -> str:
    for key, value in error.trailing_metadata() or ():
        if key == ERROR_CODE_KEY:
            return value if isinstance(value, str) else value.decode("utf-8", "replace")
    return ""


class ChangeSubscription:
    """One Subscribe call to `/data/OpportunityChangeEvent` from `position` (hex replay id; None: LATEST).
    Iterate it once; see the module docstring."""

    def __init__(
        self,
        settings: SalesforceSettings,
        credentials: StreamCredentials,
        position: str | None,
        own_fields: frozenset[str],
        channel_factory: Callable[[SalesforceSettings], grpc.Channel] = open_channel,
    ) -> None:
        self._settings = settings
        self._credentials = credentials
        self._own_fields = own_fields
        self._channel_factory = channel_factory
        try:
            self._replay_id = bytes.fromhex(position) if position else b""
        except ValueError:
            raise ReplayExpiredError(
                f"the saved replay id {str(position)[:40]!r} is not hexadecimal"
            ) from None
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._call: grpc.RpcContext | None = None
        self._requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        """What the current Subscribe call sends (None ends it); a new queue per call."""
        self._received = False

    def cancel(self) -> None:
        """End the iteration (from any thread): the Subscribe call is cancelled."""
        self._cancelled.set()
        with self._lock:
            call, requests = self._call, self._requests
        if call is not None:
            call.cancel()
        requests.put(None)

    def __iter__(self) -> Iterator[ChangeBatch]:
        channel = self._channel_factory(self._settings)
        try:
            yield from self._batches(pb_grpc.PubSubStub(channel))  # type: ignore[no-untyped-call]
        finally:
            with self._lock:
                self._requests.put(None)
            channel.close()

    def probe(self) -> str:
        """Ask the Pub/Sub API what a subscription would, without subscribing: the topic (it must be
        subscribable) and its schema. Returns the schema id; raises the error the stream would meet
        (`bant-sync check`). A refused token logs in again once, as the stream does."""
        channel = self._channel_factory(self._settings)
        stub = pb_grpc.PubSubStub(channel)  # type: ignore[no-untyped-call]
        timeout = self._settings.read_timeout
        try:
            for attempt in (1, 2):
                metadata = self._credentials.metadata()
                try:
                    topic = stub.GetTopic(
                        pb.TopicRequest(topic_name=TOPIC), metadata=metadata, timeout=timeout
                    )
                    if not topic.can_subscribe:
                        raise ConfigurationError(
                            f"the Pub/Sub API does not let the integration user subscribe to {TOPIC}; {CHECK}"
                        )
                    request = pb.SchemaRequest(schema_id=topic.schema_id)
                    stub.GetSchema(request, metadata=metadata, timeout=timeout)
                    return str(topic.schema_id)
                except grpc.RpcError as exc:
                    assert isinstance(exc, grpc.Call)
                    unauthenticated = exc.code() == grpc.StatusCode.UNAUTHENTICATED
                    if attempt == 1 and unauthenticated and self._credentials.renew():
                        continue
                    raise self._error(exc) from None
            raise AssertionError("unreachable")  # pragma: no cover
        finally:
            channel.close()

    def _batches(self, stub: pb_grpc.PubSubStub) -> Iterator[ChangeBatch]:
        renewed = False
        while not self._cancelled.is_set():
            try:
                yield from self._subscribe(stub)
                if self._cancelled.is_set():
                    return
                raise TransientError("the Pub/Sub API ended the change stream; subscribing again")
            except grpc.RpcError as exc:
                if self._cancelled.is_set():
                    return
                assert isinstance(exc, grpc.Call)
                if exc.code() == grpc.StatusCode.UNAUTHENTICATED and not renewed and not self._received:
                    renewed = True
                    if self._credentials.renew():
                        continue
                raise self._error(exc) from None

    def _subscribe(self, stub: pb_grpc.PubSubStub) -> Iterator[ChangeBatch]:
        metadata = self._credentials.metadata()
        timeout = self._settings.read_timeout
        topic = stub.GetTopic(pb.TopicRequest(topic_name=TOPIC), metadata=metadata, timeout=timeout)
        if not topic.can_subscribe:
            raise ConfigurationError(
                f"the Pub/Sub API does not let the integration user subscribe to {TOPIC}; {CHECK}"
            )
        schemas = SchemaCache(
            lambda schema_id: str(
                stub.GetSchema(
                    pb.SchemaRequest(schema_id=schema_id), metadata=metadata, timeout=timeout
                ).schema_json
            )
        )
        batch = self._settings.change_events_batch
        preset = pb.ReplayPreset.CUSTOM if self._replay_id else pb.ReplayPreset.LATEST
        requests: queue.Queue[pb.FetchRequest | None] = queue.Queue()
        requests.put(
            pb.FetchRequest(
                topic_name=TOPIC, replay_preset=preset, replay_id=self._replay_id, num_requested=batch
            )
        )
        call = stub.Subscribe(iter(requests.get, None), metadata=metadata)
        with self._lock:
            self._requests.put(None)
            self._call, self._requests = call, requests
        if self._cancelled.is_set():
            call.cancel()
        log.info(
            "salesforce change stream subscribed",
            topic=TOPIC,
            endpoint=self._settings.pubsub_endpoint,
            replay="CUSTOM" if self._replay_id else "LATEST",
        )
        for response in call:
            self._received = True
            if response.pending_num_requested == 0:
                requests.put(pb.FetchRequest(topic_name=TOPIC, num_requested=batch))
            yield self._batch(response, schemas)

    def _batch(self, response: pb.FetchResponse, schemas: SchemaCache) -> ChangeBatch:
        changes: list[DealChange] = []
        reconcile = False
        last_replay = b""
        for consumer in response.events:
            last_replay = consumer.replay_id
            try:
                schema = schemas.get(consumer.event.schema_id)
                event = schema.decode(consumer.replay_id, consumer.event.payload)
            except DecodeError as exc:
                log.error(
                    "salesforce change event unreadable: skipped, an incremental run reconciles",
                    replay_id=consumer.replay_id.hex(),
                    schema_id=consumer.event.schema_id,
                    error=str(exc),
                )
                reconcile = True
                continue
            if event.change_type == OVERFLOW:
                reconcile = True
            change = deal_change(event, self._own_fields)
            if change.deal_ids:
                changes.append(change)
        position = (response.latest_replay_id or last_replay).hex() or None
        at = changes[-1].occurred_at if changes else None
        return ChangeBatch(tuple(changes), position, at, reconcile)

    def _error(self, error: grpc.Call) -> ConnectorError:
        code = error.code()
        details = (error.details() or "")[:300]
        sf_code = _trailer(error)
        endpoint = self._settings.pubsub_endpoint
        if sf_code in REPLAY_ERROR_CODES:
            return ReplayExpiredError(
                f"the Pub/Sub API cannot resume from replay id {self._replay_id.hex()} ({sf_code}): it is "
                "older than the 72 hours Salesforce keeps change events, or unknown to it"
            )
        if code == grpc.StatusCode.UNAUTHENTICATED:
            if self._received and self._credentials.renew():
                return TransientError("the Pub/Sub API session expired mid-stream; logged in again")
            return AuthenticationError(
                f"the Pub/Sub API at {endpoint} refused the access token ({sf_code or code.name}: "
                f"{details}); check the connection's credentials and that the integration user has API "
                "Enabled"
            )
        if code in TRANSIENT_CODES:
            if code == grpc.StatusCode.UNAVAILABLE and any(h in details.lower() for h in _TLS_HINTS):
                return ConfigurationError(
                    f"TLS with the Pub/Sub API at {endpoint} failed ({details}); if a proxy or private CA "
                    "signs its certificate, set ca_bundle to that CA's PEM file"
                )
            return TransientError(f"the Pub/Sub API at {endpoint} failed ({code.name}: {details})")
        return ConfigurationError(
            f"the Pub/Sub API at {endpoint} refused the change stream ({code.name}"
            + (f", {sf_code}" if sf_code else "")
            + f": {details}); {CHECK}"
        )
