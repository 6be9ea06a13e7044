"""The AdminService over REST: one handler per ``/admin/...`` operation, each one call on
the admin stub.

Proto messages are read and written with ``json_format`` (snake_case fields): these are
operator routes, off the hot path.

Example::

    admin = AdminHandlers(core)
    answer = await admin.get_tenant(Request("GET", headers, params={"tenant_id": "ten_1"}))
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message
from llmgateway.v1 import admin_service_pb2 as pb

from gateway.facade.calls import Core, Method
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Answer, Request

__all__ = ["AdminHandlers"]


def _render(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def _parse(raw: bytes, message: Message) -> None:
    """The JSON body ``raw`` (nothing: ``{}``) read into ``message``."""
    try:
        data = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        raise ApiError(400, "The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise ApiError(400, f"Invalid request body: {exc}") from None
    except RecursionError:  # ParseDict (and its error message) recurse into the value
        raise ApiError(400, "Invalid request body: nested too deeply.") from None


_GROUPS = {"": "USAGE_SERIES_GROUP_UNSPECIFIED", "tenant": "USAGE_SERIES_GROUP_TENANT",
           "model": "USAGE_SERIES_GROUP_MODEL", "provider": "USAGE_SERIES_GROUP_PROVIDER"}


def _query(request: Request, message: Message, names: tuple[str, ...]) -> None:
    """The query parameters ``names`` (the last value of each) read into ``message``."""
    data: dict[str, Any] = {}
    for name in names:
        values = request.args(name)
        if values and values[-1] != "":
            data[name] = values[-1]
    if isinstance(message, pb.GetUsageSeriesRequest) and "group_by" in data:
        data["group_by"] = _GROUPS.get(data["group_by"].lower(), data["group_by"])
    try:
        json_format.ParseDict(data, message)
    except json_format.ParseError as exc:
        raise ApiError(400, f"Invalid query parameter: {exc}") from None


class AdminHandlers:
    """The ``/admin`` operations, over the core's ``AdminService``."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._stub = core.admin

    async def _answer(self, method: Method, message: Message, request: Request,
                      status: int = 200) -> Answer:
        response, headers = await self._core.call(method, message, request)
        return Answer(status, orjson.dumps(_render(response)), headers)

    async def list_tenants(self, request: Request) -> Answer:
        return await self._answer(self._stub.ListTenants, pb.ListTenantsRequest(), request)

    async def create_tenant(self, request: Request) -> Answer:
        message = pb.CreateTenantRequest()
        _parse(request.body, message.tenant)
        return await self._answer(self._stub.CreateTenant, message, request, 201)

    async def get_tenant(self, request: Request) -> Answer:
        return await self._answer(self._stub.GetTenant,
                                  pb.GetTenantRequest(tenant_id=request.params["tenant_id"]),
                                  request)

    async def update_tenant(self, request: Request) -> Answer:
        message = pb.UpdateTenantRequest(tenant_id=request.params["tenant_id"])
        _parse(request.body, message.tenant)
        message.remove_provider_credentials.extend(request.args("remove_provider_credentials"))
        return await self._answer(self._stub.UpdateTenant, message, request)

    async def delete_tenant(self, request: Request) -> Answer:
        return await self._answer(self._stub.DeleteTenant, pb.DeleteTenantRequest(
            tenant_id=request.params["tenant_id"]), request)

    async def list_keys(self, request: Request) -> Answer:
        return await self._answer(self._stub.ListApiKeys, pb.ListApiKeysRequest(
            tenant_id=request.params["tenant_id"]), request)

    async def create_key(self, request: Request) -> Answer:
        message = pb.CreateApiKeyRequest()
        _parse(request.body, message)
        message.tenant_id = request.params["tenant_id"]
        return await self._answer(self._stub.CreateApiKey, message, request, 201)

    async def rotate_key(self, request: Request) -> Answer:
        message = pb.RotateApiKeyRequest()
        _parse(request.body, message)
        message.tenant_id = request.params["tenant_id"]
        return await self._answer(self._stub.RotateApiKey, message, request)

    async def revoke_key(self, request: Request) -> Answer:
        return await self._answer(self._stub.RevokeApiKey,
                                  pb.RevokeApiKeyRequest(key_id=request.params["key_id"]),
                                  request)

    async def list_providers(self, request: Request) -> Answer:
        return await self._answer(self._stub.ListProviders, pb.ListProvidersRequest(), request)

    async def list_circuit_breakers(self, request: Request) -> Answer:
        return await self._answer(self._stub.ListCircuitBreakers,
                                  pb.ListCircuitBreakersRequest(), request)

    async def reset_circuit_breaker(self, request: Request) -> Answer:
        return await self._answer(self._stub.ResetCircuitBreaker, pb.ResetCircuitBreakerRequest(
            provider=request.params["provider"]), request)

    async def list_requests(self, request: Request) -> Answer:
        message = pb.ListRequestsRequest()
        _query(request, message, ("tenant_id", "model", "provider", "status", "request_id",
                                  "since", "until", "page_size", "page_token"))
        return await self._answer(self._stub.ListRequests, message, request)

    async def usage_series(self, request: Request) -> Answer:
        message = pb.GetUsageSeriesRequest()
        _query(request, message, ("since", "until", "step_seconds", "group_by", "tenant_id",
                                  "model"))
        return await self._answer(self._stub.GetUsageSeries, message, request)

    async def list_model_routes(self, request: Request) -> Answer:
        return await self._answer(self._stub.ListModelRoutes, pb.ListModelRoutesRequest(),
                                  request)

    async def system(self, request: Request) -> Answer:
        return await self._answer(self._stub.GetSystemInfo, pb.GetSystemInfoRequest(), request)
