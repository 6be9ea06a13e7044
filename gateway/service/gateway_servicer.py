"""``llmgateway.v1.GatewayService``: thin methods over the router.

Cross-cutting work (request ids, authentication, errors, logs, request metrics)
is in the interceptor; here each inference method converts, is admitted (limits,
budget), routes, accounts and converts back.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from google.protobuf.message import Message as ProtoMessage
from grpc import aio
from llmgateway.v1 import (
    budgets_pb2,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
    messages_pb2,
    responses_pb2,
)

from gateway import messages_json, proto
from gateway.config import parse_duration
from gateway.domain import ChatChunk, Usage
from gateway.errors import (
    AuthenticationError,
    GatewayError,
    InvalidRequestError,
    NotFoundError,
    UpstreamError,
)
from gateway.observability import context as reqctx
from gateway.observability import metrics, tracing
from gateway.providers import credentials
from gateway.providers.base import AnthropicHeaders
from gateway.providers.messages_translation import estimate_input_tokens
from gateway.routing import Router
from gateway.routing.router import RoutingHints, Served
from gateway.service import responses
from gateway.service.charge import (
    StreamCharge,
    chat_estimate,
    embeddings_estimate,
    estimate_prompt_tokens,
    messages_estimate,
)
from gateway.service.keepalive import keepalive
from gateway.state.base import ConversationRecord, ConversationStore, ResponseCache
from gateway.tenancy.admission import Admission, Admitted, Estimate, budgets_of
from gateway.tenancy.auth import Identity, current_identity
from gateway.tenancy.models import UsageRow
from gateway.tenancy.pricing import Pricing
from gateway.tenancy.usage import Budgets

__all__ = ["GatewayServicer"]

R = TypeVar("R", bound=ProtoMessage)

_PERIODS = {"monthly": budgets_pb2.BUDGET_PERIOD_MONTHLY, "daily": budgets_pb2.BUDGET_PERIOD_DAILY}
_SCOPES = {"tenant": budgets_pb2.BUDGET_SCOPE_TENANT, "api_key": budgets_pb2.BUDGET_SCOPE_API_KEY,
           "model": budgets_pb2.BUDGET_SCOPE_MODEL}
DEFAULT_PING_INTERVAL = 10.0


def _deadline(context: aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.001)


def _hints(context: aio.ServicerContext, admitted: Admitted,
           prefer: str = "") -> RoutingHints:
    """The ``x-provider`` pin, if any, the tenant's own provider preferences, and the
    deployment a conversation's last turn was answered by (``prefer``)."""
    pin, hedge = "", None
    for key, value in context.invocation_metadata() or ():
        if key == "x-provider":
            pin = str(value)
        elif key == "x-hedge-after":
            hedge = _hedge_after(str(value))
    tenant = admitted.identity.tenant
    if tenant is None:
        return RoutingHints(pin=pin, prefer=prefer, hedge_after=hedge)
    return RoutingHints(pin, tenant.default_provider, tenant.fallback_providers,
                        restricted=bool(tenant.allowed_models), prefer=prefer,
                        hedge_after=hedge)


def _hedge_after(value: str) -> float:
    """``x-hedge-after``: a duration (``2s``, ``500ms``; ``0`` turns the model's off)."""
    try:
        seconds = float(parse_duration(value))
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 600:
        raise InvalidRequestError("x-hedge-after must be a duration from 0 to 10m "
                                  "(e.g. 2s, 500ms)", param="x-hedge-after")
    return seconds


def _context(model: str) -> reqctx.RequestContext:
    ctx = reqctx.current()
    if ctx is None:  # only when the servicer runs without the interceptor (unit use)
        ctx = reqctx.RequestContext(request_id=reqctx.new_request_id())
    ctx.model = model
    return ctx


def _identity() -> Identity:
    identity = current_identity()
    if identity is None:  # the interceptor always sets one; this is a wiring bug guard
        raise AuthenticationError("unauthenticated")
    return identity


async def _send_headers(context: aio.ServicerContext, headers: dict[str, str]) -> None:
    if headers:
        await context.send_initial_metadata(tuple(headers.items()))


