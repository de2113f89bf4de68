"""Make docs/console.png: the console's connections page above the page of a run the CRM rejected rows in,
from the browser tests' setup (the sandbox CRM, the ops API on uvicorn, Debian's headless Chromium).

    .venv/bin/python -m tests.console.make_screenshot [docs/console.png]
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

from tests.console.live import CHROMIUM, TOKEN, console_server

WIDTH = 1180


def shoot(out: Path) -> None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        console_server(Path(tmp)) as console,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": WIDTH, "height": 600})
        page.goto(f"{console.url}/login")
        page.get_by_label("Ops token").fill(TOKEN)
        page.get_by_role("button", name="Log in").click()
        expect(page.locator("table.connections")).to_be_visible()
        top = page.locator("body").screenshot()
        page.goto(f"{console.url}/runs/{console.rejected_run.run_id}")
        expect(page.locator("table.rejections")).to_be_visible()
        bottom = page.locator("main").screenshot()
        browser.close()
    images = [Image.open(io.BytesIO(shot)).convert("RGB") for shot in (top, bottom)]
    gap = 12
    sheet = Image.new("RGB", (WIDTH, sum(i.height for i in images) + gap), (120, 126, 140))
    sheet.paste(images[0], (0, 0))
    sheet.paste(images[1], (0, images[0].height + gap))
    sheet = sheet.quantize(colors=128, dither=Image.Dither.NONE)
    sheet.save(out, optimize=True)


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png")
    shoot(target)
    print(f"{target}: {target.stat().st_size // 1024} KB")
