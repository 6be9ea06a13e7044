"""The in-process channel keeps gRPC's semantics: metadata in, initial metadata and
trailers out, status codes with their ErrorInfo, deadlines, streams that end with EOF, and
a cancelled stream whose handler stops where it waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from grpc import aio
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from gateway.clientip import TrustedProxies
from gateway.config import AuthConfig
from gateway.errors import InvalidRequestError, UpstreamTimeoutError
from gateway.facade.errors import from_rpc_error
from gateway.lifecycle import InFlight
from gateway.service.interceptors import Guard, RequestInterceptor
from gateway.service.local_channel import LocalChannel
from gateway.tenancy.auth import Authenticator
from gateway.tenancy.memory_store import MemoryTenantStore


class Servicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self) -> None:
        self.seen: list[Any] = []
        self.stream_closed = asyncio.Event()
        self.stream_waiting = asyncio.Event()

    async def ListModels(self, request: Any, context: Any) -> Any:
        self.seen.append((context.invocation_metadata(), context.peer(),
                          context.time_remaining()))
        await context.send_initial_metadata((("x-ratelimit-limit", "10"),))
        return gateway_service_pb2.ListModelsResponse()

    async def GetModel(self, request: Any, context: Any) -> Any:
        if request.model_id == "slow":
            await asyncio.sleep(10)
        if request.model_id == "timeout":
            raise UpstreamTimeoutError("the upstream did not answer", provider="p")
        raise InvalidRequestError("no such thing", param="model_id")

    async def StreamChatCompletion(self, request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            for index in range(3):
                yield gateway_service_pb2.StreamChatCompletionResponse(
                    chunk=chat_pb2.ChatCompletionChunk(id=str(index)))
            if request.request.model == "forever":
                self.stream_waiting.set()
                await asyncio.sleep(60)
        finally:
            self.stream_closed.set()


@pytest.fixture
def setup() -> tuple[Servicer, gateway_service_pb2_grpc.GatewayServiceStub, InFlight]:
    in_flight = InFlight()
    authenticator = Authenticator(AuthConfig(), MemoryTenantStore(), None)
    interceptor = RequestInterceptor(in_flight, Guard(authenticator, TrustedProxies(())))
    channel = LocalChannel(interceptor)
    servicer = Servicer()
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(servicer, channel)
    return servicer, gateway_service_pb2_grpc.GatewayServiceStub(channel), in_flight


async def test_a_call_sees_metadata_and_its_deadline_and_returns_headers(setup: Any) -> None:
    servicer, stub, in_flight = setup
    call = stub.ListModels(gateway_service_pb2.ListModelsRequest(),
                           metadata=(("x-request-id", "req-1"),), timeout=5)
    assert isinstance(await call, gateway_service_pb2.ListModelsResponse)
    metadata, peer, remaining = servicer.seen[0]
    assert ("x-request-id", "req-1") in metadata and peer.startswith("unix:")
    assert 4 < remaining <= 5
    assert (await call.initial_metadata()).get("x-ratelimit-limit") == "10"
    assert ("x-request-id", "req-1") in tuple(await call.trailing_metadata())
    assert in_flight.count == 0


async def test_errors_are_rpc_errors_with_the_status_and_error_info(setup: Any) -> None:
    _, stub, _ = setup
    with pytest.raises(aio.AioRpcError) as caught:
        await stub.GetModel(gateway_service_pb2.GetModelRequest(model_id="x"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "no such thing"
    error = from_rpc_error(caught.value)  # the facade reads it as from the socket
    assert (error.status, error.param) == (400, "model_id")
    with pytest.raises(aio.AioRpcError) as caught:
        await stub.GetModel(gateway_service_pb2.GetModelRequest(model_id="timeout"))
    assert from_rpc_error(caught.value).status == 504


async def test_the_deadline_ends_a_call(setup: Any) -> None:
    _, stub, in_flight = setup
    with pytest.raises(aio.AioRpcError) as caught:
        await stub.GetModel(gateway_service_pb2.GetModelRequest(model_id="slow"), timeout=0.05)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert in_flight.count == 0


async def test_a_stream_reads_to_eof(setup: Any) -> None:
    servicer, stub, _ = setup
    call = stub.StreamChatCompletion(gateway_service_pb2.StreamChatCompletionRequest(
        request=chat_pb2.ChatRequest(model="m")))
    ids = [message.chunk.id async for message in call]
    assert ids == ["0", "1", "2"]
    assert await call.read() is aio.EOF
    assert servicer.stream_closed.is_set()


async def test_cancelling_a_stream_stops_its_handler(setup: Any) -> None:
    servicer, stub, in_flight = setup
    call = stub.StreamChatCompletion(gateway_service_pb2.StreamChatCompletionRequest(
        request=chat_pb2.ChatRequest(model="forever")))
    for _ in range(3):
        await call.read()
    reading = asyncio.ensure_future(call.read())
    await servicer.stream_waiting.wait()
    reading.cancel()  # the facade's task goes away mid-read (a client that left)
    with pytest.raises(asyncio.CancelledError):
        await reading
    call.cancel()
    await asyncio.wait_for(servicer.stream_closed.wait(), 5)
    assert in_flight.count == 0


def test_only_registered_methods_can_be_called() -> None:
    channel = LocalChannel(RequestInterceptor(InFlight(), Guard(
        Authenticator(AuthConfig(), MemoryTenantStore(), None), TrustedProxies(()))))
    with pytest.raises(ValueError, match="no servicer"):
        gateway_service_pb2_grpc.GatewayServiceStub(channel)
