"""A client that knows only server reflection, as grpcurl does: no proto files, no stubs.

Nothing from ``llmgateway`` is imported here; every descriptor and message class is
built from what the server's reflection service returns.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, json_format, message_factory
from google.protobuf.descriptor import MethodDescriptor
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.conftest import RunningGateway

SERVICE = "llmgateway.v1.GatewayService"


class ReflectionClient:
    """Descriptors and dynamic calls, from reflection alone."""

    def __init__(self, channel: grpc.Channel):
        self.channel = channel
        self.database = ProtoReflectionDescriptorDatabase(channel)
        self.pool = descriptor_pool.DescriptorPool(self.database)

    def services(self) -> list[str]:
        return list(self.database.get_services())

    def method(self, full_name: str) -> MethodDescriptor:
        service, _, method = full_name.rpartition(".")
        return self.pool.FindServiceByName(service).methods_by_name[method]

    def call(self, full_name: str, body: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send ``body`` (proto JSON, as grpcurl -d takes it) and return the answer as JSON."""
        method = self.method(full_name)
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        request = json_format.ParseDict(body, request_cls())
        path = f"/{method.containing_service.full_name}/{method.name}"
        rpc = self.channel.unary_unary(
            path,
            request_serializer=request_cls.SerializeToString,
            response_deserializer=response_cls.FromString,
        )
        response = rpc(request, timeout=timeout)
        return json_format.MessageToDict(response)


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[ReflectionClient]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield ReflectionClient(channel)


def test_list_services(client: ReflectionClient) -> None:
    services = client.services()
    for name in (SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"):
        assert name in services, services


def test_describe_gateway_service(client: ReflectionClient) -> None:
    service = client.pool.FindServiceByName(SERVICE)
    methods = {m.name: m for m in service.methods}
    assert {"CreateChatCompletion", "StreamChatCompletion", "ListModels", "GetModel"} <= set(
        methods)
    create = methods["CreateChatCompletion"]
    assert create.input_type.full_name == "llmgateway.v1.CreateChatCompletionRequest"
    assert create.output_type.full_name == "llmgateway.v1.CreateChatCompletionResponse"
    assert not create.client_streaming and not create.server_streaming
    stream = methods["StreamChatCompletion"]
    assert stream.server_streaming and not stream.client_streaming
    # The message graph resolves through dependencies fetched by reflection.
    chat_request = create.input_type.fields_by_name["request"].message_type
    assert chat_request.full_name == "llmgateway.v1.ChatRequest"
    messages = chat_request.fields_by_name["messages"]
    assert messages.message_type.full_name == "llmgateway.v1.ChatMessage"
    role = messages.message_type.fields_by_name["role"].enum_type
    assert "CHAT_ROLE_USER" in role.values_by_name
    assert chat_request.fields_by_name["temperature"].has_presence


def test_describe_health_service(client: ReflectionClient) -> None:
    health = client.pool.FindServiceByName("grpc.health.v1.Health")
    assert {"Check", "Watch"} <= {m.name for m in health.methods}


def test_list_models_dynamically(client: ReflectionClient) -> None:
    answer = client.call(f"{SERVICE}.ListModels", {})
    ids = {m["id"] for m in answer["models"]}
    assert {"mock-1", "gpt-4o-mini", "mock/echo"} <= ids


def test_create_chat_completion_dynamically(client: ReflectionClient) -> None:
    answer = client.call(f"{SERVICE}.CreateChatCompletion", {
        "request": {"model": "mock-1",
                    "messages": [{"role": "CHAT_ROLE_USER", "content": "hi reflection"}]},
    })
    completion = answer["completion"]
    message = completion["choices"][0]["message"]
    assert message["role"] == "CHAT_ROLE_ASSISTANT"
    assert "hi reflection" in message["content"]
    assert completion["choices"][0]["finishReason"] == "FINISH_REASON_STOP"
    assert int(completion["usage"]["totalTokens"]) > 0
    assert completion["gateway"]["provider"] == "mock"


def test_dynamic_error_is_a_status(client: ReflectionClient) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        client.call(f"{SERVICE}.GetModel", {"modelId": "no-such-model"})
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_unknown_symbol_is_reported(client: ReflectionClient) -> None:
    with pytest.raises(KeyError):
        client.pool.FindServiceByName("llmgateway.v1.NoSuchService")


def test_create_message_dynamically(client: ReflectionClient) -> None:
    """The Messages API's typed RPC, from reflection alone (as grpcurl would call it)."""
    methods = client.pool.FindServiceByName(SERVICE).methods_by_name
    assert {"CreateMessage", "StreamMessage", "CountMessageTokens"} <= set(methods)
    block = client.pool.FindMessageTypeByName("llmgateway.v1.ContentBlock")
    assert {"text", "image", "document", "tool_use", "tool_result", "thinking",
            "redacted_thinking", "other_json"} <= set(block.fields_by_name)
    answer = client.call(f"{SERVICE}.CreateMessage", {"request": {
        "model": "mock/echo", "maxTokens": 32,
        "messages": [{"role": "user", "content": [{"text": {"text": "hi there"}}]}]}})
    message = answer["message"]
    assert message["id"].startswith("msg_") and message["role"] == "assistant"
    assert "hi there" in message["content"][0]["text"]["text"]
    assert message["stopReason"] == "end_turn"
    assert answer["gateway"]["provider"] == "mock"
