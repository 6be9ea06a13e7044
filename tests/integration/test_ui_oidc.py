"""Signing in to the admin UI through the OIDC issuer, over real HTTP: an in-process
gateway, the fake issuer's authorization and token endpoints (which check PKCE, the
client, the redirect_uri and single-use codes), and httpx following each redirect by hand.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from gateway.config import OidcConfig
from gateway.errors import UnavailableError
from gateway.facade.ui.oidc_sign_in import pkce_challenge
from gateway.tenancy.oidc import OidcVerifier
from tests.fakes.oidc import ADMIN_USER, FakeIssuer, s256
from tests.inprocess import InProcessGateway, start_in_process

CLIENT_ID = "gateway-ui"
SECRET = "ui-client-secret-0123456789"
CALLBACK = "/ui/sign-in/oidc/callback"


def oidc_config(issuer: FakeIssuer, *, secret: bool = True, extra: str = "") -> str:
    return f"""
auth:
  oidc: {{enabled: true, issuer: "{issuer.issuer}", audience: [llm-gateway]}}
ui:
  oidc:
    client_id: {CLIENT_ID}
{'    client_secret: "${UI_OIDC_SECRET}"' if secret else ''}
    name: Acme SSO
{extra}"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as issuer:
        yield issuer


@pytest.fixture(scope="module")
def gateway(issuer: FakeIssuer) -> Iterator[InProcessGateway]:
    gw = start_in_process(oidc_config(issuer), env={"UI_OIDC_SECRET": SECRET})
    issuer.register(CLIENT_ID, gw.http_url + CALLBACK, SECRET)
    yield gw
    assert gw.stop() == 0, gw.logs()


_browsers: list[httpx.Client] = []


@pytest.fixture(autouse=True)
def fresh(issuer: FakeIssuer) -> Iterator[None]:
    issuer.user = dict(ADMIN_USER)
    issuer.deny = None
    issuer.token_lifetime = 300.0
    issuer.refusals.clear()
    issuer.issued.clear()
    yield
    while _browsers:
        _browsers.pop().close()


def browser_on(gw: InProcessGateway) -> httpx.Client:
    """A client with a cookie jar, closed when the test ends."""
    browser = httpx.Client(base_url=gw.http_url, follow_redirects=False, timeout=10)
    _browsers.append(browser)
    return browser


@dataclass
class Started:
    browser: httpx.Client
    authorize: str  # the issuer's authorization URL the gateway sent the browser to
    query: dict[str, str]


def start(gw: InProcessGateway, next_page: str = "/ui/") -> Started:
    browser = browser_on(gw)
    response = browser.get("/ui/sign-in/oidc", params={"next": next_page})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    return Started(browser, location, query)


