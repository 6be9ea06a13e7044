"""The facade's ASGI application: every route of :mod:`gateway.facade.routes` served by
Quart, the lean ones first by :class:`HotRoutes`, behind tracing and the guard.

Quart serves a route through :func:`_view`, which reads the Quart request into a
:class:`Request` and writes the handler's answer back as a Quart response (streams
included); Quart also answers the paths no route serves (404) and wrong methods (405).

Example::

    app = create_app(channel, max_body=10 << 20, drain=DrainState())
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import orjson
from grpc import aio
from quart import Quart, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge, RequestTimeout

from gateway.asgi import BODY_PASSES_THROUGH, ASGIApp, Message, Receive, Scope, Send
from gateway.clientip import TrustedProxies
from gateway.facade.calls import MAX_TIMEOUT, Core, body_too_large, body_too_slow
from gateway.facade.errors import ApiError
from gateway.facade.exchange import (
    JSON,
    SSE,
    SSE_HEADERS,
    Answer,
    Request,
    Route,
    StreamAnswer,
    credential_missing,
    event_bytes,
    internal_error,
    no_credential,
    openai_error,
)
from gateway.facade.hot import HotRoutes
from gateway.facade.openapi import openapi_document
from gateway.facade.ops import OperatorHandlers
from gateway.facade.routes import routes
from gateway.facade.tracing import RouteNames, TracingMiddleware
from gateway.facade.ui import ui_blueprint
from gateway.lifecycle import DrainState

if TYPE_CHECKING:
    from gateway.facade.ui.oidc_sign_in import OidcSignIn
    from gateway.service.local_channel import LocalChannel

__all__ = ["MAX_TIMEOUT", "DrainState", "GuardMiddleware", "create_app", "quart_app"]

log = logging.getLogger("gateway.facade")

_PROBES = ("/health", "/health/live", "/ready", "/health/ready")


def create_app(channel: aio.Channel | LocalChannel, *, max_body: int, drain: DrainState,
               body_timeout: float = 60.0, max_header_size: int = 16 * 1024,
               degraded: Callable[[], Sequence[str]] = tuple,
               checks: Callable[[], Mapping[str, str]] = dict,
               metrics_path: str | None = "/metrics", traced: bool = False,
               trusted_proxies: Sequence[str] = (),
               credentials_required: bool = False, ui: bool = False,
               ui_session_idle: float = 8 * 3600, ui_oidc: OidcSignIn | None = None) -> Quart:
    """The facade over ``channel`` (a channel to the core, owned by the caller).

    ``degraded`` lists dependencies running in a fallback mode and ``checks`` the last
    result of each dependency check (both only known when the core runs in this
    process); readiness reports them. With ``credentials_required`` (auth on), a request
    with a body and no credential at all is a 401 before its body is read. ``ui`` serves
    the admin web UI at ``/ui/`` (:mod:`gateway.facade.ui`), its sessions ending after
    ``ui_session_idle`` seconds without a request; ``ui_oidc`` lets it sign in through the
    OIDC issuer too.
    """
    proxies = TrustedProxies(trusted_proxies)
    core = Core(channel, proxies)
    document = orjson.dumps(openapi_document(metrics_path=metrics_path, max_body=max_body,
                                             max_timeout=MAX_TIMEOUT))
    ops = OperatorHandlers(core, drain, document=document, degraded=degraded, checks=checks)
    table = routes(core, ops, metrics_path=metrics_path)
    # Probes and scrapes neither hold the drain open nor make traces.
    probes = frozenset((*_PROBES, *((metrics_path,) if metrics_path else ())))
    app = quart_app(table, max_body=max_body, body_timeout=body_timeout,
                    credentials_required=credentials_required)
    if ui:
        app.register_blueprint(ui_blueprint(core, proxies, session_idle=ui_session_idle,
                                            oidc=ui_oidc))
    app.asgi_app = HotRoutes(app.asgi_app, table, max_body=max_body,  # type: ignore[method-assign,arg-type,assignment]
                             body_timeout=body_timeout,
                             credentials_required=credentials_required)
    if traced:
        names = RouteNames(route.path for route in table)
        app.asgi_app = TracingMiddleware(app.asgi_app, names, untraced=probes)  # type: ignore[method-assign,arg-type,assignment]
    app.asgi_app = GuardMiddleware(app.asgi_app, drain,  # type: ignore[method-assign,arg-type,assignment]
                                   max_header_size, uncounted=probes)
    return app


def quart_app(table: Iterable[Route], *, max_body: int, body_timeout: float,
              credentials_required: bool = False) -> Quart:
    """Quart serving every route of ``table``, and answering any other path (404) or
    method (405) in OpenAI's shape."""
    app = Quart("llm-gateway", static_folder=None)  # no /static route: serve only the API
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.config["BODY_TIMEOUT"] = body_timeout
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["RESPONSE_TIMEOUT"] = None  # streams last as long as the model talks
    for route in table:
        app.add_url_rule(route.path, f"{route.method} {route.path}",
                         _view(route, credentials_required), methods=[route.method])

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        kind = "invalid_request_error" if status < 500 else "server_error"
        message = {404: "Unknown path.", 405: "Method not allowed."}.get(
            status, exc.description or exc.name)
        return _error(ApiError(status, message, type=kind))

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.error("unhandled error in the facade", exc_info=exc)
        return _error(internal_error())

    return app