def _skip_cache(context: aio.ServicerContext) -> bool:
    for key, value in context.invocation_metadata() or ():
        if key == "x-skip-cache":
            return str(value).lower() not in ("", "0", "false", "no")
    return False


def _cache_key(owner: str, request: chat_pb2.ChatRequest) -> str | None:
    """A key for a deterministic request (temperature 0, or a seed), else None."""
    deterministic = request.HasField("seed") or (
        request.HasField("temperature") and request.temperature == 0)
    if not deterministic:
        return None
    return _digest("chat:", owner, request)


def _digest(prefix: str, owner: str, request: ProtoMessage) -> str:
    digest = hashlib.sha256(owner.encode())
    digest.update(b"\0")
    digest.update(request.SerializeToString(deterministic=True))
    return prefix + digest.hexdigest()


def _message_cache_key(owner: str, request: gateway_service_pb2.CreateMessageRequest
                       ) -> str | None:
    """A key for a deterministic Messages request (temperature 0, no extended thinking),
    else None; the API version and beta flags are part of it (they shape the answer)."""
    req = request.request
    if not (req.HasField("temperature") and req.temperature == 0) or (
            req.HasField("thinking") and req.thinking.type != "disabled"):
        return None
    return _digest("message:", owner, request)


def _messages_body(req: messages_pb2.MessagesRequest, *, count: bool = False
                   ) -> dict[str, Any]:
    """The request's JSON object, once the core's own checks pass (a gRPC client's request
    was never read as JSON)."""
    if not req.model:
        raise InvalidRequestError("model: a model is required", param="model")
    if not count and req.max_tokens < 1:
        raise InvalidRequestError("max_tokens: must be at least 1", param="max_tokens")
    if not req.messages:
        raise InvalidRequestError("messages: at least one message is required",
                                  param="messages")
    try:
        return messages_json.request_to_json(req)
    except messages_json.MessagesJsonError as exc:  # a ``*_json`` field that is not JSON
        raise InvalidRequestError(exc.message, param=exc.param) from None


def _anthropic_headers(request: gateway_service_pb2.CreateMessageRequest
                       | gateway_service_pb2.StreamMessageRequest
                       | gateway_service_pb2.CountMessageTokensRequest) -> AnthropicHeaders:
    return AnthropicHeaders(request.anthropic_version, tuple(request.anthropic_beta))


def _upstream_json(read: Callable[[Any], R], data: Any, provider: str) -> R:
    """``read(data)``; what an upstream answered but cannot be read is its failure."""
    try:
        return read(data)
    except messages_json.MessagesJsonError:
        raise UpstreamError(f"{provider} returned a message the gateway could not read",
                            provider=provider, error_type="bad_response") from None


def _message_usage(usage: messages_pb2.MessageUsage) -> Usage:
    """Messages usage as canonical usage: the prompt counts the cache's reads and writes."""
    prompt = (usage.input_tokens + usage.cache_read_input_tokens
              + usage.cache_creation_input_tokens)
    return Usage(prompt_tokens=prompt, completion_tokens=usage.output_tokens,
                 total_tokens=prompt + usage.output_tokens,
                 cached_prompt_tokens=usage.cache_read_input_tokens,
                 cache_creation_prompt_tokens=usage.cache_creation_input_tokens)


_PING: dict[str, Any] = {"type": "ping"}


