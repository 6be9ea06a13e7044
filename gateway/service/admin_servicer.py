"""``llmgateway.v1.AdminService``: operating the gateway.

Every method needs an admin key; with none configured the admin API refuses
everyone (secure by default) and says how to enable it.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Sequence

from google.protobuf import timestamp_pb2
from grpc import aio
from llmgateway.v1 import admin_service_pb2, admin_service_pb2_grpc

from gateway import __version__
from gateway.config import Settings
from gateway.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from gateway.resilience import BreakerBoard, BreakerState
from gateway.resilience.breaker import BreakerSnapshot

__all__ = ["AdminServicer", "bearer_token"]

_STATES = {
    BreakerState.CLOSED: admin_service_pb2.CIRCUIT_BREAKER_STATE_CLOSED,
    BreakerState.OPEN: admin_service_pb2.CIRCUIT_BREAKER_STATE_OPEN,
    BreakerState.HALF_OPEN: admin_service_pb2.CIRCUIT_BREAKER_STATE_HALF_OPEN,
}


def bearer_token(context: aio.ServicerContext) -> str:
    """The caller's key from ``authorization: Bearer ...`` or ``x-api-key`` metadata."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer":
                return token.strip()
        elif key == "x-api-key" and isinstance(value, str):
            return value.strip()
    return ""


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
                 degraded: Callable[[], Sequence[str]]):
        self._settings = settings
        self._breakers = breakers
        self._degraded = degraded
        self._admin_keys = [k.encode() for k in settings.auth.admin_keys]
        self._started = time.time()

    def _require_admin(self, context: aio.ServicerContext) -> None:
        if not self._settings.admin.enabled:
            raise PermissionDeniedError("the admin API is disabled (admin.enabled: false)")
        if not self._admin_keys:
            raise PermissionDeniedError(
                "no admin key is configured: set auth.admin_keys or GATEWAY_ADMIN_KEY")
        token = bearer_token(context).encode()
        if not token:
            raise AuthenticationError("an admin key is required (authorization: Bearer ...)")
        # Compare against every key, always, so timing says nothing about which matched.
        matched = False
        for key in self._admin_keys:
            matched |= hmac.compare_digest(token, key)
        if not matched:
            raise PermissionDeniedError("this key may not use the admin API")

    async def ListProviders(self, request: admin_service_pb2.ListProvidersRequest,
                            context: aio.ServicerContext
                            ) -> admin_service_pb2.ListProvidersResponse:
        self._require_admin(context)
        return admin_service_pb2.ListProvidersResponse(providers=[
            admin_service_pb2.ProviderInfo(name=name, type=cfg.type, base_url=cfg.base_url,
                                           models=cfg.models, has_api_key=bool(cfg.api_key))
            for name, cfg in self._settings.providers.items()
        ])

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
