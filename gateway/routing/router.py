"""The router: a canonical request in, an answer from the first deployment that gives one.

Candidates are the route's targets in the order of its strategy (weighted random by
default; :mod:`~gateway.routing.strategies`), then each fallback model's targets in
theirs, then the tenant's fallback providers asked for the same upstream model; an
``X-Provider`` pin keeps only that provider's targets (or, when the route has none,
sends the model name straight to it). A bare name no
alias knows goes to the tenant's default provider, else the config's. The
resilience pipeline tries the candidates with breakers, retries and the deadline.

A stream is committed to a deployment once its first chunk arrives: failures
before that fall back like a unary call; after it they end the stream with an
error and count against that deployment's breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from opentelemetry.trace import Span

from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    ModelNotFoundError,
    PermissionDeniedError,
    UpstreamError,
)
from gateway.observability import metrics
from gateway.observability.tracing import fail_span, inference_span, record_response
from gateway.providers import messages
from gateway.providers.base import AnthropicHeaders
from gateway.resilience import Outcome, Pipeline
from gateway.resilience.pipeline import Candidate, Ticket
from gateway.routing.registry import ModelRegistry, Route, Target
from gateway.routing.strategies import TargetStats, order

__all__ = ["RoutingHints", "Router", "Served"]

log = logging.getLogger("gateway.routing")

DEFAULT_TIMEOUT = 600.0
R = TypeVar("R")
T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)
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
    # A deployment label (provider/model) to try first when it is a candidate: the one
    # that answered a conversation's last turn (affinity); its breaker still decides.
    prefer: str = ""
    # Seconds without an answer before the next target is tried as well (the request's
    # ``x-hedge-after``; None: the model's ``hedge.after``, if any).
    hedge_after: float | None = None


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
    """``price`` tells the ``cost`` strategy a target's price per million tokens (input plus
    output; None: not in the table)."""

    def __init__(self, registry: ModelRegistry, pipeline: Pipeline, *,
                 rng: random.Random | None = None,
                 price: Callable[[Target], float | None] = lambda target: None):
        self.registry = registry
        self.pipeline = pipeline
        self._rng = rng or random.Random()
        self._price = price
        self.stats = TargetStats()

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
            targets = order(group.strategy, group.targets, self._rng, self.stats, self._price)
            if pin:
                targets = [t for t in targets if t.provider.name == pin]
            timeout = group.timeout or DEFAULT_TIMEOUT
            out.extend(Candidate(t, t.provider.name, timeout) for t in targets)
        if hints.prefer and not pin:
            for i, candidate in enumerate(out):
                if candidate.item.label == hints.prefer:
                    out.insert(0, out.pop(i))
                    break
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

    def _hedge_after(self, model: str, hints: RoutingHints) -> float | None:
        if hints.hedge_after is not None:
            return hints.hedge_after if hints.hedge_after > 0 else None
        try:
            return self._resolve(model, hints).hedge_after
        except ModelNotFoundError:
            return None

    async def _run(self, candidates: list[Candidate[Target]],
                   op: Callable[[Target, float], Awaitable[R]], served: Served, *,
                   deadline: float | None, hold: bool, hedge_after: float | None,
                   discard: Callable[[R, Ticket], Awaitable[None]] | None = None
                   ) -> tuple[R, Candidate[Target], Ticket]:
        """The pipeline over ``candidates``; hedged: with no answer ``hedge_after`` seconds
        in, a second pipeline starts on the candidates the first is not trying, the first
        answer wins and the other attempt is cancelled (its connection closed) or, when it
        answered too, ``discard``ed. Only the winner reaches ``served``."""
        deadline_at = self._deadline_at(deadline)
        if hedge_after is None or len(candidates) < 2:
            return await self.pipeline.run(candidates, op, deadline_at=deadline_at, hold=hold,
                                           on_attempt=served.attempt,
                                           on_refused=served.refused)
        first_served = Served()
        first = asyncio.ensure_future(self.pipeline.run(
            candidates, op, deadline_at=deadline_at, hold=hold,
            on_attempt=first_served.attempt, on_refused=first_served.refused))
        runs = [(first, first_served)]
        winner: asyncio.Future[tuple[R, Candidate[Target], Ticket]] | None = None
        try:
            done, _ = await asyncio.wait({first}, timeout=hedge_after)
            if not done:
                busy = f"{first_served.provider}/{first_served.model}"
                rest = [c for c in candidates if c.item.label != busy]
                if rest:
                    second_served = Served()
                    runs.append((asyncio.ensure_future(self.pipeline.run(
                        rest, op, deadline_at=deadline_at, hold=hold,
                        on_attempt=second_served.attempt,
                        on_refused=second_served.refused)), second_served))
            winner = await _first_answer([task for task, _ in runs])
            for task, run_served in runs:
                if task is winner:
                    served.provider, served.model = run_served.provider, run_served.model
                    served.attempts += run_served.attempts
                    served.known_model = served.known_model or run_served.known_model
                if len(runs) > 1 and run_served.provider:
                    metrics.hedged(run_served.provider, task is winner)
            return winner.result()
        finally:
            losers = [task for task, _ in runs if task is not winner]
            for task in losers:
                task.cancel()
            await asyncio.gather(*losers, return_exceptions=True)
            for task in losers:  # one that answered all the same: its stream closed unread
                if discard is not None and not task.cancelled() and task.exception() is None:
                    result, _, ticket = task.result()
                    await discard(result, ticket)

    async def _unary(self, operation: str, model: str, served: Served,
                     deadline: float | None, hints: RoutingHints,
                     invoke: Callable[[Target, float], Awaitable[R]],
                     describe: Callable[[R], _Outcome]) -> R:
        """One unary call through the pipeline: a span and the upstream time per attempt."""
        async def call(target: Target, timeout: float) -> R:
            provider = target.provider
            started = time.perf_counter()
            self.stats.started(target.label)
            with inference_span(operation, provider.name, provider.type, target.model,
                                provider.endpoint) as span:
                try:
                    result = await invoke(target, timeout)
                finally:
                    elapsed = time.perf_counter() - started
                    served.upstream_seconds += elapsed
                    self.stats.finished(target.label)
                self.stats.observed(target.label, elapsed)
                record_response(span, *describe(result))
                return result

        result, _, _ = await self._run(self.candidates(model, hints, served), call, served,
                                       deadline=deadline, hold=False,
                                       hedge_after=self._hedge_after(model, hints))
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

    async def message(self, body: Mapping[str, Any], served: Served,
                      headers: AnthropicHeaders, *, deadline: float | None = None,
                      hints: RoutingHints = NO_HINTS) -> dict[str, Any]:
        """A Messages API answer (a ``message`` object) to ``body``."""
        def describe(result: dict[str, Any]) -> _Outcome:
            summary = _MessageSummary(str(result.get("model") or ""))
            summary.usage(result.get("usage"))
            reason = result.get("stop_reason")
            return (summary.model, summary.prompt_tokens, summary.completion_tokens,
                    [str(reason)] if reason else [])

        return await self._unary(
            "chat", str(body["model"]), served, deadline, hints,
            lambda t, timeout: messages.create_message(t.provider, body, t.model, headers,
                                                       timeout=timeout), describe)

    async def count_message_tokens(self, body: Mapping[str, Any], served: Served,
                                   headers: AnthropicHeaders, *,
                                   deadline: float | None = None,
                                   hints: RoutingHints = NO_HINTS) -> tuple[int, bool]:
        """``(input tokens, estimated)`` of ``body`` at the deployment that would serve it."""
        return await self._unary(
            "count_tokens", str(body["model"]), served, deadline, hints,
            lambda t, timeout: messages.count_message_tokens(t.provider, body, t.model,
                                                             headers, timeout=timeout),
            lambda result: ("", result[0], None, []))

    def stream_chat(self, request: ChatRequest, served: Served, *, include_usage: bool,
                    deadline: float | None = None, hints: RoutingHints = NO_HINTS
                    ) -> AsyncGenerator[ChatChunk, None]:
        return self._stream(
            request.model, served, deadline, hints,
            lambda t, timeout: t.provider.stream_chat(request, t.model, timeout=timeout,
                                                      include_usage=include_usage),
            _ChunkSummary)

    def stream_message(self, body: Mapping[str, Any], served: Served,
                       headers: AnthropicHeaders, *, deadline: float | None = None,
                       hints: RoutingHints = NO_HINTS
                       ) -> AsyncGenerator[dict[str, Any], None]:
        """A Messages API answer's stream events, ``message_start`` first."""
        return self._stream(
            str(body["model"]), served, deadline, hints,
            lambda t, timeout: messages.stream_message(t.provider, body, t.model, headers,
                                                       timeout=timeout),
            _MessageSummary)

    async def _stream(self, model: str, served: Served, deadline: float | None,
                      hints: RoutingHints,
                      open_items: Callable[[Target, float], AsyncIterator[T]],
                      summary: Callable[[str], _Summary[T]]) -> AsyncGenerator[T, None]:
        async def open_stream(target: Target, timeout: float
                              ) -> tuple[AsyncIterator[T], T, Span, str]:
            provider = target.provider
            started = time.perf_counter()
            self.stats.started(target.label)  # in flight until the stream ends (below)
            # The span lasts as long as the stream: ended below, when the stream ends.
            with inference_span("chat", provider.name, provider.type, target.model,
                                provider.endpoint, end=False) as span:
                items = open_items(target, timeout)
                try:
                    first = await anext(items)
                except StopAsyncIteration:
                    self.stats.finished(target.label)
                    raise UpstreamError(f"{provider.name} sent an empty stream",
                                        provider=provider.name,
                                        error_type="empty_stream") from None
                except BaseException:
                    self.stats.finished(target.label)
                    await _close(items)
                    raise
            self.stats.observed(target.label, time.perf_counter() - started)
            return items, first, span, target.label

        async def discard(opened: tuple[AsyncIterator[T], T, Span, str], ticket: Ticket
                          ) -> None:
            """A hedged stream that also began, but second: closed, its span ended."""
            loser_items, _, loser_span, label = opened
            self.stats.finished(label)
            await _close(loser_items)
            await ticket.report(Outcome.IGNORED)
            loser_span.end()

        (items, first, span, _), _, ticket = await self._run(
            self.candidates(model, hints, served), open_stream, served, deadline=deadline,
            hold=True, hedge_after=self._hedge_after(model, hints), discard=discard)
        outcome = Outcome.IGNORED
        seen = summary(served.model)
        try:
            seen.add(first)
            yield first
            async for item in items:
                seen.add(item)
                yield item
            outcome = Outcome.SUCCESS
        except InvalidRequestError:
            raise
        except GatewayError as exc:
            outcome = Outcome.FAILURE  # the deployment broke the stream it had begun
            fail_span(span, exc)
            raise
        finally:
            self.stats.finished(f"{served.provider}/{served.model}")
            await _close(items)
            await ticket.report(outcome)
            record_response(span, seen.model, seen.prompt_tokens, seen.completion_tokens,
                            seen.finish_reasons)
            span.end()


