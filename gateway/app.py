"""The composition root: builds every resource, runs gRPC and Hypercorn, owns the
one shutdown path.

Shutdown, on the first SIGTERM or SIGINT: readiness and gRPC health go
NOT_SERVING at once; Hypercorn stops accepting and lets in-flight requests and
streams finish; the gRPC server stops with the drain time that is left; then
channels and provider sessions close. Everything is bounded by
``server.shutdown_timeout``. A second signal exits at once.

Example::

    async with Gateway(settings) as gateway:
        print(gateway.http_port, gateway.grpc_port)
        await gateway.wait_closed()
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Literal, Protocol, TypeVar, cast

from grpc import aio
from hypercorn.config import Config as HypercornConfig
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from gateway import __version__
from gateway.clientip import TrustedProxies
from gateway.config import Settings, parse_address
from gateway.edge import serve as serve_http
from gateway.facade import DrainState, create_app
from gateway.facade.ui.oidc_sign_in import OidcSignIn
from gateway.gc_tuning import tune_for_serving
from gateway.observability import metrics, tracing
from gateway.providers import build_providers
from gateway.providers.transport import new_session
from gateway.resilience import BreakerBoard, LocalBreaker, Pipeline, RetryPolicy
from gateway.resilience.breaker import Breaker, report_transition
from gateway.resilience.redis_breaker import RedisBreakerGroup
from gateway.routing import ModelRegistry, Router
from gateway.routing.registry import Target
from gateway.service import CoreServer, CoreServices, create_server
from gateway.service.charge import cost_estimator
from gateway.service.interceptors import Guard
from gateway.service.local_channel import LocalChannel
from gateway.service.tenant_admin import TenantAdmin
from gateway.state.factory import build_conversation_store, build_response_cache
from gateway.state.request_log import MemoryRequestLog, NoRequestLog, RequestLog
from gateway.tenancy.admission import Admission
from gateway.tenancy.auth import Authenticator
from gateway.tenancy.budget_ledger import RedisBudgetLedger
from gateway.tenancy.failed_auth import FailedAuthLimiter
from gateway.tenancy.limits import LocalRateLimiter, RateLimiter, RedisRateLimiter
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import Limits, TenantStore
from gateway.tenancy.pricing import Pricing
from gateway.tenancy.usage import Budgets, UsageRecorder

__all__ = ["Gateway", "run"]

log = logging.getLogger("gateway")

DEPENDENCY_INTERVAL = 2.0  # seconds between readiness checks of Redis, PostgreSQL, stores
DEPENDENCY_TIMEOUT = 1.0

Only = Literal["grpc", "http"] | None
_R = TypeVar("_R", bound="Closeable")


def bind_socket(address: str) -> socket.socket:
    """A listening TCP socket with SO_REUSEPORT, so worker processes share the port."""
    host, port = parse_address(address)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _grpc_bind_address(address: str) -> str:
    host, port = parse_address(address, default_host="::")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Probe(Protocol):
    """A dependency readiness asks: answers, or raises when it cannot."""

    def ping(self) -> Awaitable[object]: ...


class Fallback(Protocol):
    """A part that can run in a fallback mode (``degraded`` true while it does)."""

    @property
    def degraded(self) -> bool: ...


class Closeable(Protocol):
    async def aclose(self) -> None: ...


class Gateway:
    """One gateway process: the gRPC core, the REST facade, or both.

    Each resource is built by one of the ``_build_*`` functions, which enters its closing
    into an :class:`~contextlib.AsyncExitStack` as it is made: shutdown closes them in the
    reverse order of construction, and a start that fails half-way closes what it built.
    """

    def __init__(self, settings: Settings, *, only: Only = None, grpc_target: str = ""):
        if only == "http" and not grpc_target:
            raise ValueError("--only http needs --grpc-target HOST:PORT")
        self.settings = settings
        self.only = only
        self.grpc_target = grpc_target
        self.drain = DrainState()
        self.http_port = 0
        self.grpc_port = 0
        self.checks: dict[str, str] = {}  # the last dependency check, by dependency
        self.breakers: BreakerBoard | None = None
        self._stack = AsyncExitStack()
        self._probes: dict[str, Probe] = {}  # what readiness asks, by name
        self._fallbacks: list[tuple[Fallback, str]] = []  # what degraded() reports
        self._redis: Redis | None = None
        self._core: CoreServer | None = None
        self._http_task: asyncio.Task[None] | None = None
        self._signalled = asyncio.Event()  # SIGTERM/SIGINT came: drain
        self._stop_http = asyncio.Event()  # the drain is over: Hypercorn stops
        self._closed = asyncio.Event()

    # --- start -------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def _start(self) -> None:
        s = self.settings
        traced = await self._build_tracing()
        core_target: str | LocalChannel = self.grpc_target
        if self.only != "http":
            core_target = await self._build_core(traced)
        if self.only != "grpc":
            await self._build_facade(core_target, traced)
        metrics.instance(__version__, s.instance.pod_name, s.instance.pod_namespace)
        log.info("serving", extra={"fields": {
            "http_port": self.http_port or None, "grpc_port": self.grpc_port or None,
            "providers": sorted(s.providers) if self.only != "http" else [],
            "core": core_target if isinstance(core_target, str) and core_target else "in-process",
        }})

    def _closes(self, name: str, close: Callable[[], Awaitable[object]]) -> None:
        """Close ``name`` at shutdown (after what is built later); a failure is logged."""

        async def closing() -> None:
            try:
                await close()
            except Exception:
                log.warning("closing %s failed", name, exc_info=True)

        self._stack.push_async_callback(closing)

    async def _opened(self, name: str, resource: _R) -> _R:
        """``resource`` started (when it has ``start``) and closed at shutdown."""
        start = getattr(resource, "start", None)
        if start is not None:
            await start()
        self._closes(name, resource.aclose)
        return resource

    async def _build_tracing(self) -> bool:
        provider = tracing.setup_tracing(self.settings)
        if provider is None:
            return False
        shutdown = getattr(provider, "shutdown", None)
        if shutdown is not None:  # flushes the batch of spans still buffered
            self._closes("tracing", lambda: asyncio.to_thread(shutdown))
        return True

    async def _build_core(self, traced: bool) -> str | LocalChannel:
        """The gRPC core: providers, routing, tenancy, state, the server. Returns the
        facade's way to it."""
        s = self.settings
        providers = build_providers(s.providers)
        for name, provider in providers.items():
            self._closes(f"provider {name}", provider.aclose)
        registry = ModelRegistry(providers, s.providers, s.models, s.default_provider)
        self.breakers = self._build_breakers()
        await self.breakers.export_states(s.providers)
        retry = RetryPolicy(s.retry.attempts, float(s.retry.backoff), float(s.retry.max_backoff))
        pricing = Pricing(s.pricing)

        def price(target: Target) -> float | None:
            found = pricing.price((target.model, target.label))
            return None if found is None else found.input_per_mtok + found.output_per_mtok

        router = Router(registry, Pipeline(self.breakers, retry), price=price)
        services = await self._build_services(router)
        addresses = [_grpc_bind_address(s.server.grpc_address)]
        unix_path = ""
        if self.only is None and s.server.core_transport == "unix":
            unix_path = os.path.join(tempfile.gettempdir(),
                                     f"llm-gateway-{os.getpid()}-{id(self):x}.sock")
            addresses.append(f"unix:{unix_path}")
            self._stack.callback(_unlink, unix_path)
        self._core = core = await create_server(
            services, addresses, traced=traced,
            max_concurrent_streams=s.server.max_concurrent_streams)
        await core.server.start()
        self._closes("grpc server", lambda: core.server.stop(grace=None))
        if unix_path:  # the facade's private hop: no other user may call through it
            os.chmod(unix_path, 0o600)
        self.grpc_port = core.ports[0]
        await self._check_dependencies()
        monitor = asyncio.create_task(self._watch_dependencies(), name="readiness")
        self._closes("readiness monitor", lambda: _cancelled(monitor))
        if self.only == "grpc":
            return ""
        if s.server.core_transport == "local":
            return core.local
        return f"unix:{unix_path}" if unix_path else f"127.0.0.1:{self.grpc_port}"

    async def _build_services(self, router: Router) -> CoreServices:
        """Tenancy and limits: the store, keys, OIDC, limiters, budgets, usage, state."""
        # What only some configurations use is imported only by them: PostgreSQL (asyncpg),
        # OIDC (PyJWT) and the cipher (cryptography) are ~30 MB a process otherwise.
        s = self.settings
        cipher = None
        if s.instance.encryption_key:  # a malformed key refuses to start
            from gateway.tenancy.crypto import CredentialCipher
            cipher = CredentialCipher.from_setting(s.instance.encryption_key)
        store: TenantStore = MemoryTenantStore()
        if s.database.url:
            from gateway.tenancy.postgres_store import PostgresTenantStore
            store = PostgresTenantStore(s.database.url)
            self._probes["database"] = store
        await self._opened("tenant store", store)
        oidc = None
        if s.auth.oidc.enabled:
            from gateway.tenancy.oidc import OidcVerifier
            # Loads the issuer's keys now; an outage only logs.
            oidc = await self._opened("oidc", OidcVerifier(s.auth.oidc))
        authenticator = Authenticator(s.auth, store, oidc)
        if (risk := await authenticator.unguarded()) is not None:
            log.warning(risk)
        limiter: RateLimiter = LocalRateLimiter()
        if s.redis.url:
            redis_limiter = RedisRateLimiter(self.redis())
            self._fallbacks.append(
                (redis_limiter, "redis: unreachable, rate limits are not enforced (failing open)"))
            limiter = redis_limiter
        await self._opened("rate limiter", limiter)
        rl = s.rate_limit
        identity_limits = (Limits(requests_per_second=rl.requests_per_second, burst=rl.burst)
                           if rl.enabled else None)
        ledger = None
        if s.redis.url:
            ledger = await self._opened("budget ledger", RedisBudgetLedger(self.redis()))
        budgets = Budgets(store, ledger=ledger, on_outage=s.budgets.on_redis_outage)
        if ledger is not None:
            self._fallbacks.append(
                (budgets, "redis: unreachable, budgets are "
                 + ("refused" if s.budgets.on_redis_outage == "closed"
                    else "held per replica")))
        # Usage rows are flushed before the store closes (built after it, closed before).
        recorder = await self._opened("usage recorder", UsageRecorder(store))
        conversations = build_conversation_store(s.conversations, s.redis.url, self.redis)
        if s.conversations.store != "memory":
            self._probes["conversations"] = conversations
        await self._opened("conversation store", conversations)
        logged = s.request_log
        request_log: RequestLog = MemoryRequestLog(capacity=logged.memory_records)
        if not logged.enabled:
            request_log = NoRequestLog()
        elif s.database.url:  # closed after the gRPC server (built later): nothing is missed
            from gateway.state.request_log_postgres import PostgresRequestLog
            request_log = PostgresRequestLog(
                s.database.url, memory_records=logged.memory_records,
                retention=float(logged.retention),
                aggregate_retention=float(logged.aggregate_retention))
        await self._opened("request log", request_log)
        cache = build_response_cache(s.cache, self.redis)
        if cache is not None:
            await self._opened("response cache", cache)
        if isinstance(getattr(cache, "degraded", None), bool):
            self._fallbacks.append(
                (cast(Fallback, cache), "redis: unreachable, the response cache is bypassed"))
        assert self.breakers is not None
        pricing = Pricing(s.pricing)
        return CoreServices(
            settings=s, router=router, breakers=self.breakers, pricing=pricing,
            admission=Admission(limiter, budgets, recorder,
                                identity_limits=identity_limits, cipher=cipher,
                                cost=cost_estimator(router, pricing)),
            budgets=budgets,
            guard=Guard(authenticator, TrustedProxies(s.server.trusted_proxy_cidrs),
                        FailedAuthLimiter(limit=s.auth.max_failed_attempts,
                                          window=float(s.auth.failed_attempts_window))),
            tenants=TenantAdmin(store, cipher, authenticator, list(s.providers)),
            conversations=conversations, conversation_ttl=float(s.conversations.ttl),
            cache=cache, cache_ttl=float(s.cache.ttl),
            request_log=request_log,
            in_flight=self.drain.in_flight, degraded=self.degraded)

    def _build_breakers(self) -> BreakerBoard:
        cb = self.settings.circuit_breaker
        if cb.distributed:
            group = RedisBreakerGroup(self.redis(), cb, on_transition=report_transition)
            self._closes("redis breakers", group.aclose)
            self._fallbacks.append(
                (group, "redis: unreachable, circuit breakers are local to this replica"))

            def shared(name: str) -> Breaker:
                return group.breaker(name)

            return BreakerBoard(shared)

        def local(name: str) -> Breaker:
            return LocalBreaker(name, cb, on_transition=report_transition)

        return BreakerBoard(local)

    async def _ui_oidc(self) -> OidcSignIn | None:
        """The UI's sign-in through the OIDC issuer, when ``ui.oidc.client_id`` is set:
        ID tokens verified for that client, the token endpoint reached over its own
        session."""
        s = self.settings
        if not (s.ui_enabled and s.ui.oidc.client_id):
            return None
        from gateway.tenancy.oidc import OidcVerifier
        verifier = await self._opened("ui oidc", OidcVerifier(
            dataclasses.replace(s.auth.oidc, audience=(s.ui.oidc.client_id,))))
        http = new_session(4)
        self._closes("ui oidc http", http.close)
        return OidcSignIn(s.ui.oidc, verifier, http)

    async def _build_facade(self, core: str | LocalChannel, traced: bool) -> None:
        """The REST facade over ``core`` (in process, or a gRPC target), and its server."""
        s = self.settings
        if isinstance(core, str):
            channel: aio.Channel | LocalChannel = aio.insecure_channel(core, options=(
                ("grpc.max_receive_message_length", 64 * 1024 * 1024),
                ("grpc.max_send_message_length", 64 * 1024 * 1024),
            ), interceptors=tracing.grpc_client_interceptors() if traced else None)
            self._closes("core channel", channel.close)
        else:
            channel = core
        obs = s.observability
        app = create_app(channel, max_body=s.server.max_request_body_size,
                         body_timeout=float(s.server.body_timeout),
                         max_header_size=s.server.max_header_size,
                         drain=self.drain, degraded=self.degraded, traced=traced,
                         checks=lambda: self.checks,
                         metrics_path=(obs.metrics.path if obs.enabled and obs.metrics.enabled
                                       else None),
                         trusted_proxies=s.server.trusted_proxy_cidrs,
                         credentials_required=s.auth.api_keys.enabled or s.auth.oidc.enabled,
                         ui=s.ui_enabled, ui_session_idle=float(s.ui.session_idle),
                         ui_oidc=await self._ui_oidc())
        sock = bind_socket(s.server.address)
        self.http_port = sock.getsockname()[1]
        hc = HypercornConfig()
        hc.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns and closes it from here
        hc.graceful_timeout = float(s.server.shutdown_timeout)
        # Connection limits (docs/reliability.md): idle connections and requests whose
        # headers never finish close after keep_alive_timeout; oversize headers are
        # refused; bodies are bounded by size (413) and by time (408).
        hc.keep_alive_timeout = float(s.server.keep_alive_timeout)
        hc.h11_max_incomplete_size = s.server.max_header_size
        hc.h2_max_header_list_size = s.server.max_header_size
        hc.h2_max_concurrent_streams = s.server.max_concurrent_streams
        hc.accesslog = None
        hc.errorlog = logging.getLogger("hypercorn.error")
        self._http_task = task = asyncio.create_task(
            serve_http(app, hc, shutdown_trigger=self._stop_http.wait), name="http")
        self._closes("http server", lambda: _cancelled(task))

    def redis(self) -> Redis:
        """The one Redis client of this process (made on first use, closed after its
        users, which are built after it)."""
        if self._redis is None:
            # One quick retry at most: breakers and limiters fail open on their own, and a
            # blackholed Redis must not hold requests for seconds.
            self._redis = Redis.from_url(
                self.settings.redis.url, socket_timeout=0.5, socket_connect_timeout=0.5,
                health_check_interval=30, retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1))
            self._closes("redis", self._redis.aclose)
            self._probes["redis"] = self._redis
        return self._redis

    async def _check_dependencies(self) -> None:
        """Ping every dependency; the core's services serve only when all answer.

        ``""`` (the process, for liveness) is left alone: a dependency outage makes the
        replica unready, never dead.
        """

        async def run(probe: Probe) -> str:
            try:
                await asyncio.wait_for(probe.ping(), DEPENDENCY_TIMEOUT)
            except Exception as exc:
                return "timeout" if isinstance(exc, TimeoutError) else "unavailable"
            return "ok"

        probes = dict(self._probes)
        results = await asyncio.gather(*(run(p) for p in probes.values()))
        checks = dict(zip(probes, results, strict=True))
        healthy = all(r == "ok" for r in results)
        if checks != self.checks:
            failed = {k: v for k, v in checks.items() if v != "ok"}
            if failed:
                log.warning("dependencies failing: not ready", extra={"fields": failed})
            elif self.checks:
                log.info("dependencies answering again: ready")
        self.checks = checks
        if self._core is not None and not self.drain.draining:
            await self._core.set_serving(healthy, process=False)

    async def _watch_dependencies(self) -> None:
        while True:
            await asyncio.sleep(DEPENDENCY_INTERVAL)
            await self._check_dependencies()

    def degraded(self) -> list[str]:
        """Dependencies running in a fallback mode, for readiness and GetSystemInfo."""
        return [note for part, note in self._fallbacks if part.degraded]

    # --- stop --------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin the graceful shutdown (idempotent; safe from a signal handler)."""
        if not self._signalled.is_set():
            self.drain.draining = True
            self._signalled.set()

    async def wait_closed(self) -> None:
        await self._signalled.wait()
        await self._shutdown()

    async def _shutdown(self) -> None:
        s = self.settings.server
        started = time.monotonic()
        if self._core is not None:
            await self._core.enter_drain()  # every health service: NOT_SERVING
        in_flight = self.drain.in_flight
        log.info("draining", extra={"fields": {"in_flight": in_flight.count,
                                               "drain_timeout_s": float(s.drain_timeout)}})
        # Both servers keep serving while what was accepted finishes.
        if not await in_flight.wait_idle(float(s.drain_timeout)):
            log.warning("drain timeout reached", extra={"fields": {"in_flight": in_flight.count}})
        self._stop_http.set()
        try:
            await asyncio.wait_for(self._stop_servers(), timeout=float(s.shutdown_timeout))
        except TimeoutError:
            log.warning("shutdown timeout reached; closing what is left")
        await self._stack.aclose()
        self._closed.set()
        log.info("stopped", extra={"fields": {
            "shutdown_s": round(time.monotonic() - started, 3)}})

    async def _stop_servers(self) -> None:
        """Let each server finish what it accepted; the stack then closes the rest."""
        if self._http_task is not None:
            await self._http_task  # Hypercorn returns once its last requests finished
        if self._core is not None:
            await self._core.server.stop(grace=float(self.settings.server.shutdown_timeout))

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self._closed.is_set():
            self.request_stop()
            await self._shutdown()


async def _cancelled(task: asyncio.Task[None]) -> None:
    """``task`` cancelled (if still running) and awaited."""
    if not task.done():
        task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


async def run(settings: Settings, *, only: Only = None, grpc_target: str = "") -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    loop = asyncio.get_running_loop()
    async with Gateway(settings, only=only, grpc_target=grpc_target) as gateway:

        def on_signal(signum: int) -> None:
            if gateway.drain.draining:
                log.warning("second signal: exiting now")
                os._exit(1)
            log.info("signal received", extra={"fields": {"signal": signal.Signals(signum).name}})
            gateway.request_stop()

        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        tune_for_serving()
        await gateway.wait_closed()
