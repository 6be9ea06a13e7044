"""The official openai SDK against the REST facade, with a fake OpenAI upstream."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI, openai_error, stream_events
from tests.fakes.server import Reply


@pytest.fixture(scope="module")
def gateway(channel_gateway: RunningGateway) -> RunningGateway:
    """Every test twice: the facade calling the core in process, then over gRPC (split)."""
    return channel_gateway


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def test_mock_echo_non_stream(client: openai.OpenAI) -> None:
    response = client.chat.completions.create(
        model="mock-1", messages=[{"role": "user", "content": "hello gateway"}])
    assert response.choices[0].message.content == "Echo: hello gateway"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None and response.usage.total_tokens > 0
    extra = response.model_extra or {}
    assert extra["x_gateway"]["provider"] == "mock"
    assert extra["x_gateway"]["request_id"].startswith("req_")


def test_openai_upstream_non_stream(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    response = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "hi"}],
        temperature=0.2, max_tokens=50, seed=7, stop=["\n\n"], user="u-1",
    )
    assert response.choices[0].message.content == "Hello from fake-openai"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (11, 7)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    assert response.system_fingerprint == "fp_fake"
    sent = fake_openai.requests[-1]
    assert sent.headers["Authorization"] == f"Bearer {FakeOpenAI.api_key}"
    assert sent.json == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "hi"}],
        "temperature": 0.2, "max_tokens": 50, "seed": 7, "stop": ["\n\n"], "user": "u-1",
    }


def test_stream_with_usage(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake-openai"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 18
    sent = fake_openai.requests[-1].json
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


def test_mock_stream_word_by_word(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="mock/echo", messages=[{"role": "user", "content": "one two three"}], stream=True)
    deltas = [c.choices[0].delta.content for c in stream if c.choices]
    assert [d for d in deltas if d] == ["Echo:", " one", " two", " three"]


def test_tool_call_round_trip(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    tools = [{"type": "function", "function": {
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]}}}]
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=tools, tool_choice="required")  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "call_fake1", "get_weather", '{"city": "Paris"}')
    assert fake_openai.requests[-1].json["tools"] == tools
    assert fake_openai.requests[-1].json["tool_choice"] == "required"

    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    sent = fake_openai.requests[-1].json
    assert sent["messages"][1]["tool_calls"] == [{"id": "call_fake1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert sent["messages"][2] == {"role": "tool", "content": "sunny, 21C",
                                   "tool_call_id": "call_fake1"}
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_stream_tool_call_deltas_stay_incremental(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "weather?"}], stream=True,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
        tool_choice="required")
    pieces = [c.choices[0].delta.tool_calls[0].function.arguments  # type: ignore[union-attr,index]
              for c in stream if c.choices and c.choices[0].delta.tool_calls]
    assert pieces == ["", '{"city"', ': "Paris"}']


def test_image_parts_json_schema_and_extra_fields(client: openai.OpenAI,
                                                  fake_openai: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}},
              "required": ["n"], "additionalProperties": False}
    client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                                "detail": "low"}}]}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "answer", "schema": schema, "strict": True}},
        extra_body={"top_k": 5, "logit_bias": {"50256": -100}},
    )
    sent = fake_openai.requests[-1].json
    assert sent["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": schema, "strict": True}}
    assert sent["top_k"] == 5 and sent["logit_bias"] == {"50256": -100}


def test_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "mock-1", "upstream/gpt-4o-mini", "mock/echo"} <= ids
    assert client.models.retrieve("mock-1").owned_by == "llm-gateway"
    assert client.models.retrieve("upstream/gpt-4o-mini").owned_by == "upstream"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.code == "model_not_found"


def test_upstream_400_is_the_callers_400(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(openai_error(400, "Invalid value for 'messages'.",
                                     "invalid_request_error", param="messages"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert "Invalid value for 'messages'" in info.value.message
    assert info.value.param == "messages"


def test_upstream_429_keeps_retry_after(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(openai_error(429, "Rate limit reached", "requests",
                                     "rate_limit_exceeded", headers={"Retry-After": "7"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.response.headers["Retry-After"] == "7"


def test_upstream_500_is_a_502_naming_the_provider(client: openai.OpenAI,
                                                   fake_openai: FakeOpenAI) -> None:
    # Retryable: the gateway tries twice (retry.attempts defaults to 2) before giving up.
    fake_openai.enqueue(openai_error(500, "boom", "server_error"),
                        openai_error(500, "boom", "server_error"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert info.value.body["provider"] == "upstream"  # type: ignore[index]
    assert len(fake_openai.requests) == 2


def test_upstream_auth_failure_never_echoes_upstream_text(client: openai.OpenAI,
                                                          fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(openai_error(401, "Incorrect API key provided: sk-fake-upst***key",
                                     "invalid_request_error", "invalid_api_key"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502
    assert "sk-" not in info.value.message


def test_garbage_upstream_body_is_a_502(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(Reply(body=b"<html>oops</html>"), Reply(body=b"<html>oops</html>"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502


def test_cut_stream_ends_with_an_error_event(client: openai.OpenAI,
                                             fake_openai: FakeOpenAI) -> None:
    events = stream_events("gpt-4o-mini", ["one", " two", " three"], include_usage=False)
    fake_openai.enqueue(Reply(events=events, cut_after=2))
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]
    assert "upstream" in info.value.message and "mid-response" in info.value.message


def test_stream_error_before_first_chunk_is_an_http_error(client: openai.OpenAI,
                                                          fake_openai: FakeOpenAI) -> None:
    fake_openai.enqueue(openai_error(400, "context too long", "invalid_request_error"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4o-mini",
                                       messages=[{"role": "user", "content": "x"}], stream=True)


def test_request_id_is_accepted_and_echoed(gateway: RunningGateway) -> None:
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}
    r = httpx.post(gateway.http_url + "/v1/chat/completions", json=body,
                   headers={"X-Request-ID": "trace-me-123"})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "trace-me-123"
    assert r.json()["x_gateway"]["request_id"] == "trace-me-123"
    # A hostile id is replaced, not echoed.
    r = httpx.post(gateway.http_url + "/v1/chat/completions", json=body,
                   headers={"X-Request-ID": "x" * 300})
    assert r.headers["X-Request-ID"].startswith("req_")


def test_embeddings_float_and_base64(client: openai.OpenAI, fake_openai: FakeOpenAI) -> None:
    result = client.embeddings.create(model="upstream/text-embedding-3-small",
                                      input=["a", "b"], dimensions=2, encoding_format="float")
    assert [d.embedding for d in result.data] == [[1.0, 1.0], [2.0, 2.0]]
    assert result.usage.prompt_tokens == 4
    assert fake_openai.requests[-1].json == {
        "model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "float",
        "dimensions": 2}
    # The SDK asks for base64 by default and decodes it itself.
    result = client.embeddings.create(model="upstream/text-embedding-3-small", input="a")
    assert result.data[0].embedding == [1.0, 1.0, 1.0]


def test_mock_embeddings_are_deterministic(client: openai.OpenAI) -> None:
    first = client.embeddings.create(model="mock/echo", input="same text")
    second = client.embeddings.create(model="mock/echo", input=["same text", "other"])
    assert first.data[0].embedding == second.data[0].embedding
    assert first.data[0].embedding != second.data[1].embedding
    assert abs(sum(v * v for v in first.data[0].embedding) - 1) < 1e-5
