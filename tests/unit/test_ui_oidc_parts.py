"""The pure parts of the UI's OIDC sign-in: the PKCE challenge, pending sign-ins, sessions
that end with their token, and the ``ui.oidc`` settings. The flow itself is tested over
real HTTP (tests/integration/test_ui_oidc.py) and in a browser (tests/ui)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from gateway.config import ConfigError, UiOidcConfig, load_settings
from gateway.errors import UnavailableError
from gateway.facade.ui.oidc_sign_in import (
    MAX_PENDING,
    PENDING_AGE,
    OidcSignIn,
    SignInFailed,
    pkce_challenge,
)
from gateway.facade.ui.sessions import MemorySessions


def test_the_pkce_challenge_is_rfc_7636_s256() -> None:
    # RFC 7636 Appendix B.
    assert pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")


def test_a_session_ends_with_its_token_however_busy() -> None:
    now = [1000.0]
    sessions = MemorySessions(idle=60, clock=lambda: now[0])
    session = sessions.create("access-token", how="oidc", lifetime=100)
    for _ in range(3):
        now[0] += 33
        assert sessions.get(session.id) is session  # never idle
    now[0] += 1  # 100 s after signing in
    assert sessions.get(session.id) is None
    key = sessions.create("adm-key", how="admin key")  # no lifetime: only the idle limit
    now[0] += 59
    assert sessions.get(key.id) is key


@dataclass
class Issuer:
    """A stand-in verifier: the discovery document it was given, or unreachable."""

    document: Mapping[str, Any] | None

    async def metadata(self) -> Mapping[str, Any]:
        if self.document is None:
            raise UnavailableError("identity provider unreachable")
        return self.document

    async def verify(self, token: str) -> Any:  # pragma: no cover - not reached here
        raise AssertionError("no token is verified in these tests")


DOCUMENT = {"authorization_endpoint": "https://id.example/authorize?tenant=x",
            "token_endpoint": "https://id.example/token",
            "code_challenge_methods_supported": ["S256"]}


def flow(document: Mapping[str, Any] | None = DOCUMENT, now: list[float] | None = None,
         **config: Any) -> OidcSignIn:
    clock = now or [0.0]
    return OidcSignIn(UiOidcConfig(client_id="ui", name="Acme SSO", **config),
                      Issuer(document), cast(aiohttp.ClientSession, None),
                      clock=lambda: clock[0])


async def test_the_authorization_url_asks_for_a_code_with_pkce() -> None:
    sign_in = flow(scopes=("openid", "email"))
    pending_id, url = await sign_in.start("https://gw.example/ui/sign-in/oidc/callback",
                                          "/ui/tenants")
    assert url.startswith("https://id.example/authorize?tenant=x&")  # its own query kept
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["response_type"] == "code" and query["client_id"] == "ui"
    assert query["scope"] == "openid email"
    assert query["redirect_uri"] == "https://gw.example/ui/sign-in/oidc/callback"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len({query["state"], query["nonce"], pending_id}) == 3
    assert pending_id not in url and sign_in.pending == 1
    assert "%20" in url and "+" not in url  # the scope's space, percent-encoded


async def test_pending_sign_ins_expire_are_taken_once_and_are_bounded() -> None:
    now = [0.0]
    sign_in = flow(now=now)
    first, _ = await sign_in.start("https://gw/cb", "/ui/")
    now[0] += PENDING_AGE
    with pytest.raises(SignInFailed, match="had expired"):
        await sign_in.finish(first, {"state": "x", "code": "c"})
    second, url = await sign_in.start("https://gw/cb", "/ui/requests")
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(SignInFailed, match="access_denied") as caught:
        await sign_in.finish(second, {"state": state, "error": "access_denied"})
    assert caught.value.next_page == "/ui/requests"
    with pytest.raises(SignInFailed, match="had expired"):  # taken by the first answer
        await sign_in.finish(second, {"state": state, "error": "access_denied"})
    for _ in range(MAX_PENDING + 5):
        await sign_in.start("https://gw/cb", "/ui/")
    assert sign_in.pending == MAX_PENDING


async def test_an_answer_with_no_code_or_a_foreign_state_is_refused() -> None:
    sign_in = flow()
    pending_id, url = await sign_in.start("https://gw/cb", "/ui/")
    with pytest.raises(SignInFailed, match="state did not match"):
        await sign_in.finish(pending_id, {"code": "c"})
    pending_id, url = await sign_in.start("https://gw/cb", "/ui/")
    state = parse_qs(urlsplit(url).query)["state"][0]
    with pytest.raises(SignInFailed, match="sent no authorization code"):
        await sign_in.finish(pending_id, {"state": state})


@pytest.mark.parametrize(("document", "words"), [
    (None, "cannot be reached"),
    ({**DOCUMENT, "code_challenge_methods_supported": ["plain"]}, "PKCE with S256"),
    ({"token_endpoint": "https://id.example/token"}, "no authorization_endpoint"),
    ({**DOCUMENT, "authorization_endpoint": "javascript:alert(1)"},
     "no authorization_endpoint"),
])
async def test_an_issuer_that_cannot_do_it_is_a_message(document: Mapping[str, Any] | None,
                                                        words: str) -> None:
    with pytest.raises(SignInFailed, match=words):
        await flow(document).start("https://gw/cb", "/ui/")


BASE = """
auth:
  oidc: {enabled: true, issuer: "https://id.example", audience: [llm-gateway]}
