"""The Messages API's typed RPCs with the generated stubs: a unary answer, a stream in
Anthropic's order, the core's own checks as INVALID_ARGUMENT, and nothing a client sends
lost on the way to an Anthropic upstream (the lossless carrier)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import orjson
import pytest
from llmgateway.v1 import gateway_service_pb2, gateway_service_pb2_grpc, messages_pb2

from tests.conftest import RunningGateway
from tests.fakes.anthropic import FakeAnthropic
from tests.inprocess import start_in_process


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic) -> Iterator[RunningGateway]:
    gw = start_in_process(f"""
providers:
  anthropic: {{type: anthropic, base_url: "{fake.base_url}", api_key: "{fake.api_key}"}}
  mock: {{type: mock}}
""")
    yield gw
    assert gw.stop() == 0, gw.logs()


@pytest.fixture
def stub(gateway: RunningGateway) -> Iterator[gateway_service_pb2_grpc.GatewayServiceStub]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield gateway_service_pb2_grpc.GatewayServiceStub(channel)


def _hi(model: str) -> messages_pb2.MessagesRequest:
    request = messages_pb2.MessagesRequest(model=model, max_tokens=64)
    turn = request.messages.add(role="user")
    turn.content.add().text.text = "hi there"
    return request


def test_a_unary_answer(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    answer = stub.CreateMessage(gateway_service_pb2.CreateMessageRequest(
        request=_hi("mock/echo")), timeout=10)
    assert answer.message.id.startswith("msg_")
    assert answer.message.content[0].WhichOneof("block") == "text"
    assert answer.message.stop_reason == "end_turn"
    assert answer.message.usage.output_tokens > 0
    assert answer.gateway.provider == "mock"


def test_a_stream_in_anthropics_order(stub: gateway_service_pb2_grpc.GatewayServiceStub
                                      ) -> None:
    kinds = [r.event.WhichOneof("event") for r in stub.StreamMessage(
        gateway_service_pb2.StreamMessageRequest(request=_hi("mock/echo")), timeout=10)]
    assert kinds[0] == "message_start"
    assert kinds[1] == "content_block_start"
    assert set(kinds[2:-3]) == {"content_block_delta"}
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]


@pytest.mark.parametrize(("change", "param"), [
    (lambda r: r.ClearField("model"), "model"),
    (lambda r: setattr(r, "max_tokens", 0), "max_tokens"),
    (lambda r: r.ClearField("messages"), "messages"),
    (lambda r: setattr(r.messages[0].content[0].text, "text", "x") or setattr(
        r, "extra_json", "[1]"), "extra_json"),
])
def test_the_cores_checks(stub: gateway_service_pb2_grpc.GatewayServiceStub, change: object,
                          param: str) -> None:
    request = _hi("mock/echo")
    change(request)  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as refused:
        stub.CreateMessage(gateway_service_pb2.CreateMessageRequest(request=request),
                           timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # type: ignore[attr-defined]
    assert param in (refused.value.details() or "")  # type: ignore[attr-defined]


def test_extra_fields_reach_an_anthropic_upstream(
        stub: gateway_service_pb2_grpc.GatewayServiceStub, fake: FakeAnthropic) -> None:
    request = _hi("anthropic/claude-haiku-4-5")
    request.extra_json = '{"service_tier":"auto","context_management":{"edits":[]}}'
    request.messages[0].content[0].cache_control.type = "ephemeral"
    stub.CreateMessage(gateway_service_pb2.CreateMessageRequest(
        request=request, anthropic_beta=["context-management-2025-06-27"]), timeout=10)
    sent = fake.requests[-1]
    assert orjson.loads(sent.body) == {
        "model": "claude-haiku-4-5", "max_tokens": 64, "service_tier": "auto",
        "context_management": {"edits": []},
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "hi there", "cache_control": {"type": "ephemeral"}}]}]}
    assert sent.headers["anthropic-beta"] == "context-management-2025-06-27"
