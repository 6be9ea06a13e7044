"""The gRPC API through the generated stubs, against a real gateway.

The module-scoped ``gateway`` serves ``mock-1`` (the mock provider) and ``gpt-4o-mini``
(provider ``upstream``: the fake OpenAI server). Errors must be gRPC status codes
carrying a ``google.rpc.ErrorInfo`` detail in the ``grpc-status-details-bin`` trailer.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI, completion, openai_error
from tests.fakes.server import Reply

# Retryable upstream failures are scripted several times over, so that a gateway that
# retries (config `retry.attempts`) still sees the failure on every attempt.
ATTEMPTS = 3


@pytest.fixture
def stub(gateway: RunningGateway) -> Iterator[gateway_service_pb2_grpc.GatewayServiceStub]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield gateway_service_pb2_grpc.GatewayServiceStub(channel)


def user(text: str) -> chat_pb2.ChatMessage:
    return chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content=text)


def chat(model: str, *messages: chat_pb2.ChatMessage, **fields: object) -> chat_pb2.ChatRequest:
    return chat_pb2.ChatRequest(model=model, messages=messages or [user("hello")], **fields)


def create(request: chat_pb2.ChatRequest) -> gateway_service_pb2.CreateChatCompletionRequest:
    return gateway_service_pb2.CreateChatCompletionRequest(request=request)


def error_info(err: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The ErrorInfo in the status-details trailer; fails the test when there is none."""
    assert isinstance(err, grpc.Call)
    details = [v for k, v in err.trailing_metadata() or () if k == "grpc-status-details-bin"]
    assert details, f"no grpc-status-details-bin trailer on {err.code()}: {err.details()}"
    status = status_pb2.Status.FromString(details[0])
    assert status.code == err.code().value[0]
    infos = []
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            infos.append(info)
    assert len(infos) == 1, status
    return infos[0]


