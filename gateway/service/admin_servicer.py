"""``llmgateway.v1.AdminService``: operating the gateway.

The interceptor lets only admins in (an admin key, or an OIDC token with the
``admin`` role); with no admin key configured and no OIDC, nobody is one (secure
by default). ``admin.enabled: false`` turns the whole service off.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

from google.protobuf import timestamp_pb2
from grpc import aio
from llmgateway.v1 import admin_service_pb2, admin_service_pb2_grpc

from gateway import __version__
from gateway.config import Settings
from gateway.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from gateway.providers.base import Provider
from gateway.providers.keypool import KeyPool, KeySnapshot, KeyState
from gateway.resilience import BreakerBoard, BreakerState
from gateway.resilience.breaker import BreakerSnapshot
from gateway.service.model_table import model_routes
from gateway.service.tenant_admin import TenantAdmin, budget_period, budget_usd
from gateway.state.request_log import (
    Group,
    MemoryRequestLog,
    RequestFilter,
    RequestLog,
    RequestRecord,
    SeriesPoint,
)

__all__ = ["MAX_KEY_TTL", "AdminServicer"]

MAX_KEY_TTL = 100 * 365 * 86400  # seconds: the longest lifetime an API key may be given
PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000  # ListRequests
MAX_SERIES_POINTS = 10_000  # GetUsageSeries: (until - since) / step, at most

_GROUPS: dict[int, Group] = {
    admin_service_pb2.USAGE_SERIES_GROUP_UNSPECIFIED: "",
    admin_service_pb2.USAGE_SERIES_GROUP_TENANT: "tenant",
    admin_service_pb2.USAGE_SERIES_GROUP_MODEL: "model",
    admin_service_pb2.USAGE_SERIES_GROUP_PROVIDER: "provider",
}


def _seconds(ts: timestamp_pb2.Timestamp) -> float:
    return ts.seconds + ts.nanos / 1e9


def _entry(record: RequestRecord) -> admin_service_pb2.RequestLogEntry:
    return admin_service_pb2.RequestLogEntry(
        time=_timestamp(record.at), request_id=record.request_id, method=record.method,
        tenant_id=record.tenant, model=record.model, provider=record.provider,
        status=record.status, latency_ms=round(record.latency_ms, 3),
        prompt_tokens=record.prompt_tokens, completion_tokens=record.completion_tokens,
        cost_usd=record.cost_usd, stream=record.stream)


def _point(point: SeriesPoint) -> admin_service_pb2.UsagePoint:
    return admin_service_pb2.UsagePoint(
        time=_timestamp(point.at), key=point.key, requests=point.requests,
        errors=point.errors, latency_p50_ms=round(point.latency_ms(0.5), 3),
        latency_p95_ms=round(point.latency_ms(0.95), 3), prompt_tokens=point.prompt_tokens,
        completion_tokens=point.completion_tokens, cost_usd=point.cost_usd)


def _page_token(record: RequestRecord) -> str:
    return f"{record.at!r}/{record.request_id}"


def _after(token: str) -> tuple[float, str] | None:
    if not token:
        return None
    at, _, request_id = token.partition("/")
    try:
        return float(at), request_id
    except ValueError:
        raise InvalidRequestError("page_token is not one this API gave",
                                  param="page_token") from None

_STATES = {
    BreakerState.CLOSED: admin_service_pb2.CIRCUIT_BREAKER_STATE_CLOSED,
    BreakerState.OPEN: admin_service_pb2.CIRCUIT_BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: admin_service_pb2.CIRCUIT_BREAKER_STATE_HALF_OPEN,
}


_KEY_STATES = {
    KeyState.READY: admin_service_pb2.PROVIDER_KEY_STATE_READY,
    KeyState.RESTING: admin_service_pb2.PROVIDER_KEY_STATE_RESTING,
    KeyState.OPEN: admin_service_pb2.PROVIDER_KEY_STATE_OPEN,
}


def _key_to_proto(snap: KeySnapshot) -> admin_service_pb2.ProviderKey:
    return admin_service_pb2.ProviderKey(
        name=snap.name, index=snap.index, state=_KEY_STATES[snap.state], weight=snap.weight,
        requests_per_minute=snap.rpm, tokens_per_minute=snap.tpm,
        seconds_left=snap.seconds_left, consecutive_failures=snap.consecutive_failures)


def _timestamp(unix: float) -> timestamp_pb2.Timestamp | None:
    if not unix:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(unix * 1e9))
    return ts


def _breaker_to_proto(snap: BreakerSnapshot) -> admin_service_pb2.CircuitBreaker:
    return admin_service_pb2.CircuitBreaker(
        provider=snap.name, state=_STATES[snap.state], requests=snap.requests,
        failures=snap.failures, consecutive_failures=snap.consecutive_failures,
        opened_at=_timestamp(snap.opened_at), distributed=snap.distributed)


class AdminServicer(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(self, settings: Settings, breakers: BreakerBoard,
                 degraded: Callable[[], Sequence[str]], tenants: TenantAdmin,
                 providers: Mapping[str, Provider] | None = None,
                 requests: RequestLog | None = None):
        self._requests: RequestLog = requests if requests is not None else MemoryRequestLog()
        self._settings = settings
        self._providers = providers or {}  # the built providers, for their key pools
        self._breakers = breakers
        self._degraded = degraded
        self._tenants = tenants
        self._started = time.time()

    def _require_admin(self, context: aio.ServicerContext) -> None:
        if not self._settings.admin.enabled:
            raise PermissionDeniedError("the admin API is disabled (admin.enabled: false)")

    # --- tenants and keys ----------------------------------------------------------------

    async def CreateTenant(self, request: admin_service_pb2.CreateTenantRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.CreateTenantResponse:
        self._require_admin(context)
        tenant = await self._tenants.create(request.tenant)
        return admin_service_pb2.CreateTenantResponse(tenant=tenant)

    async def GetTenant(self, request: admin_service_pb2.GetTenantRequest,
                        context: aio.ServicerContext) -> admin_service_pb2.GetTenantResponse:
        self._require_admin(context)
        return admin_service_pb2.GetTenantResponse(
            tenant=await self._tenants.get(request.tenant_id))

    async def ListTenants(self, request: admin_service_pb2.ListTenantsRequest,
                          context: aio.ServicerContext
                          ) -> admin_service_pb2.ListTenantsResponse:
        self._require_admin(context)
        return admin_service_pb2.ListTenantsResponse(tenants=await self._tenants.all())

    async def UpdateTenant(self, request: admin_service_pb2.UpdateTenantRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.UpdateTenantResponse:
        self._require_admin(context)
        tenant = await self._tenants.update(request.tenant_id, request.tenant,
                                            request.remove_provider_credentials)
        return admin_service_pb2.UpdateTenantResponse(tenant=tenant)

    async def DeleteTenant(self, request: admin_service_pb2.DeleteTenantRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.DeleteTenantResponse:
        self._require_admin(context)
        await self._tenants.delete(request.tenant_id)
        return admin_service_pb2.DeleteTenantResponse()

    async def CreateApiKey(self, request: admin_service_pb2.CreateApiKeyRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.CreateApiKeyResponse:
        self._require_admin(context)
        if request.ttl_seconds < 0:
            raise InvalidRequestError("'ttl_seconds' cannot be negative", param="ttl_seconds")
        if request.ttl_seconds > MAX_KEY_TTL:  # an expiry past year 9999 has no Timestamp
            raise InvalidRequestError(f"'ttl_seconds' may be at most {MAX_KEY_TTL} (100 years)",
                                      param="ttl_seconds")
        budget = (budget_usd(request.monthly_budget_usd, "monthly_budget_usd")
                  if request.HasField("monthly_budget_usd") else None)
        key, secret = await self._tenants.create_key(
            request.tenant_id, request.name, request.ttl_seconds, budget=budget,
            period=budget_period(request.budget_period, "budget_period"))
        return admin_service_pb2.CreateApiKeyResponse(api_key=key, secret=secret)

    async def ListApiKeys(self, request: admin_service_pb2.ListApiKeysRequest,
                          context: aio.ServicerContext
                          ) -> admin_service_pb2.ListApiKeysResponse:
        self._require_admin(context)
        return admin_service_pb2.ListApiKeysResponse(
            api_keys=await self._tenants.list_keys(request.tenant_id))

    async def RevokeApiKey(self, request: admin_service_pb2.RevokeApiKeyRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.RevokeApiKeyResponse:
        self._require_admin(context)
        return admin_service_pb2.RevokeApiKeyResponse(
            api_key=await self._tenants.revoke_key(request.key_id))

    async def RotateApiKey(self, request: admin_service_pb2.RotateApiKeyRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.RotateApiKeyResponse:
        self._require_admin(context)
        key, secret, revoked = await self._tenants.rotate_key(request.tenant_id, request.key_id,
                                                              request.name)
        return admin_service_pb2.RotateApiKeyResponse(api_key=key, secret=secret,
                                                      revoked_key_ids=revoked)

    # --- operations ------------------------------------------------------------------------

    async def ListProviders(self, request: admin_service_pb2.ListProvidersRequest,
                            context: aio.ServicerContext
                            ) -> admin_service_pb2.ListProvidersResponse:
        self._require_admin(context)
        return admin_service_pb2.ListProvidersResponse(providers=[
            admin_service_pb2.ProviderInfo(name=name, type=cfg.type, base_url=cfg.base_url,
                                           models=cfg.models,
                                           has_api_key=bool(cfg.api_key or cfg.api_keys),
                                           keys=self._keys(name))
            for name, cfg in self._settings.providers.items()
        ])

    def _keys(self, provider: str) -> list[admin_service_pb2.ProviderKey]:
        pool = getattr(self._providers.get(provider), "keys", None)
        if not isinstance(pool, KeyPool):
            return []
        return [_key_to_proto(snap) for snap in pool.snapshot()]

    async def ListCircuitBreakers(self, request: admin_service_pb2.ListCircuitBreakersRequest,
                                  context: aio.ServicerContext
                                  ) -> admin_service_pb2.ListCircuitBreakersResponse:
        self._require_admin(context)
        names = sorted({*self._breakers.names(), *self._settings.providers})
        snapshots = [await self._breakers.get(name).snapshot() for name in names]
        return admin_service_pb2.ListCircuitBreakersResponse(
            circuit_breakers=[_breaker_to_proto(s) for s in snapshots])

    async def ResetCircuitBreaker(self, request: admin_service_pb2.ResetCircuitBreakerRequest,
                                  context: aio.ServicerContext
                                  ) -> admin_service_pb2.ResetCircuitBreakerResponse:
        self._require_admin(context)
        if request.provider not in self._settings.providers:
            raise NotFoundError(f"no provider named '{request.provider}'", param="provider")
        breaker = self._breakers.get(request.provider)
        await breaker.reset()
        return admin_service_pb2.ResetCircuitBreakerResponse(
            circuit_breaker=_breaker_to_proto(await breaker.snapshot()))

    async def ListRequests(self, request: admin_service_pb2.ListRequestsRequest,
                           context: aio.ServicerContext
                           ) -> admin_service_pb2.ListRequestsResponse:
        self._require_admin(context)
        size = request.page_size or PAGE_SIZE
        if not 0 < size <= MAX_PAGE_SIZE:
            raise InvalidRequestError(f"page_size must be 1 to {MAX_PAGE_SIZE}",
                                      param="page_size")
        where = RequestFilter(
            tenant=request.tenant_id, model=request.model, provider=request.provider,
            status=request.status, request_id=request.request_id,
            since=_seconds(request.since) if request.HasField("since") else 0.0,
            until=_seconds(request.until) if request.HasField("until") else 0.0)
        found = await self._requests.query(where, size + 1, _after(request.page_token))
        response = admin_service_pb2.ListRequestsResponse(
            requests=[_entry(r) for r in found[:size]])
        if len(found) > size:
            response.next_page_token = _page_token(found[size - 1])
        return response

    async def GetUsageSeries(self, request: admin_service_pb2.GetUsageSeriesRequest,
                             context: aio.ServicerContext
                             ) -> admin_service_pb2.GetUsageSeriesResponse:
        self._require_admin(context)
        now = time.time()
        until = _seconds(request.until) if request.HasField("until") else now
        since = _seconds(request.since) if request.HasField("since") else until - 3600
        step = request.step_seconds or 60
        if step <= 0 or step % 60:
            raise InvalidRequestError("step_seconds must be a positive multiple of 60",
                                      param="step_seconds")
        if since >= until:
            raise InvalidRequestError("since must be before until", param="since")
        if (until - since) / step > MAX_SERIES_POINTS:
            raise InvalidRequestError(f"at most {MAX_SERIES_POINTS} steps: widen step_seconds",
                                      param="step_seconds")
        group = _GROUPS.get(request.group_by)
        if group is None:
            raise InvalidRequestError("group_by is not a known grouping", param="group_by")
        points = await self._requests.series(since, until, step, group=group,
                                             tenant=request.tenant_id, model=request.model)
        return admin_service_pb2.GetUsageSeriesResponse(points=[_point(p) for p in points])

    async def ListModelRoutes(self, request: admin_service_pb2.ListModelRoutesRequest,
                              context: aio.ServicerContext
                              ) -> admin_service_pb2.ListModelRoutesResponse:
        self._require_admin(context)
        return admin_service_pb2.ListModelRoutesResponse(
            routes=model_routes(self._settings),
            default_provider=self._settings.default_provider)

    async def GetSystemInfo(self, request: admin_service_pb2.GetSystemInfoRequest,
                            context: aio.ServicerContext
                            ) -> admin_service_pb2.GetSystemInfoResponse:
        self._require_admin(context)
        s = self._settings
        return admin_service_pb2.GetSystemInfoResponse(
            version=__version__, pod_name=s.instance.pod_name,
            pod_namespace=s.instance.pod_namespace,
            started_at=_timestamp(self._started), providers=sorted(s.providers),
            model_aliases=len(s.models), distributed_circuit_breakers=s.circuit_breaker.distributed,
            redis_configured=bool(s.redis.url), database_configured=bool(s.database.url),
            degraded=list(self._degraded()))
