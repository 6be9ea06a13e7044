"""The facade's span: one SERVER span per REST request, continuing the client's W3C
``traceparent``, open until the last byte of the response (streams included).

It is ASGI middleware rather than Quart hooks so it spans the whole response; the
gRPC client interceptor then carries the context to the core.
"""

from __future__ import annotations

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from gateway.asgi import BODY_PASSES_THROUGH, ASGIApp, Message, Receive, Scope, Send

__all__ = ["TracingMiddleware"]

_tracer = trace.get_tracer("llm-gateway.facade")
_UNTRACED = ("/health", "/ready", "/metrics")


def _route(path: str) -> str:
    """A bounded span name: parameters replaced by their names."""
    if path.startswith("/v1/models/"):
        return "/v1/models/{id}"
    if path.startswith(("/admin/", "/ui/")):  # ids follow: /ui/tenants/ten_1/keys
        first, second = path.split("/")[1:3]
        return f"/{first}/{second}"
    return path


class TracingMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNTRACED):
            await self.app(scope, receive, send)
            return
        carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        parent = propagate.extract(carrier)
        method = scope["method"]
        route = _route(scope["path"])
        span = _tracer.start_span(f"{method} {route}", context=parent, kind=SpanKind.SERVER,
                                  attributes={"http.request.method": method,
                                              "http.route": route,
                                              "url.path": scope["path"]})
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
