"""The console in a real browser (Debian's headless Chromium driven by Playwright) against the ops API on
uvicorn over the sandbox CRM: log in, see the connections, start a dry-run resync of one deal and watch it
finish, open a run with rejections and see the deal and the CRM's message, log out; a POST without the
session or without the CSRF token is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.console.live import CHROMIUM, REJECTED_CODE, REJECTED_MESSAGE, TOKEN, Console, console_server
from worker.state import RunRecord

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason=f"needs Debian's Chromium at {CHROMIUM}: apt-get install chromium "
    "(.ci/run installs it where it can)",
)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright: pip install -e '.[dev]'")
expect = sync_api.expect
WAIT_MS = 15_000


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    with console_server(tmp_path) as running:
        yield running


@pytest.fixture
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


def log_in(page: sync_api.Page, console: Console) -> None:
    page.goto(f"{console.url}/")
    expect(page).to_have_url(f"{console.url}/login")
    page.get_by_label("Ops token").fill(TOKEN)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{console.url}/")


def test_log_in_resync_a_deal_dry_read_rejections_log_out(
    console: Console, browser: sync_api.Browser
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    log_in(page, console)
    assert TOKEN not in page.content() and TOKEN not in page.url
    cookie = next(c for c in context.cookies() if c["name"] == "bant_console")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"

    row = page.locator("tr[data-connection=hubspot]")
    expect(row).to_contain_text("hubspot:")
    expect(row).to_contain_text("incremental every")
    expect(row).to_contain_text("healthy")
    expect(row).to_contain_text("free")

    deal = next(i for i, d in console.env.view.deals().items() if d["open"])
    page.get_by_role("link", name="Resync").click()
    expect(page.locator("input[name=run][value=dry]")).to_be_checked()
    page.locator("#connection").select_option("hubspot")
    page.get_by_label("one deal, by its CRM id:").check()
    page.locator("#deal").fill(deal)
    page.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(re.escape(console.url) + r"/runs/\w+$"))
    run_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("#plan")).to_contain_text("The dry run's plan")
    expect(page.get_by_role("button", name="Run it for real")).to_be_visible()
    record = console.env.worker.store.get_run(run_id)
    assert record is not None and record.dry_run and record.scope == deal
    assert record.connection == "hubspot" and record.counts["deals_read"] == 1

    page.get_by_role("link", name="Runs", exact=True).click()
    rejected = console.rejected_run.run_id
    page.locator(f'a[href$="/runs/{rejected}#rejections"]').click()
    table = page.locator("table.rejections")
    for rejection in console.rejected_run.rejections:
        deal_link = table.locator(f'a[href$="/record/0-3/{rejection["deal_id"]}"]')
        expect(deal_link).to_have_count(1)
    expect(table).to_contain_text(REJECTED_CODE)
    expect(table).to_contain_text(REJECTED_MESSAGE)
    expect(table.locator("tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{console.url}/login")
    page.goto(f"{console.url}/runs")
    expect(page).to_have_url(f"{console.url}/login")
    assert not errors, errors
    context.close()


def test_a_post_without_the_session_or_the_csrf_token_is_refused(
    console: Console, browser: sync_api.Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    form = {"connection": "hubspot", "target": "connection", "run": "dry"}
    anonymous = page.request.post(f"{console.url}/actions/resync", form=form, max_redirects=0)
    assert anonymous.status == 303 and anonymous.headers["location"] == "/ui/login"
    script = page.request.post(
        f"{console.url}/actions/resync", form=form, headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert script.status == 401
    log_in(page, console)
    forged = page.request.post(f"{console.url}/actions/resync", form=form, max_redirects=0)
    assert forged.status == 403
    wrong = page.request.post(f"{console.url}/actions/resync", form={**form, "csrf": "x"}, max_redirects=0)
    assert wrong.status == 403
    runs = console.env.worker.store.list_runs("hubspot")
    assert [r.run_id for r in runs] == [console.rejected_run.run_id], "no refused POST started a run"
    context.close()


def test_a_running_run_moves_live_and_the_page_follows_it_to_its_end(
    console: Console, browser: sync_api.Browser
) -> None:
    """The script polls: the connections page shows a run that starts after it loaded, a run's page moves
    its progress at each checkpoint (deals read of the total the last full sweep read, the time left) and
    shows the outcome once the run ends."""
    store, now = console.env.worker.store, console.env.time.now()
    total = console.rejected_run.deals["read"]
    page = browser.new_page()
    log_in(page, console)
    expect(page.locator("tr.running-row")).to_have_count(0)
    lease = store.acquire_lease("hubspot", "run-live", now, timedelta(minutes=5))
    store.start_run(RunRecord("run-live", "hubspot", "schedule", "full", now - timedelta(seconds=60)))
    store.checkpoint(lease, None, [], [], {"deals_read": 20})
    running = page.locator("tr.running-row")
    expect(running).to_contain_text("run-live", timeout=WAIT_MS)
    expect(running).to_contain_text(f"20 deals read of ~{total}")
    expect(page.locator("tr[data-connection=hubspot]")).to_contain_text("run-live")

    page.get_by_role("link", name="run-live").first.click()
    progress = page.locator("[data-live-run=run-live] [data-field=text]")
    expect(progress).to_contain_text(f"20 deals read of ~{total}")
    expect(progress).to_contain_text("left")
    store.checkpoint(lease, None, [], [], {"deals_read": 60, "deals_written": 4})
    expect(progress).to_contain_text(f"60 deals read of ~{total}, 4 written", timeout=WAIT_MS)
    bar = page.locator("[data-live-run=run-live] progress")
    expect(bar).to_have_attribute("value", str(round(60 / total * 100, 1)))

    store.finish_run("run-live", console.env.time.now(), "succeeded", {"deals_read": total}, 9, None)
    store.release_lease(lease)
    expect(page.locator("h1 .badge")).to_have_text("succeeded", timeout=WAIT_MS)
    expect(page.locator("table.counts")).to_contain_text(f"read {total}")
    page.close()
