"""One connection's digest for one week: gather (owners cache, flagged deals, CRM links), compose, render,
then deliver each recipient's message on each channel behind the state store's delivery ledger.

At most once: a delivery is claimed (`sending`) before its send and settled (`sent` / `failed`) after. A
claim that finds `sent` skips the recipient (already sent this week); one that finds `sending` (a crash
between send and settle: it may have arrived) skips it too and reports it in doubt, unless
`resend_uncertain`; `failed` is claimed again, so the next run retries it. A dry run renders everything and
reads the ledger (to say what would be skipped) but claims nothing and sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from connectors.protocol import Connector
from rules import Framework
from worker.config.loader import channel_problems
from worker.config.settings import DigestSettings, Settings
from worker.digest.compose import compose
from worker.digest.email import SmtpSender, message
from worker.digest.model import Digest, DigestPlan
from worker.digest.render import Rendered, render
from worker.digest.retry import DeliveryError, PermanentDelivery, deliver_with_retries
from worker.digest.slack import SlackSender
from worker.digest.week import IsoWeek
from worker.errors import ConfigError, UsageError
from worker.report.snoozes import snoozed_with_reasons
from worker.service import Worker
from worker.state import StateStore
from worker.state.digests import FAILED, SENDING, SENT
from worker.sync.owners import fresh_owners

log = structlog.get_logger()

SENT_NOW = "sent"
ALREADY_SENT = "skipped: already sent"
IN_DOUBT = "skipped: in doubt"
FAILED_NOW = "failed"
WOULD_SEND = "would send"
WOULD_SKIP = "would skip: already sent"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one recipient's digest on one channel (`result` is one of the constants above)."""

    recipient: str
    channel: str
    result: str
    detail: str | None = None


@dataclass(frozen=True)
class DigestReport:
    """One connection's digest run: an outcome per recipient and channel, the owners no digest reaches,
    and (dry runs) each recipient's rendered message."""

    connection: str
    week: str
    outcomes: tuple[Outcome, ...]
    unreachable: tuple[str, ...] = ()
    previews: tuple[tuple[Digest, Rendered], ...] = field(default=(), repr=False)

    @property
    def complete(self) -> bool:
        """Every delivery is known to have arrived (now or before): none failed or is in doubt."""
        return all(o.result not in (FAILED_NOW, IN_DOUBT) for o in self.outcomes)


@dataclass(frozen=True)
class DigestRequest:
    connection: str
    week: IsoWeek
    channels: tuple[str, ...]
    dry_run: bool = False
    resend_uncertain: bool = False
    only_to: str | None = None
    failed_only: bool = False
    """Only retry the week's failed deliveries (serve's retry job): nobody new is sent anything."""


