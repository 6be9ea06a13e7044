"""Signing in to the admin UI through the OIDC issuer, in Chromium.

The browser reaches the gateway as ``localhost`` and the fake issuer as ``127.0.0.1``:
two sites, so the issuer's redirect back is a cross-site navigation, as with a real
identity provider (SameSite cookies behave as they would in production).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Route, expect

from tests.fakes.oidc import FakeIssuer
from tests.inprocess import InProcessGateway, start_in_process
from tests.ui.conftest import ADMIN, WIDE, Watched, ui_config

pytestmark = pytest.mark.serial

CLIENT_ID = "gateway-ui"
SECRET = "ui-client-secret-0123456789"


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def oidc_gateway(issuer: FakeIssuer) -> Iterator[InProcessGateway]:
    config = ui_config(f"""
ui:
  oidc: {{client_id: {CLIENT_ID}, client_secret: "${{UI_OIDC_SECRET}}", name: Acme SSO}}
""").replace("auth:\n", f"""auth:
  oidc: {{enabled: true, issuer: "{issuer.issuer}", audience: [llm-gateway]}}
""", 1)
    gw = start_in_process(config, env={"GATEWAY_ADMIN_KEY": ADMIN,
                                       "UI_OIDC_SECRET": SECRET})
    issuer.register(CLIENT_ID, f"http://localhost:{gw.http_port}/ui/sign-in/oidc/callback",
                    SECRET)
    yield gw
    assert gw.stop() == 0, gw.logs()


@dataclass
class WatchedWithIssuer(Watched):
    """A :class:`Watched` context that may also visit the issuer (and nothing else)."""

    issuer: str = ""

    def route(self, route: Route) -> None:
        if route.request.url.startswith(self.issuer + "/"):
            route.continue_()
        else:
            super().route(route)


@pytest.fixture
def on_localhost(browser: Browser, oidc_gateway: InProcessGateway,
                 issuer: FakeIssuer) -> Iterator[WatchedWithIssuer]:
    origin = f"http://localhost:{oidc_gateway.http_port}"
    context = browser.new_context(viewport=WIDE, base_url=origin)
    context.set_default_timeout(10_000)
    watch = WatchedWithIssuer(context, origin, issuer=issuer.issuer)
    context.route("**/*", watch.route)
    yield watch
    context.close()
    watch.check()


def test_signing_in_through_the_issuer_then_out(
        on_localhost: WatchedWithIssuer, issuer: FakeIssuer,
        shots: Callable[..., None]) -> None:
    issuer.consent = True  # the person approves on the issuer's own page, as with a real one
    page = on_localhost.page()
    page.goto("/ui/")
    expect(page.get_by_label("Admin key")).to_be_visible()  # the key still signs in too
    shots(page, "sign-in-oidc")
    page.get_by_role("link", name="Sign in with Acme SSO").click()
    page.get_by_role("button", name="Continue as Ada Admin").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page).to_have_url(re.compile(r"^http://localhost:\d+/ui/$"))
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    authorize = next(r for r in issuer.requests if r.path == "/authorize")
    assert authorize.query["code_challenge_method"] == "S256"
    cookies = {c["name"]: c for c in on_localhost.context.cookies()}
    assert cookies["gw_ui_session"]["sameSite"] == "Strict"
    assert cookies["gw_ui_session"]["httpOnly"]
    assert "gw_ui_oidc" not in cookies  # the pending sign-in is over
    access_token = issuer.issued[-1]["access_token"]
    assert all(access_token not in c["value"] for c in cookies.values())
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tenants").click()
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto("/ui/")
    expect(page.get_by_label("Admin key")).to_be_visible()
    issuer.consent = False


def test_a_user_without_the_admin_role_is_told_so_on_the_page(
        on_localhost: WatchedWithIssuer, issuer: FakeIssuer) -> None:
    issuer.user = {"sub": "bob", "roles": ["viewer"]}
    try:
        page = on_localhost.page()
        page.goto("/ui/")
        page.get_by_role("link", name="Sign in with Acme SSO").click()
        expect(page.get_by_role("alert")).to_contain_text("does not have the role admin")
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        assert "gw_ui_session" not in {c["name"] for c in on_localhost.context.cookies()}
    finally:
        issuer.user = {"sub": "ada", "name": "Ada Admin", "roles": ["admin"]}
