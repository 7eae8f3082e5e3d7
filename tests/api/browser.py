"""Debian's Chromium driven by Playwright, for the dashboard's browser tests and its bench.

Never a downloaded browser (`playwright install` is not used): /usr/bin/chromium, installed
by scripts/bootstrap --dev. Screenshots go to tests/artefacts/ (not committed) for a person
to look at, at a phone's size and an office PC's.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from tests.gateway.support import BIDAO

# A page condition is waited for, not timed: this bounds a wait only when something is
# broken (Playwright's 5 s default failed a passing story on a loaded machine).
expect.set_options(timeout=60_000)

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1366, "height": 768}
FAST_HASH = {"BIDAO_HTTP__PASSWORD_TIME_COST": "1", "BIDAO_HTTP__PASSWORD_MEMORY_KIB": "8"}
PASSWORD = "qiaoyuan-2026"


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium that fetches nothing by itself."""
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def add_user(data_dir: Path, login: str, role: str, *options: str) -> None:
    """`bidao user add` with a password on standard input, as the administrator runs it."""
    env = {**os.environ, **FAST_HASH}

    def run() -> None:
        done = subprocess.run(
            [str(BIDAO), "user", "add", login, "--role", role, *options, "--password-stdin"],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
            env={**env, "BIDAO_DATA_DIR": str(data_dir)},
        )
        assert done.returncode == 0, done.stderr

    await asyncio.to_thread(run)


async def sign_in(page: Page, base: str, login: str) -> None:
    """Open the site, get the sign-in form, sign in."""
    await page.goto(f"{base}/")
    await page.get_by_label("用户名").fill(login)
    await page.get_by_label("密码").fill(PASSWORD)
    await page.get_by_role("button", name="登录").click()


async def shot(page: Page, name: str) -> Path:
    """A full-page screenshot under tests/artefacts/."""
    ARTEFACTS.mkdir(exist_ok=True)
    path = ARTEFACTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
