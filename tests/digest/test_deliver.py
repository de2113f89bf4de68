"""Delivery against real local servers: SMTP in each TLS mode (aiosmtpd) and the Slack stand-in through
slack_sdk, with each error mapped to what the digest does about it and the retry policy's waits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.digest.servers import SlackApi, SmtpServer, slack_api, smtp_server
from worker.config.secrets import Secret
from worker.config.settings import SlackSettings, SmtpSettings
from worker.digest.email import DIGEST_HEADER, SmtpSender, message
from worker.digest.model import DealLine, Digest, OwnerDeals
from worker.digest.render import render
from worker.digest.retry import PermanentDelivery, TransientDelivery, deliver_with_retries
from worker.digest.slack import SlackSender

PASSWORD = "smtp-pass-Zq81"
TOKEN = "xoxb-test-token-51"
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)

DIGEST = Digest(
    recipient="ann@northbeam.example",
    name="Ann Lee",
    connection="sf",
    week="2026-W49",
    own=OwnerDeals(
        "005A",
        "Ann Lee",
        "ann@northbeam.example",
        (
            DealLine(
                "006A", "Acme POC", "poc_unqualified", ("Budget",), date(2026, 11, 2), "https://crm/006A"
            ),
        ),
    ),
)


def _smtp(server: SmtpServer, **changes: object) -> SmtpSettings:
    settings = SmtpSettings(
        host=server.host,
        port=server.port,
        tls=server.tls,
        username="" if server.tls == "none" else "digest",
        from_address="bant-sync@northbeam.example",
        ca_file=str(server.ca_file),
        timeout=5.0,
        password=None if server.tls == "none" else Secret(PASSWORD, "test"),
    )
    return SmtpSettings(**{**settings.__dict__, **changes})  # type: ignore[arg-type]


@pytest.fixture(params=["starttls", "implicit", "none"])
def smtp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SmtpServer]:
    with smtp_server(tmp_path, str(request.param), "digest", PASSWORD) as server:
        yield server


def test_an_email_arrives_with_text_and_html_parts_in_every_tls_mode(smtp: SmtpServer) -> None:
    """STARTTLS, implicit TLS and plain: one message, text then HTML, logged in where TLS protects it."""
    SmtpSender(_smtp(smtp)).send(message(DIGEST, render(DIGEST), "bant-sync@northbeam.example"))
    [mail] = smtp.handler.to("ann@northbeam.example")
    assert mail[DIGEST_HEADER] == "sf 2026-W49"
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "Acme POC" in text.get_content() and "https://crm/006A" in text.get_content()
    assert '<a href="https://crm/006A">Acme POC</a>' in html.get_content()
    assert smtp.handler.logins == (0 if smtp.tls == "none" else 1)


def test_an_untrusted_certificate_is_a_permanent_failure(tmp_path: Path) -> None:
    """Without the CA that signed the server's certificate nothing is sent; the error says what to set."""
    with smtp_server(tmp_path, "starttls", "digest", PASSWORD) as server:
        sender = SmtpSender(_smtp(server, ca_file=""))
        with pytest.raises(PermanentDelivery, match=r"smtp\.ca_file"):
            sender.send(message(DIGEST, render(DIGEST), "bant-sync@northbeam.example"))
        assert server.handler.messages == []


def test_a_refused_recipient_is_permanent_and_a_deferred_one_transient(tmp_path: Path) -> None:
    """550 is reported at once; 451 is retried and then delivered."""
    with smtp_server(tmp_path, "starttls", "digest", PASSWORD) as server:
        sender = SmtpSender(_smtp(server))
        server.handler.refuse.add("ann@northbeam.example")
        with pytest.raises(PermanentDelivery, match="550"):
            sender.send(message(DIGEST, render(DIGEST), "bant-sync@northbeam.example"))
        server.handler.refuse.clear()
        server.handler.defer.add("ann@northbeam.example")
        waits: list[float] = []
        deliver_with_retries(
            lambda: sender.send(message(DIGEST, render(DIGEST), "bant-sync@northbeam.example")),
            max_attempts=3,
            base_delay=2.0,
            sleep=waits.append,
            recipient="ann@northbeam.example",
            channel="email",
        )
        assert waits == [2.0]
        assert len(server.handler.to("ann@northbeam.example")) == 1


