"""The grpc.aio server factory: gateway service, health, reflection, on bound ports.

Example::

    core = await create_server(router, ["127.0.0.1:0"])
    await core.server.start(); core.ports  # [the bound port]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from gateway.config import Settings
from gateway.lifecycle import InFlight
from gateway.observability import tracing
from gateway.resilience import BreakerBoard
from gateway.routing import Router
from gateway.service.admin_servicer import AdminServicer
from gateway.service.gateway_servicer import GatewayServicer
from gateway.service.interceptors import Guard, RequestInterceptor
from gateway.service.local_channel import LocalChannel
from gateway.service.tenant_admin import TenantAdmin
from gateway.state.base import ConversationStore, ResponseCache
from gateway.state.request_log import MemoryRequestLog, RequestLog
from gateway.tenancy.admission import Admission
from gateway.tenancy.pricing import Pricing
from gateway.tenancy.usage import Budgets

__all__ = ["SERVICE_NAMES", "CoreServer", "CoreServices", "create_server"]

SERVICE_NAMES = (
    gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
)
# Answers may be large; requests are held to server.max_request_body_size, as over REST
# (grpc applies the receive limit after decompression, see create_server).
_OPTIONS = (
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.so_reuseport", 1),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
)


@dataclass(slots=True)
class CoreServices:
    """Everything the core's servicers and interceptor use, built by the composition root."""

    settings: Settings
    router: Router
    breakers: BreakerBoard
    pricing: Pricing
    admission: Admission
    budgets: Budgets
    guard: Guard
    tenants: TenantAdmin
    conversations: ConversationStore
    conversation_ttl: float
    cache: ResponseCache | None
    cache_ttl: float
    in_flight: InFlight
    degraded: Callable[[], Sequence[str]] = tuple
    request_log: RequestLog = field(default_factory=MemoryRequestLog)


@dataclass(slots=True)
class CoreServer:
    server: aio.Server
    health: HealthServicer
    ports: list[int]
    local: LocalChannel  # the same services, called in process (the facade's channel)

    async def set_serving(self, serving: bool, *, process: bool = True) -> None:
        """Set every service's health; ``process=False`` leaves ``""`` (liveness) alone."""
        status = (health_pb2.HealthCheckResponse.SERVING if serving
                  else health_pb2.HealthCheckResponse.NOT_SERVING)
        for name in ("", *SERVICE_NAMES) if process else SERVICE_NAMES:
            await self.health.set(name, status)

    async def enter_drain(self) -> None:
        """Health answers NOT_SERVING for every service from now on."""
        await self.health.enter_graceful_shutdown()


class _GenericHandlersOnly:
    """The server as the generated ``add_*_to_server`` functions see it: each service is
    served by the generic handler they register first, not also as registered methods.

    grpc.aio's server keeps one pending call request per registered method and waits on
    all of them for every call it accepts; with generic handlers only, it waits on one
    (docs/performance.md). A service that arrives without a generic handler keeps its
    registered methods.
    """

    def __init__(self, server: aio.Server):
        self._server = server
        self._generic: set[str] = set()

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        for handler in handlers:
            service_name = getattr(handler, "service_name", None)
            if callable(service_name):
                self._generic.add(service_name())
        self._server.add_generic_rpc_handlers(handlers)

    def add_registered_method_handlers(self, service: str,
                                       handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        if service not in self._generic:
            self._server.add_registered_method_handlers(service, handlers)


async def create_server(services: CoreServices, addresses: Sequence[str], *,
                        traced: bool = False, max_concurrent_streams: int = 100) -> CoreServer:
    """Build the server and bind ``addresses`` (``host:port`` with port 0, or ``unix:``).

    With ``traced``, OpenTelemetry's interceptor runs first, so the request
    interceptor (and its log line) sees the server span.
    """
    interceptor = RequestInterceptor(services.in_flight, services.guard, services.request_log)
    interceptors = [tracing.grpc_server_interceptor()] if traced else []
    interceptors.append(interceptor)
    server = aio.server(interceptors=interceptors, options=(
        *_OPTIONS, ("grpc.max_concurrent_streams", max_concurrent_streams),
        # A gzip-compressed message is refused RESOURCE_EXHAUSTED once it inflates past
        # this (docs/reliability.md, limits on clients).
        ("grpc.max_receive_message_length", services.settings.server.max_request_body_size),
        # grpc counts a call's stream until this process releases it, a moment after the
        # client has its answer, and its rapid-reset protection refuses new streams past
        # the limit. Allowing as many finished calls as live ones keeps a client within
        # the limit from being refused, and still bounds them.
        ("grpc.http2.max_deallocating_streams", max_concurrent_streams)))
    local = LocalChannel(interceptor, traced=traced)
    gateway = GatewayServicer(services.router, services.pricing, services.admission,
                              services.budgets, services.conversations,
                              services.conversation_ttl, services.cache, services.cache_ttl,
                              share_within_tenant=services.settings.conversations
                              .share_within_tenant,
                              ping_interval=services.settings.server.stream_ping_interval,
                              max_record_bytes=services.settings.conversations
                              .max_record_bytes)
    admin = AdminServicer(services.settings, services.breakers, services.degraded,
                          services.tenants, services.router.registry.providers,
                          services.request_log)
    health = HealthServicer()
    served = _GenericHandlersOnly(server)
    for target in (served, local):
        gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(gateway, target)
        admin_service_pb2_grpc.add_AdminServiceServicer_to_server(admin, target)
        health_pb2_grpc.add_HealthServicer_to_server(health, target)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME),
        served,  # it calls the two add_* methods only
    )
    ports = []
    for address in addresses:
        try:
            port = server.add_insecure_port(address)
        except RuntimeError:
            raise OSError(f"cannot bind the gRPC address {address}") from None
        ports.append(port)
    core = CoreServer(server=server, health=health, ports=ports, local=local)
    await core.set_serving(True)
    return core
