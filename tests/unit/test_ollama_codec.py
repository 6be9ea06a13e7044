"""The pure Ollama codec: canonical request -> /api/chat body, answers and NDJSON -> chunks."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
)
from gateway.errors import (
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.base import SseEvent
from gateway.providers.ollama import OllamaCodec, encode_chat_request

CODEC = OllamaCodec("ollama", ProviderConfig(type="ollama", base_url="http://ollama:11434/"))
USER = Message(role="user", content="hi")


def body_of(request: ChatRequest, stream: bool = False) -> Any:
    wire = CODEC.chat_request(request, "llama3.2", stream=stream, include_usage=False)
    assert wire.body is not None
    return orjson.loads(wire.body)


def lines(*objects: dict[str, Any]) -> list[SseEvent]:
    return [SseEvent(data=orjson.dumps(o).decode()) for o in objects]


def test_plain_request_and_headers() -> None:
    wire = CODEC.chat_request(ChatRequest(model="x", messages=(USER,)), "llama3.2",
                              stream=True, include_usage=True)
    assert (wire.method, wire.url) == ("POST", "http://ollama:11434/api/chat")
    assert wire.headers["Accept"] == "application/x-ndjson"
    assert "Authorization" not in wire.headers
    assert orjson.loads(wire.body or b"") == {
        "model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def test_api_key_is_a_bearer_token_for_a_proxy() -> None:
    codec = OllamaCodec("o", ProviderConfig(type="ollama", base_url="http://h", api_key="k"))
    assert codec.models_request().headers["Authorization"] == "Bearer k"


def test_sampling_fields_go_to_options() -> None:
    body = body_of(ChatRequest(
        model="x", messages=(USER,), temperature=0.2, top_p=0.9, max_completion_tokens=64,
        max_tokens=10, stop=("\n",), seed=7, presence_penalty=0.5, frequency_penalty=0.1,
        extra={"top_k": 20, "num_ctx": 8192, "keep_alive": "10m", "logit_bias": {"1": 2},
               "options": {"repeat_penalty": 1.1, "temperature": 1.5}}))
    assert body["options"] == {
        "temperature": 0.2, "top_p": 0.9, "seed": 7, "presence_penalty": 0.5,
        "frequency_penalty": 0.1, "num_predict": 64, "stop": ["\n"], "top_k": 20,
        "num_ctx": 8192, "repeat_penalty": 1.1}
    assert body["keep_alive"] == "10m" and "logit_bias" not in body


def test_roles_images_and_tool_round_trip() -> None:
    body = body_of(ChatRequest(model="x", messages=(
        Message(role="developer", content="be brief"),
        Message(role="user", parts=(
            ContentPart(type="text", text="what is this?"),
            ContentPart(type="image_url", url="data:image/png;base64,iVBORw0KGgo="),
            ContentPart(type="text", text="and this?"),
            ContentPart(type="image_url", url="data:image/jpeg;base64,/9j/4AAQ"))),
        Message(role="assistant", tool_calls=(
            ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}'),)),
        Message(role="tool", tool_call_id="call_1", content="sunny"),
    )))
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is this?\nand this?",
         "images": ["iVBORw0KGgo=", "/9j/4AAQ"]},
        {"role": "assistant", "content": "", "tool_calls": [
            {"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]


@pytest.mark.parametrize(("part", "param"), [
    (ContentPart(type="image_url", url="https://example.com/cat.png"),
     "messages[0].content[0].image_url.url"),
    (ContentPart(type="image_url", url="data:image/png,notbase64"),
     "messages[0].content[0].image_url.url"),
    (ContentPart(type="input_audio", data="AAAA", format="wav"), "messages[0].content[0]"),
])
def test_content_ollama_cannot_take_is_the_callers_400(part: ContentPart, param: str) -> None:
    request = ChatRequest(model="x", messages=(Message(role="user", parts=(part,)),))
    with pytest.raises(InvalidRequestError) as info:
        body_of(request)
    assert info.value.param == param


def test_n_above_one_and_non_object_arguments_are_rejected() -> None:
    with pytest.raises(InvalidRequestError) as info:
        body_of(ChatRequest(model="x", messages=(USER,), n=2))
    assert info.value.param == "n"
    bad = Message(role="assistant", tool_calls=(ToolCall(id="c", name="f", arguments="[1]"),))
    with pytest.raises(InvalidRequestError) as info:
        encode_chat_request(ChatRequest(model="x", messages=(bad,)), "m", stream=False)
    assert info.value.param == "messages[0].tool_calls[0].function.arguments"


def test_tools_tool_choice_and_formats() -> None:
    tools = (Tool(name="a", description="A", parameters={"type": "object"}), Tool(name="b"))
    body = body_of(ChatRequest(model="x", messages=(USER,), tools=tools,
                               response_format=ResponseFormat(type="json_object")))
    assert body["tools"] == [
        {"type": "function", "function": {"name": "a", "description": "A",
                                          "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "b", "description": "",
                                          "parameters": {"type": "object", "properties": {}}}}]
    assert body["format"] == "json"
    body = body_of(ChatRequest(model="x", messages=(USER,), tools=tools,
                               tool_choice=ToolChoice(mode="function", function_name="b")))
    assert [t["function"]["name"] for t in body["tools"]] == ["b"]
    body = body_of(ChatRequest(model="x", messages=(USER,), tools=tools,
                               tool_choice=ToolChoice(mode="none")))
    assert "tools" not in body
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    body = body_of(ChatRequest(model="x", messages=(USER,), response_format=ResponseFormat(
        type="json_schema", json_schema=JsonSchemaFormat(name="s", schema=schema))))
    assert body["format"] == schema


def test_non_stream_answer_with_tool_calls() -> None:
    raw = {"model": "llama3.2", "created_at": "2024-07-22T20:33:28.123648Z",
           "message": {"role": "assistant", "content": "", "tool_calls": [
               {"function": {"name": "get_weather", "arguments": {"city": "Paris", "n": 2}}}]},
           "done_reason": "stop", "done": True, "prompt_eval_count": 122, "eval_count": 33}
    completion = CODEC.chat_response(orjson.dumps(raw), "llama3.2")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and len(call.id) > 10
    assert (call.name, call.arguments) == ("get_weather", '{"city":"Paris","n":2}')
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens,
            completion.usage.total_tokens) == (122, 33, 155)
    assert completion.id.startswith("chatcmpl-")


@pytest.mark.parametrize(("reason", "finish"), [("stop", "stop"), ("length", "length"),
                                                (None, "stop")])
def test_done_reason(reason: str | None, finish: str) -> None:
    raw = {"model": "m", "message": {"role": "assistant", "content": "x"}, "done": True,
           "done_reason": reason}
    assert CODEC.chat_response(orjson.dumps(raw), "m").choices[0].finish_reason == finish


def test_stream_text_finish_and_usage() -> None:
    decoder = CODEC.stream_decoder("llama3.2")
    chunks = []
    for event in lines(
        {"model": "llama3.2", "message": {"role": "assistant", "content": "Hel"}, "done": False},
        {"model": "llama3.2", "message": {"role": "assistant", "content": "lo"}, "done": False},
        {"model": "llama3.2", "message": {"role": "assistant", "content": ""}, "done": True,
         "done_reason": "length", "prompt_eval_count": 5, "eval_count": 2},
    ):
        assert not decoder.done
        chunks += decoder.decode(event)
    assert decoder.done
    assert [(c.choices[0].delta.role, c.choices[0].delta.content) for c in chunks[:2]] == [
        ("assistant", "Hel"), (None, "lo")]
    assert chunks[2].choices[0].finish_reason == "length"
    assert chunks[3].choices == [] and chunks[3].usage is not None
    assert chunks[3].usage.total_tokens == 7
    assert len({c.id for c in chunks}) == 1


def test_stream_tool_calls_get_indices_and_finish() -> None:
    decoder = CODEC.stream_decoder("m")
    call = {"function": {"name": "f", "arguments": {"a": 1}}}
    chunks = [c for e in lines(
        {"message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
        {"message": {"role": "assistant", "content": "", "tool_calls": [call]}, "done": False},
        {"message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop"},
    ) for c in decoder.decode(e)]
    deltas = [c.choices[0].delta.tool_calls[0] for c in chunks[:2]]
    assert [(d.index, d.name, d.arguments) for d in deltas] == [(0, "f", '{"a":1}'),
                                                                 (1, "f", '{"a":1}')]
    assert chunks[0].choices[0].delta.content is None
    assert chunks[2].choices[0].finish_reason == "tool_calls"


def test_stream_error_line_raises() -> None:
    decoder = CODEC.stream_decoder("m")
    with pytest.raises(UpstreamError) as info:
        decoder.decode(SseEvent(data='{"error":"an unknown error was encountered"}'))
    assert "an unknown error" in info.value.message and not decoder.done


def test_errors() -> None:
    err = CODEC.error(404, {}, b'{"error":"model \\"nope\\" not found, try pulling it first"}')
    assert isinstance(err, UpstreamRejectedError) and err.param == "model"
    assert "not found, try pulling it first" in err.message
    err = CODEC.error(400, {}, b'{"error":"invalid options: num_ctx"}')
    assert isinstance(err, UpstreamRejectedError) and err.message == "invalid options: num_ctx"
    err = CODEC.error(429, {"Retry-After": "3"}, b'{"error":"busy"}')
    assert isinstance(err, UpstreamRateLimitedError) and err.retry_after == 3
    err = CODEC.error(500, {}, b'{"error":"llama runner process has terminated"}')
    assert isinstance(err, UpstreamError) and err.retryable and err.status == 500


def test_embeddings_and_models() -> None:
    wire = CODEC.embed_request(EmbeddingRequest(model="x", inputs=("a", "b"), dimensions=8),
                               "nomic-embed-text")
    assert wire.url == "http://ollama:11434/api/embed"
    assert orjson.loads(wire.body or b"") == {"model": "nomic-embed-text", "input": ["a", "b"],
                                              "dimensions": 8}
    result = CODEC.embed_response(
        b'{"model":"nomic-embed-text","embeddings":[[0.1,0.2],[0.3,0.4]],'
        b'"prompt_eval_count":8}', "nomic-embed-text")
    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.usage is not None and result.usage.prompt_tokens == 8
    assert CODEC.models_request().url == "http://ollama:11434/api/tags"
    assert CODEC.models_response(b'{"models":[{"name":"llama3.2:latest"}]}') == [
        "llama3.2:latest"]


def test_reasoning_asked_is_think_and_thinking_comes_back() -> None:
    request = ChatRequest(model="m", messages=(Message(role="user", content="hi"),),
                          extra={"reasoning_effort": "low"})
    assert encode_chat_request(request, "qwen3", stream=False)["think"] is True
    kept = ChatRequest(model="m", messages=(Message(role="user", content="hi"),),
                       extra={"reasoning_effort": "low", "think": "high"})
    assert encode_chat_request(kept, "gpt-oss", stream=False)["think"] == "high"
    answer = CODEC.chat_response(orjson.dumps({
        "model": "qwen3", "message": {"role": "assistant", "content": "Mild.",
                                      "thinking": "Spring."},
        "done": True, "done_reason": "stop"}), "qwen3")
    assert answer.choices[0].message.reasoning == "Spring."
    decoder = CODEC.stream_decoder("qwen3")
    chunks = decoder.decode(SseEvent(orjson.dumps({
        "model": "qwen3", "message": {"role": "assistant", "content": "", "thinking": "Hm"},
        "done": False}).decode()))
    assert chunks[0].choices[0].delta.reasoning == "Hm"
