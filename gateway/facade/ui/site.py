"""The admin UI's blueprint: sign-in and sign-out, the guard every page goes through,
and the headers every ``/ui`` answer carries.

The guard lets a page run only for a signed-in admin: without a live session a GET gets
the sign-in page in place, which returns to the page after signing in; a POST must
carry the session's CSRF token (a hidden ``csrf_token`` field) and not come from another
site, else 403. A call the admin API refuses as unauthenticated ends the session (the key
was removed). Signing in checks the key with ``GetSystemInfo`` and starts a new session
(a new id: an id fixed before signing in is never the signed-in one).

OIDC sign-in (authorization code with PKCE, role ``admin``) is not built yet: it would be
one more pair of routes here that end in :meth:`Sessions.create` with the access token as
the credential (``how="oidc"``); the pages need no change.

Example::

    app.register_blueprint(ui_blueprint(core, TrustedProxies(()), session_idle=28800))
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from llmgateway.v1 import admin_service_pb2 as pb
from quart import Blueprint, Response, render_template, request
from werkzeug.exceptions import HTTPException

from gateway.clientip import TrustedProxies
from gateway.facade.calls import Core
from gateway.facade.errors import ApiError
from gateway.facade.exchange import read_headers
from gateway.facade.ui import fmt
from gateway.facade.ui.assets import Assets
from gateway.facade.ui.client import AdminApi, explain
from gateway.facade.ui.guard import (
    SECURITY_HEADERS,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    clear_cookie,
    cookie_value,
    cross_site,
    over_tls,
    session_cookie,
)
from gateway.facade.ui.pages import Pages
from gateway.facade.ui.sessions import MemorySessions, Sessions, new_token, tokens_match
from gateway.facade.ui.visit import Page, Visit, see_other

__all__ = ["ui_blueprint"]

log = logging.getLogger("gateway.facade")

_HTML = "text/html; charset=utf-8"
_MAX_KEY = 4096
_SIGN_IN_AGE = 3600  # the sign-in form's token lives this long


def ui_blueprint(core: Core, proxies: TrustedProxies, *, session_idle: float,
                 sessions: Sessions | None = None) -> Blueprint:
    """The UI at ``/ui/``, calling the admin API through ``core``."""
    ui = _Ui(core, proxies, sessions or MemorySessions(session_idle), session_idle)
    bp = Blueprint("ui", __name__, url_prefix="/ui", template_folder="templates")
    bp.add_url_rule("/static/<name>", "asset", _asset_view(Assets.load()), methods=["GET"])
    bp.add_url_rule("/sign-in", "sign_in", ui.sign_in_page, methods=["GET"])
    bp.add_url_rule("/sign-in", "sign_in_post", ui.sign_in, methods=["POST"])
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
                 session_idle: float) -> None:
        self._core = core
        self._proxies = proxies
        self._sessions = sessions
        self._max_age = int(session_idle)

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
                                     signed_in=False, title="Sign in")
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


