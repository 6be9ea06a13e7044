"""The AdminService over REST: ``/admin/...`` routes, each one call on the admin stub.

Proto messages are rendered with ``json_format`` (snake_case fields): these are
operator routes, off the hot path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from grpc import aio
from llmgateway.v1 import admin_service_pb2, admin_service_pb2_grpc
from quart import Blueprint, Response, request

from gateway.facade.errors import ApiError, from_rpc_error
from gateway.observability.context import new_request_id, valid_request_id

__all__ = ["admin_routes"]

Metadata = Callable[[str], tuple[tuple[str, str], ...]]
ErrorResponse = Callable[[ApiError, str], Response]


def _render(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def admin_routes(channel: aio.Channel, metadata: Metadata, error: ErrorResponse) -> Blueprint:
    stub = admin_service_pb2_grpc.AdminServiceStub(channel)
    routes = Blueprint("admin", __name__, url_prefix="/admin")

    async def call(method: Callable[..., Awaitable[Message]], message: Message) -> Response:
        value = request.headers.get("X-Request-ID")
        request_id = value if value and valid_request_id(value) else new_request_id()
        try:
            response = await method(message, metadata=metadata(request_id))
        except aio.AioRpcError as exc:
            return error(from_rpc_error(exc), request_id)
        return Response(orjson.dumps(_render(response)), content_type="application/json",
                        headers={"X-Request-ID": request_id})

    @routes.get("/providers")
    async def providers() -> Response:
        return await call(stub.ListProviders, admin_service_pb2.ListProvidersRequest())

    @routes.get("/circuit-breakers")
    async def circuit_breakers() -> Response:
        return await call(stub.ListCircuitBreakers,
                          admin_service_pb2.ListCircuitBreakersRequest())

    @routes.post("/circuit-breakers/<path:provider>/reset")
    async def reset_circuit_breaker(provider: str) -> Response:
        return await call(stub.ResetCircuitBreaker,
                          admin_service_pb2.ResetCircuitBreakerRequest(provider=provider))

    @routes.get("/system")
    async def system() -> Response:
        return await call(stub.GetSystemInfo, admin_service_pb2.GetSystemInfoRequest())

    return routes
