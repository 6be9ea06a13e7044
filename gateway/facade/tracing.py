"""The facade's span: one SERVER span per REST request, continuing the client's W3C
``traceparent``, open until the last byte of the response (streams included).

It is ASGI middleware rather than Quart hooks so it spans the whole response; the
gRPC client interceptor then carries the context to the core. Its name is the method and
the route's template (``GET /v1/responses/{response_id}``), never the path itself: ids
and a scanner's junk paths would make names without bound. A path no route serves is
named by its method alone, as OpenTelemetry's HTTP conventions ask.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.asgi import BODY_PASSES_THROUGH, ASGIApp, Message, Receive, Scope, Send

__all__ = ["RouteNames", "TracingMiddleware"]

_tracer = trace.get_tracer("llm-gateway.facade")


_PARAMETER = re.compile(r"<(?:(path):)?(\w+)>")


class RouteNames:
    """The template a path matches, from the route table's Quart-style paths
    (``/admin/tenants/<tenant_id>``, ``/v1/models/<path:model_id>``); the UI's pages are
    named by their first part (``/ui/tenants``)."""

    def __init__(self, paths: Iterable[str]):
        self._exact: set[str] = set()
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for path in paths:
            if "<" not in path:
                self._exact.add(path)
                continue
            template = _PARAMETER.sub(lambda m: "{" + m.group(2) + "}", path)
            parts = _PARAMETER.split(path)  # literal, kind, name, literal, ...
            regex = "".join(re.escape(part) if i % 3 == 0 else ("" if i % 3 == 2 else
                            (".+" if part else "[^/]+")) for i, part in enumerate(parts))
            self._patterns.append((re.compile(regex), template))

    def __call__(self, path: str) -> str | None:
        if path in self._exact:
            return path
        if path == "/ui" or path.startswith("/ui/"):
            return "/".join(path.split("/")[:3])
        for pattern, template in self._patterns:
            if pattern.fullmatch(path):
                return template
        return None


class TracingMiddleware:
    def __init__(self, app: ASGIApp, routes: RouteNames, *, untraced: frozenset[str]):
        self.app = app
        self._routes = routes
        self._untraced = untraced  # probes and scrapes: exact paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self._untraced:
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(carrier)
        method = scope["method"]
        route = self._routes(scope["path"])
        attributes = {"http.request.method": method, "url.path": scope["path"]}
        if route is not None:
            attributes["http.route"] = route
        span = _tracer.start_span(f"{method} {route}" if route else method, context=parent,
                                  kind=SpanKind.SERVER, attributes=attributes)
        token = otel_context.attach(trace.set_span_in_context(span, parent))

        async def traced_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status = int(message["status"])
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        setattr(traced_send, BODY_PASSES_THROUGH, send)  # bodies are not looked at here
        try:
            await self.app(scope, receive, traced_send)
        finally:
            otel_context.detach(token)
            span.end()
