"""What a gRPC request may cost (issue 19, item 1): gzip-compressed calls of 63 MiB once
took the core from 537 MB to 1.6 GB, as it accepted 64 MiB messages. A message is now
refused once it inflates past ``server.max_request_body_size``, as over REST."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.inprocess import InProcessGateway

KEY = "sk-intake-test-key"
LIMIT = 1024 * 1024  # server.max_request_body_size in these tests
CONFIG = f"""
server: {{max_request_body_size: {LIMIT}}}
auth:
  api_keys: {{enabled: true, keys: ["{KEY}"]}}
providers:
  mock: {{type: mock, models: [echo]}}
models:
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
"""
Factory = Callable[..., InProcessGateway]


def request(text_bytes: int) -> gateway_service_pb2.CreateChatCompletionRequest:
    return gateway_service_pb2.CreateChatCompletionRequest(request=chat_pb2.ChatRequest(
        model="mock-1", messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                                       content="a" * text_bytes)]))


@pytest.fixture
def decoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of the chat requests the gateway started after this decoded (grpc takes the
    deserializer when the servicer is registered)."""
    sizes: list[int] = []
    for message in (gateway_service_pb2.CreateChatCompletionRequest,
                    gateway_service_pb2.StreamChatCompletionRequest):

        def counting(raw: bytes, parse: Any = message.FromString) -> Any:
            sizes.append(len(raw))
            return parse(raw)

        monkeypatch.setattr(message, "FromString", staticmethod(counting))
    return sizes


@pytest.fixture
def stub(gateway_factory: Factory) -> Iterator[gateway_service_pb2_grpc.GatewayServiceStub]:
    gw = gateway_factory(CONFIG)
    # The client may send what it likes: the limit under test is the server's.
    with grpc.insecure_channel(gw.grpc_target, options=[
            ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        yield gateway_service_pb2_grpc.GatewayServiceStub(channel)


def code_of(call: Callable[[], object]) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as err:
        return err.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_a_message_over_the_body_limit_after_decompression_is_refused(
        decoded: list[int], stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    auth = (("authorization", f"Bearer {KEY}"),)
    over = request(LIMIT + 1024)  # compresses to ~1 KB: the limit must hold on what inflates
    for compression in (grpc.Compression.Gzip, grpc.Compression.NoCompression):
        assert code_of(lambda c=compression: stub.CreateChatCompletion(  # type: ignore[misc]
            over, timeout=20, metadata=auth, compression=c)) \
            == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert decoded == []
    within = request(LIMIT - 1024)
    answer = stub.CreateChatCompletion(within, timeout=20, metadata=auth,
                                       compression=grpc.Compression.Gzip)
    assert answer.completion.choices
    assert decoded == [within.ByteSize()]


def test_an_unauthenticated_call_is_refused_before_its_message_is_decoded(
        decoded: list[int], stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    """The red team's attack, at the body limit: 16 concurrent calls without a credential
    (or with a wrong one) cost no parsing; a bad message is still INVALID_ARGUMENT once
    the caller is known."""
    big = request(LIMIT - 1024)
    calls = [stub.CreateChatCompletion.future(big, timeout=20,
                                              compression=grpc.Compression.Gzip)
             for _ in range(16)]
    calls += [stub.StreamChatCompletion(  # type: ignore[misc]
        gateway_service_pb2.StreamChatCompletionRequest(request=big.request), timeout=20,
        metadata=(("authorization", "Bearer sk-wrong"),)) for _ in range(4)]
    codes = [code_of(call.result if hasattr(call, "result") else lambda c=call: list(c))
             for call in calls]
    assert codes == [grpc.StatusCode.UNAUTHENTICATED] * 20
    assert decoded == []
    channel_call = stub.CreateChatCompletion.with_call
    auth = (("authorization", f"Bearer {KEY}"),)
    answer, _ = channel_call(big, timeout=20, metadata=auth)
    assert answer.completion.choices and decoded == [big.ByteSize()]
