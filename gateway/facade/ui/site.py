"""The admin UI's blueprint: sign-in and sign-out, the guard every page goes through,
and the headers every ``/ui`` answer carries.

The guard lets a page run only for a signed-in admin: without a live session a GET gets
the sign-in page in place, which returns to the page after signing in; a POST must
carry the session's CSRF token (a hidden ``csrf_token`` field) and not come from another
site, else 403. A call the admin API refuses as unauthenticated ends the session (the key
was removed). Signing in checks the key with ``GetSystemInfo`` and starts a new session
(a new id: an id fixed before signing in is never the signed-in one).

With ``oidc`` (:mod:`~gateway.facade.ui.oidc_sign_in`), ``/ui/sign-in/oidc`` sends the
browser to the issuer and ``/ui/sign-in/oidc/callback`` ends in :meth:`Sessions.create`
with the access token as the credential (``how="oidc"``), once the admin API has taken it
(role ``admin``). The pending sign-in's cookie is SameSite=Lax: the issuer's redirect back
is a cross-site navigation, which Strict cookies are not sent on. For the same reason the
callback answers a page that moves on to the page asked for, rather than a redirect: a
redirect chain that began at the issuer would arrive without the Strict session cookie.

Example::

    app.register_blueprint(ui_blueprint(core, TrustedProxies(()), session_idle=28800))
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from llmgateway.v1 import admin_service_pb2 as pb
from quart import Blueprint, Response, render_template, request
from werkzeug.exceptions import HTTPException

from gateway.clientip import TrustedProxies
from gateway.config import OIDC_CALLBACK_PATH
from gateway.facade.calls import Core
from gateway.facade.errors import ApiError
from gateway.facade.exchange import read_headers
from gateway.facade.ui import fmt
from gateway.facade.ui.assets import Assets
from gateway.facade.ui.client import AdminApi, explain
from gateway.facade.ui.guard import (
    OIDC_COOKIE,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    clear_cookie,
    cookie_value,
    cross_site,
    over_tls,
    session_cookie,
)
from gateway.facade.ui.oidc_sign_in import PENDING_AGE, OidcSignIn, SignInFailed
from gateway.facade.ui.pages import Pages
from gateway.facade.ui.sessions import MemorySessions, Sessions, new_token, tokens_match
from gateway.facade.ui.visit import Page, Visit, see_other

__all__ = ["ui_blueprint"]

log = logging.getLogger("gateway.facade")

_HTML = "text/html; charset=utf-8"
_MAX_KEY = 4096
_SIGN_IN_AGE = 3600  # the sign-in form's token lives this long
_HOST = re.compile(r"[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def ui_blueprint(core: Core, proxies: TrustedProxies, *, session_idle: float,
                 sessions: Sessions | None = None, oidc: OidcSignIn | None = None
                 ) -> Blueprint:
    """The UI at ``/ui/``, calling the admin API through ``core``; signing in through
    the OIDC issuer too with ``oidc``."""
    ui = _Ui(core, proxies, sessions or MemorySessions(session_idle), session_idle, oidc)
    bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")
    bp.add_url_rule("/static/<name>", "asset", _asset_view(Assets.load()), methods=["GET"])
    bp.add_url_rule("/sign-in", "sign_in", ui.sign_in_page, methods=["GET"])
    bp.add_url_rule("/sign-in", "sign_in_post", ui.sign_in, methods=["POST"])
    if oidc is not None:
        bp.add_url_rule("/sign-in/oidc", "sign_in_oidc", ui.oidc_start, methods=["GET"])
        bp.add_url_rule(OIDC_CALLBACK_PATH.removeprefix("/ui"), "sign_in_oidc_callback",
                        ui.oidc_callback, methods=["GET"])
    bp.add_url_rule("/sign-out", "sign_out", ui.guarded(ui.sign_out, "ui.sign_out"),
                    methods=["POST"])
    for path, endpoint, page, methods in Pages().routes():
        bp.add_url_rule(path, endpoint, ui.guarded(page, f"ui.{endpoint}"), methods=methods)
    bp.add_url_rule("/<path:rest>", "not_found", ui.guarded(_not_found, "ui.not_found"),
                    methods=["GET", "POST"])
    for name, function in fmt.FILTERS.items():
        bp.add_app_template_filter(function, name)
    bp.after_app_request(_secured)  # on every /ui answer, Quart's own 404s and 405s too
    bp.register_error_handler(HTTPException, ui.http_error)
    bp.register_error_handler(Exception, ui.unexpected)
    return bp


async def _secured(response: Response) -> Response:
    """Every ``/ui`` answer: the security headers; pages are never cached."""
    if request.path != "/ui" and not request.path.startswith("/ui/"):
        return response
    response.headers.update(SECURITY_HEADERS)
    if request.endpoint == "ui.asset" and response.status_code < 400:
        response.headers["Cache-Control"] = "no-cache"
    else:
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Cookie"
    return response


def _asset_view(assets: Assets) -> Callable[..., Awaitable[Response]]:
    async def asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return Response("Not found", status=404, content_type="text/plain")
        headers = {"ETag": found.etag}
        if request.headers.get("If-None-Match") == found.etag:
            return Response("", status=304, headers=headers, content_type=found.content_type)
        return Response(found.body, content_type=found.content_type, headers=headers)

    return asset


async def _not_found(visit: Visit) -> Response:
    return await visit.render("message.html", 404, title="Not found",
                              message="There is no such page.")


class _Ui:
    def __init__(self, core: Core, proxies: TrustedProxies, sessions: Sessions,
                 session_idle: float, oidc: OidcSignIn | None) -> None:
        self._core = core
        self._proxies = proxies
        self._sessions = sessions
        self._max_age = int(session_idle)
        self._oidc = oidc

    def _secure(self, headers: dict[str, str]) -> bool:
        return over_tls(request.scope, headers, self._proxies)

    # --- the guard ---------------------------------------------------------------------

    def guarded(self, page: Page, endpoint: str) -> Callable[..., Awaitable[Response]]:
        """``page`` as a view: for a signed-in admin only, POSTs with the CSRF token."""

        async def view(**params: str) -> Response:
            headers = read_headers(request.scope["headers"])
            session = self._sessions.get(cookie_value(headers.get("cookie"), SESSION_COOKIE))
            if session is None:
                if request.method == "GET":
                    return await self._sign_in(headers, next_page=request.full_path)
                return await self._sign_in(headers, problem="Your session has ended: "
                                           "sign in again.")
            form: dict[str, str] = {}
            if request.method == "POST":
                form = (await request.form).to_dict()
                if cross_site(headers) or not tokens_match(session.csrf,
                                                           form.get("csrf_token", "")):
                    return await _refused()
            api = AdminApi(self._core, session.credential, request.scope, headers)
            visit = Visit(session, api, params, request.args.to_dict(), form, endpoint)
            try:
                response = await page(visit)
            except ApiError as exc:
                if exc.status == 401:  # the key no longer opens the admin API
                    self._sessions.drop(session.id)
                    return await self._sign_in(headers, problem=explain(exc))
                status = exc.status if 400 <= exc.status < 600 else 500
                return await visit.render("message.html", status, title="Not done",
                                          message=explain(exc), alert=True)
            if self._sessions.get(session.id) is session:  # not signed out: idle anew
                response.headers.add("Set-Cookie", session_cookie(
                    session.id, secure=self._secure(headers), max_age=self._max_age))
            return response

        view.__name__ = endpoint.replace(".", "_")
        return view

    async def http_error(self, exc: HTTPException) -> Response:
        """Quart's own refusals under ``/ui`` (a form too large, a wrong method), as a
        page."""
        status = exc.code or 500
        body = await render_template("message.html", title=exc.name, alert=True,
                                     message=exc.description or exc.name, nav=(),
                                     signed_in=False)
        return Response(body, status=status, content_type=_HTML)

    async def unexpected(self, exc: Exception) -> Response:
        """A bug in a page: logged, and a page that says so (never a traceback)."""
        log.error("unhandled error in the admin UI at %s", request.path, exc_info=exc)
        body = await render_template("message.html", title="Something went wrong", alert=True,
                                     message="Something went wrong in the gateway (its log "
                                     "has the details).", nav=(), signed_in=False)
        return Response(body, status=500, content_type=_HTML)

    # --- signing in and out ------------------------------------------------------------

    async def sign_in_page(self) -> Response:
        headers = read_headers(request.scope["headers"])
        if self._sessions.get(cookie_value(headers.get("cookie"), SESSION_COOKIE)):
            return see_other(_local(request.args.get("next", "")))  # signed in already
        notice = "You are signed out." if request.args.get("signed_out") else ""
        return await self._sign_in(headers, next_page=request.args.get("next", ""),
                                   notice=notice)

    async def sign_in(self) -> Response:
        headers = read_headers(request.scope["headers"])
        form = (await request.form).to_dict()
        next_page = form.get("next", "")
        expected = cookie_value(headers.get("cookie"), SIGN_IN_COOKIE)
        if cross_site(headers) or not tokens_match(expected, form.get("csrf_token", "")):
            return await self._sign_in(headers, next_page=next_page, status=403, problem=(
                "The sign-in form had expired or did not come from this page: try again."))
        key = form.get("admin_key", "").strip()
        if not key or len(key) > _MAX_KEY:
            return await self._sign_in(headers, next_page=next_page,
                                       problem="Enter an admin key.")
        api = AdminApi(self._core, key, request.scope, headers)
        try:
            await api.call(api.stub.GetSystemInfo, pb.GetSystemInfoRequest())
        except ApiError as exc:
            return await self._sign_in(headers, next_page=next_page, problem=explain(exc))
        self._sessions.drop(cookie_value(headers.get("cookie"), SESSION_COOKIE))
        session = self._sessions.create(key, how="admin key")
        secure = self._secure(headers)
        response = see_other(_local(next_page))
        response.headers.add("Set-Cookie", session_cookie(session.id, secure=secure,
                                                          max_age=self._max_age))
        response.headers.add("Set-Cookie", clear_cookie(SIGN_IN_COOKIE, secure=secure))
        return response

    async def oidc_start(self) -> Response:
        """Off to the issuer, a pending sign-in's id in a Lax cookie of its own."""
        assert self._oidc is not None
        headers = read_headers(request.scope["headers"])
        next_page = _local(request.args.get("next", ""))
        secure = self._secure(headers)
        host = headers.get("host", "")
        redirect_uri = self._oidc.redirect_url or (
            f"{'https' if secure else 'http'}://{host}{OIDC_CALLBACK_PATH}")
        try:
            if not _HOST.fullmatch(host) and not self._oidc.redirect_url:
                raise SignInFailed("This request named no usable host to come back to "
                                   "(set ui.oidc.redirect_url).")
            pending_id, url = await self._oidc.start(redirect_uri, next_page)
        except SignInFailed as exc:
            return await self._sign_in(headers, next_page=next_page, problem=str(exc))
        response = see_other(url)
        response.headers.add("Set-Cookie", session_cookie(
            pending_id, secure=secure, max_age=PENDING_AGE, name=OIDC_COOKIE,
            same_site="Lax"))
        return response

    async def oidc_callback(self) -> Response:
        """Back from the issuer: the code turned into tokens, the access token tried on
        the admin API (role ``admin``), then a session that ends with the token."""
        assert self._oidc is not None
        headers = read_headers(request.scope["headers"])
        secure = self._secure(headers)
        name = self._oidc.name
        done = None
        try:
            done = await self._oidc.finish(cookie_value(headers.get("cookie"), OIDC_COOKIE),
                                           request.args.to_dict())
            api = AdminApi(self._core, done.access_token, request.scope, headers)
            await api.call(api.stub.GetSystemInfo, pb.GetSystemInfoRequest())
        except SignInFailed as exc:
            problem, next_page = str(exc), exc.next_page
        except ApiError as exc:
            assert done is not None
            next_page = done.next_page
            problem = (f"Your account at {name} does not have the role admin: the admin UI "
                       "is for admins only." if exc.status == 403 else
                       f"The admin API did not accept the access token from {name}."
                       if exc.status == 401 else explain(exc))
        else:
            self._sessions.drop(cookie_value(headers.get("cookie"), SESSION_COOKIE))
            session = self._sessions.create(done.access_token, how="oidc",
                                            lifetime=done.lifetime)
            body = await render_template("signing_in.html", next_page=done.next_page,
                                         title="Signed in", name=name)
            response = Response(body, content_type=_HTML)
            response.headers.add("Set-Cookie", session_cookie(
                session.id, secure=secure, max_age=max(1, min(self._max_age,
                                                              int(done.lifetime)))))
            response.headers.add("Set-Cookie", clear_cookie(OIDC_COOKIE, secure=secure,
                                                            same_site="Lax"))
            return response
        response = await self._sign_in(headers, next_page=next_page, problem=problem)
        response.headers.add("Set-Cookie", clear_cookie(OIDC_COOKIE, secure=secure,
                                                        same_site="Lax"))
        return response

    async def sign_out(self, visit: Visit) -> Response:
        self._sessions.drop(visit.session.id)
        response = see_other("/ui/sign-in?signed_out=1")
        secure = self._secure(read_headers(request.scope["headers"]))
        response.headers.add("Set-Cookie", clear_cookie(SESSION_COOKIE, secure=secure))
        return response

    async def _sign_in(self, headers: dict[str, str], *, next_page: str = "",
                       problem: str = "", notice: str = "", status: int = 200) -> Response:
        """The sign-in page, with its form's CSRF token in a cookie of its own. It answers
        200 when it is refused a key too (the refusal is on the page, ``role="alert"``): a
        4xx page is an error in the browser's console."""
        token = cookie_value(headers.get("cookie"), SIGN_IN_COOKIE)
        if len(token) != len(new_token()):
            token = new_token()
        body = await render_template("sign_in.html", csrf=token, next_page=_local(next_page),
                                     problem=problem, notice=notice, nav=(),
                                     signed_in=False, title="Sign in",
                                     oidc_name=self._oidc.name if self._oidc is not None else "")
        response = Response(body, status=status, content_type=_HTML)
        response.headers.add("Set-Cookie", session_cookie(
            token, secure=self._secure(headers), max_age=_SIGN_IN_AGE, name=SIGN_IN_COOKIE))
        return response


async def _refused() -> Response:
    body = await render_template(
        "message.html", title="Refused", alert=True, nav=(), signed_in=False,
        message="This form was not sent from a page of this session (its CSRF token is "
                "missing or wrong). Reload the page and try again.")
    return Response(body, status=403, content_type=_HTML)


def _local(path: str) -> str:
    """``path`` when it is a page of the UI, else the overview (no open redirect)."""
    path = path.rstrip("?")
    if path.startswith("/ui/") and not path.startswith("/ui//") and "\\" not in path and (
            not path.startswith(("/ui/sign-in", "/ui/sign-out", "/ui/static/"))):
        return path
    return "/ui/"