async def _first_answer(runs: Sequence[asyncio.Future[R]]) -> asyncio.Future[R]:
    """The first of ``runs`` to succeed (the earlier run wins a tie); when all fail, the
    first failure."""
    pending = set(runs)
    error: BaseException | None = None
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in runs:
            if task in done and not task.cancelled():
                failure = task.exception()
                if failure is None:
                    return task
                error = error or failure
    assert error is not None
    raise error


class _Summary(Protocol[T_contra]):
    """What a stream's span reports once it ends, gathered from its items."""

    model: str
    prompt_tokens: int | None
    completion_tokens: int | None
    finish_reasons: list[str]

    def add(self, item: T_contra) -> None: ...


class _ChunkSummary:
    __slots__ = ("completion_tokens", "finish_reasons", "model", "prompt_tokens")

    def __init__(self, model: str):
        self.model = model
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reasons: list[str] = []

    def add(self, chunk: ChatChunk) -> None:
        if chunk.model:
            self.model = chunk.model
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens
            self.completion_tokens = chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.finish_reason:
                self.finish_reasons.append(choice.finish_reason)


class _MessageSummary:
    """Of a Messages answer: its model, stop reason, and usage (input counted with the
    cache's reads and writes, as the canonical prompt tokens are)."""

    __slots__ = ("completion_tokens", "finish_reasons", "model", "prompt_tokens")

    def __init__(self, model: str):
        self.model = model
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.finish_reasons: list[str] = []

    def usage(self, usage: Any) -> None:
        if not isinstance(usage, dict):
            return
        prompt = sum(v for k in ("input_tokens", "cache_read_input_tokens",
                                 "cache_creation_input_tokens")
                     if isinstance(v := usage.get(k), int))
        if prompt:
            self.prompt_tokens = prompt
        output = usage.get("output_tokens")
        if isinstance(output, int):
            self.completion_tokens = output

    def add(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.model = str(message.get("model") or self.model)
            self.usage(message.get("usage"))
        elif kind == "message_delta":
            self.usage(event.get("usage"))
            reason = (event.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reasons.append(str(reason))


async def _close(chunks: AsyncIterator[Any]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