def approve(started: Started) -> dict[str, str]:
    """The issuer's answer (its redirect to the callback), as query parameters."""
    answer = httpx.get(started.authorize, follow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def callback(started: Started, params: dict[str, str]) -> httpx.Response:
    return started.browser.get(CALLBACK, params=params)


def refusal(response: httpx.Response) -> str:
    """The sign-in page's alert (the page answers 200 with the refusal on it)."""
    assert response.status_code == 200
    found = re.search(r'<p class="problem" role="alert">([^<]*)</p>', response.text)
    assert found, response.text
    assert "gw_ui_session=" not in response.headers.get("set-cookie", "").replace(
        "gw_ui_session=;", "")
    return found.group(1).replace("&#39;", "'")


def signed_out(browser: httpx.Client) -> bool:
    page = browser.get("/ui/tenants")
    return page.status_code == 200 and 'id="admin-key"' in page.text


def test_the_sign_in_page_offers_the_issuer(gateway: InProcessGateway) -> None:
    page = httpx.get(gateway.http_url + "/ui/tenants")
    assert 'href="/ui/sign-in/oidc?next=/ui/tenants"' in page.text
    assert "Sign in with Acme SSO" in page.text
    assert 'id="admin-key"' in page.text  # the admin key still signs in too


def test_without_ui_oidc_there_is_no_issuer_button_and_no_route() -> None:
    gw = start_in_process(None)
    try:
        page = httpx.get(gw.http_url + "/ui/sign-in")
        assert page.status_code == 200 and 'class="sso"' not in page.text
        start = httpx.get(gw.http_url + "/ui/sign-in/oidc", follow_redirects=False)
        assert start.status_code == 200 and 'id="admin-key"' in start.text  # not a route
    finally:
        assert gw.stop() == 0


def test_signing_in_with_pkce_opens_a_session_that_carries_the_access_token(
        gateway: InProcessGateway, issuer: FakeIssuer) -> None:
    started = start(gateway, next_page="/ui/tenants")
    q = started.query
    assert started.authorize.startswith(issuer.issuer + "/authorize?")
    assert q["response_type"] == "code" and q["client_id"] == CLIENT_ID
    assert q["redirect_uri"] == gateway.http_url + CALLBACK
    assert "openid" in q["scope"].split()
    assert q["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", q["code_challenge"])
    assert len(q["state"]) >= 32 and len(q["nonce"]) >= 32 and q["state"] != q["nonce"]
    # The pending sign-in's cookie: Lax (it must come back from the issuer), HttpOnly,
    # and holds none of state, nonce or verifier.
    pending = started.browser.cookies.get("gw_ui_oidc")
    assert pending and pending not in started.authorize
    answer = approve(started)
    assert answer["state"] == q["state"]
    done = callback(started, answer)
    assert done.status_code == 200, done.text
    assert '<meta http-equiv="refresh" content="0; url=/ui/tenants">' in done.text
    cookies = done.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("gw_ui_session="))
    assert "HttpOnly; SameSite=Strict" in session
    assert "Max-Age=300;" in session  # the access token's lifetime, not the 8 h idle limit
    assert any(c.startswith("gw_ui_oidc=;") and "SameSite=Lax" in c for c in cookies)
    access_token = issuer.issued[-1]["access_token"]
    assert all(access_token not in c and SECRET not in c for c in cookies)
    # The token request: the client authenticated (HTTP Basic), the verifier matches.
    token_request = next(r for r in reversed(issuer.requests) if r.path == "/token")
    form = {k: v[0] for k, v in parse_qs(token_request.body.decode()).items()}
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert form["grant_type"] == "authorization_code" and form["code"] == answer["code"]
    assert form["redirect_uri"] == q["redirect_uri"]
    assert s256(form["code_verifier"]) == q["code_challenge"] == pkce_challenge(
        form["code_verifier"])
    # Signed in: the page is served (its admin API calls carry the access token).
    page = started.browser.get("/ui/tenants")
    assert page.status_code == 200 and "Sign out" in page.text, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf
    out = started.browser.post("/ui/sign-out", data={"csrf_token": csrf.group(1)})
    assert out.status_code == 303
    assert signed_out(started.browser)


def test_the_pending_cookie_is_lax_and_http_only(gateway: InProcessGateway) -> None:
    response = browser_on(gateway).get("/ui/sign-in/oidc")
    cookie = next(c for c in response.headers.get_list("set-cookie")
                  if c.startswith("gw_ui_oidc="))
    assert "Path=/ui;" in cookie and "Max-Age=600;" in cookie
    assert "HttpOnly; SameSite=Lax" in cookie


def test_a_wrong_state_is_refused_before_any_token_request(
        gateway: InProcessGateway, issuer: FakeIssuer) -> None:
    started = start(gateway)
    answer = approve(started)
    tokens_before = sum(r.path == "/token" for r in issuer.requests)
    problem = refusal(callback(started, {**answer, "state": "not-the-state"}))
    assert "state did not match" in problem
    assert sum(r.path == "/token" for r in issuer.requests) == tokens_before
    assert signed_out(started.browser)