def call_error(fn: object, request: object, **kwargs: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        fn(request, **kwargs)  # type: ignore[operator]
    return caught.value


# --- chat ----------------------------------------------------------------------------------


def test_create_chat_completion_via_mock(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    response = stub.CreateChatCompletion(
        create(chat("mock-1", user("hello grpc world"))), timeout=10)
    out = response.completion
    assert len(out.choices) == 1
    choice = out.choices[0]
    assert choice.message.role == chat_pb2.CHAT_ROLE_ASSISTANT
    assert "hello grpc world" in choice.message.content
    assert choice.finish_reason == chat_pb2.FINISH_REASON_STOP
    assert out.usage.prompt_tokens > 0 and out.usage.completion_tokens > 0
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    assert out.gateway.provider == "mock"
    assert out.gateway.model == "echo"
    assert out.gateway.request_id


def test_create_chat_completion_via_upstream(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    request = chat("gpt-4o-mini",
                   chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_SYSTEM, content="be brief"),
                   user("hi upstream"), temperature=0.5, max_tokens=32, stop=["END"])
    response = stub.CreateChatCompletion(create(request), timeout=10)
    out = response.completion
    assert out.choices[0].message.content == "Hello from fake-openai"
    assert out.choices[0].finish_reason == chat_pb2.FINISH_REASON_STOP
    assert (out.usage.prompt_tokens, out.usage.completion_tokens, out.usage.total_tokens) == (
        11, 7, 18)
    assert out.usage.cached_prompt_tokens == 3
    assert out.system_fingerprint == "fp_fake"
    assert out.gateway.provider == "upstream"
    assert out.gateway.model == "gpt-4o-mini"

    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {FakeOpenAI.api_key}"
    body = sent.json
    assert body["model"] == "gpt-4o-mini"
    assert body["messages"] == [{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi upstream"}]
    assert body["temperature"] == 0.5
    assert body["max_tokens"] == 32
    assert body["stop"] == ["END"]
    assert "stream" not in body


def test_tool_call_through_upstream(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    request = chat(
        "gpt-4o-mini", user("weather in Paris?"),
        tools=[chat_pb2.Tool(name="get_weather", description="weather by city",
                             parameters_json='{"type":"object","properties":{"city":'
                                             '{"type":"string"}}}')],
        tool_choice=chat_pb2.ToolChoice(mode=chat_pb2.TOOL_CHOICE_MODE_REQUIRED),
    )
    out = stub.CreateChatCompletion(create(request), timeout=10).completion
    assert out.choices[0].finish_reason == chat_pb2.FINISH_REASON_TOOL_CALLS
    calls = out.choices[0].message.tool_calls
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("call_fake1", "get_weather", '{"city": "Paris"}')]
    assert not out.choices[0].message.HasField("content")
    body = fake_openai.requests[-1].json
    assert body["tool_choice"] == "required"
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": "weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def test_stream_via_mock_with_usage(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    request = gateway_service_pb2.StreamChatCompletionRequest(
        request=chat("mock-1", user("one two three")), include_usage=True)
    chunks = [r.chunk for r in stub.StreamChatCompletion(request, timeout=10)]
    assert len(chunks) >= 4
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert "one two three" in text
    assert chunks[0].choices[0].delta.role == chat_pb2.CHAT_ROLE_ASSISTANT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == chat_pb2.FINISH_REASON_STOP
    assert all(c.HasField("usage") is False for c in chunks[:-1])
    last = chunks[-1]
    assert last.HasField("usage")
    assert last.usage.prompt_tokens > 0 and last.usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_stream_without_usage_has_no_usage_chunk(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
) -> None:
    request = gateway_service_pb2.StreamChatCompletionRequest(
        request=chat("mock-1", user("no usage please")))
    chunks = [r.chunk for r in stub.StreamChatCompletion(request, timeout=10)]
    assert chunks
    assert not any(c.HasField("usage") for c in chunks)


def test_stream_via_upstream_with_usage(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    request = gateway_service_pb2.StreamChatCompletionRequest(
        request=chat("gpt-4o-mini", user("stream it")), include_usage=True)
    chunks = [r.chunk for r in stub.StreamChatCompletion(request, timeout=10)]
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == "Hello from fake-openai"
    assert chunks[-1].HasField("usage")
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (11, 7)
    assert list(chunks[-1].choices) == []
    body = fake_openai.requests[-1].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


# --- models --------------------------------------------------------------------------------


def test_list_models(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    models = {m.id: m for m in stub.ListModels(gateway_service_pb2.ListModelsRequest(),
                                               timeout=10).models}
    assert {"mock-1", "gpt-4o-mini", "upstream/gpt-4o-mini", "mock/echo"} <= set(models)
    assert list(models["mock-1"].targets) == ["mock/echo"]
    assert list(models["gpt-4o-mini"].targets) == ["upstream/gpt-4o-mini"]
    assert models["mock/echo"].owned_by == "mock"
    assert models["upstream/gpt-4o-mini"].owned_by == "upstream"
    assert all(m.created > 0 for m in models.values())


def test_get_model(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    model = stub.GetModel(gateway_service_pb2.GetModelRequest(model_id="mock-1"),
                          timeout=10).model
    assert model.id == "mock-1"
    assert list(model.targets) == ["mock/echo"]
    direct = stub.GetModel(gateway_service_pb2.GetModelRequest(model_id="mock/echo"),
                           timeout=10).model
    assert (direct.id, direct.owned_by) == ("mock/echo", "mock")


def test_get_model_not_found(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    err = call_error(stub.GetModel, gateway_service_pb2.GetModelRequest(model_id="no-such-model"),
                     timeout=10)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    info = error_info(err)
    assert info.reason == "MODEL_NOT_FOUND"
    assert info.domain == "llm-gateway"
    assert info.metadata["code"] == "model_not_found"


# --- errors --------------------------------------------------------------------------------


def test_unknown_model_is_not_found_with_error_info(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
) -> None:
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-5-turbo")), timeout=10)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert "gpt-5-turbo" in err.details()
    info = error_info(err)
    assert info.reason == "MODEL_NOT_FOUND"
    assert info.domain == "llm-gateway"
    assert info.metadata["code"] == "model_not_found"
    assert info.metadata["param"] == "model"


def test_unknown_model_on_stream_is_not_found(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
) -> None:
    request = gateway_service_pb2.StreamChatCompletionRequest(request=chat("unknown/model"))
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamChatCompletion(request, timeout=10))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "MODEL_NOT_FOUND"


@pytest.mark.parametrize(
    ("request_", "param"),
    [
        pytest.param(chat_pb2.ChatRequest(model="mock-1"), "messages", id="empty-messages"),
        pytest.param(chat_pb2.ChatRequest(model="", messages=[user("x")]), "model",
                     id="empty-model"),
        pytest.param(chat_pb2.ChatRequest(model="mock-1",
                                          messages=[chat_pb2.ChatMessage(content="no role")]),
                     "messages[0].role", id="missing-role"),
        pytest.param(chat("mock-1", temperature=2.5), "temperature", id="temperature-high"),
        pytest.param(chat("mock-1", temperature=-0.1), "temperature", id="temperature-low"),
        pytest.param(chat("mock-1", top_p=1.5), "top_p", id="top-p"),
        pytest.param(chat("mock-1", n=0), "n", id="n-zero"),
        pytest.param(chat("mock-1", max_tokens=0), "max_tokens", id="max-tokens-zero"),
        pytest.param(chat("mock-1", tools=[chat_pb2.Tool(name="f", parameters_json="{nope")]),
                     "tools[0].function.parameters", id="tools-bad-json"),
        pytest.param(chat("mock-1", tools=[chat_pb2.Tool(name="f", parameters_json="[1, 2]")]),
                     "tools[0].function.parameters", id="tools-json-not-object"),
        pytest.param(chat("mock-1", tools=[chat_pb2.Tool(parameters_json="{}")]),
                     "tools[0].function.name", id="tools-no-name"),
        pytest.param(chat("mock-1", extra_json="not json"), "extra", id="extra-bad-json"),
        pytest.param(chat("mock-1", chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_TOOL,
                                                         content="42")),
                     "messages[0].tool_call_id", id="tool-without-call-id"),
    ],
)
def test_invalid_argument(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, request_: chat_pb2.ChatRequest, param: str
) -> None:
    err = call_error(stub.CreateChatCompletion, create(request_), timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    info = error_info(err)
    assert info.reason == "INVALID_REQUEST"
    assert info.domain == "llm-gateway"
    assert info.metadata["param"] == param
    assert err.details()


def test_invalid_argument_on_stream(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    request = gateway_service_pb2.StreamChatCompletionRequest(
        request=chat_pb2.ChatRequest(model="mock-1"))
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamChatCompletion(request, timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(caught.value).metadata["param"] == "messages"


def test_upstream_400_is_invalid_argument(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(openai_error(400, "bad thing", "invalid_request_error", param="messages"))
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-4o-mini")), timeout=10)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "bad thing" in err.details()
    info = error_info(err)
    assert info.reason == "UPSTREAM_REJECTED"
    assert info.domain == "llm-gateway"
    assert info.metadata["param"] == "messages"
    assert info.metadata["provider"] == "upstream"
    assert info.metadata["upstream_status"] == "400"
    assert len(fake_openai.requests) == 1  # the caller's mistake is not retried


def test_upstream_429_is_resource_exhausted_with_retry_after(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[openai_error(429, "Rate limit reached", "requests",
                                       code="rate_limit_exceeded",
                                       headers={"Retry-After": "7"})] * ATTEMPTS)
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-4o-mini")), timeout=10)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info(err)
    assert info.reason == "UPSTREAM_RATE_LIMITED"
    assert info.metadata["retry_after"] == "7"
    assert info.metadata["provider"] == "upstream"


def test_upstream_500_is_unavailable_upstream_error(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[openai_error(500, "The server had an error", "server_error")]
                        * ATTEMPTS)
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-4o-mini")), timeout=10)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(err)
    assert info.reason == "UPSTREAM_ERROR"
    assert info.domain == "llm-gateway"
    assert info.metadata["provider"] == "upstream"
    assert info.metadata["upstream_status"] == "500"


def test_upstream_credentials_refused_do_not_leak_upstream_text(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(openai_error(401, "Incorrect API key provided: sk-fake-up***key",
                                     "invalid_request_error", code="invalid_api_key"))
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-4o-mini")), timeout=10)
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "sk-" not in err.details()
    info = error_info(err)
    assert info.reason == "UPSTREAM_ERROR"
    assert info.metadata["provider"] == "upstream"


def test_upstream_500_on_stream(
    stub: gateway_service_pb2_grpc.GatewayServiceStub, fake_openai: FakeOpenAI
) -> None:
    fake_openai.enqueue(*[openai_error(500, "boom", "server_error")] * ATTEMPTS)
    request = gateway_service_pb2.StreamChatCompletionRequest(request=chat("gpt-4o-mini"))
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamChatCompletion(request, timeout=10))
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(caught.value).metadata["provider"] == "upstream"


# --- metadata and deadlines ----------------------------------------------------------------


def test_request_id_is_echoed(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    response, call = stub.CreateChatCompletion.with_call(
        create(chat("mock-1")), metadata=(("x-request-id", "test-req-123"),), timeout=10)
    trailing = dict(call.trailing_metadata())
    assert trailing["x-request-id"] == "test-req-123"
    assert response.completion.gateway.request_id == "test-req-123"


def test_request_id_is_generated_when_absent(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
) -> None:
    response, call = stub.CreateChatCompletion.with_call(create(chat("mock-1")), timeout=10)
    generated = dict(call.trailing_metadata())["x-request-id"]
    assert generated
    assert response.completion.gateway.request_id == generated


def test_request_id_is_echoed_on_errors(
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
) -> None:
    err = call_error(stub.CreateChatCompletion, create(chat("no-such-model")),
                     metadata=(("x-request-id", "err-req-456"),), timeout=10)
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert dict(err.trailing_metadata())["x-request-id"] == "err-req-456"


def test_unsafe_request_id_is_replaced(stub: gateway_service_pb2_grpc.GatewayServiceStub) -> None:
    _, call = stub.CreateChatCompletion.with_call(
        create(chat("mock-1")), metadata=(("x-request-id", "bad id with spaces"),), timeout=10)
    echoed = dict(call.trailing_metadata())["x-request-id"]
    assert echoed and echoed != "bad id with spaces"


def request_log(gateway: RunningGateway, request_id: str, wait: float = 3) -> dict[str, Any]:
    """The gateway's one request log line for ``request_id`` (JSON logs)."""
    deadline = time.monotonic() + wait
    while True:
        for line in gateway.logs().splitlines():
            if request_id in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("request_id") == request_id and record.get("msg") == "request":
                    return record  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"no request log for {request_id}:\n{gateway.logs()[-2000:]}")
        time.sleep(0.05)


def test_client_deadline_bounds_slow_upstream(
    gateway: RunningGateway,
    stub: gateway_service_pb2_grpc.GatewayServiceStub,
    fake_openai: FakeOpenAI,
) -> None:
    fake_openai.enqueue(Reply(delay=2, json=completion("gpt-4o-mini")))
    started = time.monotonic()
    err = call_error(stub.CreateChatCompletion, create(chat("gpt-4o-mini")), timeout=0.5,
                     metadata=(("x-request-id", "deadline-req-1"),))
    elapsed = time.monotonic() - started
    assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 1.5
    assert len(fake_openai.requests) == 1  # the upstream call was made, then abandoned
    # The gateway gave up on the upstream at the client's deadline, not at the upstream's pace.
    record = request_log(gateway, "deadline-req-1")
    assert record["status"] == "DEADLINE_EXCEEDED"
    assert record["latency_ms"] < 1500
    # The gateway keeps serving, both providers.
    out = stub.CreateChatCompletion(create(chat("mock-1", user("still here"))), timeout=10)
    assert "still here" in out.completion.choices[0].message.content
    out = stub.CreateChatCompletion(create(chat("gpt-4o-mini")), timeout=10)
    assert out.completion.choices[0].message.content == "Hello from fake-openai"