def test_an_unreachable_server_is_transient_and_retried_up_to_max_attempts() -> None:
    """A refused connection is retried with doubling waits, then the last error propagates."""
    from tests.digest.servers import free_port

    settings = SmtpSettings(host="127.0.0.1", port=free_port(), tls="none", from_address="a@b.c", timeout=2)
    waits: list[float] = []
    with pytest.raises(TransientDelivery, match="could not be reached"):
        deliver_with_retries(
            lambda: SmtpSender(settings).send(message(DIGEST, render(DIGEST), "a@b.c")),
            max_attempts=3,
            base_delay=1.0,
            sleep=waits.append,
            recipient="ann@northbeam.example",
            channel="email",
        )
    assert waits == [1.0, 2.0]


@pytest.fixture
def slack() -> Iterator[tuple[SlackApi, SlackSender]]:
    with slack_api(TOKEN) as (api, base_url):
        settings = SlackSettings(base_url=base_url, timeout=5, bot_token=Secret(TOKEN, "test"))
        yield api, SlackSender(settings, clock=lambda: NOW)


def test_a_slack_digest_is_one_direct_message_with_blocks(slack: tuple[SlackApi, SlackSender]) -> None:
    """lookupByEmail finds the user; one chat.postMessage to their id with blocks and a fallback text."""
    api, sender = slack
    api.users["ann@northbeam.example"] = "U0ANN"
    sender.send("ann@northbeam.example", render(DIGEST))
    [post] = api.posts_to("ann@northbeam.example")
    assert post["channel"] == "U0ANN" and "2026-W49" in post["text"]
    assert post["blocks"][0]["type"] == "header"
    assert any("<https://crm/006A|Acme POC>" in str(b.get("text", {}).get("text")) for b in post["blocks"])
    assert api.calls == ["users.lookupByEmail", "chat.postMessage"]


def test_slack_ratelimited_waits_its_retry_after_then_posts(slack: tuple[SlackApi, SlackSender]) -> None:
    """A 429 `ratelimited` is transient with the server's Retry-After as the wait; the retry posts once."""
    api, sender = slack
    api.users["ann@northbeam.example"] = "U0ANN"
    api.ratelimit_once.add("chat.postMessage")
    waits: list[float] = []
    deliver_with_retries(
        lambda: sender.send("ann@northbeam.example", render(DIGEST)),
        max_attempts=3,
        base_delay=0.5,
        sleep=waits.append,
        recipient="ann@northbeam.example",
        channel="slack",
    )
    assert waits == [3.0]
    assert len(api.posts_to("ann@northbeam.example")) == 1


def test_an_unknown_slack_user_and_a_bad_token_are_permanent(slack: tuple[SlackApi, SlackSender]) -> None:
    """users_not_found and invalid_auth are not retried; the token never shows in the error."""
    api, sender = slack
    with pytest.raises(PermanentDelivery, match="no Slack user has this e-mail") as unknown:
        sender.send("nobody@northbeam.example", render(DIGEST))
    api.token = "xoxb-another"
    api.users["ann@northbeam.example"] = "U0ANN"
    with pytest.raises(PermanentDelivery, match="invalid_auth") as refused:
        sender.send("ann@northbeam.example", render(DIGEST))
    assert TOKEN not in str(unknown.value) + str(refused.value)
    assert api.posts == []


def test_a_name_from_the_crm_cannot_add_headers() -> None:
    """A CR/LF in the recipient's name (the CRM's text) is dropped, never a second header."""
    hostile = Digest(
        "ann@northbeam.example", "Ann\r\nBcc: evil@attacker.example", "sf", "2026-W49", DIGEST.own
    )
    mail = message(hostile, render(hostile), "bant-sync@northbeam.example")
    assert mail["Bcc"] is None and "\n" not in str(mail["To"]) and "ann@northbeam.example" in str(mail["To"])
