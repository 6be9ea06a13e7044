"""``llmgateway.v1.GatewayService``: thin methods over the router.

Cross-cutting work (request ids, authentication, errors, logs, request metrics)
is in the interceptor; here each inference method converts, is admitted (limits,
budget), routes, accounts and converts back.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator

from grpc import aio
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from gateway import proto
from gateway.domain import Usage
from gateway.errors import AuthenticationError, GatewayError
from gateway.observability import context as reqctx
from gateway.observability import metrics, tracing
from gateway.providers import credentials
from gateway.routing import Router
from gateway.routing.router import RoutingHints, Served
from gateway.tenancy.admission import Admission, Admitted
from gateway.tenancy.auth import Identity, current_identity
from gateway.tenancy.models import UsageRow
from gateway.tenancy.pricing import Pricing
from gateway.tenancy.usage import Budgets

__all__ = ["GatewayServicer"]


def _deadline(context: aio.ServicerContext) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else max(remaining, 0.001)


def _hints(context: aio.ServicerContext, admitted: Admitted) -> RoutingHints:
    """The ``x-provider`` pin, if any, and the tenant's own provider preferences."""
    pin = ""
    for key, value in context.invocation_metadata() or ():
        if key == "x-provider":
            pin = str(value)
    tenant = admitted.identity.tenant
    if tenant is None:
        return RoutingHints(pin=pin)
    return RoutingHints(pin, tenant.default_provider, tenant.fallback_providers)


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


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, router: Router, pricing: Pricing, admission: Admission, budgets: Budgets):
        self._router = router
        self._pricing = pricing
        self._admission = admission
        self._budgets = budgets

    async def _admit(self, model: str, context: aio.ServicerContext) -> Admitted:
        admitted = await self._admission.admit(_identity(), model)
        if admitted.headers:
            await context.send_initial_metadata(tuple(admitted.headers.items()))
        credentials.use(admitted.credentials)
        return admitted

    async def _settle(self, admitted: Admitted, ctx: reqctx.RequestContext,
                      started: float) -> None:
        """Called from ``finally``: the exception in flight, if any, is the outcome."""
        failure = sys.exc_info()[1]
        if isinstance(failure, GatewayError):
            ctx.status = failure.grpc_code.name
        elif isinstance(failure, asyncio.CancelledError):
            ctx.status = "CANCELLED"
        elif failure is not None:
            ctx.status = "INTERNAL"
        row = UsageRow(
            tenant_id=admitted.identity.tenant_id, model=ctx.model, provider=ctx.provider,
            prompt_tokens=ctx.prompt_tokens, completion_tokens=ctx.completion_tokens,
            cost_usd=ctx.cost_usd, latency_ms=round((time.perf_counter() - started) * 1000, 3),
            status=ctx.status, request_id=ctx.request_id)
        await self._admission.settle(admitted, row)

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
        admitted = await self._admit(chat.model, context)
        try:
            completion = await self._router.chat(chat, served, deadline=_deadline(context),
                                                 hints=_hints(context, admitted))
            self._account(ctx, served, completion.usage)
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
            await self._settle(admitted, ctx, started)
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
        admitted = await self._admit(chat.model, context)
        chunks = self._router.stream_chat(chat, served, include_usage=request.include_usage,
                                          deadline=_deadline(context),
                                          hints=_hints(context, admitted))
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
            await self._settle(admitted, ctx, started)

    async def CreateEmbeddings(
        self,
        request: gateway_service_pb2.CreateEmbeddingsRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateEmbeddingsResponse:
        started = time.perf_counter()
        embed = proto.embedding_request_from_proto(request)
        ctx, served = _context(embed.model), Served()
        admitted = await self._admit(embed.model, context)
        try:
            result = await self._router.embed(embed, served, deadline=_deadline(context),
                                              hints=_hints(context, admitted))
            self._account(ctx, served, result.usage)
        finally:
            ctx.provider, ctx.upstream_seconds = served.provider, served.upstream_seconds
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
        if not identity.tenant_id:
            raise AuthenticationError("usage is tracked per tenant: authenticate with a key")
        period, totals = await self._budgets.totals(identity.tenant_id)
        response = gateway_service_pb2.GetUsageResponse(
            tenant_id=identity.tenant_id, period_start=int(period), requests=totals.requests,
            prompt_tokens=totals.prompt_tokens, completion_tokens=totals.completion_tokens,
            cost_usd=round(totals.cost_usd, 6))
        budget = identity.tenant.monthly_budget_usd if identity.tenant is not None else None
        if budget is not None:
            response.monthly_budget_usd = budget
            response.budget_used_ratio = totals.cost_usd / budget if budget else 1.0
        return response