class Senders:
    """The channels' senders, built on first use from the settings (so a dry run needs neither)."""

    def __init__(self, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._settings = settings
        self._clock = clock
        self._email: SmtpSender | None = None
        self._slack: SlackSender | None = None

    def check(self, channels: Sequence[str]) -> None:
        """ConfigError naming each setting the channels lack (exit 3)."""
        s = self._settings
        problems = channel_problems(s.smtp, s.slack, channels)
        if problems:
            raise ConfigError(problems, s.config_files)

    @property
    def from_address(self) -> str:
        return self._settings.smtp.from_address

    def email(self) -> SmtpSender:
        if self._email is None:
            self._email = SmtpSender(self._settings.smtp)
        return self._email

    def slack(self) -> SlackSender:
        if self._slack is None:
            self._slack = SlackSender(self._settings.slack, self._clock)
        return self._slack


def plan_digests(
    store: StateStore,
    connection: str,
    week: IsoWeek,
    framework: Framework,
    connector: Callable[[str], Connector],
    settings: DigestSettings,
    clock: Callable[[], datetime],
) -> DigestPlan:
    """Who gets what this week on `connection`: the owners (the cache, read again from the CRM when empty or
    a day old), the flagged and the snoozed deals as last synced (each snooze's reason from the audit row
    that snoozed it), the framework's labels, and each deal's CRM link (one preflight of the connector, no
    per-deal call)."""
    owners = store.owners(connection)
    flagged = store.flagged_deals(connection)
    snoozed, reasons = snoozed_with_reasons(store, connection)
    links: dict[str, str] = {}
    if flagged or snoozed:
        crm = connector(connection)
        try:
            crm.preflight()
            owners = fresh_owners(store, connection, crm, clock)
            links = {state.deal_id: crm.record_url(state.deal_id) for state in [*flagged, *snoozed]}
        finally:
            crm.close()
    if (flagged or snoozed) and not owners:
        raise UsageError(
            f"connection {connection!r} has {len(flagged) + len(snoozed)} flagged or snoozed deals but its "
            "CRM named no owners, so the digest cannot address anyone: check that the integration user may "
            "read users (Salesforce User; HubSpot crm.objects.owners.read)"
        )
    labels = {criterion.name: criterion.label for criterion in framework.criteria}
    return compose(
        connection,
        str(week),
        owners,
        flagged,
        labels,
        links,
        settings.teams,
        managers=settings.managers,
        snoozed=snoozed,
        reasons=reasons,
    )


def deliver(
    request: DigestRequest,
    plan: DigestPlan,
    store: StateStore,
    senders: Senders,
    settings: DigestSettings,
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> DigestReport:
    """Send (or, dry, show) each digest of `plan` on each requested channel, at most once per week."""
    week = str(request.week)
    wanted = request.only_to.strip().lower() if request.only_to else None
    digests = [d for d in plan.digests if wanted is None or d.recipient == wanted]
    ledger = {(d.recipient, d.channel): d for d in store.deliveries(request.connection, week)}
    outcomes: list[Outcome] = []
    previews: list[tuple[Digest, Rendered]] = []
    for digest in digests:
        rendered = render(digest)
        previews.append((digest, rendered))
        for channel in request.channels:
            row = ledger.get((digest.recipient, channel))
            if request.dry_run:
                result = WOULD_SKIP if row is not None and row.state == SENT else WOULD_SEND
                outcomes.append(Outcome(digest.recipient, channel, result))
                continue
            if request.failed_only and (row is None or row.state != FAILED):
                continue
            outcomes.append(
                _deliver_one(request, digest, rendered, channel, store, senders, settings, clock, sleep)
            )
    return DigestReport(
        request.connection,
        week,
        tuple(outcomes),
        plan.unreachable,
        tuple(previews) if request.dry_run else (),
    )


def _deliver_one(
    request: DigestRequest,
    digest: Digest,
    rendered: Rendered,
    channel: str,
    store: StateStore,
    senders: Senders,
    settings: DigestSettings,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> Outcome:
    connection, week, recipient = request.connection, str(request.week), digest.recipient
    claimed = store.claim_delivery(
        connection, week, recipient, channel, clock(), resend_uncertain=request.resend_uncertain
    )
    if not claimed:
        state = next(
            (
                d.state
                for d in store.deliveries(connection, week)
                if (d.recipient, d.channel) == (recipient, channel)
            ),
            SENT,
        )
        if state == SENDING:
            log.warning(
                "digest delivery in doubt: an earlier run stopped during its send; not sent again",
                connection=connection,
                week=week,
                recipient=recipient,
                channel=channel,
            )
            return Outcome(
                recipient,
                channel,
                IN_DOUBT,
                "an earlier run stopped while sending: --resend-uncertain sends it again",
            )
        return Outcome(recipient, channel, ALREADY_SENT)

    def send() -> None:
        if channel == "email":
            try:
                mail = message(digest, rendered, senders.from_address)
            except ValueError as exc:  # an address the e-mail package refuses: nothing was sent
                raise PermanentDelivery(f"cannot address an e-mail to {recipient!r}: {exc}") from None
            senders.email().send(mail)
        else:
            senders.slack().send(recipient, rendered)

    try:
        deliver_with_retries(
            send,
            max_attempts=settings.max_attempts,
            base_delay=settings.retry_base_delay,
            sleep=sleep,
            recipient=recipient,
            channel=channel,
        )
    except DeliveryError as exc:
        store.settle_delivery(connection, week, recipient, channel, FAILED, clock(), str(exc))
        log.warning(
            "digest delivery failed; the next run tries again",
            connection=connection,
            week=week,
            recipient=recipient,
            channel=channel,
            error=str(exc),
        )
        return Outcome(recipient, channel, FAILED_NOW, str(exc))
    store.settle_delivery(connection, week, recipient, channel, SENT, clock())
    log.info("digest delivered", connection=connection, week=week, recipient=recipient, channel=channel)
    return Outcome(recipient, channel, SENT_NOW)


def run_digest(
    worker: Worker,
    request: DigestRequest,
    senders: Senders,
    *,
    sleep: Callable[[float], None],
) -> DigestReport:
    """Plan and deliver one connection's digest for one week with the worker's store, CRM and clock."""
    if not request.dry_run:
        senders.check(request.channels)
    settings = worker.settings.digest
    plan = plan_digests(
        worker.store,
        request.connection,
        request.week,
        worker.framework(request.connection),
        worker.connector,
        settings,
        worker.clock,
    )
    return deliver(request, plan, worker.store, senders, settings, clock=worker.clock, sleep=sleep)
