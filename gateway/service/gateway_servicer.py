"""``llmgateway.v1.GatewayService``: thin methods over the router.

Cross-cutting work (request ids, errors, logs, request metrics) is in the
interceptor; here each method converts, routes, accounts and converts back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from grpc import aio
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from gateway import proto
from gateway.domain import Usage
from gateway.observability import context as reqctx
from gateway.observability import metrics, tracing
from gateway.routing import Router
from gateway.routing.router import Served
from gateway.tenancy.pricing import Pricing

__all__ = ["GatewayServicer"]


def _deadline(context: aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.001)


def _pin(context: aio.ServicerContext) -> str:
    """The ``x-provider`` metadata: a provider the caller wants, if any."""
    for key, value in context.invocation_metadata() or ():
        if key == "x-provider":
            return str(value)
    return ""


def _context(model: str) -> reqctx.RequestContext:
    ctx = reqctx.current()
    if ctx is None:  # only when the servicer runs without the interceptor (unit use)
        ctx = reqctx.RequestContext(request_id=reqctx.new_request_id())
    ctx.model = model
    return ctx


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, router: Router, pricing: Pricing):
        self._router = router
        self._pricing = pricing

    def _account(self, ctx: reqctx.RequestContext, served: Served, usage: Usage | None) -> None:
        """Tokens and cost of the request, on its context (metrics and logs read them)."""
        if usage is None:
            return
        ctx.prompt_tokens = usage.prompt_tokens
        ctx.completion_tokens = usage.completion_tokens
        ctx.cost_usd = self._pricing.cost(
            (served.model, f"{served.provider}/{served.model}", ctx.model),
            usage.prompt_tokens, usage.completion_tokens)

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
        try:
            completion = await self._router.chat(chat, served, deadline=_deadline(context),
                                                 pin=_pin(context))
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
        self._account(ctx, served, completion.usage)
        return proto.completion_to_proto(completion, self._info(ctx, served, started))

    async def StreamChatCompletion(
        self,
        request: gateway_service_pb2.StreamChatCompletionRequest,
        context: aio.ServicerContext,
    ) -> AsyncIterator[gateway_service_pb2.StreamChatCompletionResponse]:
        started = time.perf_counter()
        chat = proto.chat_request_from_proto(request.request)
        ctx, served = _context(chat.model), Served()
        ctx.stream = True
        chunks = self._router.stream_chat(chat, served, include_usage=request.include_usage,
                                          deadline=_deadline(context), pin=_pin(context))
        metrics.ACTIVE_STREAMS.inc()
        first = True
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
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
            ctx.provider = served.provider

    async def CreateEmbeddings(
        self,
        request: gateway_service_pb2.CreateEmbeddingsRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateEmbeddingsResponse:
        started = time.perf_counter()
        embed = proto.embedding_request_from_proto(request)
        ctx, served = _context(embed.model), Served()
        try:
            result = await self._router.embed(embed, served, deadline=_deadline(context),
                                              pin=_pin(context))
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
        self._account(ctx, served, result.usage)
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
