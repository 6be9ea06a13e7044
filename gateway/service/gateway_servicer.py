"""``llmgateway.v1.GatewayService``: thin methods over the router.

Cross-cutting work (request ids, errors, logs) is in the interceptor; here each
method converts, routes, converts back.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

from grpc import aio
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from gateway import proto
from gateway.observability import context as reqctx
from gateway.routing import Router
from gateway.routing.router import Served

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


class GatewayServicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, router: Router):
        self._router = router

    async def CreateChatCompletion(
        self,
        request: gateway_service_pb2.CreateChatCompletionRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateChatCompletionResponse:
        started = time.perf_counter()
        chat = proto.chat_request_from_proto(request.request)
        ctx = reqctx.current()
        served = Served()
        if ctx is not None:
            ctx.model = chat.model
        try:
            completion = await self._router.chat(chat, served, deadline=_deadline(context),
                                                 pin=_pin(context))
        finally:
            if ctx is not None:
                ctx.provider = served.provider
        if ctx is not None and completion.usage is not None:
            ctx.prompt_tokens = completion.usage.prompt_tokens
            ctx.completion_tokens = completion.usage.completion_tokens
        info = chat_pb2.GatewayInfo(
            provider=served.provider,
            model=served.model,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            request_id=ctx.request_id if ctx is not None else "",
        )
        return proto.completion_to_proto(completion, info)

    async def StreamChatCompletion(
        self,
        request: gateway_service_pb2.StreamChatCompletionRequest,
        context: aio.ServicerContext,
    ) -> AsyncIterator[gateway_service_pb2.StreamChatCompletionResponse]:
        chat = proto.chat_request_from_proto(request.request)
        ctx = reqctx.current()
        served = Served()
        if ctx is not None:
            ctx.model = chat.model
        chunks = self._router.stream_chat(chat, served, include_usage=request.include_usage,
                                          deadline=_deadline(context), pin=_pin(context))
        try:
            async with contextlib.aclosing(chunks):
                async for chunk in chunks:
                    if chunk.usage is not None:
                        if ctx is not None:
                            ctx.prompt_tokens = chunk.usage.prompt_tokens
                            ctx.completion_tokens = chunk.usage.completion_tokens
                        if not request.include_usage:
                            if not chunk.choices:
                                continue  # a usage-only chunk the client did not ask for
                            chunk.usage = None
                    yield proto.chunk_to_proto(chunk)
        finally:
            if ctx is not None:
                ctx.provider = served.provider

    async def CreateEmbeddings(
        self,
        request: gateway_service_pb2.CreateEmbeddingsRequest,
        context: aio.ServicerContext,
    ) -> gateway_service_pb2.CreateEmbeddingsResponse:
        started = time.perf_counter()
        embed = proto.embedding_request_from_proto(request)
        ctx = reqctx.current()
        served = Served()
        if ctx is not None:
            ctx.model = embed.model
        try:
            result = await self._router.embed(embed, served, deadline=_deadline(context),
                                              pin=_pin(context))
        finally:
            if ctx is not None:
                ctx.provider = served.provider
        if ctx is not None and result.usage is not None:
            ctx.prompt_tokens = result.usage.prompt_tokens
        info = chat_pb2.GatewayInfo(
            provider=served.provider,
            model=served.model,
            latency_ms=round((time.perf_counter() - started) * 1000, 3),
            request_id=ctx.request_id if ctx is not None else "",
        )
        return proto.embeddings_to_proto(result, info)

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
