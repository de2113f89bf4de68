"""The sandbox: two servers (Salesforce over HTTPS; HubSpot and the control API over HTTP) around seeded
in-memory CRMs, a controllable clock, fault rules and a request log."""

from __future__ import annotations

import secrets
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from sandbox.accounts import Account
from sandbox.clock import SandboxClock
from sandbox.configfile import write_config
from sandbox.control import ControlApi
from sandbox.faultbook import FaultBook
from sandbox.faults import FaultRule
from sandbox.gateway import Gateway
from sandbox.http import Request, Response
from sandbox.hubspot.ratelimit import RateLimiter
from sandbox.hubspot.routes import HubSpotFront
from sandbox.hubspot.state import HubSpotState
from sandbox.hubspot.webhooks import WebhookDispatcher, WebhookSubscription
from sandbox.memory import release_free_memory
from sandbox.options import SandboxOptions
from sandbox.people import People
from sandbox.requestlog import RequestLog
from sandbox.salesforce.auth import Credentials, new_token
from sandbox.salesforce.cdc import ChangeLog
from sandbox.salesforce.ids import make_id
from sandbox.salesforce.limits import ApiUsage
from sandbox.salesforce.pubsub import PubSubServer
from sandbox.salesforce.routes import SalesforceFront
from sandbox.salesforce.state import SalesforceState
from sandbox.seeds import SEEDS, SeedError, Story, build_story
from sandbox.seeds.catalog import REPS
from sandbox.seeds.load import hubspot_owners, load_hubspot, load_salesforce, organization_record
from sandbox.server import HttpServer
from sandbox.tls import make_jwt_key, make_tls_material
from sandbox.tokens import TokenStore


@dataclass
class _World:
    """Everything a reset replaces."""

    salesforce: SalesforceState
    hubspot: HubSpotState
    sf_gateway: Gateway
    hs_gateway: Gateway


