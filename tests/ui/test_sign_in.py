"""Signing in and out of the admin UI, sessions, CSRF and the security headers, in
Chromium against a real in-process gateway."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import expect

from tests.inprocess import InProcessGateway
from tests.ui.conftest import (
    ADMIN,
    NARROW,
    Watched,
    admin_api,
    sign_in,
    signed_in,
    ui_config,
)

# A browser loads the machine: scripts/test.sh runs these alone, after the rest.
pytestmark = pytest.mark.serial

Watch = Callable[..., Watched]


def tenant_key(gw: InProcessGateway) -> str:
    tenant = admin_api(gw, "POST", "/tenants", {"name": "signs-in-not"}).json()["tenant"]
    return str(admin_api(gw, "POST", f"/tenants/{tenant['id']}/keys", {}).json()["secret"])


def test_signed_out_a_deep_link_shows_the_sign_in_form_then_the_page(
        watched: Watch, shots: Callable[..., None]) -> None:
    watch = watched()
    page = watch.page()
    response = page.goto("/ui/tenants")
    assert response is not None and response.status == 200  # a 4xx is a console error
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_have_count(0)
    shots(page, "sign-in")
    page.get_by_label("Admin key").fill(ADMIN)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/tenants$"))
    expect(page.get_by_role("heading", name="Tenants")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    page.goto("/ui/sign-in")  # signed in already: the overview
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_a_tenant_key_and_a_wrong_key_are_refused_on_the_page(
        watched: Watch, ui_gateway: InProcessGateway) -> None:
    page = watched().page()
    for key, words in ((tenant_key(ui_gateway), "not an admin key"),
                       ("sk-not-a-key-at-all", "not a valid admin key")):
        sign_in(page, key)
        expect(page.get_by_role("alert")).to_contain_text(words)
        expect(page.get_by_label("Admin key")).to_be_visible()
        expect(page.get_by_role("button", name="Sign out")).to_have_count(0)
        assert not [c for c in page.context.cookies() if c["name"] == "gw_ui_session"]


def test_the_session_lives_in_an_http_only_cookie_without_the_key(watched: Watch) -> None:
    watch = watched()
    page = signed_in(watch)
    cookies = watch.context.cookies()
    session = [c for c in cookies if c["name"] == "gw_ui_session"]
    assert len(session) == 1
    assert session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert session[0]["path"] == "/ui" and not session[0]["secure"]  # plain HTTP here
    assert session[0]["expires"] > 0  # expires (8 h idle), not a browser-session cookie
    assert all(ADMIN not in c["value"] for c in cookies)
    storage = page.evaluate("() => JSON.stringify([document.cookie, {...localStorage}, "
                            "{...sessionStorage}])")
    assert ADMIN not in storage and "gw_ui_session" not in storage
    # Each page sets the cookie again: it expires 8 h after the last request, as the session.
    again = page.request.get("/ui/tenants").headers["set-cookie"]
    assert f"gw_ui_session={session[0]['value']}; Path=/ui; Max-Age=28800; HttpOnly" in again


def test_signing_out_ends_the_session_on_the_server(watched: Watch,
                                                    ui_gateway: InProcessGateway) -> None:
    watch = watched()
    page = signed_in(watch)
    session = next(c["value"] for c in watch.context.cookies()
                   if c["name"] == "gw_ui_session")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_contain_text("signed out")
    expect(page.get_by_label("Admin key")).to_be_visible()
    # The old session id is worth nothing now, even to a client that kept it.
    r = httpx.get(ui_gateway.http_url + "/ui/tenants", cookies={"gw_ui_session": session})
    assert r.status_code == 200 and "Admin key" in r.text and "Sign out" not in r.text


def test_a_post_without_the_session_csrf_token_is_refused(
        watched: Watch, ui_gateway: InProcessGateway) -> None:
    watch = watched()
    page = signed_in(watch)
    before = admin_api(ui_gateway, "GET", "/tenants").json()["tenants"]
    token = page.locator("input[name=csrf_token]").first.input_value()
    # The browser's own cookies, a form without the token, with a wrong one, and with
    # the right one from another site: each refused, and nothing changes.
    for form, headers in (({"name": "csrf-less"}, {}),
                          ({"name": "csrf-wrong", "csrf_token": "x" * 43}, {}),
                          ({"name": "cross", "csrf_token": token},
                           {"Sec-Fetch-Site": "cross-site"})):
        r = page.request.post("/ui/tenants/new", form=form, headers=headers,
                              max_redirects=0)
        assert r.status == 403, (form, r.status)
        assert "CSRF" in r.text()
    r = page.request.post("/ui/sign-out", form={}, max_redirects=0)
    assert r.status == 403
    assert admin_api(ui_gateway, "GET", "/tenants").json()["tenants"] == before
    # The sign-in form's own token (double submitted) is checked too.
    r = httpx.post(ui_gateway.http_url + "/ui/sign-in", data={"admin_key": ADMIN})
    assert r.status_code == 403 and "gw_ui_session" not in r.headers.get("set-cookie", "")
    # With the token, the same request goes through.
    r = page.request.post("/ui/tenants/new", form={"name": "csrf-ok", "csrf_token": token},
                          max_redirects=0)
    assert r.status == 303


def test_every_ui_answer_carries_the_security_headers(watched: Watch,
                                                      ui_gateway: InProcessGateway) -> None:
    watch = watched()
    page = watch.page()
    seen: list[tuple[str, dict[str, str]]] = []
    page.on("response", lambda r: seen.append((r.url, r.all_headers())))
    sign_in(page)
    page.get_by_role("button", name="Sign out").wait_for()
    missing = page.request.get("/ui/no-such-page")
    assert missing.status == 404 and "Not found" in missing.text()
    seen.append(("/ui/no-such-page", missing.headers))
    with httpx.Client(base_url=ui_gateway.http_url) as plain:
        for path in ("/ui", "/ui/", "/ui/static/ui.css", "/ui/static/ui.js",
                     "/ui/static/nope"):
            r = plain.get(path)
            seen.append((path, {k.lower(): v for k, v in r.headers.items()}))
        etag = plain.get("/ui/static/ui.css").headers["etag"]
        r = plain.get("/ui/static/ui.css", headers={"If-None-Match": etag})
        assert r.status_code == 304
        seen.append(("304 /ui/static/ui.css", {k.lower(): v for k, v in r.headers.items()}))
        r = plain.put("/ui/tenants")  # a method no /ui route takes
        seen.append(("PUT /ui/tenants", {k.lower(): v for k, v in r.headers.items()}))
    assert len(seen) >= 10
    for url, headers in seen:
        csp = headers.get("content-security-policy", "")
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, url
        assert "unsafe-inline" not in csp and "script-src 'self'" in csp, url
        assert headers.get("x-frame-options") == "DENY", url
        assert headers.get("referrer-policy") == "no-referrer", url
        assert headers.get("x-content-type-options") == "nosniff", url
    pages = [(url, h) for url, h in seen if h.get("content-type", "").startswith("text/html")]
    assert pages
    for url, headers in pages:
        assert headers.get("cache-control") == "no-store", url


def test_keyboard_alone_signs_in_and_reaches_every_page(watched: Watch) -> None:
    page = watched(viewport=NARROW).page()
    page.goto("/ui/")
    expect(page.get_by_label("Admin key")).to_be_focused()  # autofocus
    page.keyboard.type(ADMIN)
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    for name in ("Tenants", "Request log", "Providers", "Overview"):
        page.keyboard.press("Tab")  # from the top of a new page: the skip link first
        expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
        link = page.get_by_role("navigation", name="Main").get_by_role("link", name=name)
        for _ in range(12):
            if link.evaluate("el => el === document.activeElement"):
                break
            page.keyboard.press("Tab")
        expect(link).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.get_by_role("navigation", name="Main").get_by_role(
            "link", name=name)).to_have_attribute("aria-current", "page")


def test_the_session_cookie_is_secure_behind_tls(gateway_factory: Callable[..., InProcessGateway]
                                                 ) -> None:
    trusted = gateway_factory(ui_config("server: {trusted_proxy_cidrs: [127.0.0.1/32]}"),
                              env={"GATEWAY_ADMIN_KEY": ADMIN})
    untrusted = gateway_factory(ui_config(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    for gw, secure in ((trusted, True), (untrusted, False)):
        with httpx.Client(base_url=gw.http_url,
                          headers={"X-Forwarded-Proto": "https"}) as client:
            form = client.get("/ui/sign-in")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            # httpx keeps a Secure cookie from plain HTTP: the browser talks TLS to the proxy
            client.cookies.clear()
            r = client.post("/ui/sign-in", data={"csrf_token": token[1], "admin_key": ADMIN},
                            headers={"Cookie": f"gw_ui_csrf={token[1]}"})
        assert ("; Secure" in form.headers["set-cookie"]) is secure
        assert r.status_code == 303
        session = [c for c in r.headers.get_list("set-cookie") if "gw_ui_session=" in c]
        assert session and ("; Secure" in session[0]) is secure


def test_guessing_keys_at_the_sign_in_form_is_limited_per_address(
        gateway_factory: Callable[..., InProcessGateway]) -> None:
    limited = ui_config().replace("auth:\n", "auth:\n  max_failed_attempts: 3\n", 1)
    gw = gateway_factory(limited, env={"GATEWAY_ADMIN_KEY": ADMIN})
    with httpx.Client(base_url=gw.http_url) as client:
        form = client.get("/ui/sign-in")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        said = []
        for key in ("guess-1", "guess-2", "guess-3", "guess-4", ADMIN):
            r = client.post("/ui/sign-in", data={"csrf_token": token[1], "admin_key": key})
            alert = re.search(r'role="alert">([^<]*)<', r.text)
            said.append(alert[1] if alert else r.status_code)
    assert said[0].startswith("The key was not accepted")
    # The core counts the UI's tries against the browser's address, as any other client's:
    # past the limit even the right key waits.
    assert said[-1].startswith("Too many failed attempts"), said


def test_ui_enabled_false_serves_no_ui(gateway_factory: Callable[..., InProcessGateway]) -> None:
    gw = gateway_factory(ui_config("ui: {enabled: false}"), env={"GATEWAY_ADMIN_KEY": ADMIN})
    assert httpx.get(gw.http_url + "/ui/").status_code == 404
    assert httpx.get(gw.http_url + "/ui/static/ui.css").status_code == 404


