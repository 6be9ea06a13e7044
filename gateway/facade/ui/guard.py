"""What every ``/ui`` answer carries, and the checks a request passes first.

Every answer gets :data:`SECURITY_HEADERS`: a Content-Security-Policy that lets the page
load scripts, styles and images from the gateway's own origin only (no inline script or
style, no framing, forms post only here), and the usual companions. The session cookie is
HttpOnly, SameSite=Strict, limited to ``/ui`` and Secure when the request came over TLS
(or a trusted proxy says it did, ``X-Forwarded-Proto: https``).

Example::

    cookie = session_cookie("abc", secure=False, max_age=28800)
    assert cookie.startswith("gw_ui_session=abc; Path=/ui;")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.clientip import TrustedProxies

__all__ = ["CSP", "OIDC_COOKIE", "SECURITY_HEADERS", "SESSION_COOKIE", "SIGN_IN_COOKIE",
           "clear_cookie", "cookie_value", "cross_site", "over_tls", "session_cookie"]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
SESSION_COOKIE = "gw_ui_session"
# The sign-in form's CSRF token before there is a session: the same random value in this
# cookie and in the form (a cross-site page can neither read nor set the cookie).
SIGN_IN_COOKIE = "gw_ui_csrf"
# A sign-in under way at the OIDC issuer: the id of its pending record (state, nonce,
# PKCE verifier) kept on the server. SameSite=Lax, as it must come back on the issuer's
# redirect; it opens nothing by itself and lives ten minutes at most.
OIDC_COOKIE = "gw_ui_oidc"
_PATH = "/ui"


def session_cookie(value: str, *, secure: bool, max_age: int, name: str = SESSION_COOKIE,
                   same_site: str = "Strict") -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, Path=/ui, Secure over TLS.
    (``same_site="Lax"`` only for a cookie that must come back on the redirect from an
    identity provider, which is a cross-site navigation.)"""
    return (f"{name}={value}; Path={_PATH}; Max-Age={max_age}; HttpOnly; "
            f"SameSite={same_site}" + ("; Secure" if secure else ""))


def clear_cookie(name: str, *, secure: bool, same_site: str = "Strict") -> str:
    """A ``Set-Cookie`` value that removes cookie ``name``."""
    return session_cookie("", secure=secure, max_age=0, name=name, same_site=same_site)


def cookie_value(header: str | None, name: str) -> str:
    """Cookie ``name``'s value in a ``Cookie`` header ("" when absent)."""
    for part in (header or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return ""


def over_tls(scope: Mapping[str, Any], headers: Mapping[str, str],
             proxies: TrustedProxies) -> bool:
    """Whether the browser reached us over TLS: this connection is, or the trusted proxy
    in front of it says so."""
    if scope.get("scheme") == "https":
        return True
    peer = (scope.get("client") or ("",))[0]
    forwarded = headers.get("x-forwarded-proto", "")
    return proxies.trusted(peer) and forwarded.split(",")[0].strip().lower() == "https"


def cross_site(headers: Mapping[str, str]) -> bool:
    """A request the browser says came from another site (``Sec-Fetch-Site``, or an
    ``Origin`` that is not this host's); clients that send neither are judged by the CSRF
    token alone."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    host = headers.get("host", "")
    return origin.partition("://")[2] != host
