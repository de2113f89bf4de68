"""Secrets: the state store's password from a secret path and masked everywhere; secret files that others
can read refused with the chmod to run; the SQLite state file private whatever the umask."""

from __future__ import annotations

import getpass
import json
import os
import socket
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from worker import exit_codes
from worker.cli.app import main
from worker.config.loader import load_settings
from worker.errors import ConfigError
from worker.state.engine import Database, display_text
from worker.state.errors import StateConfigError

PASSWORD = "pg-s3cret-Pa55"
PG_URL = os.environ.get("BANT_SYNC_TEST_POSTGRES_URL", "postgresql://127.0.0.1:5432/test")
OPS_TOKEN = "ops-token-0123456789abcdef0123456789"


def private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def write_config(tmp_path: Path, text: str) -> Path:
    return private(tmp_path / "bant.toml", text, 0o644)


POSTGRES_CONFIG = '[state]\nurl = "postgresql://bant@db.example:5432/bant"\n'


@pytest.mark.parametrize("source", ["env", "file-env", "secrets-file"])
def test_state_password_from_each_secret_path_is_merged_only_at_connect(tmp_path: Path, source: str) -> None:
    """BANT_SYNC_STATE__PASSWORD, its _FILE, or [state] password in the secrets file: merged into the URL
    the store connects with, and shown nowhere else."""
    config = write_config(tmp_path, POSTGRES_CONFIG)
    env = {
        "env": {"BANT_SYNC_STATE__PASSWORD": PASSWORD},
        "file-env": {
            "BANT_SYNC_STATE__PASSWORD_FILE": str(private(tmp_path / "pw", PASSWORD + "\n")),
        },
        "secrets-file": {
            "BANT_SYNC_SECRETS_FILE": str(
                private(tmp_path / "s.toml", f'[state]\npassword = "{PASSWORD}"\n')
            ),
        },
    }[source]
    settings = load_settings(str(config), environ=env)
    assert make_url(settings.state.database_url()).password == PASSWORD
    assert settings.state.display_url() == "postgresql://bant:***@db.example:5432/bant"
    for shown in (repr(settings), str(settings), repr(settings.state)):
        assert PASSWORD not in shown
    database = Database.open(settings.state.database_url())
    try:
        assert database.engine.url.password == PASSWORD
        assert PASSWORD not in database.where
    finally:
        database.close()


@pytest.mark.parametrize(
    ("config", "env", "message"),
    [
        (
            '[state]\nurl = "postgresql://bant:hunter2@db/bant"\n',
            {},
            "state.url: postgresql://bant:***@db/bant holds a password, and secrets must not be in a "
            "config file",
        ),
        ('[state]\npassword = "hunter2"\n', {}, "state.password: secrets must not be in a config file"),
        (
            "",
            {"BANT_SYNC_STATE__URL": "postgresql://bant:hunter2@db/bant", "BANT_SYNC_STATE__PASSWORD": "x"},
            "holds a password and env BANT_SYNC_STATE__PASSWORD gives one too: keep one",
        ),
        ("", {"BANT_SYNC_STATE__PASSWORD": "hunter2"}, "only a PostgreSQL state.url uses it"),
    ],
    ids=["password-in-config-url", "password-key-in-config", "two-passwords", "password-for-sqlite"],
)
def test_misplaced_state_password_is_refused_without_showing_it(
    tmp_path: Path, config: str, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(str(write_config(tmp_path, config)), environ=env)
    assert message in str(info.value)
    assert "hunter2" not in str(info.value)


def test_password_in_env_url_still_works_and_is_masked(tmp_path: Path) -> None:
    """A password inside BANT_SYNC_STATE__URL (not a file) keeps working; it is masked when shown."""
    url = f"postgresql://bant:{PASSWORD}@db/bant"
    settings = load_settings(str(write_config(tmp_path, "")), environ={"BANT_SYNC_STATE__URL": url})
    assert settings.state.database_url() == url
    assert PASSWORD not in settings.state.display_url() and PASSWORD not in repr(settings)


def test_display_text_masks_a_password_even_in_an_unparsable_url() -> None:
    assert display_text("postgresql://u:p%40ss@h/db") == "postgresql://u:***@h/db"
    assert PASSWORD not in display_text(f"not a url://u:{PASSWORD}@h/db")


@pytest.fixture
def pg_schema_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema (dropped afterwards); skips without a server."""
    libpq = PG_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    try:
        with psycopg.connect(libpq, autocommit=True, connect_timeout=2) as conn:
            conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    except psycopg.Error:
        pytest.skip("PostgreSQL not reachable: set BANT_SYNC_TEST_POSTGRES_URL to run this")
    try:
        yield str(make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"}))
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


@pytest.mark.postgres
def test_status_json_never_prints_the_state_password(
    tmp_path: Path,
    pg_schema_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`status --json` and `status` show the state store without its password (a server that trusts the
    client ignores it, so the run reaches the output)."""
    url = make_url(pg_schema_url)
    url = url.set(username=url.username or getpass.getuser())
    monkeypatch.setenv(
        "BANT_SYNC_STATE__URL", url.set(password=PASSWORD).render_as_string(hide_password=False)
    )
    for name in [n for n in os.environ if n.startswith("BANT_SYNC_") and n != "BANT_SYNC_STATE__URL"]:
        monkeypatch.delenv(name)
    config = write_config(tmp_path, "")
    assert main(["--config", str(config), "--log-level", "error", "status", "--json"]) == exit_codes.OK
    out = capsys.readouterr()
    assert PASSWORD not in out.out + out.err
    assert ":***@" in json.loads(out.out)["state"]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o666, 0o620])
