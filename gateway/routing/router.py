"""The router: a canonical request in, an answer from the first deployment that gives one.

Candidates are the route's targets in weighted random order, then each fallback
model's targets in theirs, then the tenant's fallback providers asked for the same
upstream model; an ``X-Provider`` pin keeps only that provider's targets (or,
when the route has none, sends the model name straight to it). A bare name no
alias knows goes to the tenant's default provider, else the config's. The
resilience pipeline tries the candidates with breakers, retries and the deadline.

A stream is committed to a deployment once its first chunk arrives: failures
before that fall back like a unary call; after it they end the stream with an
error and count against that deployment's breaker.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from opentelemetry.trace import Span

from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    UpstreamError,
)
from gateway.observability.tracing import fail_span, inference_span, record_response
from gateway.resilience import Outcome, Pipeline
from gateway.resilience.pipeline import Candidate
from gateway.routing.registry import ModelRegistry, Route, Target, weighted_order

__all__ = ["RoutingHints", "Router", "Served"]

log = logging.getLogger("gateway.routing")

DEFAULT_TIMEOUT = 600.0
R = TypeVar("R")
# What an answer tells its span: response model, input and output tokens, finish reasons.
_Outcome = tuple[str, int | None, int | None, list[str]]


@dataclass(slots=True, frozen=True)
class RoutingHints:
    """Per-request routing preferences: the caller's pin, its tenant's providers."""

    pin: str = ""
    default_provider: str = ""
    fallback_providers: tuple[str, ...] = ()
    # The tenant may use only some models: a pin then chooses among the route's own
    # targets and never sends the model to a provider outside it.
    restricted: bool = False


NO_HINTS = RoutingHints()


@dataclass(slots=True)
class Served:
    """Which deployment is answering; updated at every attempt."""

    provider: str = ""
    model: str = ""
    attempts: int = 0
    upstream_seconds: float = 0.0  # time spent waiting on upstreams (unary calls)
    known_model: bool = False  # the name resolved to a configured route (or hit the cache)

    def attempt(self, target: Target) -> None:
        self.provider, self.model = target.provider.name, target.model
        self.attempts += 1

    def refused(self, target: Target) -> None:
        """A breaker refused ``target``: name it, unless a deployment was already tried."""
        if not self.attempts:
            self.provider, self.model = target.provider.name, target.model


class Router:
    def __init__(self, registry: ModelRegistry, pipeline: Pipeline, *,
                 rng: random.Random | None = None):
        self.registry = registry
        self.pipeline = pipeline
        self._rng = rng or random.Random()

    def _resolve(self, model: str, hints: RoutingHints) -> Route:
        try:
            return self.registry.resolve(model)
        except ModelNotFoundError:
            provider = hints.pin or hints.default_provider
            if not provider or "/" in model or provider not in self.registry.providers:
                raise
            return self.registry.resolve(f"{provider}/{model}")  # a bare name, directed

    def candidates(self, model: str, hints: RoutingHints = NO_HINTS,
                   served: Served | None = None) -> list[Candidate[Target]]:
        route = self._resolve(model, hints)
        if served is not None:
            served.known_model = route.configured
        groups: list[Route] = [route]
        for name in route.fallbacks:
            try:
                groups.append(self.registry.resolve(name))
            except ModelNotFoundError:
                log.warning("fallback model is not routable", extra={"fields": {
                    "model": model, "fallback": name}})
        pin = hints.pin
        out: list[Candidate[Target]] = []
        for group in groups:
            targets = weighted_order(group.targets, self._rng)
            if pin:
                targets = [t for t in targets if t.provider.name == pin]
            timeout = group.timeout or DEFAULT_TIMEOUT
            out.extend(Candidate(t, t.provider.name, timeout) for t in targets)
        timeout = route.timeout or DEFAULT_TIMEOUT
        if pin and not out and hints.restricted:
            raise PermissionDeniedError(f"this tenant may not use '{model}' through provider "
                                        f"'{pin}'", param="x-provider")
        if pin and not out:  # the pinned provider serves none of the route: ask it directly
            bare = model.partition("/")[2] if "/" in model else model
            direct = self.registry.resolve(f"{pin}/{bare}")
            out = [Candidate(direct.targets[0], pin, timeout)]
        if not pin and out:
            upstream_model = route.targets[0].model
            tried = {c.breaker for c in out}
            for provider in hints.fallback_providers:
                if provider not in tried and provider in self.registry.providers:
                    extra = self.registry.resolve(f"{provider}/{upstream_model}")
                    out.append(Candidate(extra.targets[0], provider, timeout))
                    tried.add(provider)
        return out

    def _deadline_at(self, deadline: float | None) -> float | None:
        return None if deadline is None else time.monotonic() + deadline

    async def _unary(self, operation: str, model: str, served: Served,
                     deadline: float | None, hints: RoutingHints,
                     invoke: Callable[[Target, float], Awaitable[R]],
                     describe: Callable[[R], _Outcome]) -> R:
        """One unary call through the pipeline: a span and the upstream time per attempt."""
        async def call(target: Target, timeout: float) -> R:
            provider = target.provider
            started = time.perf_counter()
            with inference_span(operation, provider.name, provider.type, target.model,
                                provider.endpoint) as span:
                try:
                    result = await invoke(target, timeout)
                finally:
                    served.upstream_seconds += time.perf_counter() - started
                record_response(span, *describe(result))
                return result

        result, _, _ = await self.pipeline.run(
            self.candidates(model, hints, served), call, deadline_at=self._deadline_at(deadline),
            on_attempt=served.attempt, on_refused=served.refused)
        return result

    async def chat(self, request: ChatRequest, served: Served, *, deadline: float | None = None,
                   hints: RoutingHints = NO_HINTS) -> ChatCompletion:
        def describe(result: ChatCompletion) -> _Outcome:
            usage = result.usage
            return (result.model, usage.prompt_tokens if usage else None,
                    usage.completion_tokens if usage else None,
                    [c.finish_reason for c in result.choices if c.finish_reason])

        return await self._unary(
            "chat", request.model, served, deadline, hints,
            lambda t, timeout: t.provider.chat(request, t.model, timeout=timeout), describe)

    async def embed(self, request: EmbeddingRequest, served: Served, *,
                    deadline: float | None = None,
                    hints: RoutingHints = NO_HINTS) -> Embeddings:
        def describe(result: Embeddings) -> _Outcome:
            usage = result.usage
            return result.model, usage.prompt_tokens if usage else None, None, []

        return await self._unary(
            "embeddings", request.model, served, deadline, hints,
            lambda t, timeout: t.provider.embed(request, t.model, timeout=timeout), describe)

    async def stream_chat(self, request: ChatRequest, served: Served, *, include_usage: bool,
                          deadline: float | None = None, hints: RoutingHints = NO_HINTS
                          ) -> AsyncGenerator[ChatChunk, None]:
        async def open_stream(target: Target, timeout: float
                              ) -> tuple[AsyncIterator[ChatChunk], ChatChunk, Span]:
            provider = target.provider
            # The span lasts as long as the stream: ended below, when the stream ends.
            with inference_span("chat", provider.name, provider.type, target.model,
                                provider.endpoint, end=False) as span:
                chunks = provider.stream_chat(request, target.model, timeout=timeout,
                                              include_usage=include_usage)
                try:
                    first = await anext(chunks)
                except StopAsyncIteration:
                    raise UpstreamError(f"{provider.name} sent an empty stream",
                                        provider=provider.name,
                                        error_type="empty_stream") from None
                except BaseException:
                    await _close(chunks)
                    raise
            return chunks, first, span

        (chunks, first, span), _, ticket = await self.pipeline.run(
            self.candidates(request.model, hints, served), open_stream,
            deadline_at=self._deadline_at(deadline), hold=True, on_attempt=served.attempt,
            on_refused=served.refused)
        outcome = Outcome.IGNORED
        seen = _StreamSummary(first.model)
        try:
            seen.add(first)
            yield first
            async for chunk in chunks:
                seen.add(chunk)
                yield chunk
            outcome = Outcome.SUCCESS
        except InvalidRequestError:
            raise
        except GatewayError as exc:
            outcome = Outcome.FAILURE  # the deployment broke the stream it had begun
            fail_span(span, exc)
            raise
        finally:
            await _close(chunks)
            await ticket.report(outcome)
            record_response(span, seen.model, seen.prompt_tokens, seen.completion_tokens,
                            seen.finish_reasons)
            span.end()


class _StreamSummary:
    """What a stream's span reports once it ends."""

    __slots__ = ("completion_tokens", "finish_reasons", "model", "prompt_tokens")

    def __init__(self, model: str):
        self.model = model
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reasons: list[str] = []

    def add(self, chunk: ChatChunk) -> None:
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
            self.completion_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finish_reasons.append(choice.finish_reason)


async def _close(chunks: AsyncIterator[ChatChunk]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
