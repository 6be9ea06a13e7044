"""The router: a canonical request in, an answer from one of the route's targets out.

Targets are tried in weighted random order. Resilience (retries, breakers,
fallbacks to other models) wraps the per-target call in ``gateway.resilience``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.routing.registry import ModelRegistry, Target, weighted_order

__all__ = ["Router", "Served"]

DEFAULT_TIMEOUT = 600.0


@dataclass(slots=True)
class Served:
    """Which deployment answered; filled in as the call proceeds."""

    provider: str = ""
    model: str = ""


class Router:
    def __init__(self, registry: ModelRegistry, *, rng: random.Random | None = None):
        self.registry = registry
        self._rng = rng or random.Random()

    def _pick(self, model: str) -> tuple[Target, float]:
        route = self.registry.resolve(model)
        target = weighted_order(route.targets, self._rng)[0]
        return target, route.timeout or DEFAULT_TIMEOUT

    async def chat(
        self, request: ChatRequest, served: Served, *, deadline: float | None = None
    ) -> ChatCompletion:
        target, timeout = self._pick(request.model)
        served.provider, served.model = target.provider.name, target.model
        if deadline is not None:
            timeout = min(timeout, deadline)
        return await target.provider.chat(request, target.model, timeout=timeout)

    async def stream_chat(
        self,
        request: ChatRequest,
        served: Served,
        *,
        include_usage: bool,
        deadline: float | None = None,
    ) -> AsyncIterator[ChatChunk]:
        target, timeout = self._pick(request.model)
        served.provider, served.model = target.provider.name, target.model
        if deadline is not None:
            timeout = min(timeout, deadline)
        async for chunk in target.provider.stream_chat(
            request, target.model, timeout=timeout, include_usage=include_usage
        ):
            yield chunk

    async def embed(
        self, request: EmbeddingRequest, served: Served, *, deadline: float | None = None
    ) -> Embeddings:
        target, timeout = self._pick(request.model)
        served.provider, served.model = target.provider.name, target.model
        if deadline is not None:
            timeout = min(timeout, deadline)
        return await target.provider.embed(request, target.model, timeout=timeout)
