"""Browser tests of the admin UI: Debian's Chromium (``/usr/bin/chromium``) driven by
Playwright's Python package, headless, against gateways served in this process.

No browser is ever downloaded: Playwright launches the system's Chromium (``bash
scripts/test.sh`` installs it with apt). A missing Chromium fails these tests, never skips
them. Every page a test opens is watched: a request to any origin but the gateway's is
refused and recorded, and so is every console error and uncaught script error; the test
fails on either (:class:`Watched`).

``UPDATE_UI_SCREENSHOTS=1`` saves the screenshots the tests take into ``docs/ui/``;
without it they go to the test's temporary directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    Route,
    expect,
    sync_playwright,
)

from tests.conftest import ROOT
from tests.inprocess import InProcessGateway, start_in_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN = "adm-ui-test-key-0123456789"
WIDE = {"width": 1280, "height": 900}
NARROW = {"width": 400, "height": 860}


def ui_config(extra: str = "", providers: str = "") -> str:
    """Auth on, the mock provider behind ``mock-1`` and ``mock-2``, and ``down``: a
    deployment whose upstream refuses connections, behind ``down-1``, whose breaker opens
    after two failures. ``providers``: more lines under ``providers:``; ``extra``: after
    the model list (more models, or more top-level keys)."""
    return f"""
auth:
  api_keys: {{enabled: true}}
circuit_breaker: {{consecutive_failures: 2, min_requests: 2, open_timeout: 300s}}
retry: {{attempts: 1}}
providers:
  mock: {{type: mock, models: [echo]}}
  down: {{type: openai_compatible, base_url: "http://127.0.0.1:9/v1", models: [gone]}}
{providers}
models:
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
  - name: mock-2
    targets: [{{provider: mock, model: echo}}]
  - name: down-1
    targets: [{{provider: down, model: gone}}]
{extra}"""


# Module-scoped, not session-scoped: while Playwright's sync API is started, asyncio sees
# a loop running in this thread, and the async tests that a worker runs next could not
# start their own. pytest ends a module's fixtures before it goes on to another module.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run `bash scripts/test.sh`, which installs "
                    "Debian's chromium", pytrace=False)
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                         args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def ui_gateway() -> Iterator[InProcessGateway]:
    """One gateway for a module's tests, with the UI on and an admin key."""
    gw = start_in_process(ui_config(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    yield gw
    assert gw.stop() == 0, gw.logs()


@dataclass
class Watched:
    """A browser context on one gateway, and what its pages did that they must not: ask
    another origin for anything, log a console error, throw."""

    context: BrowserContext
    origin: str
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def page(self) -> Page:
        page = self.context.new_page()
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        return page

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} at {message.location}")

    def route(self, route: Route) -> None:
        url = route.request.url
        if url == self.origin or url.startswith(self.origin + "/"):
            route.continue_()
        else:
            self.foreign.append(url)
            route.abort()

    def check(self) -> None:
        assert not self.foreign, f"requests left the gateway's origin: {self.foreign}"
        assert not self.errors, f"errors in the browser: {self.errors}"


@pytest.fixture
def watched(browser: Browser, ui_gateway: InProcessGateway) -> Iterator[Callable[..., Watched]]:
    """``watched(viewport=WIDE)``: a fresh browser context (its own cookies) on the
    module's gateway; each is checked and closed when the test ends."""
    made: list[Watched] = []

    def make(viewport: dict[str, int] = WIDE, gateway: InProcessGateway | None = None
             ) -> Watched:
        gw = gateway or ui_gateway
        context = browser.new_context(viewport=viewport, base_url=gw.http_url)
        context.set_default_timeout(10_000)
        watch = Watched(context, gw.http_url)
        context.route("**/*", watch.route)
        made.append(watch)
        return watch

    yield make
    for watch in made:
        watch.context.close()
    for watch in made:
        watch.check()


def sign_in(page: Page, key: str = ADMIN, path: str = "/ui/") -> None:
    """Open ``path``, which shows the sign-in form, and sign in with ``key``."""
    page.goto(path)
    page.get_by_label("Admin key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def signed_in(watch: Watched, path: str = "/ui/") -> Page:
    page = watch.page()
    sign_in(page, path=path)
    page.get_by_role("button", name="Sign out").wait_for()
    return page


# Every input, select and textarea has a label; every button and link has a name.
UNLABELLED = """() => [...document.querySelectorAll(
    'input:not([type=hidden]), select, textarea, button, a[href]')].filter(el => {
      if (el.matches('input, select, textarea')) {
        return !(el.labels && el.labels.length) && !el.getAttribute('aria-label');
      }
      return !(el.getAttribute('aria-label') || el.textContent.trim());
    }).map(el => el.outerHTML)"""
# The page is no wider than the window (no sideways scrolling but inside table regions).
OVERFLOW = "() => document.documentElement.scrollWidth - window.innerWidth"


def check_labelled_and_fitting(page: Page, paths: Sequence[str],
                               viewport: dict[str, int] | None) -> None:
    """Each of ``paths``: every control labelled, no sideways scrolling, the navigation."""
    for path in paths:
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate(OVERFLOW) <= 0, (path, viewport)
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def admin_api(gw: InProcessGateway, method: str, path: str,
              body: object = None) -> httpx.Response:
    return httpx.request(method, gw.http_url + "/admin" + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {ADMIN}"})


@pytest.fixture
def shots(tmp_path: Path) -> Callable[[Page, str], None]:
    """``shots(page, name)``: a full-page PNG of ``page``, into docs/ui/ when
    UPDATE_UI_SCREENSHOTS=1 (the screenshots docs/ui.md shows)."""
    folder = ROOT / "docs" / "ui" if os.environ.get("UPDATE_UI_SCREENSHOTS") == "1" else (
        tmp_path)
    folder.mkdir(parents=True, exist_ok=True)

    def take(page: Page, name: str) -> None:
        assert re.fullmatch(r"[a-z0-9-]+", name)
        page.screenshot(path=str(folder / f"{name}.png"), full_page=True)

    return take


