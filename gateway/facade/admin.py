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

    async def body(message: Message, *, wrap: str = "") -> Message:
        """The JSON body parsed into ``message`` (into its ``wrap`` field when given)."""
        raw = await request.get_data(cache=False, as_text=False)
        try:
            data = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object.")
        try:
            json_format.ParseDict(data, getattr(message, wrap) if wrap else message)
        except json_format.ParseError as exc:
            raise ApiError(400, f"Invalid request body: {exc}") from None
        except RecursionError:  # ParseDict (and its error message) recurse into the value
            raise ApiError(400, "Invalid request body: nested too deeply.") from None
        return message

    async def call(method: Callable[..., Awaitable[Message]], message: Message,
                   status: int = 200) -> Response:
        value = request.headers.get("X-Request-ID")
        request_id = value if value and valid_request_id(value) else new_request_id()
        try:
            response = await method(message, metadata=metadata(request_id))
        except aio.AioRpcError as exc:
            return error(from_rpc_error(exc), request_id)
        return Response(orjson.dumps(_render(response)), status=status,
                        content_type="application/json", headers={"X-Request-ID": request_id})

    @routes.get("/tenants")
    async def list_tenants() -> Response:
        return await call(stub.ListTenants, admin_service_pb2.ListTenantsRequest())

    @routes.post("/tenants")
    async def create_tenant() -> Response:
        message = await body(admin_service_pb2.CreateTenantRequest(), wrap="tenant")
        return await call(stub.CreateTenant, message, 201)

    @routes.get("/tenants/<tenant_id>")
    async def get_tenant(tenant_id: str) -> Response:
        return await call(stub.GetTenant, admin_service_pb2.GetTenantRequest(tenant_id=tenant_id))

    @routes.put("/tenants/<tenant_id>")
    async def update_tenant(tenant_id: str) -> Response:
        message = admin_service_pb2.UpdateTenantRequest(tenant_id=tenant_id)
        raw = await body(admin_service_pb2.UpdateTenantRequest(), wrap="tenant")
        message.tenant.CopyFrom(raw.tenant)  # type: ignore[attr-defined]
        remove = request.args.getlist("remove_provider_credentials")
        message.remove_provider_credentials.extend(remove)
        return await call(stub.UpdateTenant, message)

    @routes.delete("/tenants/<tenant_id>")
    async def delete_tenant(tenant_id: str) -> Response:
        return await call(stub.DeleteTenant,
                          admin_service_pb2.DeleteTenantRequest(tenant_id=tenant_id))

    @routes.get("/tenants/<tenant_id>/keys")
    async def list_keys(tenant_id: str) -> Response:
        return await call(stub.ListApiKeys,
                          admin_service_pb2.ListApiKeysRequest(tenant_id=tenant_id))

    @routes.post("/tenants/<tenant_id>/keys")
    async def create_key(tenant_id: str) -> Response:
        message = await body(admin_service_pb2.CreateApiKeyRequest())
        message.tenant_id = tenant_id  # type: ignore[attr-defined]
        return await call(stub.CreateApiKey, message, 201)

    @routes.post("/tenants/<tenant_id>/rotate-key")
    async def rotate_key(tenant_id: str) -> Response:
        message = await body(admin_service_pb2.RotateApiKeyRequest())
        message.tenant_id = tenant_id  # type: ignore[attr-defined]
        return await call(stub.RotateApiKey, message)

    @routes.delete("/keys/<key_id>")
    async def revoke_key(key_id: str) -> Response:
        return await call(stub.RevokeApiKey, admin_service_pb2.RevokeApiKeyRequest(key_id=key_id))

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