def test_a_secrets_file_others_can_read_is_refused_with_the_chmod(tmp_path: Path, mode: int) -> None:
    secrets = private(tmp_path / "secrets.toml", f'ops_token = "{OPS_TOKEN}"\n', mode)
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"BANT_SYNC_SECRETS_FILE": str(secrets)})
    assert info.value.exit_code == exit_codes.CONFIG
    assert f"can be read by other users (mode {mode:04o}): run `chmod 600 {secrets}`" in str(info.value)
    assert OPS_TOKEN not in str(info.value)
    secrets.chmod(0o600)
    assert load_settings(None, environ={"BANT_SYNC_SECRETS_FILE": str(secrets)}).ops_token is not None


@pytest.mark.parametrize("variable", ["BANT_SYNC_OPS_TOKEN_FILE", "BANT_SYNC_STATE__PASSWORD_FILE"])
def test_a_file_secret_others_can_read_is_refused_with_the_chmod(tmp_path: Path, variable: str) -> None:
    secret = private(tmp_path / "secret", OPS_TOKEN, 0o644)
    env = {variable: str(secret), "BANT_SYNC_STATE__URL": "postgresql://bant@db/bant"}
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ=env)
    assert f"{variable} names {secret} can be read by other users (mode 0644): run `chmod 600 {secret}`" in (
        str(info.value)
    )
    assert OPS_TOKEN not in str(info.value)


def test_ops_token_shorter_than_32_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(None, environ={"BANT_SYNC_OPS_TOKEN": "short-token-1234"})
    text = str(info.value)
    assert info.value.exit_code == exit_codes.CONFIG
    assert "ops_token: the ops API token (env BANT_SYNC_OPS_TOKEN) has 16 characters; use at least 32" in text
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in text
    assert "short-token-1234" not in text
    assert load_settings(None, environ={"BANT_SYNC_OPS_TOKEN": "x" * 32}).ops_token is not None


@pytest.mark.parametrize("umask", [0o022, 0o000])
def test_sqlite_state_file_and_its_new_directories_are_private_whatever_the_umask(
    tmp_path: Path, umask: int
) -> None:
    state = tmp_path / "a" / "b" / "state.db"
    previous = os.umask(umask)
    try:
        database = Database.open(f"sqlite:///{state}")
        with database.write() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        database.close()
    finally:
        os.umask(previous)
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    for sidecar in state.parent.glob("state.db-*"):
        assert stat.S_IMODE(sidecar.stat().st_mode) & 0o077 == 0, sidecar


def test_an_existing_state_file_and_directory_keep_their_modes(tmp_path: Path) -> None:
    """bant-sync only sets modes on what it creates: an operator's existing choices stand."""
    state = private(tmp_path / "state.db", "", 0o640)
    tmp_path.chmod(0o750)
    Database.open(f"sqlite:///{state}").close()
    assert stat.S_IMODE(state.stat().st_mode) == 0o640
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o750


def test_a_state_directory_that_cannot_be_created_is_one_message(tmp_path: Path) -> None:
    blocker = private(tmp_path / "file", "", 0o600)
    with pytest.raises(StateConfigError) as info:
        Database.open(f"sqlite:///{blocker / 'sub' / 'state.db'}")
    assert info.value.exit_code == exit_codes.CONFIG
    assert "set state.dir to a directory this user may write" in str(info.value)


def test_check_and_status_errors_never_show_the_state_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreachable PostgreSQL: `check` and `status --json` name the server, never the password."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in [n for n in os.environ if n.startswith("BANT_SYNC_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("BANT_SYNC_STATE__PASSWORD", PASSWORD)
    config = write_config(tmp_path, f'[state]\nurl = "postgresql://bant@127.0.0.1:{port}/bant"\n')
    for command in (["check"], ["status", "--json"]):
        code = main(["--config", str(config), "--log-level", "error", *command])
        out = capsys.readouterr()
        assert code != exit_codes.OK
        assert PASSWORD not in out.out + out.err
        assert f"127.0.0.1:{port}" in out.out + out.err


def test_a_password_with_url_characters_survives_the_merge(tmp_path: Path) -> None:
    """`@`, `/`, `:` and `%` in the password are escaped when merged, so the server gets it unchanged."""
    awkward = "p@ss/w:rd%41?#"
    config = write_config(tmp_path, '[state]\nurl = "postgresql://bant@db:5432/bant?sslmode=require"\n')
    settings = load_settings(str(config), environ={"BANT_SYNC_STATE__PASSWORD": awkward})
    merged = make_url(settings.state.database_url())
    assert merged.password == awkward
    assert (merged.host, merged.database, dict(merged.query)) == ("db", "bant", {"sslmode": "require"})
    assert "p@ss" not in settings.state.display_url()