def test_a_callback_is_good_once(gateway: InProcessGateway) -> None:
    started = start(gateway)
    pending = started.browser.cookies["gw_ui_oidc"]
    answer = approve(started)
    first = callback(started, answer)
    assert first.status_code == 200 and "Signed in" in first.text
    again = httpx.get(gateway.http_url + CALLBACK, params=answer,
                      cookies={"gw_ui_oidc": pending})
    assert "had expired or was started in another browser" in refusal(again)


def test_a_callback_without_the_pending_cookie_is_refused(gateway: InProcessGateway) -> None:
    started = start(gateway)
    answer = approve(started)
    stranger = browser_on(gateway)
    assert "started in another browser" in refusal(stranger.get(CALLBACK, params=answer))


def test_a_replayed_code_is_refused(gateway: InProcessGateway, issuer: FakeIssuer) -> None:
    first = start(gateway)
    used = approve(first)
    assert callback(first, used).status_code == 200
    second = start(gateway)  # the code injected into another sign-in
    problem = refusal(callback(second, {"code": used["code"],
                                        "state": second.query["state"]}))
    assert "refused to issue tokens (invalid_grant)" in problem
    assert issuer.refusals == ["code already used"]
    assert signed_out(second.browser)


def test_a_code_taken_to_another_sign_in_fails_pkce(gateway: InProcessGateway,
                                                    issuer: FakeIssuer) -> None:
    victim = start(gateway)
    stolen = approve(victim)  # never delivered to the victim's browser
    attacker = start(gateway)
    problem = refusal(callback(attacker, {"code": stolen["code"],
                                          "state": attacker.query["state"]}))
    assert "(invalid_grant)" in problem
    assert issuer.refusals == ["code_verifier does not match"]
    assert signed_out(attacker.browser)


def test_a_user_without_the_admin_role_is_refused(gateway: InProcessGateway,
                                                  issuer: FakeIssuer) -> None:
    issuer.user = {"sub": "bob", "roles": ["viewer"]}
    started = start(gateway)
    problem = refusal(callback(started, approve(started)))
    assert "does not have the role admin" in problem
    assert signed_out(started.browser)


def test_an_expired_token_is_refused(gateway: InProcessGateway, issuer: FakeIssuer) -> None:
    issuer.token_lifetime = -600
    started = start(gateway)
    problem = refusal(callback(started, approve(started)))
    assert "ID token from Acme SSO was not accepted (token expired)" in problem
    assert signed_out(started.browser)


def test_an_error_from_the_issuer_is_shown_without_its_markup(
        gateway: InProcessGateway, issuer: FakeIssuer) -> None:
    issuer.deny = "access_denied"
    started = start(gateway)
    answer = approve(started)
    assert answer["error"] == "access_denied" and "code" not in answer
    response = callback(started, answer)
    assert "Acme SSO refused the sign-in (access_denied)." in refusal(response)
    assert "<b>thanks</b>" not in response.text
    assert signed_out(started.browser)


def test_an_unknown_error_code_is_not_echoed(gateway: InProcessGateway) -> None:
    started = start(gateway)
    response = callback(started, {"state": started.query["state"],
                                  "error": "<script>alert(1)</script>"})
    assert "could not sign you in (error)" in refusal(response)
    assert "<script>alert" not in response.text


def test_a_nonce_that_differs_is_refused(gateway: InProcessGateway,
                                         issuer: FakeIssuer) -> None:
    started = start(gateway)
    answer = approve(started)
    issuer.grants[answer["code"]].nonce = "someone-elses-nonce"
    problem = refusal(callback(started, answer))
    assert "nonce did not match" in problem


def test_a_wrong_client_secret_is_refused_by_the_issuer() -> None:
    with FakeIssuer() as issuer:
        gw = start_in_process(oidc_config(issuer), env={"UI_OIDC_SECRET": "not-the-secret"})
        try:
            issuer.register(CLIENT_ID, gw.http_url + CALLBACK, SECRET)
            started = start(gw)
            problem = refusal(callback(started, approve(started)))
            assert "refused to issue tokens (invalid_client)" in problem
            assert issuer.refusals == ["wrong client secret"]
            assert "not-the-secret" not in gw.logs()
        finally:
            assert gw.stop() == 0


