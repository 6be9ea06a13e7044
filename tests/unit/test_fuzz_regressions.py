"""Defects the REST and gRPC fuzzers found (tests/fuzz), each pinned by its smallest
reproduction: a clear 4xx / INVALID_ARGUMENT where there was a 500 / INTERNAL."""

from __future__ import annotations

from typing import Any

import pytest
from llmgateway.v1 import chat_pb2, gateway_service_pb2

from gateway.config import ProviderConfig
from gateway.domain import ChatRequest, EmbeddingRequest, Message, ToolCall
from gateway.errors import InvalidRequestError, UpstreamRejectedError
from gateway.facade import responses, translate
from gateway.facade.errors import ApiError
from gateway.proto import (
    MAX_DIMENSIONS,
    MAX_JSON_DEPTH,
    chat_request_from_proto,
    embedding_request_from_proto,
)
from gateway.providers.anthropic import AnthropicCodec
from gateway.providers.http import HttpProvider
from gateway.providers.mock import MAX_EMBEDDING_VALUES, MockProvider

CHAT = {"model": "mock-1", "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize("value", [{}, [], ["user"], {"a": 1}])
@pytest.mark.parametrize(("build", "param"), [
    (lambda v: {**CHAT, "messages": [{"role": v, "content": "x"}]}, "messages[0].role"),
    (lambda v: {**CHAT, "response_format": {"type": v}}, "response_format.type"),
])
def test_chat_enum_fields_given_an_object_or_array_are_400(build: Any, param: str,
                                                           value: Any) -> None:
    # Was a TypeError (unhashable type) in a dict lookup: 500 "internal error".
    with pytest.raises(ApiError) as caught:
        translate.chat_request_to_proto(build(value))
    assert caught.value.status == 400 and caught.value.param == param


@pytest.mark.parametrize("value", [{}, [], ["user"]])
@pytest.mark.parametrize(("build", "param"), [
    (lambda v: {"model": "m", "input": [{"role": v, "content": "x"}]}, "input[0].role"),
    (lambda v: {"model": "m", "input": "x", "text": {"format": {"type": v}}},
     "text.format.type"),
])
def test_responses_enum_fields_given_an_object_or_array_are_400(build: Any, param: str,
                                                                value: Any) -> None:
    with pytest.raises(ApiError) as caught:
        responses.request_to_proto(build(value))
    assert caught.value.status == 400 and caught.value.param == param


def test_model_labels_past_the_bound_are_not_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    # Was: every distinct model name a client sent was kept in the label table, even
    # past the bound (reported as `other`): a flood of random names grew memory forever.
    from gateway.observability import metrics

    monkeypatch.setattr(metrics, "_models", {})
    monkeypatch.setattr(metrics, "MAX_MODEL_LABELS", 3)
    assert [metrics.model_label(m) for m in ("a", "b", "c", "a")] == ["a", "b", "c", "a"]
    assert {metrics.model_label(f"random-{i}") for i in range(1000)} == {"other"}
    assert len(metrics._models) == 3
    assert metrics.model_label("b") == "b" and metrics.model_label("") == "other"


@pytest.mark.parametrize(("field", "value", "expected"), [
    ("max_tokens", 16.0, 16), ("n", 2.0, 2), ("seed", -3.0, -3),
    ("max_completion_tokens", 1e3, 1000),
])
def test_integral_numbers_written_with_a_fraction_are_integers(field: str, value: float,
                                                               expected: int) -> None:
    # Was a 400 "must be an integer" for 16.0, which JSON (and the OpenAPI document's
    # JSON Schema "integer") holds to be the integer 16.
    req, _, _ = translate.chat_request_to_proto({**CHAT, field: value})
    assert getattr(req, field) == expected
    with pytest.raises(ApiError) as caught:
        translate.chat_request_to_proto({**CHAT, field: value + 0.5})
    assert caught.value.param == field


def test_embedding_dimensions_past_the_bound_are_invalid() -> None:
    # Was unbounded over gRPC (REST stopped at 65536): 2**31-1 made the mock build a
    # vector of two billion floats.
    def request(dimensions: int) -> Any:
        return gateway_service_pb2.CreateEmbeddingsRequest(model="m", inputs=["a"],
                                                           dimensions=dimensions)

    assert embedding_request_from_proto(request(MAX_DIMENSIONS)).dimensions == MAX_DIMENSIONS
    for dimensions in (MAX_DIMENSIONS + 1, 2**31 - 1, 0, -1):
        with pytest.raises(InvalidRequestError) as caught:
            embedding_request_from_proto(request(dimensions))
        assert caught.value.param == "dimensions"


async def test_the_mock_refuses_more_embedding_values_than_its_cap() -> None:
    # Was: 2048 inputs of 65536 dimensions (each within its bound) made 134 million
    # floats in the event loop: gigabytes, and the gateway stalled for minutes.
    mock = MockProvider("mock", ProviderConfig(type="mock"))
    inputs = tuple(f"t{i}" for i in range(16))
    size = MAX_EMBEDDING_VALUES // len(inputs)
    answer = await mock.embed(EmbeddingRequest(model="m", inputs=inputs, dimensions=size),
                              "echo", timeout=10)
    assert [len(v) for v in answer.vectors] == [size] * len(inputs)
    with pytest.raises(UpstreamRejectedError) as caught:
        await mock.embed(EmbeddingRequest(model="m", inputs=(*inputs, "one more"),
                                          dimensions=size), "echo", timeout=10)
    assert caught.value.param == "dimensions"


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.mark.parametrize(("build", "param"), [
    (lambda v: {"input": "x", "tools": [{"type": "function", "name": "f", "parameters": v}]},
     "tools[0].parameters"),
    (lambda v: {"input": "x", "text": {"format": {"type": "json_schema", "name": "n",
                                                  "schema": v}}}, "text.format.schema"),
    (lambda v: {"input": [{"type": "function_call_output", "call_id": "c", "output": v}]},
     "input[0].output"),
    (lambda v: {"input": "x", "passed_on": v}, None),
])
def test_responses_json_nested_past_what_can_be_written_is_400(build: Any,
                                                              param: str | None) -> None:
    # Was a 500: orjson reads 1024 levels but writes only 254 (TypeError "Recursion
    # limit reached" when the facade wrote the field for the core).
    responses.request_to_proto({"model": "m", **build(_nested(200))})
    with pytest.raises(ApiError) as caught:
        responses.request_to_proto({"model": "m", **build(_nested(300))})
    assert caught.value.status == 400 and caught.value.param == param
    assert "nested too deeply" in caught.value.message


@pytest.mark.parametrize("field", ["parameters_json", "schema_json", "extra_json"])
def test_json_text_fields_past_the_depth_bound_are_invalid(field: str) -> None:
    # Was accepted up to the parser's 1024 levels, then failed writing the upstream body
    # or the REST answer that echoes it (orjson writes 254 levels): INTERNAL, or a 500.
    def request(depth: int) -> chat_pb2.ChatRequest:
        text = '{"a":' * depth + "1" + "}" * depth
        req = chat_pb2.ChatRequest(model="m", messages=[chat_pb2.ChatMessage(
            role=chat_pb2.CHAT_ROLE_USER, content="x")])
        if field == "parameters_json":
            req.tools.add(name="f", parameters_json=text)
        elif field == "schema_json":
            req.response_format.type = chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
            req.response_format.json_schema.name = "n"
            req.response_format.json_schema.schema_json = text
        else:
            req.extra_json = text
        return req

    chat_request_from_proto(request(MAX_JSON_DEPTH))
    for depth in (MAX_JSON_DEPTH + 1, 300, 1000):
        with pytest.raises(InvalidRequestError, match="levels deep"):
            chat_request_from_proto(request(depth))
    wide = request(1)  # many brackets, little depth: the cheap count is only a first look
    wide.extra_json = "{" + ",".join(f'"k{i}":[[1]]' for i in range(500)) + "}"
    assert len(chat_request_from_proto(wide).extra) == 500


async def test_a_request_too_deep_to_write_upstream_is_invalid_not_internal() -> None:
    # Was INTERNAL (TypeError from orjson) for tool call arguments the codec parses, as
    # Anthropic's does, nested past the 254 levels orjson writes; no request is sent.
    config = ProviderConfig(type="anthropic", base_url="http://127.0.0.1:9")
    provider = HttpProvider("claude", config, AnthropicCodec("claude", config))
    arguments = '{"a":' * 300 + "1" + "}" * 300
    request = ChatRequest(model="m", messages=(
        Message(role="user", content="x"),
        Message(role="assistant", tool_calls=(ToolCall(id="c", name="f", arguments=arguments),)),
        Message(role="tool", content="done", tool_call_id="c")))
    with pytest.raises(InvalidRequestError, match="too deeply"):
        await provider.chat(request, "claude-x", timeout=5)
    with pytest.raises(InvalidRequestError, match="too deeply"):
        async for _ in provider.stream_chat(request, "claude-x", timeout=5,
                                            include_usage=False):
            pass
    await provider.aclose()


def test_a_model_name_past_the_bound_is_refused() -> None:
    """A 100 KB model name was carried into every log line and error about the request."""
    from llmgateway.v1 import chat_pb2 as chat
    from llmgateway.v1 import gateway_service_pb2 as service

    from gateway import proto
    from gateway.errors import InvalidRequestError

    long_name = "m" * (proto.MAX_MODEL_NAME + 1)
    message = chat.ChatMessage(role=chat.CHAT_ROLE_USER, content="x")
    with pytest.raises(InvalidRequestError, match="longer than"):
        proto.chat_request_from_proto(chat.ChatRequest(model=long_name, messages=[message]))
    with pytest.raises(InvalidRequestError, match="longer than"):
        proto.embedding_request_from_proto(service.CreateEmbeddingsRequest(
            model=long_name, inputs=["x"]))
    assert proto.chat_request_from_proto(chat.ChatRequest(
        model="m" * proto.MAX_MODEL_NAME, messages=[message])).model
