"""The weekly digest end to end, on both CRMs: a real sync of the sandbox's track-selling seed, then
`bant-sync digest` delivering to a real SMTP server (aiosmtpd, STARTTLS with a throw-away CA, login) and to
a Slack Web API stand-in that slack_sdk's WebClient is pointed at. Each owner with flagged deals gets one
e-mail and one Slack message listing exactly their deals with what is missing and CRM links; managers get
their team's rollup (Salesforce: User.ManagerId; HubSpot: a configured team); a rerun the same week sends
nothing more; one recipient's failure is reported for that recipient only and retried by the next run;
a dry run sends and records nothing; no secret shows in the output or the logs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import structlog

from rules.model import Status
from tests.digest.servers import SlackApi, SmtpServer, slack_api, smtp_server
from tests.integration.conftest import Env
from worker import exit_codes
from worker.cli import digest as digest_cmd
from worker.cli.app import main

PASSWORD = "smtp-secret-Qv7Lm2"
TOKEN = "xoxb-digest-test-9J3kQ"
WEEK = "2026-W49"
MANAGER = "maya.chen@northbeam.example"
REPORTS = ("jordan.okafor@northbeam.example", "priya.raman@northbeam.example")
VP = "vp.sales@northbeam.example"
LABELS = {"budget": "Budget", "authority": "Authority", "need": "Need", "timing": "Timing"}


@dataclass
class DigestEnv:
    env: Env
    smtp: SmtpServer
    slack: SlackApi
    waits: list[float]
    owners: dict[str, str]
    """owner id -> e-mail (lower case)."""
    flagged: dict[str, list[dict[str, Any]]]
    """e-mail -> the owner's flagged deals as the CRM shows them after the sync (id, name, missing)."""
    links: dict[str, str]

    def digest(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """`bant-sync digest ARGS` on the env's config (JSON logs at debug level), its code, stdout and
        stderr; structlog's configuration is put back afterwards."""
        saved = structlog.get_config()
        capsys.readouterr()
        try:
            code = main(
                [
                    "--config",
                    str(self.env.config),
                    "--log-level",
                    "debug",
                    "--log-format",
                    "json",
                    "digest",
                    "--connection",
                    self.env.crm,
                    "--week",
                    WEEK,
                    *args,
                ]
            )
        finally:
            structlog.configure(**saved)
        out, err = capsys.readouterr()
        assert PASSWORD not in out + err and TOKEN not in out + err
        return code, out, err


def _flagged_in_crm(env: Env) -> tuple[dict[str, str], dict[str, list[dict[str, Any]]]]:
    owners = {o.id: (o.email or "").lower() for o in env.worker.store.owners(env.crm)}
    flagged: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for deal_id, info in env.view.deals().items():
        if info["open"] and info["status"] and Status(info["status"]).is_unqualified:
            missing = [LABELS[m] for m in env.view.missing_of(deal_id)]
            flagged[owners[str(info["owner"])]].append(
                {"id": deal_id, "name": info["name"], "missing": missing}
            )
    return owners, dict(flagged)


@pytest.fixture
def denv(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DigestEnv]:
    """A full sync of the seed (Salesforce: Jordan and Priya report to Maya), the mail server, the Slack
    stand-in knowing every owner and the VP, and the config and secrets the digest reads."""
    if env.crm == "salesforce":
        users = {str(u["Email"]).lower(): str(u["Id"]) for u in env.sb.salesforce.records("User")}
        for report in REPORTS:
            env.sb.salesforce.update("User", users[report], {"ManagerId": users[MANAGER]})
    summary = env.run("full")
    assert summary.status == "succeeded", summary.error
    owners, flagged = _flagged_in_crm(env)
    assert len(flagged) >= 3, "the seed should flag deals of several owners"
    connector = env.worker.connector(env.crm)
    connector.preflight()
    links = {d["id"]: connector.record_url(d["id"]) for deals in flagged.values() for d in deals}
    connector.close()
    waits: list[float] = []
    monkeypatch.setattr(digest_cmd, "_sleep", waits.append)
    with (
        smtp_server(tmp_path / "tls", "starttls", "digest-bot", PASSWORD) as smtp,
        slack_api(TOKEN) as (api, url),
    ):
        for i, address in enumerate(sorted({*owners.values(), VP})):
            api.users[address] = f"U{i:04d}"
        members = ", ".join(f'"{r}"' for r in REPORTS)
        team = f'[[digest.teams]]\nname = "Field"\nmembers = [{members}]\nmanagers = ["{VP}"]\n'
        config_lines = [
            "",
            "[digest]",
            'channels = ["email", "slack"]',
            "retry_base_delay = 0.25",
            team if env.crm == "hubspot" else "",
            "[smtp]",
            'host = "127.0.0.1"',
            f"port = {smtp.port}",
            'tls = "starttls"',
            'username = "digest-bot"',
            'from_address = "bant-sync@northbeam.example"',
            f'ca_file = "{smtp.ca_file}"',
            "timeout = 10",
            "",
            "[slack]",
            f'base_url = "{url}"',
            "timeout = 10",
        ]
        with env.config.open("a", encoding="utf-8") as config:
            config.write("\n".join(config_lines) + "\n")
        secrets = env.config.with_name(f"{env.config.stem}.secrets.toml")
        with secrets.open("a", encoding="utf-8") as file:
            file.write(f'\n[smtp]\npassword = "{PASSWORD}"\n\n[slack]\nbot_token = "{TOKEN}"\n')
        yield DigestEnv(env, smtp, api, waits, owners, flagged, links)


def _text(mail: EmailMessage) -> str:
    part = mail.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def _html(mail: EmailMessage) -> str:
    part = mail.get_body(("html",))
    assert part is not None
    return str(part.get_content())


def _slack_text(post: dict[str, Any]) -> str:
    return "\n".join(
        str(b.get("text", {}).get("text", "")) for b in post["blocks"] if isinstance(b.get("text"), dict)
    )


def _check_own_deals(d: DigestEnv, address: str, mail: EmailMessage, post: dict[str, Any]) -> None:
    """The recipient's own flagged deals, each with its missing criteria and CRM link, and nobody else's."""
    text, html, slack = _text(mail), _html(mail), _slack_text(post)
    mine = d.flagged[address]
    assert f"{len(mine)} of your deals" in text
    for deal in mine:
        assert deal["name"] in text, deal
        assert f"missing: {', '.join(deal['missing'])}" in text, deal
        assert d.links[deal["id"]] in text and f'href="{d.links[deal["id"]]}"' in html
        assert f"<{d.links[deal['id']]}|" in slack
    others = {deal["id"] for other, deals in d.flagged.items() if other != address for deal in deals}
    if address not in (MANAGER, VP):
        assert not any(d.links[o] in text for o in others)


def test_the_digest_reaches_every_owner_and_manager_once_and_a_rerun_sends_nothing(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every owner with flagged deals: one e-mail (text + HTML) and one Slack message with blocks, listing
    exactly their deals; the manager's holds the team's rollup; the same week again sends nothing; Slack's
    one 429 is waited out (its Retry-After, through the injected wait) and the post goes out once."""
    d = denv
    d.slack.ratelimit_once.add("chat.postMessage")
    code, out, err = d.digest(capsys)
    assert code == exit_codes.OK, out + err
    managers = {MANAGER} if d.env.crm == "salesforce" else {VP}
    recipients = set(d.flagged) | managers
    for address in recipients:
        assert len(d.smtp.handler.to(address)) == 1, address
        assert len(d.slack.posts_to(address)) == 1, address
        assert f"{address}" in out
    assert len(d.smtp.handler.messages) == len(recipients) == len(d.slack.posts)
    for address in d.flagged:
        _check_own_deals(d, address, d.smtp.handler.to(address)[0], d.slack.posts_to(address)[0])
    [rollup] = d.smtp.handler.to(next(iter(managers)))
    [rollup_post] = d.slack.posts_to(next(iter(managers)))
    names = {(o.email or "").lower(): o.name for o in d.env.worker.store.owners(d.env.crm)}
    for report in REPORTS:
        assert d.flagged.get(report), f"the seed should flag deals of {report}"
        for deal in d.flagged[report]:
            assert deal["name"] in _text(rollup) and d.links[deal["id"]] in _html(rollup)
        assert f"*{names[report]}*: {len(d.flagged[report])} flagged" in _slack_text(rollup_post)
    others = set(d.flagged) - set(REPORTS) - {MANAGER}
    assert not any(names[o] in _slack_text(rollup_post) for o in others)
    assert "Your team" in _text(rollup)
    assert d.waits == [3.0]  # Slack's Retry-After, once
    assert f"{len(recipients) * 2} sent, 0 skipped (already sent), 0 failed" in out
    assert d.smtp.handler.logins == len(recipients)

    code, out, err = d.digest(capsys)
    assert code == exit_codes.OK, out + err
    assert len(d.smtp.handler.messages) == len(recipients) == len(d.slack.posts)
    assert f"0 sent, {len(recipients) * 2} skipped (already sent), 0 failed" in out


def test_one_recipients_failure_is_reported_for_them_alone_and_retried_next_run(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """An SMTP 550 for one owner and a Slack user no e-mail finds for another: those two deliveries are
    reported failed (exit 1), everyone else's go out; the next run sends only those two, once fixed."""
    d = denv
    bounced, unknown = sorted(d.flagged)[:2]
    d.smtp.handler.refuse.add(bounced)
    del d.slack.users[unknown]
    code, out, _err = d.digest(capsys)
    assert code == exit_codes.FAILURE
    lines = {
        (line.split()[0], line.split()[1]): line
        for line in out.splitlines()
        if line.startswith("  ") and "@" in line
    }
    assert "failed" in lines[(bounced, "email")] and "550" in lines[(bounced, "email")]
    assert "failed" in lines[(unknown, "slack")] and "no Slack user" in lines[(unknown, "slack")]
    assert lines[(bounced, "slack")].endswith("sent") and lines[(unknown, "email")].endswith("sent")
    assert d.smtp.handler.to(bounced) == [] and d.slack.posts_to(unknown) == []
    assert sum("failed" in line for line in lines.values()) == 2
    sent_before = len(d.smtp.handler.messages), len(d.slack.posts)

    d.smtp.handler.refuse.clear()
    d.slack.users[unknown] = "U9999"
    code, out, _err = d.digest(capsys)
    assert code == exit_codes.OK, out
    assert "2 sent" in out
    assert (len(d.smtp.handler.messages), len(d.slack.posts)) == (sent_before[0] + 1, sent_before[1] + 1)
    assert len(d.smtp.handler.to(bounced)) == 1 and len(d.slack.posts_to(unknown)) == 1
    attempts = {(r.recipient, r.channel): r.attempts for r in d.env.worker.store.deliveries(d.env.crm, WEEK)}
    assert attempts[(bounced, "email")] == 2 and attempts[(unknown, "slack")] == 2
    assert {r.state for r in d.env.worker.store.deliveries(d.env.crm, WEEK)} == {"sent"}


def test_a_dry_run_prints_the_messages_and_sends_and_records_nothing(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints each recipient's text part and sends nothing; a real run afterwards still sends."""
    d = denv
    code, out, _err = d.digest(capsys, "--dry-run")
    assert code == exit_codes.OK
    assert d.smtp.handler.messages == [] and d.slack.posts == [] and d.slack.calls == []
    assert d.env.worker.store.deliveries(d.env.crm, WEEK) == []
    for address, deals in d.flagged.items():
        assert f"<{address}>" in out
        assert all(deal["name"] in out for deal in deals)
    assert "dry run: nothing sent" in out
    code, out, _err = d.digest(capsys, "--to", sorted(d.flagged)[0].upper())
    assert code == exit_codes.OK, out
    assert len(d.smtp.handler.messages) == 1 and len(d.slack.posts) == 1


def test_a_delivery_left_in_doubt_is_not_sent_again_unless_asked(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """A row a crash left `sending` is reported in doubt (exit 1) and not resent; --resend-uncertain does."""
    d = denv
    address = sorted(d.flagged)[0]
    store = d.env.worker.store
    assert store.claim_delivery(d.env.crm, WEEK, address, "email", d.env.time.now())
    code, out, _err = d.digest(capsys, "--channel", "email", "--to", address)
    assert code == exit_codes.FAILURE
    assert "in doubt" in out and d.smtp.handler.messages == []
    code, out, _err = d.digest(capsys, "--channel", "email", "--to", address, "--resend-uncertain")
    assert code == exit_codes.OK, out
    assert len(d.smtp.handler.to(address)) == 1


def test_a_missing_smtp_setting_is_a_config_error_naming_it(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without [smtp] host the e-mail channel cannot go: exit 3 naming smtp.host; nothing is sent."""
    d = denv
    text = d.env.config.read_text(encoding="utf-8").replace('host = "127.0.0.1"\n', "")
    d.env.config.write_text(text, encoding="utf-8")
    code, _out, err = d.digest(capsys)
    assert code == exit_codes.CONFIG
    assert "smtp.host" in err and "Traceback" not in err
    assert d.smtp.handler.messages == [] and d.slack.posts == []


def test_the_digest_reads_the_owners_itself_when_none_are_cached(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only incremental syncs ran (they never read owners), or the cache was emptied: the digest reads the
    CRM's owners itself (one paged read, cached for next time) instead of refusing to address anyone."""
    d = denv
    store, crm = d.env.worker.store, d.env.crm
    store.replace_owners(crm, [], d.env.time.now())
    assert store.owners(crm) == [] and store.owners_refreshed_at(crm) is None
    code, out, err = d.digest(capsys, "--channel", "email")
    assert code == exit_codes.OK, out + err
    assert all(len(d.smtp.handler.to(address)) == 1 for address in d.flagged)
    assert {o.id for o in store.owners(crm)} >= set(d.owners)


SNOOZE_REASON = "Customer budget cycle opens on 1 January"


def test_a_snoozed_deal_is_listed_apart_in_its_owners_digest_and_counted_in_the_rollup(
    denv: DigestEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report of the manager snoozes one of their flagged deals: their digest lists it under "Snoozed"
    with its date and reason and no longer among the deals needing qualification; the manager's rollup
    counts it as snoozed; a rerun the same week sends nothing more."""
    d = denv
    rep = REPORTS[1]  # Priya: the seed flags some of her deals needs_qualification (POCs cannot be snoozed)
    statuses = {i: info["status"] for i, info in d.env.view.deals().items()}
    deal = next(x for x in d.flagged[rep] if statuses[x["id"]] == "needs_qualification")
    owner_id = next(o for o, address in d.owners.items() if address == rep)
    until = d.env.today() + timedelta(days=10)
    d.env.view.snooze(deal["id"], until, SNOOZE_REASON, by=owner_id)
    assert d.env.run().status == "succeeded"
    assert d.env.view.deals()[deal["id"]]["status"] == "snoozed"
    code, out, err = d.digest(capsys)
    assert code == exit_codes.OK, out + err
    [mail] = d.smtp.handler.to(rep)
    text = _text(mail)
    flagged_part, snoozed_part = text.split("Snoozed (1)")
    left = len(d.flagged[rep]) - 1
    assert f"{left} of your deals" in flagged_part and deal["name"] not in flagged_part
    assert (
        deal["name"] in snoozed_part and f"snoozed until {until.isoformat()}: {SNOOZE_REASON}" in snoozed_part
    )
    assert "1 is snoozed" in str(mail["Subject"])
    assert SNOOZE_REASON in _html(mail)
    [post] = d.slack.posts_to(rep)
    assert "*1 snoozed*" in _slack_text(post) and d.links[deal["id"]] in _slack_text(post)
    manager = MANAGER if d.env.crm == "salesforce" else VP
    [rollup] = d.smtp.handler.to(manager)
    names = {(o.email or "").lower(): o.name for o in d.env.worker.store.owners(d.env.crm)}
    assert f"{names[rep]}: {left} flagged, 1 snoozed" in _text(rollup)
    assert ", 1 snoozed" in str(rollup["Subject"])
    sent = len(d.smtp.handler.messages), len(d.slack.posts)
    code, out, _err = d.digest(capsys)
    assert code == exit_codes.OK and (len(d.smtp.handler.messages), len(d.slack.posts)) == sent