def _view(route: Route, credentials_required: bool) -> Callable[..., Awaitable[Response]]:
    """``route``'s handler as a Quart view."""

    async def view(**params: str) -> Response:
        req = Request.from_scope(request.scope, params)
        try:
            if route.reads_body:
                if credentials_required and credential_missing(req):
                    raise no_credential(request.scope.get("http_version", "1.1"))
                req.body = await _body()
            answer = await route.handler(req)
        except ApiError as exc:
            answer = route.errors(exc, req.request_id)
        except Exception:
            log.exception("unhandled error in the route %s", route.path)
            answer = route.errors(internal_error(), req.request_id)
        return _response(answer)

    return view


async def _body() -> bytes:
    """The Quart request's body, within Quart's size and time limits."""
    try:
        raw = await request.get_data(cache=False, as_text=False)
    except RequestEntityTooLarge:
        raise body_too_large(current_app.config["MAX_CONTENT_LENGTH"]) from None
    except RequestTimeout:
        raise body_too_slow(current_app.config["BODY_TIMEOUT"]) from None
    return raw if isinstance(raw, bytes) else raw.encode()


def _response(answer: Answer | StreamAnswer) -> Response:
    if isinstance(answer, Answer):
        return Response(answer.body, status=answer.status, headers=answer.headers,
                        content_type=answer.content_type)
    response = Response(event_bytes(answer.events), status=200, content_type=SSE,
                        headers={**SSE_HEADERS, **answer.headers})
    response.timeout = None
    return response


def _error(error: ApiError) -> Response:
    """An error Quart raised itself (no route's handler ran), in OpenAI's shape."""
    return _response(openai_error(error, Request.from_scope(request.scope).request_id))


class GuardMiddleware:
    """The outermost layer: refuses oversize headers (431) before any work, and counts
    REST requests in flight (whole responses, streams included) for the drain."""

    def __init__(self, app: ASGIApp, drain: DrainState, max_header_size: int, *,
                 uncounted: frozenset[str] = frozenset()):
        self.app = app
        self.in_flight = drain.in_flight
        self.max_header_size = max_header_size
        self._uncounted = uncounted  # paths (probes, scrapes) that do not hold the drain

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = 0
        framings = 0  # Content-Length and Transfer-Encoding lines
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
            if name == b"content-length" or name == b"transfer-encoding":
                framings += 1
        if size > self.max_header_size:
            error = ApiError(431, f"The request headers exceed {self.max_header_size} bytes.",
                             code="headers_too_large")
            await send({"type": "http.response.start", "status": 431,
                        "headers": [(b"content-type", JSON.encode())]})
            await send({"type": "http.response.body", "body": error.body()})
            return
        if framings > 1 and scope.get("http_version", "1.1") in ("1.0", "1.1"):
            send = _closing_after(send)  # a body framed two ways: the connection goes after
        if scope["path"] in self._uncounted:
            await self.app(scope, receive, send)
            return
        self.in_flight.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.exit()


def _closing_after(send: Send) -> Send:
    """``send`` whose answer says ``Connection: close``: a request framed by both
    ``Content-Length`` and ``Transfer-Encoding`` (or either one twice) may be a smuggling
    attempt, and RFC 9112 (6.3) has the server close the connection after answering it."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()),
                                              (b"connection", b"close")]}
        await send(message)

    setattr(closing, BODY_PASSES_THROUGH, send)  # bodies pass unchanged
    return closing