class Sandbox:
    """Start with :meth:`start`; use as a context manager or call :meth:`stop`."""

    def __init__(self, options: SandboxOptions, *, release_memory: bool = True) -> None:
        """`release_memory=False` skips handing the seeding's garbage back to the OS at start (a full
        collection and `malloc_trim`, which walk the whole process): a fleet starting many accounts does it
        once for all of them instead of once an account, which made starting 100 accounts quadratic."""
        if options.seed not in SEEDS:
            raise SeedError(f"unknown seed {options.seed!r}: choose one of {', '.join(SEEDS)}")
        self.options = options
        self._release_memory = release_memory
        self.account = Account(options.account)
        """The org id, portal id, app id and seed of `options.account` (sandbox.accounts)."""
        self._tmp = Path(tempfile.mkdtemp(prefix="bant-sync-sandbox-"))
        self._servers: list[HttpServer] = []
        self.pubsub: PubSubServer | None = None
        try:
            self._setup(options)
        except BaseException:
            self.stop()
            raise

    def _setup(self, options: SandboxOptions) -> None:
        self._stopping = threading.Event()
        self.clock = SandboxClock(options.start_time)
        self.log = RequestLog()
        self.faults = FaultBook(self.account.seed_value(options.seed_value))
        self._tls = make_tls_material(self._tmp)
        self._jwt_key_path = self._tmp / "jwt_private_key.pem"
        self._jwt_public = make_jwt_key(self._jwt_key_path)
        self._sf_server = HttpServer(
            options.host, options.port, self._serve_salesforce, self._tls.server_context()
        )
        self._servers.append(self._sf_server)
        self._hs_server = HttpServer(options.host, options.hubspot_port, self._serve_hubspot)
        self._servers.append(self._hs_server)
        self._sf_tokens, self._hs_tokens = TokenStore(), TokenStore()
        self._usage = ApiUsage(options.salesforce_daily_api_limit)
        self._limiter = RateLimiter(
            options.hubspot_burst_per_10s,
            options.hubspot_search_per_second,
            options.enforce_rate_limits,
            self.clock.epoch,
        )
        base_sf = f"https://{options.host}:{self._sf_server.port}"
        self._creds = Credentials(
            instance_url=base_sf,
            login_url=base_sf,
            client_id="3MVG9" + secrets.token_urlsafe(40),
            client_secret=secrets.token_hex(32),
            username=self.account.username,
            password=secrets.token_urlsafe(18),
            org_id=self.account.org_id,
            user_id=make_id("005", len(REPS) + 1),
            jwt_public_key=self._jwt_public,
        )
        self._hs_oauth = {
            "client_id": secrets.token_hex(16),
            "client_secret": secrets.token_hex(24),
            "refresh_token": "na1-" + secrets.token_hex(20),
        }
        self._sf_token = self._sf_tokens.issue(new_token(self._creds.org_id))
        self._hs_token = self._hs_tokens.issue("pat-na1-" + secrets.token_hex(18))
        self.webhooks = WebhookDispatcher(self.clock, self.account.portal_id)
        """HubSpot webhook deliveries (also reached as `sb.hubspot.subscribe_webhooks` / `flush_webhooks`);
        their subscriptions outlive a reset."""
        if options.hubspot_webhook_url:
            self.subscribe_hubspot_webhooks(options.hubspot_webhook_url)
        self.change_events = ChangeLog(self.clock, enabled=options.salesforce_change_events)
        """OpportunityChangeEvents (sandbox.salesforce.cdc); like the webhook subscriptions, they outlive a
        reset, so a Pub/Sub subscriber keeps its stream and replay ids."""
        self.pubsub = PubSubServer(
            self.change_events,
            self._sf_tokens,
            self._creds,
            self._tls,
            options.host,
            options.pubsub_port,
            options.pubsub_keepalive_seconds,
        )
        """The Salesforce Pub/Sub API endpoint (sandbox.salesforce.pubsub): faults, counters, keepalive."""
        self._world = self._build_world()
        self._release_memory = True
        self._control = ControlApi(self)

    # ----- lifecycle ----------------------------------------------------------------------------------------
    @classmethod
    def start(cls, options: SandboxOptions | None = None, *, release_memory: bool = True) -> Sandbox:
        sandbox = cls(options or SandboxOptions(), release_memory=release_memory)
        try:
            sandbox.add_faults(sandbox.options.faults)
            sandbox._sf_server.start()
            sandbox._hs_server.start()
            if sandbox.pubsub is not None:
                sandbox.pubsub.start()
        except BaseException:
            sandbox.stop()
            raise
        return sandbox

    def stop(self) -> None:
        """Stop serving and remove the temp dir (CA bundle, JWT key). Idempotent."""
        stopping: threading.Event | None = getattr(self, "_stopping", None)
        if stopping is not None:
            stopping.set()
        webhooks: WebhookDispatcher | None = getattr(self, "webhooks", None)
        if webhooks is not None:
            webhooks.stop()
        pubsub: PubSubServer | None = getattr(self, "pubsub", None)
        if pubsub is not None:
            pubsub.stop()
        for server in self._servers:
            server.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----- what clients need --------------------------------------------------------------------------------
    @property
    def info(self) -> dict[str, object]:
        creds = self._creds
        hs_host = f"http://{self.options.host}:{self._hs_server.port}"
        return {
            "salesforce": {
                "instance_url": creds.instance_url,
                "login_url": creds.login_url,
                "access_token": self._sf_token,
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "username": creds.username,
                "password": creds.password,
                "jwt_private_key_path": str(self._jwt_key_path),
                "org_id": creds.org_id,
                "pubsub_endpoint": self.pubsub.endpoint if self.pubsub is not None else "",
            },
            "hubspot": {
                "host": hs_host,
                "access_token": self._hs_token,
                **self._hs_oauth,
                "app_id": str(self.account.app_id),
                "portal_id": str(self.account.portal_id),
            },
            "ca_bundle": str(self._tls.ca_path),
            "control": f"{hs_host}/_sandbox",
        }

    def write_config(self, path: str | Path) -> Path:
        return write_config(Path(path), self.info)  # type: ignore[arg-type]

    @property
    def salesforce(self) -> SalesforceState:
        return self._world.salesforce

    @property
    def hubspot(self) -> HubSpotState:
        return self._world.hubspot

    def people(self, crm: str) -> People:
        """The reps and admins of one CRM ("salesforce" or "hubspot"): what they see and the edits they make
        in the CRM's UI (see `sandbox.people`)."""
        return People(self, crm)

    def subscribe_hubspot_webhooks(self, target_url: str, **settings: object) -> WebhookSubscription:
        """Point the sandbox app's webhooks at `target_url`, signed with the app's client secret (the
        `client_secret` of `info`); `settings` are WebhookSubscription's other fields (properties,
        creation, batch_size, retry_delays, faults)."""
        subscription = WebhookSubscription(
            target_url,
            self._hs_oauth["client_secret"],
            self.account.app_id,
            **settings,  # type: ignore[arg-type]
        )
        self.webhooks.subscribe(subscription)
        return subscription

    # ----- faults, log, reset -------------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> None:
        self.add_faults((rule,))

    def add_faults(self, rules: tuple[FaultRule, ...] | list[FaultRule]) -> None:
        for rule in rules:
            if rule.kind == "search_lag":
                with self.hubspot.lock:
                    self.hubspot.note_lag(rule.seconds)
        self.faults.add(rules)

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests(self) -> list[dict[str, object]]:
        return self.log.entries()

    def reset_requests(self) -> int:
        return self.log.clear()

    def reset(self) -> None:
        """Reseed both CRMs and start counting afresh (log, limits, faults back to the start options; the
        Pub/Sub counters and stream faults cleared). Change events and open streams carry on."""
        self.webhooks.discard()
        self._world = self._build_world()
        self.log.clear()
        self._usage.reset()
        self._limiter.reset()
        self.faults.clear()
        self.add_faults(self.options.faults)
        if self.pubsub is not None:
            self.pubsub.counters.reset()
            self.pubsub.clear_faults()

    def server_errors(self) -> list[str]:
        """Tracebacks of sandbox bugs seen while serving (empty in a healthy run)."""
        return self._sf_server.errors + self._hs_server.errors

    # ----- internals ----------------------------------------------------------------------------------------
    def _build_world(self) -> _World:
        """Both CRMs seeded afresh (a sandbox refresh keeps the org id and portal id, as real ones do)."""
        options, now = self.options, self.clock.now()
        seed_value = self.account.seed_value(options.seed_value)
        story = build_story(options.seed, seed_value, options.deals, now, options.closed_deals)
        unserved = Story(deals=())
        salesforce = SalesforceState(self.clock, bare=options.bare)
        sf_story = story if "salesforce" in options.crms else unserved
        salesforce.default_owner_id = load_salesforce(salesforce, sf_story, now, self._creds.username)
        organization = organization_record(self._creds.org_id, now, self.account.org_name)
        salesforce.insert_seed("Organization", [organization])
        salesforce.publish_changes(self.change_events)
        hubspot = HubSpotState(self.clock, bare=options.bare, owners=hubspot_owners(now))
        load_hubspot(hubspot, story if "hubspot" in options.crms else unserved)
        hubspot.webhooks = self.webhooks
        del story, sf_story
        if self._release_memory:
            release_free_memory()
        sf_front = SalesforceFront(salesforce, self.clock, self._creds, self._sf_tokens, self._usage)
        hs_front = HubSpotFront(
            hubspot, self.clock, self._hs_tokens, self._limiter, self._hs_oauth, self.account.portal_id
        )
        wait = self._stopping.wait
        return _World(
            salesforce=salesforce,
            hubspot=hubspot,
            sf_gateway=Gateway(sf_front, self.faults, self.log, self.clock, options.latency_ms, wait),
            hs_gateway=Gateway(hs_front, self.faults, self.log, self.clock, options.latency_ms, wait),
        )

    def _serve_salesforce(self, request: Request) -> Response:
        return self._world.sf_gateway(request)

    def _serve_hubspot(self, request: Request) -> Response:
        if request.path == "/_sandbox" or request.path.startswith("/_sandbox/"):
            return self._control(request)
        return self._world.hs_gateway(request)
