"""The Anthropic codec's pure transforms: requests, answers, stream events, errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from multidict import CIMultiDict

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatChunk,
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from gateway.errors import (
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicCodec,
    classify_error,
    decode_message,
    encode_request,
)
from gateway.providers.base import SseEvent

USER = (Message(role="user", content="hi"),)


def codec(**kwargs: Any) -> AnthropicCodec:
    return AnthropicCodec("anthropic", ProviderConfig(type="anthropic", **kwargs))


def body(**kwargs: Any) -> dict[str, Any]:
    return encode_request(ChatRequest(model="claude", **{"messages": USER, **kwargs}), "claude-x")


# --- request -------------------------------------------------------------------------------


def test_url_and_headers() -> None:
    wire = codec(api_key="k", base_url="http://h:1/").chat_request(
        ChatRequest(model="m", messages=USER), "claude-x", stream=False, include_usage=False)
    assert (wire.method, wire.url) == ("POST", "http://h:1/v1/messages")
    assert wire.headers == {"content-type": "application/json",
                            "anthropic-version": "2023-06-01", "x-api-key": "k"}
    assert orjson.loads(wire.body or b"") == {
        "model": "claude-x", "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": DEFAULT_MAX_TOKENS}


def test_version_override_extra_headers_and_stream() -> None:
    c = codec(api_key="k", api_version="2099-01-01", headers={"anthropic-beta": "b1"})
    wire = c.chat_request(ChatRequest(model="m", messages=USER), "x", stream=True,
                          include_usage=True)
    assert wire.url == "https://api.anthropic.com/v1/messages"
    assert wire.headers["anthropic-version"] == "2099-01-01"
    assert wire.headers["anthropic-beta"] == "b1"
    assert wire.headers["accept"] == "text/event-stream"
    assert orjson.loads(wire.body or b"")["stream"] is True
    assert "x-api-key" not in codec().chat_request(
        ChatRequest(model="m", messages=USER), "x", stream=False, include_usage=False).headers


def test_models_and_no_embeddings() -> None:
    c = codec(api_key="k")
    wire = c.models_request()
    assert (wire.method, wire.url) == ("GET", "https://api.anthropic.com/v1/models?limit=1000")
    assert wire.headers["x-api-key"] == "k"
    assert c.models_response(b'{"data": [{"id": "a"}, {"id": "b"}], "has_more": false}') == [
        "a", "b"]
    with pytest.raises(InvalidRequestError) as info:
        c.embed_request(EmbeddingRequest(model="anthropic/x", inputs=("a",)), "x")
    assert info.value.param == "model" and "embeddings" in info.value.message


def test_turns_alternate_and_system_is_top_level() -> None:
    out = body(messages=(
        Message(role="system", content="a"),
        Message(role="user", content="one"),
        Message(role="developer", content="b"),
        Message(role="user", parts=(ContentPart(type="text", text="two"),
                                    ContentPart(type="text", text=""))),
        Message(role="assistant", content=""),
        Message(role="assistant", content="ok"),
    ))
    assert out["system"] == "a\n\nb"
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "one"},
                                     {"type": "text", "text": "two"}]},
        {"role": "assistant", "content": "ok"}]


def test_tool_calls_and_results() -> None:
    out = body(messages=(
        Message(role="user", content="go"),
        Message(role="assistant", tool_calls=(ToolCall("t1", "f", '{"a": 1}'),
                                              ToolCall("t2", "g", "not json"),
                                              ToolCall("t3", "h", ""))),
        Message(role="tool", tool_call_id="t1", content="r1"),
        Message(role="tool", tool_call_id="t2", content=""),
        Message(role="tool", tool_call_id="t3", parts=(ContentPart(type="text", text="r3"),)),
    ))
    assert out["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "t2", "name": "g", "input": {}},
        {"type": "tool_use", "id": "t3", "name": "h", "input": {}}]}
    assert out["messages"][2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t1", "content": "r1"},
        {"type": "tool_result", "tool_use_id": "t2"},
        {"type": "tool_result", "tool_use_id": "t3", "content": "r3"}]}


def test_tools_and_tool_choice() -> None:
    tools = (Tool("f", "does f", {"type": "object", "properties": {"x": {}}}), Tool("g"),
             Tool("h", parameters={"properties": {}}))
    out = body(tools=tools, tool_choice=ToolChoice("none"), parallel_tool_calls=False)
    assert out["tools"] == [
        {"name": "f", "description": "does f",
         "input_schema": {"type": "object", "properties": {"x": {}}}},
        {"name": "g", "input_schema": {"type": "object", "properties": {}}},
        {"name": "h", "input_schema": {"type": "object", "properties": {}}}]
    assert out["tool_choice"] == {"type": "none"}
    assert body(tools=tools, tool_choice=ToolChoice("auto"))["tool_choice"] == {"type": "auto"}
    assert body(tools=tools, tool_choice=ToolChoice("function", "g"))["tool_choice"] == {
        "type": "tool", "name": "g"}
    assert body(tools=tools, parallel_tool_calls=False)["tool_choice"] == {
        "type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in body(tools=tools, parallel_tool_calls=True)
    assert "tool_choice" not in body(tool_choice=ToolChoice("required"))  # no tools


def test_sampling_fields_and_passthrough() -> None:
    request = ChatRequest(model="claude", messages=USER, temperature=0.5, top_p=0.8,
                          max_tokens=9, max_completion_tokens=7, stop=("END",), user="u",
                          seed=3, presence_penalty=1.0,
                          extra={"top_k": 4, "logit_bias": {"1": 2}})
    out = encode_request(request, "claude-3-7-sonnet-20250219")
    assert out == {"top_k": 4, "model": "claude-3-7-sonnet-20250219",
                   "messages": [{"role": "user", "content": "hi"}], "max_tokens": 7,
                   "temperature": 0.5, "top_p": 0.8, "stop_sequences": ["END"],
                   "metadata": {"user_id": "u"}}


@pytest.mark.parametrize("model", ["claude-sonnet-4-5-20250929", "claude-haiku-4-5",
                                   "claude-opus-4-1", "claude-opus-4-7", "my-deployment"])
def test_claude_from_opus_4_1_on_gets_temperature_only_when_both_are_set(model: str) -> None:
    # These models answer 400 "temperature and top_p cannot both be specified".
    both = encode_request(ChatRequest(model="c", messages=USER, temperature=0.5, top_p=0.8),
                          model)
    assert both["temperature"] == 0.5 and "top_p" not in both
    alone = encode_request(ChatRequest(model="c", messages=USER, top_p=0.8), model)
    assert alone["top_p"] == 0.8 and "temperature" not in alone


def test_images() -> None:
    out = body(messages=(Message(role="user", parts=(
        ContentPart(type="image_url", url="data:image/webp;base64,AAAA"),
        ContentPart(type="image_url", url="http://x/y.png"))),))
    assert out["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/webp",
                                     "data": "AAAA"}},
        {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}]


@pytest.mark.parametrize("part", [
    ContentPart(type="image_url", url="data:image/png,rawbytes"),
    ContentPart(type="image_url", url="ftp://x/y.png"),
    ContentPart(type="input_audio", data="AAAA", format="wav"),
])
def test_unsupported_content_is_a_400(part: ContentPart) -> None:
    with pytest.raises(InvalidRequestError) as info:
        body(messages=(Message(role="user", parts=(part,)),))
    assert info.value.param == "messages"


def test_n_above_one_is_a_400() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body(n=2)
    assert info.value.param == "n"
    assert "n" not in body(n=1)


def test_json_modes_force_a_tool() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    out = body(tools=(Tool("f"),), tool_choice=ToolChoice("auto"),
               response_format=ResponseFormat("json_schema", JsonSchemaFormat(
                   "answer", schema, description="The answer.")))
    assert out["tools"][1] == {"name": "json_tool_call", "description": "The answer.",
                               "input_schema": schema}
    assert out["tool_choice"] == {"type": "tool", "name": "json_tool_call"}
    out = body(response_format=ResponseFormat("json_object"))
    assert out["tools"] == [{"name": "json_tool_call", "description": "Respond with JSON.",
                             "input_schema": {"type": "object", "properties": {},
                                              "additionalProperties": True}}]
    assert "tools" not in body(response_format=ResponseFormat("text"))


# --- response ------------------------------------------------------------------------------


def anthropic_message(content: list[dict[str, Any]], stop_reason: str | None = "end_turn",
                      usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-real",
            "content": content, "stop_reason": stop_reason,
            "usage": usage or {"input_tokens": 5, "output_tokens": 2}}


def test_decode_text_tools_and_usage() -> None:
    result = decode_message(anthropic_message(
        [{"type": "text", "text": "a"}, {"type": "thinking", "thinking": "hm"},
         {"type": "text", "text": "b"},
         {"type": "tool_use", "id": "t1", "name": "f", "input": {"x": [1, "y"]}}],
        "tool_use", {"input_tokens": 10, "output_tokens": 4, "cache_read_input_tokens": 100,
                     "cache_creation_input_tokens": 20}), "asked")
    choice = result.choices[0]
    assert (result.id, result.model, choice.finish_reason) == ("msg_1", "claude-real",
                                                               "tool_calls")
    assert choice.message.content == "ab"
    assert choice.message.tool_calls == (ToolCall("t1", "f", '{"x":[1,"y"]}'),)
    assert result.usage == Usage(prompt_tokens=130, completion_tokens=4, total_tokens=134,
                                 cached_prompt_tokens=100, cache_creation_prompt_tokens=20)


def test_decode_tool_only_answer_has_no_content() -> None:
    result = decode_message(anthropic_message(
        [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}], "tool_use"), "m")
    assert result.choices[0].message.content is None
    assert result.choices[0].message.tool_calls[0].arguments == "{}"
    empty = decode_message(anthropic_message([], "max_tokens"), "m")
    assert empty.choices[0].message.content == ""


def test_decode_json_mode_answer_becomes_content() -> None:
    result = decode_message(anthropic_message(
        [{"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {"n": 1}}],
        "tool_use"), "m")
    assert result.choices[0].message.content == '{"n":1}'
    assert result.choices[0].message.tool_calls == ()
    assert result.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(("reason", "finish"), [
    ("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"),
    ("max_tokens", "length"), ("model_context_window_exceeded", "length"),
    ("tool_use", "tool_calls"), ("refusal", "content_filter"), ("something_new", "stop")])
def test_stop_reasons(reason: str, finish: str) -> None:
    result = decode_message(anthropic_message([{"type": "text", "text": "x"}], reason), "m")
    assert result.choices[0].finish_reason == finish


# --- stream --------------------------------------------------------------------------------


def feed(events: list[dict[str, Any] | str]) -> tuple[list[ChatChunk], bool]:
    decoder = codec().stream_decoder("asked")
    chunks: list[ChatChunk] = []
    for item in events:
        if isinstance(item, str):
            chunks += decoder.decode(SseEvent(data=item))
        else:
            chunks += decoder.decode(SseEvent(data=orjson.dumps(item).decode(),
                                              event=str(item["type"])))
    return chunks, decoder.done


START = {"type": "message_start", "message": {
    "id": "msg_s", "type": "message", "role": "assistant", "model": "claude-real", "content": [],
    "usage": {"input_tokens": 10, "cache_read_input_tokens": 4, "output_tokens": 1}}}
STOP = {"type": "message_stop"}


def block(index: int, content_block: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": content_block}


def delta(index: int, **d: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": d}


def end(reason: str, **usage: Any) -> dict[str, Any]:
    return {"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": None},
            "usage": usage}


def test_stream_text_tools_and_usage() -> None:
    chunks, done = feed([
        START, {"type": "ping"}, "",
        block(0, {"type": "thinking", "thinking": ""}),
        delta(0, type="thinking_delta", thinking="hmm"),
        delta(0, type="signature_delta", signature="sig"),
        {"type": "content_block_stop", "index": 0},
        block(1, {"type": "text", "text": ""}), delta(1, type="text_delta", text="Hi"),
        {"type": "content_block_stop", "index": 1},
        block(2, {"type": "tool_use", "id": "t1", "name": "f", "input": {}}),
        delta(2, type="input_json_delta", partial_json=""),
        delta(2, type="input_json_delta", partial_json='{"a":'),
        delta(2, type="input_json_delta", partial_json="1}"),
        block(3, {"type": "tool_use", "id": "t2", "name": "g", "input": {}}),
        delta(3, type="input_json_delta", partial_json="{}"),
        {"type": "brand_new_event"},
        end("tool_use", output_tokens=9, input_tokens=None), STOP,
    ])
    assert done
    assert {(c.id, c.model) for c in chunks} == {("msg_s", "claude-real")}
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert (deltas[0].role, deltas[0].content) == ("assistant", "")
    assert deltas[1].content == "Hi"
    calls = [d.tool_calls[0] for d in deltas if d.tool_calls]
    assert [(c.index, c.id, c.name, c.arguments) for c in calls] == [
        (0, "t1", "f", ""), (0, "", "", '{"a":'), (0, "", "", "1}"), (1, "t2", "g", ""),
        (1, "", "", "{}")]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert chunks[-1].choices == []
    assert chunks[-1].usage == Usage(prompt_tokens=14, completion_tokens=9, total_tokens=23,
                                     cached_prompt_tokens=4)


def test_stream_json_mode_is_content() -> None:
    chunks, done = feed([
        START, block(0, {"type": "tool_use", "id": "t", "name": "json_tool_call", "input": {}}),
        delta(0, type="input_json_delta", partial_json='{"n"'),
        delta(0, type="input_json_delta", partial_json=": 1}"),
        end("tool_use", output_tokens=3), STOP])
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == '{"n": 1}'
    assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stream_not_done_without_message_stop() -> None:
    _, done = feed([START, end("end_turn", output_tokens=1)])
    assert not done


@pytest.mark.parametrize(("kind", "retryable", "error_type"), [
    ("overloaded_error", True, "overloaded"), ("api_error", True, "stream_error"),
    ("invalid_request_error", False, "stream_error")])
def test_stream_error_event(kind: str, retryable: bool, error_type: str) -> None:
    with pytest.raises(UpstreamError) as info:
        feed([START, {"type": "error", "error": {"type": kind, "message": "boom"}}])
    assert (info.value.retryable, info.value.error_type) == (retryable, error_type)
    assert kind in info.value.message and "boom" in info.value.message


def test_stream_auth_error_event_is_not_echoed() -> None:
    with pytest.raises(UpstreamError) as info:
        feed([{"type": "error", "error": {"type": "authentication_error",
                                          "message": "bad key sk-ant-123"}}])
    assert "sk-ant" not in info.value.message and not info.value.retryable


# --- errors --------------------------------------------------------------------------------


def error_body(kind: str, message: str = "the message") -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": kind, "message": message},
                         "request_id": "req_1"})


def test_400_and_404_are_the_callers() -> None:
    for status, kind in ((400, "invalid_request_error"), (404, "not_found_error"),
                         (409, "invalid_request_error")):
        error = classify_error("anthropic", status, {}, error_body(kind))
        assert isinstance(error, UpstreamRejectedError)
        assert (error.message, error.status) == ("the message", status)
    error = classify_error("anthropic", 413, {}, b"<html>413 Request Entity Too Large</html>")
    assert isinstance(error, UpstreamRejectedError) and "413" in error.message


@pytest.mark.parametrize(("status", "kind", "error_type"), [
    (401, "authentication_error", "auth_error"), (403, "permission_error", "auth_error"),
    (402, "billing_error", "billing_error")])
def test_credential_failures_are_not_retried_or_echoed(status: int, kind: str,
                                                       error_type: str) -> None:
    error = classify_error("anthropic", status, {"request-id": "req_9"},
                           error_body(kind, "invalid x-api-key sk-ant-123"))
    assert type(error) is UpstreamError
    assert (error.retryable, error.error_type, error.status) == (False, error_type, status)
    assert "sk-ant" not in error.message and "req_9" in error.message


def test_429_keeps_retry_after() -> None:
    # aiohttp hands the codec case-insensitive headers; Anthropic sends them lower-case.
    error = classify_error("anthropic", 429, CIMultiDict({"retry-after": "12"}),
                           error_body("rate_limit_error"))
    assert isinstance(error, UpstreamRateLimitedError)
    assert (error.retry_after, error.retryable) == (12.0, True)


@pytest.mark.parametrize(("status", "kind", "error_type"), [
    (500, "api_error", "server_error"), (504, "timeout_error", "server_error"),
    (529, "overloaded_error", "overloaded"), (503, "overloaded_error", "overloaded")])
def test_server_failures_are_retryable(status: int, kind: str, error_type: str) -> None:
    error = classify_error("anthropic", status, {"request-id": "req_2"}, error_body(kind))
    assert type(error) is UpstreamError
    assert (error.retryable, error.error_type, error.status) == (True, error_type, status)
    assert "req_2" in error.message and "the message" not in error.message
