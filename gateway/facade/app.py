"""The Quart application: thin routes over the core's gRPC stub.

Example::

    app = create_app(channel, max_body=10 << 20, drain=DrainState())
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

import grpc
import orjson
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmgateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc
from quart import Quart, Response, current_app, request
from werkzeug.exceptions import HTTPException

from gateway.clientip import TrustedProxies
from gateway.facade import calls, responses, translate
from gateway.facade.admin import admin_routes
from gateway.facade.errors import ApiError, from_rpc_error
from gateway.facade.hot import HotRoutes
from gateway.facade.openapi import openapi_document
from gateway.facade.tracing import TracingMiddleware
from gateway.lifecycle import DrainState
from gateway.observability import metrics
from gateway.service.local_channel import LocalChannel

__all__ = ["MAX_TIMEOUT", "DrainState", "create_app"]

MAX_TIMEOUT = calls.MAX_TIMEOUT

log = logging.getLogger("gateway.facade")

_JSON = "application/json"
_SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
_READY_TIMEOUT = 1.0
_CORE_SERVICE = "llmgateway.v1.GatewayService"
_UNCOUNTED = ("/health", "/ready", "/metrics")  # probes do not hold the drain open


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status=status, headers=headers, content_type=_JSON)


def _error(err: ApiError, request_id: str) -> Response:
    headers = err.headers()
    headers["X-Request-ID"] = request_id
    return Response(err.body(), status=err.status, headers=headers, content_type=_JSON)


def _request_id() -> str:
    return calls.request_id(request.headers.get)


def _metadata(request_id: str) -> tuple[tuple[str, str], ...]:
    proxies: TrustedProxies = current_app.config["TRUSTED_PROXIES"]
    forwarded = ", ".join(request.headers.getlist("X-Forwarded-For")) or None
    return calls.core_metadata(request.headers.get, request_id, request.remote_addr or "",
                               forwarded, proxies)


def _timeout() -> float | None:
    return calls.client_timeout(request.headers.get)


async def _read_json() -> dict[str, Any]:
    raw = await request.get_data(cache=False, as_text=False)
    return translate.parse_json_body(raw if isinstance(raw, bytes) else raw.encode())


def create_app(channel: aio.Channel | LocalChannel, *, max_body: int, drain: DrainState,
               body_timeout: float = 60.0, max_header_size: int = 16 * 1024,
               degraded: Callable[[], Sequence[str]] = tuple,
               checks: Callable[[], Mapping[str, str]] = dict,
               metrics_path: str | None = "/metrics", traced: bool = False,
               trusted_proxies: Sequence[str] = ()) -> Quart:
    """The facade over ``channel`` (a channel to the core, owned by the caller).

    ``degraded`` lists dependencies running in a fallback mode and ``checks`` the last
    result of each dependency check (both only known when the core runs in this
    process); readiness reports them.
    """
    app = Quart("llm-gateway", static_folder=None)  # no /static route: serve only the API
    app.config["MAX_CONTENT_LENGTH"] = max_body
    app.config["BODY_TIMEOUT"] = body_timeout
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    app.config["RESPONSE_TIMEOUT"] = None  # streams last as long as the model talks
    app.config["TRUSTED_PROXIES"] = TrustedProxies(trusted_proxies)
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    health = health_pb2_grpc.HealthStub(channel)

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 408:
            return _error(calls.body_too_slow(body_timeout), _request_id())
        if status == 413:
            return _error(calls.body_too_large(max_body), _request_id())
        kind = "invalid_request_error" if status < 500 else "server_error"
        message = {404: "Unknown path.", 405: "Method not allowed."}.get(
            status, exc.description or exc.name)
        return _error(ApiError(status, message, type=kind), _request_id())

    @app.errorhandler(ApiError)
    async def api_error(exc: ApiError) -> Response:
        return _error(exc, _request_id())

    @app.errorhandler(Exception)
    async def unexpected(exc: Exception) -> Response:
        log.error("unhandled error in the facade", exc_info=exc)
        return _error(ApiError(500, "internal error", type="server_error"), _request_id())

    @app.post("/v1/embeddings")
    async def embeddings() -> Response:
        request_id = _request_id()
        embed, encoding = translate.embeddings_request_to_proto(await _read_json())
        call = stub.CreateEmbeddings(embed, metadata=_metadata(request_id), timeout=_timeout())
        try:
            response = await call
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        headers = await calls.limit_headers(call, {"X-Request-ID": request_id})
        return _json(translate.embeddings_to_json(response, encoding), headers=headers)

    @app.post("/v1/responses")
    async def create_response() -> Response:
        request_id = _request_id()
        req, stream = responses.request_to_proto(await _read_json())
        metadata, timeout = _metadata(request_id), _timeout()
        if stream:
            return await _stream_response(stub, req, metadata, request_id, timeout)
        call = stub.CreateResponse(gateway_service_pb2.CreateResponseRequest(request=req),
                                   metadata=metadata, timeout=timeout)
        try:
            answer = await call
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        headers = await calls.limit_headers(call, {"X-Request-ID": request_id})
        return _json(responses.response_json(answer.response), headers=headers)

    @app.get("/v1/responses/<response_id>")
    async def get_response(response_id: str) -> Response:
        request_id = _request_id()
        try:
            answer = await stub.GetResponse(
                gateway_service_pb2.GetResponseRequest(response_id=response_id),
                metadata=_metadata(request_id))
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        return _json(responses.response_json(answer.response),
                     headers={"X-Request-ID": request_id})

    @app.delete("/v1/responses/<response_id>")
    async def delete_response(response_id: str) -> Response:
        request_id = _request_id()
        try:
            answer = await stub.DeleteResponse(
                gateway_service_pb2.DeleteResponseRequest(response_id=response_id),
                metadata=_metadata(request_id))
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        return _json({"id": answer.response_id, "object": "response", "deleted": answer.deleted},
                     headers={"X-Request-ID": request_id})

    @app.get("/v1/usage")
    async def usage() -> Response:
        request_id = _request_id()
        try:
            response = await stub.GetUsage(gateway_service_pb2.GetUsageRequest(),
                                           metadata=_metadata(request_id))
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        return _json(translate.usage_to_json(response), headers={"X-Request-ID": request_id})

    @app.get("/v1/models")
    async def list_models() -> Response:
        request_id = _request_id()
        try:
            response = await stub.ListModels(gateway_service_pb2.ListModelsRequest(),
                                             metadata=_metadata(request_id))
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        return _json({"object": "list",
                      "data": [translate.model_to_json(m) for m in response.models]},
                     headers={"X-Request-ID": request_id})

    @app.get("/v1/models/<path:model_id>")
    async def get_model(model_id: str) -> Response:
        request_id = _request_id()
        try:
            response = await stub.GetModel(gateway_service_pb2.GetModelRequest(model_id=model_id),
                                           metadata=_metadata(request_id))
        except aio.AioRpcError as exc:
            return _error(from_rpc_error(exc), request_id)
        return _json(translate.model_to_json(response.model),
                     headers={"X-Request-ID": request_id})

    async def ready() -> Response:
        if drain.draining:
            return _json({"status": "not_ready", "reason": "draining"}, 503)
        results = dict(checks())
        try:  # the core's service health: NOT_SERVING when a dependency check fails
            answer = await health.Check(health_pb2.HealthCheckRequest(service=_CORE_SERVICE),
                                        timeout=_READY_TIMEOUT)
        except aio.AioRpcError as exc:
            return _json({"status": "not_ready", "reason": f"grpc core: "
                          f"{exc.code().name.lower()}", "checks": results}, 503)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            failed = sorted(name for name, result in results.items() if result != "ok")
            reason = ", ".join(f"{name}: {results[name]}" for name in failed) or (
                "grpc core: not serving")
            return _json({"status": "not_ready", "reason": reason, "checks": results}, 503)
        body: dict[str, Any] = {"status": "ready", "checks": {"grpc_core": "serving", **results}}
        if notes := list(degraded()):
            body["degraded"] = notes
        return _json(body)

    app.register_blueprint(admin_routes(channel, _metadata, _error))
    async def metrics_text() -> Response:
        return Response(metrics.render(), content_type=metrics.CONTENT_TYPE_LATEST)

    if metrics_path:
        app.add_url_rule(metrics_path, "metrics", metrics_text, methods=["GET"])
    for path in ("/ready", "/health/ready"):
        app.add_url_rule(path, f"ready:{path}", ready, methods=["GET"])
    document = orjson.dumps(openapi_document(metrics_path=metrics_path, max_body=max_body,
                                             max_timeout=calls.MAX_TIMEOUT))

    async def openapi_json() -> Response:
        return Response(document, content_type=_JSON)

    app.add_url_rule("/openapi.json", "openapi", openapi_json, methods=["GET"])
    app.asgi_app = HotRoutes(app.asgi_app, stub, max_body=max_body,  # type: ignore[method-assign,arg-type,assignment]
                             body_timeout=body_timeout, proxies=app.config["TRUSTED_PROXIES"])
    if traced:
        app.asgi_app = TracingMiddleware(app.asgi_app)  # type: ignore[method-assign,arg-type,assignment]
    app.asgi_app = GuardMiddleware(app.asgi_app, drain,  # type: ignore[method-assign]
                                   max_header_size)
    return app


class GuardMiddleware:
    """The outermost layer: refuses oversize headers (431) before any work, and counts
    REST requests in flight (whole responses, streams included) for the drain."""

    def __init__(self, app: Any, drain: DrainState, max_header_size: int):
        self.app = app
        self.in_flight = drain.in_flight
        self.max_header_size = max_header_size

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = sum(len(k) + len(v) + 4 for k, v in scope["headers"])
        if size > self.max_header_size:
            error = ApiError(431, f"The request headers exceed {self.max_header_size} bytes.",
                             code="headers_too_large")
            await send({"type": "http.response.start", "status": 431,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": error.body()})
            return
        if scope["path"].startswith(_UNCOUNTED):
            await self.app(scope, receive, send)
            return
        self.in_flight.enter()
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight.exit()


async def _first(call: Any, request_id: str) -> Any:
    """A stream's first message, or the error Response when it failed before any.

    Waiting for it before answering lets a failure before any output be an ordinary
    HTTP error; after it, failures can only end the stream with an error event.
    """
    try:
        first = await call.read()
    except aio.AioRpcError as exc:
        return _error(from_rpc_error(exc), request_id)
    except BaseException:
        call.cancel()
        raise
    if first is grpc.aio.EOF:
        return _error(ApiError(502, "the upstream returned an empty stream", type="upstream_error",
                               code="empty_stream"), request_id)
    return first


def _named_sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


async def _stream_response(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
    req: Any,
    metadata: tuple[tuple[str, str], ...],
    request_id: str,
    timeout: float | None,
) -> Response:
    """A Responses stream as SSE with named events (see :func:`_first`)."""
    call = stub.StreamResponse(gateway_service_pb2.StreamResponseRequest(request=req),
                               metadata=metadata, timeout=timeout)
    first = await _first(call, request_id)
    if isinstance(first, Response):
        return first

    async def events() -> AsyncIterator[bytes]:
        sequence = first.event.sequence_number
        try:
            yield _named_sse(*responses.event_json(first.event))
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    break
                sequence = message.event.sequence_number
                yield _named_sse(*responses.event_json(message.event))
        except aio.AioRpcError as exc:
            error = from_rpc_error(exc)
            yield _named_sse("error", {"type": "error", "sequence_number": sequence + 1,
                                       "code": error.code or error.type,
                                       "message": error.message, "param": error.param})
        finally:
            call.cancel()

    headers = await calls.limit_headers(call, {**_SSE_HEADERS, "X-Request-ID": request_id})
    response = Response(events(), status=200, content_type="text/event-stream", headers=headers)
    response.timeout = None
    return response