def _messages_estimate(body: dict[str, Any]) -> Estimate:
    return messages_estimate(estimate_input_tokens(body), body)


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, router: Router, pricing: Pricing, admission: Admission, budgets: Budgets,
                 conversations: ConversationStore, conversation_ttl: float,
                 cache: ResponseCache | None = None, cache_ttl: float = 300.0, *,
                 share_within_tenant: bool = False,
                 ping_interval: float = DEFAULT_PING_INTERVAL,
                 max_record_bytes: int = 4 << 20):
        self._share_within_tenant = share_within_tenant
        self._max_record_bytes = max_record_bytes
        self._ping_interval = ping_interval
        self._cache = cache
        self._cache_ttl = cache_ttl
        self._router = router
        self._pricing = pricing
        self._admission = admission
        self._budgets = budgets
        self._conversations = conversations
        self._conversation_ttl = conversation_ttl

    async def _admit(self, model: str, context: aio.ServicerContext,
                     estimate: Callable[[], Estimate] | None, *,
                     send: bool = True) -> Admitted:
        """Limits and budget, ``estimate`` reserved; the rate-limit headers go out at once
        unless ``send`` is False (the caller adds to them and calls :func:`_send_headers`)."""
        admitted = await self._admission.admit(_identity(), model, estimate)
        if send:
            await _send_headers(context, admitted.headers)
        credentials.use(admitted.credentials)
        return admitted

    async def _settle(self, admitted: Admitted, ctx: reqctx.RequestContext,
                      started: float) -> None:
        """Called from ``finally``: the exception in flight, if any, is the outcome."""
        failure = sys.exc_info()[1]
        if isinstance(failure, GatewayError):
            ctx.status = failure.grpc_code.name
        elif isinstance(failure, asyncio.CancelledError):
            ctx.status = "DEADLINE_EXCEEDED" if ctx.past_deadline() else "CANCELLED"
        elif failure is not None:
            ctx.status = "INTERNAL"
        account = admitted.identity.usage_account
        if not admitted.leases and not account:
            return  # no limits held, nobody to charge: nothing to settle
        row = UsageRow(
            tenant_id=account, model=ctx.model, provider=ctx.provider,
            prompt_tokens=ctx.prompt_tokens, completion_tokens=ctx.completion_tokens,
            cost_usd=ctx.cost_usd, latency_ms=round((time.perf_counter() - started) * 1000, 3),
            status=ctx.status, request_id=ctx.request_id,
            api_key_id=admitted.identity.subject if admitted.identity.kind == "api_key" else "")
        await self._admission.settle(admitted, row)

    def _account(self, ctx: reqctx.RequestContext, served: Served, usage: Usage | None) -> None:
        """Tokens and cost of the request, on its context (metrics and logs read them)."""
        if usage is None:
            return
        ctx.prompt_tokens = usage.prompt_tokens
        ctx.completion_tokens = usage.completion_tokens
        ctx.cost_usd = self._pricing.cost(
            (served.model, f"{served.provider}/{served.model}", ctx.model),
            usage.prompt_tokens, usage.completion_tokens,
            cache_read_tokens=usage.cached_prompt_tokens,
            cache_write_tokens=usage.cache_creation_prompt_tokens)

    def _info(self, ctx: reqctx.RequestContext, served: Served,
              started: float) -> chat_pb2.GatewayInfo:
        return chat_pb2.GatewayInfo(
            provider=served.provider, model=served.model,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            cost_usd=ctx.cost_usd, request_id=ctx.request_id, trace_id=tracing.trace_ids()[0])

    async def CreateChatCompletion(
        self,
        request: gateway_service_pb2.CreateChatCompletionRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateChatCompletionResponse:
        started = time.perf_counter()
        chat = proto.chat_request_from_proto(request.request)
        ctx, served = _context(chat.model), Served()
        key = None
        if self._cache is not None:
            key = _cache_key(_identity().owner, request.request)
        admitted = await self._admit(chat.model, context, partial(chat_estimate, chat),
                                     send=key is None)
        try:
            if key is not None:
                hit = None
                if _skip_cache(context):  # neither read nor written; reported as a miss
                    key = None
                else:
                    hit = await self._cached(
                        key, ctx, started, gateway_service_pb2.CreateChatCompletionResponse,
                        lambda r: r.completion.gateway)
                await _send_headers(context, {**admitted.headers,
                                              "x-cache": "MISS" if hit is None else "HIT"})
                if hit is not None:
                    served.known_model = True  # an upstream answered this name before
                    return hit
            completion = await self._router.chat(chat, served, deadline=_deadline(context),
                                                 hints=_hints(context, admitted))
            self._account(ctx, served, completion.usage)
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)
        response = proto.completion_to_proto(completion, self._info(ctx, served, started))
        if key is not None and self._cache is not None:
            await self._cache.put(key, response.SerializeToString(), self._cache_ttl)
        return response

    async def _cached(self, key: str, ctx: reqctx.RequestContext, started: float,
                      kind: type[R], gateway_of: Callable[[R], chat_pb2.GatewayInfo]
                      ) -> R | None:
        """The stored answer (marked as a hit, with this request's ids), or None."""
        assert self._cache is not None
        raw = await self._cache.get(key)
        metrics.cache_lookup(raw is not None)
        if raw is None:
            return None
        response = kind.FromString(raw)
        gateway = gateway_of(response)
        ctx.provider = gateway.provider
        gateway.cache_hit = True
        gateway.cost_usd = 0.0
        gateway.request_id = ctx.request_id
        gateway.trace_id = tracing.trace_ids()[0]
        gateway.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        return response

    async def StreamChatCompletion(
        self,
        request: gateway_service_pb2.StreamChatCompletionRequest,
        context: aio.ServicerContext,
    ) -> AsyncIterator[gateway_service_pb2.StreamChatCompletionResponse]:
        started = time.perf_counter()
        chat = proto.chat_request_from_proto(request.request)
        ctx, served = _context(chat.model), Served()
        ctx.stream = True
        admitted = await self._admit(chat.model, context, partial(chat_estimate, chat))
        chunks = self._router.stream_chat(chat, served, include_usage=request.include_usage,
                                          deadline=_deadline(context),
                                          hints=_hints(context, admitted))
        charge = StreamCharge(estimate_prompt_tokens(chat))
        metrics.ACTIVE_STREAMS.inc()
        first = True
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    charge.chunk(chunk)
                    if first:
                        first = False
                        metrics.first_token(served.provider, chat.model,
                                            time.perf_counter() - started)
                    if chunk.usage is not None:
                        self._account(ctx, served, chunk.usage)
                        if not request.include_usage:
                            if not chunk.choices:
                                continue  # a usage-only chunk the client did not ask for
                            chunk.usage = None
                    yield proto.chunk_to_proto(chunk)
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not first and not charge.reported:  # ended early: what it produced is charged
                self._account(ctx, served, charge.usage())
            ctx.provider = served.provider
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)

    async def CreateEmbeddings(
        self,
        request: gateway_service_pb2.CreateEmbeddingsRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateEmbeddingsResponse:
        started = time.perf_counter()
        embed = proto.embedding_request_from_proto(request)
        ctx, served = _context(embed.model), Served()
        admitted = await self._admit(embed.model, context, partial(embeddings_estimate, embed))
        try:
            result = await self._router.embed(embed, served, deadline=_deadline(context),
                                              hints=_hints(context, admitted))
            self._account(ctx, served, result.usage)
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)
        return proto.embeddings_to_proto(result, self._info(ctx, served, started))

    async def ListModels(
        self, request: gateway_service_pb2.ListModelsRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.ListModelsResponse:
        return gateway_service_pb2.ListModelsResponse(
            models=[proto.model_to_proto(m) for m in await self._router.registry.list_models()]
        )

    async def GetModel(
        self, request: gateway_service_pb2.GetModelRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.GetModelResponse:
        info = await self._router.registry.get_model(request.model_id)
        return gateway_service_pb2.GetModelResponse(model=proto.model_to_proto(info))

    async def GetUsage(
        self, request: gateway_service_pb2.GetUsageRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.GetUsageResponse:
        identity = _identity()
        account = identity.usage_account
        if not account:
            raise AuthenticationError("usage is tracked per tenant: authenticate with a key")
        budgets = budgets_of(identity, None)
        seen = [await self._budgets.totals(b) for b in budgets]
        period, totals = seen[0]  # the tenant's own
        own = budgets[0]
        response = gateway_service_pb2.GetUsageResponse(
            tenant_id=account, period_start=int(period), requests=totals.requests,
            prompt_tokens=totals.prompt_tokens, completion_tokens=totals.completion_tokens,
            cost_usd=round(totals.cost_usd, 6), budget_period=_PERIODS[own.period])
        if own.usd is not None:
            response.monthly_budget_usd = own.usd
            response.budget_used_ratio = totals.cost_usd / own.usd if own.usd else 1.0
        for budget, (start, spent) in zip(budgets, seen, strict=True):
            if budget.usd is None:
                continue
            response.budgets.add(
                scope=_SCOPES[budget.scope], api_key_id=budget.api_key_id, model=budget.model,
                period=_PERIODS[budget.period], period_start=int(start), budget_usd=budget.usd,
                cost_usd=round(spent.cost_usd, 6), requests=spent.requests,
                used_ratio=spent.cost_usd / budget.usd if budget.usd else 1.0)
        return response

    # --- Anthropic's Messages API ----------------------------------------------------------

    async def CreateMessage(
        self, request: gateway_service_pb2.CreateMessageRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.CreateMessageResponse:
        started = time.perf_counter()
        req = request.request
        body = _messages_body(req)
        ctx, served = _context(req.model), Served()
        key = None
        if self._cache is not None:
            key = _message_cache_key(_identity().owner, request)
        admitted = await self._admit(req.model, context, partial(_messages_estimate, body),
                                     send=key is None)
        try:
            if key is not None:
                hit = None
                if _skip_cache(context):
                    key = None
                else:
                    hit = await self._cached(key, ctx, started,
                                             gateway_service_pb2.CreateMessageResponse,
                                             lambda r: r.gateway)
                await _send_headers(context, {**admitted.headers,
                                              "x-cache": "MISS" if hit is None else "HIT"})
                if hit is not None:
                    served.known_model = True
                    return hit
            answer = await self._router.message(body, served, _anthropic_headers(request),
                                                deadline=_deadline(context),
                                                hints=_hints(context, admitted))
            message = _upstream_json(messages_json.message_from_json, answer, served.provider)
            self._account(ctx, served, _message_usage(message.usage))
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)
        response = gateway_service_pb2.CreateMessageResponse(
            message=message, gateway=self._info(ctx, served, started))
        if key is not None and self._cache is not None:
            await self._cache.put(key, response.SerializeToString(), self._cache_ttl)
        return response

    async def StreamMessage(
        self, request: gateway_service_pb2.StreamMessageRequest, context: aio.ServicerContext
    ) -> AsyncIterator[gateway_service_pb2.StreamMessageResponse]:
        started = time.perf_counter()
        req = request.request
        body = _messages_body(req)
        ctx, served = _context(req.model), Served()
        ctx.stream = True
        admitted = await self._admit(req.model, context, partial(_messages_estimate, body))
        events = self._router.stream_message(body, served, _anthropic_headers(request),
                                             deadline=_deadline(context),
                                             hints=_hints(context, admitted))
        usage = messages_pb2.MessageUsage()
        charge = StreamCharge(0)
        ended = False  # message_delta came: the upstream's own final usage
        metrics.ACTIVE_STREAMS.inc()
        first = True
        try:
            async with contextlib.aclosing(events):
                async for data in keepalive(events, self._ping_interval, _PING):
                    charge.event(data)
                    event = _upstream_json(messages_json.event_from_json, data,
                                           served.provider)
                    kind = event.WhichOneof("event")
                    if first:
                        first = False
                        metrics.first_token(served.provider, req.model,
                                            time.perf_counter() - started)
                    if kind == "message_start":
                        usage.MergeFrom(event.message_start.usage)
                        self._account(ctx, served, _message_usage(usage))
                    elif kind == "message_delta":
                        ended = True
                        _add_usage(usage, event.message_delta.usage)
                        self._account(ctx, served, _message_usage(usage))
                    yield gateway_service_pb2.StreamMessageResponse(event=event)
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if not first and not ended:  # ended early: what it produced is charged
                _estimate_rest(usage, charge, body)
                self._account(ctx, served, _message_usage(usage))
            ctx.provider = served.provider
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)

    async def CountMessageTokens(
        self, request: gateway_service_pb2.CountMessageTokensRequest,
        context: aio.ServicerContext
    ) -> gateway_service_pb2.CountMessageTokensResponse:
        """Admitted like any request (allowed models, budget, rate limits), charged nothing."""
        req = request.request
        body = _messages_body(req, count=True)
        ctx, served = _context(req.model), Served()
        admitted = await self._admit(req.model, context, None)
        try:
            count, estimated = await self._router.count_message_tokens(
                body, served, _anthropic_headers(request), deadline=_deadline(context),
                hints=_hints(context, admitted))
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            ctx.known_model = served.known_model
            await self._admission.settle(admitted, None)
        return gateway_service_pb2.CountMessageTokensResponse(input_tokens=count,
                                                              estimated=estimated)

    # --- the Responses API -----------------------------------------------------------------

    def _owner(self, identity: Identity) -> str:
        """Who may read, continue and delete a stored response: the key or token subject that
        made it (SPEC section 9), or its whole tenant with ``share_within_tenant``."""
        return identity.owner if self._share_within_tenant else identity.rate_subject

    async def _history(self, previous_id: str, identity: Identity
                       ) -> tuple[list[chat_pb2.ChatMessage], list[str], str]:
        """The conversation ``previous_id`` ends, the ids of its stored turns (oldest
        first, ``previous_id`` last), which the next turn's record names instead of
        copying them, and the deployment that answered its last turn."""
        if not previous_id:
            return [], [], ""
        owner = self._owner(identity)
        record = await self._conversations.get(previous_id, owner)
        if record is None:
            raise NotFoundError(f"no response '{previous_id}' (it may have expired)",
                                param="previous_response_id")
        last = responses_pb2.StoredResponse.FromString(record.document)
        ancestors = list(last.ancestors)
        earlier = await asyncio.gather(*(self._conversations.get(a, owner) for a in ancestors))
        history: list[chat_pb2.ChatMessage] = []
        for turn in earlier:
            if turn is None:  # its turns are kept as long as its last: deleted on purpose
                raise NotFoundError(f"an earlier turn of '{previous_id}' is gone (deleted, or "
                                    "evicted from a full memory store)",
                                    param="previous_response_id")
            history.extend(responses_pb2.StoredResponse.FromString(turn.document).history)
        history.extend(last.history)
        return history, [*ancestors, previous_id], last.served_by

    def _check_size(self, req: gateway_service_pb2.ResponseRequest,
                    history: list[chat_pb2.ChatMessage]) -> None:
        """A response to be stored must fit ``conversations.max_record_bytes`` with its
        history: refused before the upstream is asked, not after."""
        if req.HasField("store") and not req.store:
            return
        size = sum(m.ByteSize() for m in history) + sum(m.ByteSize() for m in req.input)
        if size > self._max_record_bytes:
            raise InvalidRequestError(
                f"the conversation is over {self._max_record_bytes} bytes, the most a "
                "stored response may hold; start a new one, or send store: false",
                param="previous_response_id" if history else "input",
                code="conversation_too_large")

    async def _keep(self, response: responses_pb2.Response, identity: Identity,
                    ancestors: list[str], new_input: Sequence[chat_pb2.ChatMessage],
                    served: Served) -> None:
        """Store this turn alone, naming the turns before; they live as long as it does."""
        now = time.time()
        document = responses.stored(response, ancestors, new_input,
                                    f"{served.provider}/{served.model}" if served.provider
                                    else "")
        if len(document) > self._max_record_bytes:
            raise InvalidRequestError(
                f"the response is over {self._max_record_bytes} bytes and cannot be "
                "stored; start a new conversation, or send store: false",
                code="conversation_too_large")
        owner, expires = self._owner(identity), now + self._conversation_ttl
        await self._conversations.put(ConversationRecord(
            id=response.id, owner=owner, document=document, created_at=now,
            expires_at=expires))
        await self._conversations.extend(ancestors, owner, expires)

    async def CreateResponse(
        self, request: gateway_service_pb2.CreateResponseRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.CreateResponseResponse:
        started = time.perf_counter()
        req, identity = request.request, _identity()
        history, ancestors, served_by = await self._history(req.previous_response_id,
                                                            identity)
        self._check_size(req, history)
        chat = proto.chat_request_from_proto(responses.chat_request(req, history))
        ctx, served = _context(chat.model), Served()
        admitted = await self._admit(chat.model, context, partial(chat_estimate, chat))
        try:
            completion = await self._router.chat(chat, served, deadline=_deadline(context),
                                                 hints=_hints(context, admitted, served_by))
            self._account(ctx, served, completion.usage)
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)
        response = responses.build_response(responses.new_response(req), completion)
        response.gateway.CopyFrom(self._info(ctx, served, started))
        if response.store:
            await self._keep(response, identity, ancestors, req.input, served)
        return gateway_service_pb2.CreateResponseResponse(response=response)

    async def StreamResponse(
        self, request: gateway_service_pb2.StreamResponseRequest, context: aio.ServicerContext
    ) -> AsyncIterator[gateway_service_pb2.StreamResponseResponse]:
        started = time.perf_counter()
        req, identity = request.request, _identity()
        history, ancestors, served_by = await self._history(req.previous_response_id,
                                                            identity)
        self._check_size(req, history)
        chat = proto.chat_request_from_proto(responses.chat_request(req, history))
        ctx, served = _context(chat.model), Served()
        ctx.stream = True
        admitted = await self._admit(chat.model, context, partial(chat_estimate, chat))
        chunks = self._router.stream_chat(chat, served, include_usage=True,
                                          deadline=_deadline(context),
                                          hints=_hints(context, admitted, served_by))
        events = responses.EventStream(responses.new_response(req))
        charge = StreamCharge(estimate_prompt_tokens(chat))
        first: ChatChunk | None = None
        metrics.ACTIVE_STREAMS.inc()
        try:
            async with contextlib.aclosing(chunks):
                # The first chunk before any event: a failure before output is an error
                # status, like a unary call's.
                first = await anext(chunks)
                charge.chunk(first)
                metrics.first_token(served.provider, chat.model, time.perf_counter() - started)
                for event in (*events.start(), *events.feed(first)):
                    yield event
                try:
                    async for chunk in chunks:
                        charge.chunk(chunk)
                        if chunk.usage is not None:
                            self._account(ctx, served, chunk.usage)
                        for event in events.feed(chunk):
                            yield event
                except GatewayError as exc:
                    ctx.status = exc.grpc_code.name
                    for event in events.fail(exc.code or exc.reason.lower(), exc.message):
                        yield event
                    return
            if first.usage is not None:
                self._account(ctx, served, first.usage)
            final = list(events.finish())
            # Stored before the client hears ``response.completed``: a response it saw
            # complete can be read back (a store failure ends the stream with an error).
            if events.response.store:
                await self._keep(events.response, identity, ancestors, req.input, served)
            for event in final:
                yield event
        finally:
            metrics.ACTIVE_STREAMS.dec()
            if first is not None and not charge.reported:  # ended early: charged as produced
                self._account(ctx, served, charge.usage())
            ctx.provider = served.provider
            ctx.known_model = served.known_model
            await self._settle(admitted, ctx, started)

    async def GetResponse(
        self, request: gateway_service_pb2.GetResponseRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.GetResponseResponse:
        record = await self._conversations.get(request.response_id, self._owner(_identity()))
        if record is None:
            raise NotFoundError(f"no response '{request.response_id}'", param="response_id")
        stored = responses_pb2.StoredResponse.FromString(record.document)
        return gateway_service_pb2.GetResponseResponse(response=stored.response)

    async def DeleteResponse(
        self, request: gateway_service_pb2.DeleteResponseRequest, context: aio.ServicerContext
    ) -> gateway_service_pb2.DeleteResponseResponse:
        if not await self._conversations.delete(request.response_id,
                                                 self._owner(_identity())):
            raise NotFoundError(f"no response '{request.response_id}'", param="response_id")
        return gateway_service_pb2.DeleteResponseResponse(response_id=request.response_id,
                                                          deleted=True)


def _add_usage(total: messages_pb2.MessageUsage, delta: messages_pb2.MessageUsage) -> None:
    """A ``message_delta``'s usage is cumulative: each count it gives replaces the one
    ``message_start`` gave (a count it leaves at 0 is one it did not give)."""
    for name in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                 "cache_read_input_tokens"):
        value = getattr(delta, name)
        if value:
            setattr(total, name, value)


def _estimate_rest(usage: messages_pb2.MessageUsage, charge: StreamCharge,
                   body: dict[str, Any]) -> None:
    """A Messages stream that ended before ``message_delta``: the output it delivered, and
    the input when the upstream never said it (a translated stream says it at the end)."""
    usage.output_tokens = max(usage.output_tokens, charge.output_tokens)
    if not (usage.input_tokens or usage.cache_read_input_tokens
            or usage.cache_creation_input_tokens):
        usage.input_tokens = estimate_input_tokens(body)