"""


def load(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Any:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env=env or {})


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text, env)
    return caught.value.problems


def test_ui_oidc_settings_load_with_the_secret_from_the_environment(tmp_path: Path) -> None:
    settings = load(tmp_path, BASE + """
ui:
  oidc: {client_id: gateway-ui, client_secret: "${UI_SECRET}",
         redirect_url: "https://gw.example/ui/sign-in/oidc/callback"}
""", {"UI_SECRET": "s3cret-value"})
    oidc = settings.ui.oidc
    assert (oidc.client_id, oidc.client_secret) == ("gateway-ui", "s3cret-value")
    assert oidc.scopes == ("openid", "profile", "email") and oidc.name == "SSO"
    assert "s3cret-value" not in repr(settings)
    assert load(tmp_path, BASE).ui.oidc.client_id == ""  # off unless a client id is set


@pytest.mark.parametrize(("text", "words"), [
    ("ui: {oidc: {client_id: ui}}",
     "ui.oidc.client_id: needs auth.oidc.enabled and auth.oidc.issuer"),
    (BASE + "ui: {oidc: {client_id: ui, redirect_url: 'https://gw.example/callback'}}",
     "ui.oidc.redirect_url: must be http(s)://HOST/ui/sign-in/oidc/callback"),
    (BASE + "ui: {oidc: {client_id: ui, redirect_url: '/ui/sign-in/oidc/callback'}}",
     "ui.oidc.redirect_url: must be http(s)://HOST/ui/sign-in/oidc/callback"),
    (BASE + "ui: {oidc: {client_id: ui, scopes: [email]}}",
     "ui.oidc.scopes: must include openid"),
    (BASE + "ui: {oidc: {client_secret: hush-hush}}",
     "ui.oidc.client_secret: needs ui.oidc.client_id"),
    (BASE + "admin: {enabled: false}\nui: {oidc: {client_id: ui}}",
     "ui.oidc.client_id: the UI is off"),
    (BASE + "ui: {oidc: {client_id: ui, name: ' '}}", "ui.oidc.name: must not be empty"),
    (BASE + "ui: {oidc: {client_id: ui, client_scret: x}}", "ui.oidc.client_scret"),
])
def test_ui_oidc_settings_are_checked_at_start(tmp_path: Path, text: str,
                                               words: str) -> None:
    found = problems(tmp_path, text)
    assert any(words in problem for problem in found), found
    assert not any("hush-hush" in problem for problem in found)
