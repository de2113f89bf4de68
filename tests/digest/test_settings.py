"""[digest], [smtp] and [slack]: validated with the rest of the configuration, overridable from the
environment, their secrets only from secret paths; `serve`'s digest jobs only when enabled."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tests.unit.serve_support import T0, FakeWorker, connection, make_worker
from worker.config.loader import load_settings
from worker.config.settings import DigestSettings
from worker.errors import ConfigError
from worker.serve.scheduler import build_scheduler

TOKEN = "xoxb-settings-test"


def load(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> object:
    path = tmp_path / "bant.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(str(path), environ=environ or {})


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, environ)
    return "\n".join(caught.value.problems)


def test_the_digest_is_off_and_needs_nothing_by_default(tmp_path: Path) -> None:
    """No [digest], [smtp] or [slack]: the configuration loads and the digest is off."""
    settings = load(tmp_path, "")
    assert settings.digest == DigestSettings()  # type: ignore[attr-defined]
    assert settings.digest.enabled is False and settings.digest.schedule == "0 8 * * MON"  # type: ignore[attr-defined]


def test_an_enabled_digest_names_every_setting_its_channels_lack(tmp_path: Path) -> None:
    """enabled with e-mail and Slack but no server, sender or token: each named, with where to set it."""
    found = problems(
        tmp_path, '[digest]\nenabled = true\nchannels = ["email", "slack"]\nschedule = "8 * MON"\n'
    )
    assert "smtp.host: required" in found and "smtp.from_address: required" in found
    assert "slack.bot_token: required" in found and "BANT_SYNC_SLACK__BOT_TOKEN" in found
    assert "digest.schedule: '8 * MON' is not a crontab expression" in found


def test_bad_values_are_reported_with_their_keys(tmp_path: Path) -> None:
    """A channel typo gets a did-you-mean; a TLS mode outside the three; a team without managers or with
    something that is not an e-mail."""
    found = problems(
        tmp_path,
        '[digest]\nchannels = ["emial"]\n[[digest.teams]]\nname = "EMEA"\nmembers = ["ann"]\n'
        '[smtp]\ntls = "ssl"\n',
    )
    assert (
        "digest.channels must list one or more of email, slack" in found and "did you mean 'email'" in found
    )
    assert "smtp.tls must be one of starttls, implicit, none" in found
    assert "digest.teams[0].managers: required" in found and "'ann' is not an e-mail address" in found


def test_teams_and_every_key_can_come_from_the_environment(tmp_path: Path) -> None:
    """BANT_SYNC_DIGEST__*, BANT_SYNC_SMTP__* and BANT_SYNC_SLACK__* set keys (teams as a TOML array of
    tables); the token comes from its secret variable and never shows in a repr."""
    settings = load(
        tmp_path,
        "",
        {
            "BANT_SYNC_DIGEST__ENABLED": "true",
            "BANT_SYNC_DIGEST__CHANNELS": '["slack"]',
            "BANT_SYNC_DIGEST__TEAMS": '[{name = "Field", members = ["a@x.io"], managers = ["m@x.io"]}]',
            "BANT_SYNC_SLACK__BASE_URL": "http://127.0.0.1:9/api/",
            "BANT_SYNC_SLACK__BOT_TOKEN": TOKEN,
            "BANT_SYNC_SMTP__PORT": "465",
        },
    )
    digest, slack, smtp = settings.digest, settings.slack, settings.smtp  # type: ignore[attr-defined]
    assert digest.enabled and digest.channels == ("slack",)
    assert [(t.name, t.members, t.managers) for t in digest.teams] == [("Field", ("a@x.io",), ("m@x.io",))]
    assert slack.base_url == "http://127.0.0.1:9/api/" and smtp.port == 465
    assert slack.bot_token is not None and slack.bot_token.reveal() == TOKEN
    assert TOKEN not in repr(settings) and TOKEN not in repr(slack)


def test_secrets_in_the_config_file_are_refused(tmp_path: Path) -> None:
    """The SMTP password and the Slack token belong in secret paths, never in the config file."""
    found = problems(tmp_path, '[smtp]\npassword = "hunter2"\n[slack]\nbot_token = "xoxb-1"\n')
    assert "smtp.password: secrets must not be in a config file: set env BANT_SYNC_SMTP__PASSWORD" in found
    assert "slack.bot_token: secrets must not be in a config file" in found
    assert "hunter2" not in found and "xoxb-1" not in found


def test_an_smtp_login_needs_its_password_and_tls(tmp_path: Path) -> None:
    """A username without the password secret, or a login over a connection without TLS, is refused."""
    found = problems(tmp_path, '[smtp]\nusername = "bot"\ntls = "none"\n')
    assert (
        "smtp.password: smtp.username is set" in found
        and "smtp.tls: a login is never sent without TLS" in found
    )
    settings = load(tmp_path, '[smtp]\nusername = "bot"\n', {"BANT_SYNC_SMTP__PASSWORD": "pw-123"})
    assert settings.smtp.password.reveal() == "pw-123"  # type: ignore[attr-defined]
    assert "pw-123" not in repr(settings)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("sf"), timezone="Europe/Paris")
    yield w
    w.close()


def test_serve_sends_the_digest_weekly_only_when_enabled(worker: FakeWorker) -> None:
    """Off by default: no digest job. Enabled: "digest:weekly" on its cron in rules.timezone and
    "digest:retry" every retry_every_minutes (none when 0)."""
    assert not [j for j in build_scheduler(worker, now=T0).get_jobs() if j.id.startswith("digest")]
    worker.settings = dataclasses.replace(
        worker.settings, digest=DigestSettings(enabled=True, schedule="30 7 * * TUE", retry_every_minutes=90)
    )
    jobs = {j.id: j for j in build_scheduler(worker, now=T0).get_jobs() if j.id.startswith("digest")}
    assert set(jobs) == {"digest:weekly", "digest:retry"}
    weekly, retry = jobs["digest:weekly"].trigger, jobs["digest:retry"].trigger
    assert isinstance(weekly, CronTrigger) and str(weekly.timezone) == "Europe/Paris"
    fields = {f.name: str(f) for f in weekly.fields}
    assert (fields["day_of_week"], fields["hour"], fields["minute"]) == ("tue", "7", "30")
    assert isinstance(retry, IntervalTrigger) and retry.interval.total_seconds() == 90 * 60
    assert jobs["digest:retry"].kwargs == {"failed_only": True}
    assert all(j.max_instances == 1 and j.coalesce for j in jobs.values())
    worker.settings = dataclasses.replace(
        worker.settings, digest=DigestSettings(enabled=True, retry_every_minutes=0)
    )
    assert {j.id for j in build_scheduler(worker, now=T0).get_jobs() if j.id.startswith("digest")} == {
        "digest:weekly"
    }
