"""A gRPC client that keeps no more calls in flight on a connection than
``server.max_concurrent_streams`` is never refused.

grpc's server counts a call's stream until the application has released it, a little after
the client already has its answer; with its overload protection on (it is, against HTTP/2
rapid-reset floods) it refused new streams (RST_STREAM REFUSED_STREAM, UNAVAILABLE to the
client) whenever those finished-but-unreleased streams pushed the count past the limit.
The bench saw it on busy hosts at 64 calls in flight under the default 100, and on any host
at 64 under a limit of 66. The core now allows as many such streams as the limit itself
(``grpc.http2.max_deallocating_streams``), which keeps a bound for the flood.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import grpc
import pytest
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.inprocess import InProcessGateway

pytestmark = pytest.mark.serial

Factory = Callable[..., InProcessGateway]

LIMIT = 16
CALLS = 3000


async def _load(target: str) -> dict[str, int]:
    request = gateway_service_pb2.CreateChatCompletionRequest(request=chat_pb2.ChatRequest(
        model="mock-1", messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                                       content="hi")]))
    errors: dict[str, int] = {}
    tickets = itertools.count()
    async with grpc.aio.insecure_channel(target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)

        async def caller() -> None:
            while next(tickets) < CALLS:
                try:
                    await stub.CreateChatCompletion(request, timeout=10)
                except grpc.aio.AioRpcError as exc:
                    key = f"{exc.code().name}: {exc.details()}"
                    errors[key] = errors.get(key, 0) + 1

        await asyncio.gather(*(caller() for _ in range(LIMIT)))
    return errors


def test_calls_up_to_the_stream_limit_are_never_refused(gateway_factory: Factory) -> None:
    gw = gateway_factory(f"server: {{max_concurrent_streams: {LIMIT}}}\n")
    assert asyncio.run(_load(gw.grpc_target)) == {}
