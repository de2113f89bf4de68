"""The console over a real state store and a fake CRM, through the ops API app `serve` runs: the login
and its cookie, the refusals (no session, no CSRF token, a wrong token, too many tries), session expiry,
what each page shows, and the resync action (dry run first, then for real)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from structlog.testing import capture_logs

from connectors.model import Owner
from connectors.protocol import Connector
from rules import Status
from tests.unit.serve_support import T0, TOKEN, TTL, FakeWorker, connection, make_worker, reset_structlog
from worker.serve.console import app as console_module
from worker.serve.console import console_app
from worker.serve.console.app import COOKIE
from worker.serve.console.sessions import MAX_LOGIN_FAILURES
from worker.serve.console.views import LINK_RETRY_SECONDS, DealLinks, Progress, progress_of
from worker.serve.ops_api import RunLauncher, create_app
from worker.serve.ops_server import server_config
from worker.state import Rejection, RunRecord
from worker.state.model import DealState

LIMIT = 4096
PAGES = ("/ui/", "/ui/runs", "/ui/deals", "/ui/actions")

default_structlog = pytest.fixture(autouse=True)(reset_structlog)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FakeWorker]:
    w = make_worker(tmp_path, connection("main"), connection("off", enabled=False))
    yield w
    w.close()


def _client(worker: FakeWorker, base_url: str = "https://127.0.0.1") -> TestClient:
    return TestClient(create_app(worker, TOKEN, LIMIT), base_url=base_url, follow_redirects=False)


@pytest.fixture
def client(worker: FakeWorker) -> Iterator[TestClient]:
    with _client(worker) as test_client:
        yield test_client
    launcher(test_client).join(10)


def launcher(client: TestClient) -> RunLauncher:
    found: RunLauncher = client.app.state.launcher  # type: ignore[attr-defined]
    return found


def login(client: TestClient) -> str:
    """Log in; the session's CSRF token (read from a page, as the browser's forms carry it)."""
    response = client.post("/ui/login", data={"token": TOKEN})
    assert response.status_code == 303 and response.headers["location"] == "/ui/"
    return csrf_of(client.get("/ui/").text)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_pages_without_a_session_go_to_the_login_and_reads_answer_401(client: TestClient) -> None:
    for path in (*PAGES, "/ui/runs/r1"):
        response = client.get(path)
        assert (response.status_code, response.headers["location"]) == (303, "/ui/login"), path
    for path in ("/ui/api/running", "/ui/api/runs/r1"):
        response = client.get(path)
        assert response.status_code == 401 and "log in" in response.json()["error"], path
    xhr = client.get("/ui/runs", headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 401 and xhr.headers["content-type"] == "application/json"


def test_unknown_pages_and_methods_are_the_console_s_error_page(client: TestClient) -> None:
    missing = client.get("/ui/nowhere")
    assert missing.status_code == 404 and "no page &#39;/ui/nowhere&#39; in the console" in missing.text
    assert missing.headers["content-type"].startswith("text/html")
    assert "content-security-policy" in missing.headers
    wrong = client.get("/ui/logout")
    assert wrong.status_code == 405 and "POST" in wrong.headers["allow"]
    script = client.get("/ui/api/nowhere")
    assert script.status_code == 404 and set(script.json()) == {"error", "kind", "problems", "hint"}


def test_the_bearer_token_does_not_open_the_console_nor_the_console_the_api(client: TestClient) -> None:
    """/ui takes sessions only; the rest of the ops API still takes the bearer header only."""
    assert client.get("/ui/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 303
    assert client.get("/ui/login").status_code == 200, "the login page needs no bearer token"
    login(client)
    assert client.get("/runs").status_code == 401, "a console session is not an API credential"
    assert client.get("/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_login_sets_a_strict_http_only_session_cookie_secure_over_tls(worker: FakeWorker) -> None:
    with _client(worker, "https://127.0.0.1") as tls:
        cookie = tls.post("/ui/login", data={"token": TOKEN}).headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "secure", "path"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/ui" in cookie.lower()
    assert "max-age" not in attributes and "expires" not in attributes, "a browser-session cookie"
    with _client(worker, "http://127.0.0.1") as plain:
        cookie = plain.post("/ui/login", data={"token": TOKEN}).headers["set-cookie"]
    assert "secure" not in cookie.lower(), "no Secure flag over plain HTTP (the cookie would never return)"
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()


@pytest.mark.parametrize(("peer", "secure"), [("127.0.0.1", True), ("10.0.0.9", False)])
def test_a_trusted_proxy_s_forwarded_tls_makes_the_cookie_secure(
    worker: FakeWorker, monkeypatch: pytest.MonkeyPatch, peer: str, secure: bool
) -> None:
    """As `serve` runs it (uvicorn with serve's settings), X-Forwarded-Proto counts only from a trusted
    proxy (FORWARDED_ALLOW_IPS, loopback by default)."""
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    config = server_config(create_app(worker, TOKEN, LIMIT), "127.0.0.1", 0)
    config.load()
    with TestClient(config.loaded_app, base_url="http://127.0.0.1", client=(peer, 40000)) as client:
        response = client.post(
            "/ui/login",
            data={"token": TOKEN},
            headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"},
            follow_redirects=False,
        )
    assert response.status_code == 303
    assert ("secure" in response.headers["set-cookie"].lower()) is secure


def test_a_wrong_token_is_refused_without_echo_or_log(
    worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console_module, "LOGIN_DELAY_SECONDS", 0)
    client = _client(worker)
    wrong = "not-the-token-but-long-enough-0123456789"
    with capture_logs() as logs:
        response = client.post("/ui/login", data={"token": wrong})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert wrong not in response.text and TOKEN not in response.text
    assert "not the ops token" in response.text
    assert logs and all(wrong not in str(e) and TOKEN not in str(e) for e in logs)
    assert client.get("/ui/").status_code == 303


def test_a_client_is_locked_out_after_repeated_failures(worker: FakeWorker) -> None:
    clock = Clock()
    with console_client(worker, clock) as client:
        for _ in range(MAX_LOGIN_FAILURES):
            assert client.post("/ui/login", data={"token": "wrong"}).status_code == 401
        locked = client.post("/ui/login", data={"token": TOKEN})
        assert locked.status_code == 429 and "too many failed logins" in locked.text
        assert "set-cookie" not in locked.headers, "not even the right token gets in while locked"
        clock.now += 301
        assert client.post("/ui/login", data={"token": TOKEN}).status_code == 303


def test_the_token_never_appears_in_a_page_or_a_url(client: TestClient) -> None:
    login_page = client.get("/ui/login").text
    assert 'method="post"' in login_page and 'type="password"' in login_page
    with capture_logs() as logs:
        login(client)
        for path in (*PAGES, "/ui/api/running"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert TOKEN not in response.text, path
    assert all(TOKEN not in str(e) for e in logs)
    query = client.get("/ui/login?token=" + TOKEN)
    assert query.status_code == 400, "a token in a URL is refused (BearerAuth's query check covers /ui)"


def test_every_answer_forbids_framing_caching_and_foreign_scripts(client: TestClient) -> None:
    for response in (client.get("/ui/login"), client.get("/ui/")):
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"


def test_a_post_needs_a_session_then_its_csrf_token(client: TestClient, worker: FakeWorker) -> None:
    form = {"connection": "main", "target": "connection", "run": "dry"}
    no_session = client.post("/ui/actions/resync", data=form)
    assert (no_session.status_code, no_session.headers["location"]) == (303, "/ui/login")
    xhr = client.post("/ui/actions/resync", data=form, headers={"X-Requested-With": "XMLHttpRequest"})
    assert xhr.status_code == 401
    csrf = login(client)
    assert client.post("/ui/actions/resync", data=form).status_code == 403
    assert client.post("/ui/actions/resync", data={**form, "csrf": "forged"}).status_code == 403
    other = _client(worker)
    other_csrf = login(other)
    assert client.post("/ui/actions/resync", data={**form, "csrf": other_csrf}).status_code == 403, (
        "another session's token does not do"
    )
    assert client.post("/ui/logout", data={}).status_code == 403
    assert worker.store.list_runs("main") == [], "no refused POST started a run"
    header = client.post("/ui/actions/resync", data=form, headers={"X-CSRF-Token": csrf})
    assert header.status_code == 303, "the header carries the token as well as the field"
    launcher(client).join(10)


def test_logout_ends_the_session_for_good(client: TestClient) -> None:
    csrf = login(client)
    session_id = client.cookies.get(COOKIE)
    assert session_id
    response = client.post("/ui/logout", data={"csrf": csrf})
    assert (response.status_code, response.headers["location"]) == (303, "/ui/login")
    assert COOKIE in response.headers["set-cookie"] and "max-age=0" in response.headers["set-cookie"].lower()
    client.cookies.set(COOKIE, session_id, path="/ui")
    assert client.get("/ui/").status_code == 303, "the old cookie no longer opens anything"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def console_client(worker: FakeWorker, clock: Clock) -> TestClient:
    console = console_app(worker, RunLauncher(worker), TOKEN, LIMIT, clock=clock, login_delay=0)
    app = Starlette(routes=[Mount("/ui", app=console)])
    return TestClient(app, base_url="https://127.0.0.1", follow_redirects=False)


def test_a_session_expires_after_session_minutes_without_a_request(worker: FakeWorker) -> None:
    clock = Clock()
    idle = worker.settings.ops_api.session_minutes * 60
    with console_client(worker, clock) as client:
        login(client)
        clock.now += idle - 1
        assert client.get("/ui/").status_code == 200
        clock.now += idle - 1
        assert client.get("/ui/runs").status_code == 200, "each request restarts the idle clock"
        clock.now += idle
        assert client.get("/ui/").status_code == 303
        assert client.get("/ui/api/running").status_code == 401


def _finish(worker: FakeWorker, run_id: str, status: str, minutes: int) -> None:
    at = T0 + timedelta(minutes=minutes)
    worker.store.start_run(RunRecord(run_id, "main", "schedule", "incremental", at))
    worker.store.finish_run(
        run_id, at + timedelta(minutes=1), status, {}, 2, None if status == "succeeded" else "no"
    )


def test_connections_show_account_schedule_runs_lease_and_health(
    client: TestClient, worker: FakeWorker
) -> None:
    login(client)
    assert "no runs yet" in text(client.get("/ui/").text)
    worker.store.record_identity("main", "fake", "fake:acme", T0)
    _finish(worker, "run-ok", "succeeded", 0)
    assert "healthy" in text(client.get("/ui/").text)
    _finish(worker, "run-bad1", "failed", 10)
    _finish(worker, "run-bad2", "failed", 20)
    page = text(client.get("/ui/").text)
    assert "last runs failed 2 in a row" in page, "below the degraded threshold (3): a warning"
    _finish(worker, "run-bad3", "failed", 30)
    lease = worker.store.acquire_lease("main", "run-now", T0, TTL)
    worker.store.start_run(RunRecord("run-now", "main", "http", "full", T0 + timedelta(minutes=40)))
    page = text(client.get("/ui/").text)
    assert "fake:acme" in page
    assert "incremental every 15 min" in page and "0 2 * * *" in page
    assert "failing the latest 3 runs failed" in page, "degraded, as /health says, with its reason"
    assert "run-now" in page, "the lease holder and the running run"
    assert "2026-11-27 09:01:00 UTC" in page, "the last success"
    assert "off" in page and "disabled" in page
    worker.store.release_lease(lease)


def test_a_run_page_names_the_rejected_deals_with_links_and_the_crm_s_words(
    client: TestClient, worker: FakeWorker
) -> None:
    worker.store.start_run(RunRecord("run-r", "main", "cli", "full", T0))
    lease = worker.store.acquire_lease("main", "run-r", T0, TTL)
    state = DealState("006B", "u1", Status.NEEDS_QUALIFICATION, ("budget",), T0, deal_name="Acme <renewal>")
    refused = [
        Rejection(
            "006B", "status", "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Close Date must be in the future", T0
        ),
        Rejection("006A", "task_create", "INVALID_CROSS_REFERENCE_KEY", "owner is inactive", T0),
    ]
    worker.store.checkpoint(lease, None, [], [state], {"deals_read": 5, "deals_rejected": 1}, refused[:1])
    worker.store.finish_run(
        "run-r", T0 + timedelta(seconds=95), "succeeded", {"deals_read": 5}, 7, None, refused[1:]
    )
    worker.store.release_lease(lease)
    login(client)
    html = client.get("/ui/runs/run-r").text
    assert 'href="https://crm.invalid/deals/006B"' in html and 'href="https://crm.invalid/deals/006A"' in html
    assert "Acme &lt;renewal&gt;" in html, "the deal's name, escaped"
    page = text(html)
    for words in (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "Close Date must be in the future",
        "owner is inactive",
    ):
        assert words in page
    assert "1 min 35 s" in page and "API calls 7" in page
    listing = text(client.get("/ui/runs").text)
    assert "run-r" in listing
    assert client.get("/ui/runs/run-unknown").status_code == 404


def test_deals_by_status_and_compliance_per_owner_by_name(client: TestClient, worker: FakeWorker) -> None:
    worker.store.replace_owners("main", [Owner("u1", "Ada Lovelace", "ada@example.com", None, True)], T0)
    lease = worker.store.acquire_lease("main", "run-s", T0, TTL)
    states = [
        DealState("d1", "u1", Status.QUALIFIED, (), T0),
        DealState("d2", "u1", Status.NEEDS_QUALIFICATION, ("budget",), T0),
        DealState("d3", "u1", Status.QUALIFIED, (), T0),
        DealState("d4", "u1", Status.QUALIFIED, (), T0),
    ]
    worker.store.checkpoint(lease, None, [], states, {})
    worker.store.release_lease(lease)
    login(client)
    page = text(client.get("/ui/deals").text)
    assert re.search(r"qualified 3 needs qualification 1", page), page
    assert re.search(r"Ada Lovelace ada@example.com 4 3 1 0 75%", page), page
    assert client.get("/ui/deals?connection=nope").status_code == 404


def test_a_dry_run_first_then_for_real(client: TestClient, worker: FakeWorker) -> None:
    csrf = login(client)
    actions = client.get("/ui/actions").text
    assert re.search(r'name="run" value="dry" checked', actions), "a dry run is the default choice"
    response = client.post(
        "/ui/actions/resync", data={"csrf": csrf, "connection": "main", "target": "deal", "deal": "D-1"}
    )
    assert response.status_code == 303
    run_id = response.headers["location"].rsplit("/", 1)[1]
    launcher(client).join(10)
    record = worker.store.get_run(run_id)
    assert record is not None and record.dry_run and record.mode == "deal" and record.scope == "D-1"
    page = client.get(f"/ui/runs/{run_id}").text
    assert "The dry run's plan" in page and "Run it for real" in page
    again = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.split('id="plan"')[1]))
    assert again == {"csrf": csrf, "connection": "main", "target": "deal", "deal": "D-1", "run": "real"}
    real = client.post("/ui/actions/resync", data=again)
    assert real.status_code == 303
    launcher(client).join(10)
    real_run = worker.store.get_run(real.headers["location"].rsplit("/", 1)[1])
    assert real_run is not None and not real_run.dry_run and real_run.scope == "D-1"
    assert "Run it for real" not in client.get(f"/ui/runs/{real_run.run_id}").text


def test_resync_refusals_show_the_form_again_with_the_reason(client: TestClient, worker: FakeWorker) -> None:
    csrf = login(client)
    unknown = client.post("/ui/actions/resync", data={"csrf": csrf, "connection": "nope"})
    assert unknown.status_code == 404 and "no connection named" in unknown.text
    disabled = client.post("/ui/actions/resync", data={"csrf": csrf, "connection": "off"})
    assert disabled.status_code == 422 and "disabled" in disabled.text
    empty_deal = client.post(
        "/ui/actions/resync", data={"csrf": csrf, "connection": "main", "target": "deal"}
    )
    assert empty_deal.status_code == 422
    assert 'value="deal" checked' in empty_deal.text, "the choices are kept"
    lease = worker.store.acquire_lease("main", "run-busy", T0, TTL)
    held = client.post("/ui/actions/resync", data={"csrf": csrf, "connection": "main"})
    assert held.status_code == 409 and 'href="/ui/runs/run-busy"' in held.text
    worker.store.release_lease(lease)
    assert worker.store.list_runs("main") == []


def test_live_reads_give_progress_of_a_running_run(client: TestClient, worker: FakeWorker) -> None:
    worker.store.start_run(RunRecord("run-full1", "main", "schedule", "full", T0 - timedelta(days=1)))
    worker.store.finish_run("run-full1", T0 - timedelta(days=1), "succeeded", {"deals_read": 400}, 9, None)
    lease = worker.store.acquire_lease("main", "run-live", T0, TTL)
    worker.store.start_run(RunRecord("run-live", "main", "schedule", "full", T0 - timedelta(minutes=2)))
    worker.store.checkpoint(lease, None, [], [], {"deals_read": 100, "deals_written": 10})
    login(client)
    body = client.get("/ui/api/runs/run-live").json()
    assert body["finished"] is False and body["status"] == "running"
    assert body["progress"] == {
        "read": 100,
        "written": 10,
        "elapsed_seconds": 120.0,
        "per_minute": 50.0,
        "total": 400,
        "total_basis": "the last full sweep read 400 deals",
        "fraction": 0.25,
        "eta_seconds": 360,
    }
    running = client.get("/ui/api/running").json()["connections"]
    assert [r["run_id"] for r in running["main"]["running"]] == ["run-live"]
    assert running["main"]["lease_holder"] == "run-live"
    page = text(client.get("/ui/runs/run-live").text)
    assert "100 deals read of ~400" in page and "about 6 min 00 s left" in page
    assert client.get("/ui/api/runs/nope").status_code == 404
    worker.store.release_lease(lease)


def test_progress_without_a_total_has_a_rate_and_no_time_left(worker: FakeWorker) -> None:
    record = RunRecord("r", "main", "schedule", "incremental", T0, counts={"deals_read": 30})
    progress = progress_of(worker, record, T0 + timedelta(seconds=60))
    assert (progress.total, progress.per_minute, progress.eta_seconds) == (None, 30.0, None)
    one = progress_of(worker, RunRecord("r", "main", "cli", "deal", T0, scope="d"), T0)
    assert (one.total, one.fraction, one.per_minute) == (1, 0.0, None)
    assert Progress(5, 0, 10.0, 4, "x").eta_seconds is None, "past the estimate: no negative time left"


def test_deal_links_make_one_connector_per_connection_and_survive_a_crm_that_is_down(
    worker: FakeWorker, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[str] = []
    real = worker.connector

    def connector(name: str) -> Connector:
        made.append(name)
        if len(made) == 1:
            raise ConnectionError("CRM down")
        return real(name)

    monkeypatch.setattr(worker, "connector", connector)
    clock = Clock()
    links = DealLinks(worker, clock)
    assert links.url("main", "d1") is None, "no link while the CRM cannot be reached"
    assert links.url("main", "d2") is None and made == ["main"], "not retried at once"
    clock.now += LINK_RETRY_SECONDS
    assert links.url("main", "d3") == "https://crm.invalid/deals/d3"
    assert links.url("main", "d4") == "https://crm.invalid/deals/d4"
    assert made == ["main", "main"], "one connector, kept for every later link"
    links.close()
