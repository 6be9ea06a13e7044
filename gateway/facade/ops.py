"""The operator's routes: liveness, readiness, Prometheus metrics and the OpenAPI document.

Liveness is a fixed answer: Kubernetes calls it every few seconds on every replica, and it
says only that the process serves. Readiness asks the core's health service (and reports
the dependency checks and degraded modes the core knows of when it runs in this process).

Example::

    ops = OperatorHandlers(core, drain, document=b"{...}")
    answer = await ops.ready(request)   # 200 {"status": "ready", ...} or 503 with a reason
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
from grpc import aio
from grpc_health.v1 import health_pb2

from gateway.facade.calls import Core
from gateway.facade.exchange import Answer, Request
from gateway.lifecycle import DrainState
from gateway.observability import metrics

__all__ = ["OperatorHandlers"]

_LIVE = Answer(200, b'{"status":"ok"}')
_READY_TIMEOUT = 1.0
_CORE_SERVICE = "llmgateway.v1.GatewayService"


class OperatorHandlers:
    """``degraded`` lists dependencies running in a fallback mode and ``checks`` the last
    result of each dependency check (both only known when the core runs in this process);
    ``document`` is the OpenAPI document, as served."""

    def __init__(self, core: Core, drain: DrainState, *, document: bytes,
                 degraded: Callable[[], Sequence[str]] = tuple,
                 checks: Callable[[], Mapping[str, str]] = dict) -> None:
        self._health = core.health
        self._drain = drain
        self._document = Answer(200, document)
        self._degraded = degraded
        self._checks = checks

    async def live(self, request: Request) -> Answer:
        """Liveness: the process answers. Nothing else is checked (readiness does that)."""
        return _LIVE

    async def ready(self, request: Request) -> Answer:
        """Readiness: 200 when the core answers SERVING, else 503 with the reason."""
        if self._drain.draining:
            return _json({"status": "not_ready", "reason": "draining"}, 503)
        results = dict(self._checks())
        try:  # the core's service health: NOT_SERVING when a dependency check fails
            answer = await self._health.Check(
                health_pb2.HealthCheckRequest(service=_CORE_SERVICE), timeout=_READY_TIMEOUT)
        except aio.AioRpcError as exc:
            return _json({"status": "not_ready", "reason": f"grpc core: "
                          f"{exc.code().name.lower()}", "checks": results}, 503)
        if answer.status != health_pb2.HealthCheckResponse.SERVING:
            failed = sorted(name for name, result in results.items() if result != "ok")
            reason = ", ".join(f"{name}: {results[name]}" for name in failed) or (
                "grpc core: not serving")
            return _json({"status": "not_ready", "reason": reason, "checks": results}, 503)
        body: dict[str, Any] = {"status": "ready", "checks": {"grpc_core": "serving", **results}}
        if notes := list(self._degraded()):
            body["degraded"] = notes
        return _json(body)

    async def metrics(self, request: Request) -> Answer:
        """Prometheus text format."""
        return Answer(200, metrics.render(), content_type=metrics.CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Answer:
        """The OpenAPI 3.1 document (:mod:`gateway.facade.openapi`)."""
        return self._document


def _json(body: Any, status: int = 200) -> Answer:
    return Answer(status, orjson.dumps(body))
