"""How the core's grpc.aio server accepts calls: it waits on one pending call request,
not on one per registered method (gateway/service/server.py, ``_GenericHandlersOnly``).

grpc.aio's accept loop calls ``asyncio.wait`` on its pending call requests for every call
it accepts; with every method registered that was 28 futures, and a quarter of the Python
calls of a gRPC chat completion. The core runs in process here (zero config: the mock
provider) so the test can watch that loop; the calls come through a real channel, and
every service still answers: the gateway's, health and reflection.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from gateway.app import Gateway
from gateway.config import load_settings


async def test_the_core_waits_on_one_call_request_and_serves_every_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waited: list[int] = []
    wait = asyncio.wait

    async def counting_wait(fs: Iterable[Any], **kwargs: Any) -> Any:
        fs = list(fs)
        waited.append(len(fs))
        return await wait(fs, **kwargs)

    monkeypatch.setattr(asyncio, "wait", counting_wait)
    settings = load_settings(None, env={"ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0",
                                        "LOG_LEVEL": "error"})
    async with Gateway(settings, only="grpc") as gateway:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.grpc_port}") as channel:
            chat = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            health = health_pb2_grpc.HealthStub(channel)
            for _ in range(5):
                answer = await chat.CreateChatCompletion(
                    gateway_service_pb2.CreateChatCompletionRequest(
                        request=chat_pb2.ChatRequest(model="mock-1", messages=[
                            chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="hi")])))
                assert answer.completion.choices
                assert (await health.Check(health_pb2.HealthCheckRequest())).status == (
                    health_pb2.HealthCheckResponse.SERVING)
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = [reply async for reply in reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")]))]
            services = {s.name for s in replies[0].list_services_response.service}
            assert "llmgateway.v1.GatewayService" in services
    assert len(waited) >= 10  # the accept loop ran through the patched wait
    assert max(waited) == 1, waited