def test_a_public_client_signs_in_with_pkce_alone() -> None:
    with FakeIssuer() as issuer:
        gw = start_in_process(oidc_config(issuer, secret=False))
        try:
            issuer.register(CLIENT_ID, gw.http_url + CALLBACK)  # public: no secret
            started = start(gw)
            assert callback(started, approve(started)).status_code == 200
            assert "Sign out" in started.browser.get("/ui/").text
            token_request = next(r for r in reversed(issuer.requests) if r.path == "/token")
            assert "Authorization" not in token_request.headers
            assert f"client_id={CLIENT_ID}" in token_request.body.decode()
        finally:
            assert gw.stop() == 0


def test_an_access_token_the_admin_api_refuses_is_a_message() -> None:
    """The issuer's access tokens are for another audience than auth.oidc.audience."""
    with FakeIssuer() as issuer:
        gw = start_in_process(oidc_config(issuer).replace("audience: [llm-gateway]",
                                                          "audience: [another-api]"),
                              env={"UI_OIDC_SECRET": SECRET})
        try:
            issuer.register(CLIENT_ID, gw.http_url + CALLBACK, SECRET)
            started = start(gw)
            problem = refusal(callback(started, approve(started)))
            assert "The admin API did not accept the access token from Acme SSO." in problem
            assert signed_out(started.browser)
        finally:
            assert gw.stop() == 0, gw.logs()


def test_a_configured_redirect_url_is_sent_as_is(issuer: FakeIssuer) -> None:
    public = "https://gw.example.com/ui/sign-in/oidc/callback"
    gw = start_in_process(oidc_config(issuer, extra=f"    redirect_url: {public}\n"),
                          env={"UI_OIDC_SECRET": SECRET})
    try:
        started = start(gw)
        assert started.query["redirect_uri"] == public
        # Behind a TLS proxy the pending cookie would be Secure; here it came over HTTP.
        assert "Secure" not in started.browser.get("/ui/sign-in/oidc").headers["set-cookie"]
    finally:
        assert gw.stop() == 0, gw.logs()


def test_an_issuer_that_stops_answering_is_a_message() -> None:
    with FakeIssuer() as other:
        gw = start_in_process(oidc_config(other), env={"UI_OIDC_SECRET": SECRET})
        try:
            other.register(CLIENT_ID, gw.http_url + CALLBACK, SECRET)
            started = start(gw)
            answer = approve(started)
            other.stop()
            problem = refusal(callback(started, answer))
            assert "did not answer the token request" in problem
        finally:
            assert gw.stop() == 0, gw.logs()


async def test_the_verifier_gives_the_discovery_document_and_an_id_token_s_nonce(
        issuer: FakeIssuer) -> None:
    config = OidcConfig(enabled=True, issuer=issuer.issuer, audience=(CLIENT_ID,))
    async with OidcVerifier(config) as verifier:
        document = await verifier.metadata()
        assert document["token_endpoint"] == issuer.issuer + "/token"
        assert document["authorization_endpoint"] == issuer.issuer + "/authorize"
        claims = await verifier.verify(issuer.mint({"aud": CLIENT_ID, "nonce": "n-1",
                                                    "azp": CLIENT_ID}))
        assert (claims.nonce, claims.authorized_party) == ("n-1", CLIENT_ID)
        plain = await verifier.verify(issuer.mint({"aud": CLIENT_ID, "nonce": 5}))
        assert (plain.nonce, plain.authorized_party) == ("", "")
    async with OidcVerifier(replace(config, issuer="http://127.0.0.1:9")) as down:
        with pytest.raises(UnavailableError):
            await down.metadata()
