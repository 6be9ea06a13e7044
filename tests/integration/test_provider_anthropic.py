"""The Anthropic provider end to end: the official openai SDK -> a real gateway ->
a wire-faithful fake Anthropic Messages API. Each test checks both what the fake upstream
received and what the client got back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.conftest import RunningGateway
from tests.fakes.anthropic import (
    FakeAnthropic,
    anthropic_error,
    message,
    text_events,
    tool_events,
)
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

MODEL = "anthropic/claude-3-5-haiku-latest"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
WEATHER: list[ChatCompletionToolParam] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake: FakeAnthropic) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic) -> Iterator[RunningGateway]:
    config = f"""
logging: {{level: info, format: json}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 1000, min_requests: 1000}}
providers:
  anthropic:
    type: anthropic
    base_url: "{fake.base_url}"
    api_key: "${{FAKE_ANTHROPIC_KEY}}"
models:
  - name: claude-haiku
    targets: [{{provider: anthropic, model: claude-3-5-haiku-latest}}]
"""
    gw = start_in_process(config, env={"FAKE_ANTHROPIC_KEY": FakeAnthropic.api_key})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def test_non_stream_request_and_answer(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    response = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "developer", "content": "no emoji"},
                  {"role": "user", "content": "hi"},
                  {"role": "user", "content": "there"}],
        temperature=0.2, top_p=0.9, max_tokens=50, stop=["\n\n"], user="u-1", seed=7)
    assert response.choices[0].message.content == "Hello from fake-anthropic"
    assert response.choices[0].finish_reason == "stop"
    assert response.id == "msg_fake123"
    assert response.model == "claude-3-5-haiku-latest"
    assert response.usage is not None
    # prompt_tokens counts cache reads and writes: 11 + 3 + 2.
    assert (response.usage.prompt_tokens, response.usage.completion_tokens,
            response.usage.total_tokens) == (16, 7, 23)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == FakeAnthropic.api_key
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "model": "claude-3-5-haiku-latest",
        "system": "be brief\n\nno emoji",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"},
                                                  {"type": "text", "text": "there"}]}],
        "max_tokens": 50, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["\n\n"],
        "metadata": {"user_id": "u-1"},
    }


def test_alias_and_default_max_tokens(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    client.chat.completions.create(model="claude-haiku", messages=USER,
                                   max_completion_tokens=20)
    assert fake.requests[-1].json["max_tokens"] == 20
    client.chat.completions.create(model="claude-haiku", messages=USER)
    assert fake.requests[-1].json["max_tokens"] == 4096


def test_stream_with_usage(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from fake-anthropic"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (16, 7)
    assert {c.id for c in chunks} == {"msg_fake123"}
    sent = fake.requests[-1]
    assert sent.json["stream"] is True and "stream_options" not in sent.json
    assert sent.headers["Accept"] == "text/event-stream"


def test_stream_without_usage_is_openai_shaped(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert all(c.choices and c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_tool_call_round_trip(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "weather in Paris and Rome?"}],
        tools=WEATHER, tool_choice="required", parallel_tool_calls=False)
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert first.choices[0].message.content is None
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "toolu_fake1", "get_weather", '{"city":"Paris"}')
    sent = fake.requests[-1].json
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather in a city",
                              "input_schema": WEATHER[0]["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}

    second_call = {"id": "toolu_fake2", "type": "function",
                   "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}}
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": [
            first.choices[0].message.model_dump()["tool_calls"][0], second_call]},
        {"role": "tool", "tool_call_id": "toolu_fake1", "content": "sunny, 21C"},
        {"role": "tool", "tool_call_id": "toolu_fake2", "content": "rain, 14C"},
        {"role": "user", "content": "summarise"},
    ]
    answer = client.chat.completions.create(model=MODEL, messages=history, tools=WEATHER,
                                            tool_choice="auto")
    assert answer.choices[0].message.content == "Hello from fake-anthropic"
    sent = fake.requests[-1].json
    assert sent["tool_choice"] == {"type": "auto"}
    assert sent["messages"] == [
        {"role": "user", "content": "weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_fake1", "name": "get_weather",
             "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_fake2", "name": "get_weather",
             "input": {"city": "Rome"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_fake1", "content": "sunny, 21C"},
            {"type": "tool_result", "tool_use_id": "toolu_fake2", "content": "rain, 14C"},
            {"type": "text", "text": "summarise"}]},
    ]


def test_stream_tool_call_deltas_stay_incremental(client: openai.OpenAI,
                                                  fake: FakeAnthropic) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, tools=WEATHER,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    calls = [c.choices[0].delta.tool_calls[0]
             for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert (calls[0].index, calls[0].id, calls[0].function.name) == (  # type: ignore[union-attr]
        0, "toolu_fake1", "get_weather")
    assert [c.function.arguments for c in calls] == [  # type: ignore[union-attr]
        "", '{"city"', ': "Paris"}']
    assert all(c.index == 0 for c in calls)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert fake.requests[-1].json["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_image_parts(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what are these?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=",
                                            "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}])
    assert fake.requests[-1].json["messages"][0]["content"] == [
        {"type": "text", "text": "what are these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]


def test_json_schema_mode_is_a_forced_tool(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer"}},
                              "required": ["n"]}
    fake.enqueue(Reply(json=message("claude-3-5-haiku-latest", [
        {"type": "tool_use", "id": "toolu_j", "name": "json_tool_call", "input": {"n": 2}}],
        "tool_use")))
    response = client.chat.completions.create(
        model=MODEL, messages=USER,
        response_format={"type": "json_schema", "json_schema": {"name": "answer",
                                                                "schema": schema}})
    assert response.choices[0].message.content == '{"n":2}'
    assert response.choices[0].message.tool_calls is None
    assert response.choices[0].finish_reason == "stop"
    sent = fake.requests[-1].json
    assert sent["tools"] == [{"name": "json_tool_call", "description": "Respond with JSON.",
                              "input_schema": schema}]
    assert sent["tool_choice"] == {"type": "tool", "name": "json_tool_call"}


def test_json_object_mode_streams_as_content(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(events=tool_events("claude-3-5-haiku-latest", "json_tool_call",
                                          ['{"ok": ', "true}"])))
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=USER, stream=True, response_format={"type": "json_object"}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == '{"ok": true}'
    assert not any(c.choices[0].delta.tool_calls for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert fake.requests[-1].json["tools"][0]["input_schema"] == {
        "type": "object", "properties": {}, "additionalProperties": True}


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("max_tokens", "length"), ("stop_sequence", "stop"), ("refusal", "content_filter"),
    ("pause_turn", "stop")])
def test_finish_reasons(client: openai.OpenAI, fake: FakeAnthropic, stop_reason: str,
                        finish: str) -> None:
    fake.enqueue(Reply(json=message("claude-3-5-haiku-latest", [{"type": "text", "text": "x"}],
                                    stop_reason)),
                 Reply(events=text_events("claude-3-5-haiku-latest", ["x"], stop_reason)))
    response = client.chat.completions.create(model=MODEL, messages=USER)
    assert response.choices[0].finish_reason == finish
    chunks = list(client.chat.completions.create(model=MODEL, messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == finish


def test_models_are_discovered_with_the_same_headers(client: openai.OpenAI,
                                                     fake: FakeAnthropic) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"claude-haiku", "anthropic/claude-3-5-haiku-20241022"} <= ids
    sent = [r for r in fake.requests if r.path == "/v1/models"][-1]
    assert sent.headers["x-api-key"] == FakeAnthropic.api_key
    assert sent.headers["anthropic-version"] == "2023-06-01"


def test_embeddings_are_a_clear_400(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=MODEL, input="x")
    assert info.value.param == "model" and "embeddings" in info.value.message
    assert fake.requests == []


def test_upstream_400_is_the_callers_400(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(400, "invalid_request_error",
                                 "messages: text content blocks must be non-empty"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert "text content blocks must be non-empty" in info.value.message
    assert len(fake.requests) == 1


def test_upstream_401_is_not_retried_nor_echoed(client: openai.OpenAI,
                                                fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(401, "authentication_error",
                                 "invalid x-api-key sk-ant-fake-upst***"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert info.value.status_code == 502
    assert "sk-" not in info.value.message and "x-api-key" not in info.value.message
    assert len(fake.requests) == 1


def test_upstream_429_keeps_retry_after(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(429, "rate_limit_error", "Number of request tokens exceeded",
                                 headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert info.value.response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(("status", "kind"), [(500, "api_error"), (529, "overloaded_error")])
def test_upstream_5xx_is_retried_then_a_502(client: openai.OpenAI, fake: FakeAnthropic,
                                            status: int, kind: str) -> None:
    fake.enqueue(anthropic_error(status, kind, "Overloaded"),
                 anthropic_error(status, kind, "Overloaded"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=USER)
    assert info.value.status_code == 502
    assert info.value.body["provider"] == "anthropic"  # type: ignore[index]
    assert len(fake.requests) == 2
    if status == 529:
        assert info.value.code == "overloaded"


def test_overloaded_then_success_is_invisible(client: openai.OpenAI,
                                              fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
    response = client.chat.completions.create(model=MODEL, messages=USER)
    assert response.choices[0].message.content == "Hello from fake-anthropic"
    assert len(fake.requests) == 2


def test_error_event_mid_stream_ends_the_stream(client: openai.OpenAI,
                                                fake: FakeAnthropic) -> None:
    events = text_events("claude-3-5-haiku-latest", ["one", " two"])
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.enqueue(Reply(events=[*events[:4], error]))
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]
    assert "overloaded" in info.value.message
    assert len(fake.requests) == 1  # output had begun: no retry


def test_cut_stream_ends_with_an_error(client: openai.OpenAI, fake: FakeAnthropic) -> None:
    events = text_events("claude-3-5-haiku-latest", ["one", " two", " three"])
    fake.enqueue(Reply(events=events, cut_after=5))
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one", " two"]
    assert "anthropic" in info.value.message


def test_stream_ending_without_message_stop_is_an_error(client: openai.OpenAI,
                                                        fake: FakeAnthropic) -> None:
    events = text_events("claude-3-5-haiku-latest", ["one"])
    fake.enqueue(Reply(events=events[:-1]))  # a clean end of body, but no message_stop
    stream = client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert "before it was complete" in info.value.message


def test_stream_400_before_output_is_an_http_error(client: openai.OpenAI,
                                                   fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(400, "invalid_request_error", "prompt is too long"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=USER, stream=True)
    assert "prompt is too long" in info.value.message


def test_cache_control_reaches_the_matching_blocks(client: openai.OpenAI,
                                                   fake: FakeAnthropic) -> None:
    """Prompt caching end to end: ``cache_control`` on OpenAI-style parts, messages and
    tools becomes Anthropic's on the matching block; cached tokens come back."""
    ephemeral = {"type": "ephemeral"}
    response = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": [  # type: ignore[list-item]
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "A long manual. " * 200,
                 "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
            {"role": "user", "content": "first question", "cache_control": ephemeral},
            {"role": "assistant", "content": "first answer"},
            {"role": "user", "content": [  # type: ignore[list-item]
                {"type": "text", "text": "second question", "cache_control": ephemeral}]},
        ],
        tools=[{**WEATHER[0], "cache_control": ephemeral}],  # type: ignore[list-item]
    )
    assert response.usage is not None and response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    sent = fake.requests[-1].json
    assert sent["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "A long manual. " * 200,
         "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "first question",
                                      "cache_control": ephemeral}]},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": [{"type": "text", "text": "second question",
                                      "cache_control": ephemeral}]}]
    assert sent["tools"][0]["cache_control"] == ephemeral


def test_without_breakpoints_the_system_prompt_stays_a_string(client: openai.OpenAI,
                                                              fake: FakeAnthropic) -> None:
    client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": [{"type": "text", "text": "a"},  # type: ignore[list-item]
                                       {"type": "text", "text": "b"}]}, *USER])
    assert fake.requests[-1].json["system"] == "a\nb"
