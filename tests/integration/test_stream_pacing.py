"""Chunks are forwarded as they arrive: a slow upstream's pauses between events reach the
client, over REST (SSE) and gRPC alike, so nothing on the path buffers a stream.

Not a speed test: the upstream pauses 300 ms between events and the check only asks that
each event arrive on its own, at least 150 ms after the one before (a buffering layer
would deliver them together, or all at the end). bench/ measures how closely gaps are kept.
"""

from __future__ import annotations

import time

import grpc
import httpx
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI, chunk
from tests.fakes.server import Reply

GAP = 0.3
WORDS = ["one ", "two ", "three ", "four ", "five "]


def paced_reply() -> Reply:
    events = [chunk("gpt-4o-mini", {"content": w}) for w in WORDS]
    events.append(chunk("gpt-4o-mini", {}, "stop"))
    return Reply(events=[*events, "[DONE]"], gap=GAP)


def assert_paced(arrivals: list[float]) -> None:
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert len(gaps) >= len(WORDS) - 1, arrivals
    assert all(gap > GAP / 2 for gap in gaps[:len(WORDS) - 1]), gaps


def test_rest_streams_keep_the_upstreams_pauses(gateway: RunningGateway,
                                               fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(paced_reply())
    arrivals = []
    with httpx.stream("POST", gateway.http_url + "/v1/chat/completions", timeout=30, json={
            "model": "gpt-4o-mini", "stream": True,
            "messages": [{"role": "user", "content": "count"}]}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: {") and '"content"' in line:
                arrivals.append(time.monotonic())
    assert_paced(arrivals)


def test_grpc_streams_keep_the_upstreams_pauses(gateway: RunningGateway,
                                               fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(paced_reply())
    arrivals = []
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        request = gateway_service_pb2.StreamChatCompletionRequest(request=chat_pb2.ChatRequest(
            model="gpt-4o-mini", messages=[chat_pb2.ChatMessage(
                role=chat_pb2.CHAT_ROLE_USER, content="count")]))
        for message in stub.StreamChatCompletion(request, timeout=30):
            if any(choice.delta.content for choice in message.chunk.choices):
                arrivals.append(time.monotonic())
    assert_paced(arrivals)
