"""The pure Gemini codec: canonical request -> generateContent body, answers and SSE events
-> completions and chunks, Google's error bodies -> the error tree."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

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
)
from gateway.errors import UpstreamError, UpstreamRateLimitedError, UpstreamRejectedError
from gateway.providers.base import SseEvent
from gateway.providers.google import GoogleCodec, encode_request, gemini_schema

CODEC = GoogleCodec("google", ProviderConfig(type="google", api_key="AIza-secret",
                                             base_url="http://gemini.test/"))
USER = Message(role="user", content="hi")


def body_of(request: ChatRequest, model: str = "gemini-2.0-flash") -> Any:
    return encode_request(request, model)


def events(*objects: dict[str, Any]) -> list[SseEvent]:
    return [SseEvent(data=orjson.dumps(o).decode()) for o in objects]


def decode_all(*objects: dict[str, Any]) -> tuple[list[ChatChunk], bool]:
    decoder = CODEC.stream_decoder("gemini-2.0-flash")
    chunks = [c for e in events(*objects) for c in decoder.decode(e)]
    return chunks, decoder.done


def text_event(text: str, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": [{"text": text}]},
                                 "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {"candidates": [candidate], "modelVersion": "gemini-2.0-flash-001",
            "responseId": "r1", **extra}


# --- request -------------------------------------------------------------------------------


def test_urls_and_the_key_in_a_header_never_in_the_query() -> None:
    request = ChatRequest(model="x", messages=(USER,))
    wire = CODEC.chat_request(request, "gemini-2.0-flash", stream=False, include_usage=False)
    assert (wire.method, wire.url) == (
        "POST", "http://gemini.test/v1beta/models/gemini-2.0-flash:generateContent")
    assert wire.headers["x-goog-api-key"] == "AIza-secret"
    assert "Authorization" not in wire.headers
    wire = CODEC.chat_request(request, "models/gemini-2.0-flash", stream=True,
                              include_usage=True)
    assert wire.url == (
        "http://gemini.test/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse")
    assert "key=" not in wire.url and wire.headers["Accept"] == "text/event-stream"
    # A client-chosen model name cannot escape its path segment or add a query.
    wire = CODEC.chat_request(request, "../x?key=1", stream=False, include_usage=False)
    assert wire.url == "http://gemini.test/v1beta/models/..%2Fx%3Fkey%3D1:generateContent"
    default = GoogleCodec("g", ProviderConfig(type="google"))
    assert default.models_request().url == (
        "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000")
    assert "x-goog-api-key" not in default.models_request().headers


def test_roles_system_instruction_and_generation_config() -> None:
    request = ChatRequest(
        model="x",
        messages=(Message(role="system", content="be brief"),
                  Message(role="developer", content="in French"),
                  USER, Message(role="assistant", content="salut"),
                  Message(role="user", content="again")),
        temperature=0.2, top_p=0.9, max_completion_tokens=64, max_tokens=10, n=2, seed=7,
        stop=("END",), presence_penalty=0.1, frequency_penalty=0.3, user="u-1",
        extra={"top_k": 5},
    )
    assert body_of(request) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]},
                     {"role": "model", "parts": [{"text": "salut"}]},
                     {"role": "user", "parts": [{"text": "again"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}, {"text": "in French"}]},
        "generationConfig": {"temperature": 0.2, "topP": 0.9, "topK": 5,
                             "maxOutputTokens": 64, "candidateCount": 2, "seed": 7,
                             "presencePenalty": 0.1, "frequencyPenalty": 0.3,
                             "stopSequences": ["END"]},
    }
    assert body_of(ChatRequest(model="x", messages=(USER,))) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


def test_image_and_audio_parts() -> None:
    message = Message(role="user", parts=(
        ContentPart(type="text", text="what is this?"),
        ContentPart(type="image_url", url="data:image/png;base64,iVBORw0KGgo=", detail="low"),
        ContentPart(type="image_url", url="https://example.com/cat.webp?size=2#x"),
        ContentPart(type="image_url", url="https://example.com/photo"),
        ContentPart(type="image_url", url="data:text/plain,hi%20there"),
        ContentPart(type="input_audio", data="UklGRg==", format="wav"),
    ))
    assert body_of(ChatRequest(model="x", messages=(message,)))["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/webp",
                      "fileUri": "https://example.com/cat.webp?size=2#x"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/photo"}},
        {"inlineData": {"mimeType": "text/plain", "data": "aGkgdGhlcmU="}},
        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
    ]


def test_tools_and_tool_choice() -> None:
    params = {"type": "object", "additionalProperties": False, "$schema": "x", "strict": True,
              "properties": {"city": {"type": "string", "format": "uri", "title": "City"},
                             "when": {"type": "string", "format": "date-time"}},
              "required": ["city"]}
    request = ChatRequest(model="x", messages=(USER,), tools=(
        Tool(name="get_weather", description="Weather", parameters=params, strict=True),
        Tool(name="now", parameters={"type": "object", "properties": {}}),
    ), tool_choice=ToolChoice(mode="function", function_name="now"))
    body = body_of(request)
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather", "parameters": {
            "type": "OBJECT", "required": ["city"], "properties": {
                "city": {"type": "STRING", "title": "City"},
                "when": {"type": "STRING", "format": "date-time"}}}},
        {"name": "now"},
    ]}]
    assert body["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["now"]}}
    for mode, wire in (("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")):
        choice = ToolChoice(mode=mode)  # type: ignore[arg-type]
        sent = body_of(ChatRequest(model="x", messages=(USER,), tool_choice=choice))
        assert sent["toolConfig"] == {"functionCallingConfig": {"mode": wire}}


def test_schema_refs_nullables_and_unions() -> None:
    schema = {
        "type": "object",
        "$defs": {"Unit": {"type": "string", "enum": ["C", "F"]}},
        "properties": {
            "unit": {"$ref": "#/$defs/Unit", "description": "unit"},
            "note": {"type": ["string", "null"]},
            "days": {"anyOf": [{"type": "integer"}, {"type": "null"}], "default": None},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
        },
    }
    assert gemini_schema(schema) == {"type": "OBJECT", "properties": {
        "unit": {"type": "STRING", "enum": ["C", "F"], "description": "unit"},
        "note": {"type": "STRING", "nullable": True},
        "days": {"type": "INTEGER", "default": None, "nullable": True},
        "either": {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]},
        "tags": {"type": "ARRAY", "items": {"type": "STRING"}, "maxItems": 3},
    }}
    recursive = {"$defs": {"Node": {"type": "object", "properties": {
        "next": {"$ref": "#/$defs/Node"}}}}, "$ref": "#/$defs/Node"}
    assert gemini_schema(recursive)["type"] == "OBJECT"  # bounded, not endless


def test_tool_call_round_trip_turns() -> None:
    calls = (ToolCall(id="call_a", name="get_weather", arguments='{"city":"Paris"}'),
             ToolCall(id="call_b", name="get_time", arguments="{}"))
    request = ChatRequest(model="x", messages=(
        USER,
        Message(role="assistant", content=None, tool_calls=calls),
        Message(role="tool", tool_call_id="call_a", content='{"temp": 21}'),
        Message(role="tool", tool_call_id="call_b", content="noon"),
        Message(role="user", content="thanks"),
    ))
    assert body_of(request)["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
            {"functionCall": {"name": "get_time", "args": {}}}]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "get_weather", "response": {"content": {"temp": 21}}}},
            {"functionResponse": {"name": "get_time", "response": {"content": "noon"}}}]},
        {"role": "user", "parts": [{"text": "thanks"}]},
    ]
    # Gemini 3 wants a thought signature on the first call of a replayed turn.
    model_turn = body_of(request, "gemini-3-pro-preview")["contents"][1]["parts"]
    assert model_turn[0]["thoughtSignature"] == "skip_thought_signature_validator"
    assert "thoughtSignature" not in model_turn[1]


def test_json_modes() -> None:
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
              "properties": {"n": {"type": "integer"}}, "additionalProperties": False}
    fmt = ResponseFormat(type="json_schema", json_schema=JsonSchemaFormat(
        name="answer", schema=schema, strict=True))
    config = body_of(ChatRequest(model="x", messages=(USER,), response_format=fmt))
    assert config["generationConfig"] == {"responseMimeType": "application/json",
                                          "responseJsonSchema": {
                                              "type": "object",
                                              "properties": {"n": {"type": "integer"}},
                                              "additionalProperties": False}}
    config = body_of(ChatRequest(model="x", messages=(USER,),
                                 response_format=ResponseFormat(type="json_object")))
    assert config["generationConfig"] == {"responseMimeType": "application/json"}
    config = body_of(ChatRequest(model="x", messages=(USER,),
                                 response_format=ResponseFormat(type="text")))
    assert "generationConfig" not in config


# --- response ------------------------------------------------------------------------------


def test_completion_text_usage_and_model() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"text": "thinking...", "thought": True}, {"text": "Hello"}, {"text": " there"}]},
        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4,
                          "thoughtsTokenCount": 6, "cachedContentTokenCount": 3,
                          "totalTokenCount": 20},
        "modelVersion": "gemini-2.5-flash-001", "responseId": "abc"}
    completion = CODEC.chat_response(orjson.dumps(body), "gemini-2.5-flash")
    assert completion.id == "chatcmpl-abc" and completion.model == "gemini-2.5-flash-001"
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("Hello there", "stop")
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 10, 20)
    assert (usage.cached_prompt_tokens, usage.reasoning_tokens) == (3, 6)


def test_completion_function_calls() -> None:
    body = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris", "days": 2}}},
        {"functionCall": {"name": "get_time"}}]}, "finishReason": "STOP"}]}
    choice = CODEC.chat_response(orjson.dumps(body), "m").choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    first, second = choice.message.tool_calls
    assert first.name == "get_weather" and first.arguments == '{"city":"Paris","days":2}'
    assert second.arguments == "{}"
    assert first.id.startswith("call_") and len(first.id) == 29 and first.id != second.id


@pytest.mark.parametrize(("reason", "expected"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"),
    ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("OTHER", "stop"), ("MALFORMED_FUNCTION_CALL", "stop"), ("LANGUAGE", "stop"),
])
def test_finish_reasons(reason: str, expected: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert CODEC.chat_response(orjson.dumps(body), "m").choices[0].finish_reason == expected
    chunks, done = decode_all(text_event("x", reason))
    assert done and chunks[-1].choices[0].finish_reason == expected


def test_blocked_prompt_is_an_empty_content_filter_answer() -> None:
    body = {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
            "usageMetadata": {"promptTokenCount": 5, "totalTokenCount": 5}}
    completion = CODEC.chat_response(orjson.dumps(body), "m")
    assert completion.choices[0].message.content == ""
    assert completion.choices[0].finish_reason == "content_filter"
    chunks, done = decode_all(body)
    assert done
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "content_filter"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_candidate_without_parts() -> None:
    body = {"candidates": [{"finishReason": "MAX_TOKENS", "index": 0}]}
    choice = CODEC.chat_response(orjson.dumps(body), "m").choices[0]
    assert (choice.message.content, choice.finish_reason) == ("", "length")


# --- stream --------------------------------------------------------------------------------


def test_stream_text_finish_and_usage_last() -> None:
    usage = {"promptTokenCount": 4, "candidatesTokenCount": 2, "totalTokenCount": 6}
    decoder = CODEC.stream_decoder("gemini-2.0-flash")
    first = decoder.decode(events(text_event("Hel", usageMetadata=usage))[0])
    assert not decoder.done
    assert [c.choices[0].delta.role for c in first] == ["assistant", None]
    assert [c.choices[0].delta.content for c in first] == ["", "Hel"]
    last = decoder.decode(events(text_event("lo", "STOP", usageMetadata=usage))[0])
    assert decoder.done
    assert [c.choices[0].delta.content for c in last if c.choices] == ["lo", None]
    assert last[-2].choices[0].finish_reason == "stop"
    assert last[-1].choices == [] and last[-1].usage is not None
    assert last[-1].usage.total_tokens == 6
    assert {c.id for c in first + last} == {"chatcmpl-r1"}
    assert {c.model for c in first + last} == {"gemini-2.0-flash-001"}


def test_stream_function_call_is_one_delta() -> None:
    event = {"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
         "thoughtSignature": "c2ln"},
        {"functionCall": {"name": "get_time", "args": {}}}]},
        "finishReason": "STOP", "index": 0}]}
    chunks, done = decode_all(event)
    assert done
    deltas = [d for c in chunks for d in c.choices[0].delta.tool_calls]
    assert [(d.index, d.name, d.arguments) for d in deltas] == [
        (0, "get_weather", '{"city":"Paris"}'), (1, "get_time", "{}")]
    assert all(d.id.startswith("call_") for d in deltas)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_without_finish_is_not_done() -> None:
    _, done = decode_all(text_event("a"), text_event("b"))
    assert not done


def test_stream_waits_for_every_candidate() -> None:
    decoder = CODEC.stream_decoder("m")
    both = {"candidates": [
        {"content": {"parts": [{"text": "a"}]}, "index": 0, "finishReason": "STOP"},
        {"content": {"parts": [{"text": "b"}]}, "index": 1}]}
    decoder.decode(events(both)[0])
    assert not decoder.done
    decoder.decode(events({"candidates": [{"index": 1, "finishReason": "STOP"}]})[0])
    assert decoder.done


def test_stream_error_event_raises() -> None:
    decoder = CODEC.stream_decoder("m")
    with pytest.raises(UpstreamError) as info:
        decoder.decode(events({"error": {"code": 500, "message": "Internal error",
                                         "status": "INTERNAL"}})[0])
    assert info.value.error_type == "stream_error"


# --- errors --------------------------------------------------------------------------------


def google_error(code: int, status: str, message: str = "m",
                 details: list[Any] | None = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status,
                                   "details": details or []}})


def test_errors() -> None:
    error = CODEC.error(400, {}, google_error(400, "INVALID_ARGUMENT", "bad contents"))
    assert isinstance(error, UpstreamRejectedError) and error.message == "bad contents"
    error = CODEC.error(404, {}, google_error(404, "NOT_FOUND", "models/x is not found"))
    assert isinstance(error, UpstreamRejectedError) and error.status == 404
    for status in (401, 403):
        error = CODEC.error(status, {}, google_error(status, "PERMISSION_DENIED", "key AIza1"))
        assert type(error) is UpstreamError and not error.retryable
        assert "AIza" not in error.message
    bad_key = google_error(400, "INVALID_ARGUMENT", "API key not valid", [
        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}])
    error = CODEC.error(400, {}, bad_key)
    assert type(error) is UpstreamError and error.error_type == "auth_error"
    quota = google_error(429, "RESOURCE_EXHAUSTED", "quota", [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}])
    error = CODEC.error(429, {}, quota)
    assert isinstance(error, UpstreamRateLimitedError) and error.retry_after == 7
    error = CODEC.error(429, {"Retry-After": "3"}, quota)
    assert isinstance(error, UpstreamRateLimitedError) and error.retry_after == 3
    error = CODEC.error(503, {}, google_error(503, "UNAVAILABLE", "The model is overloaded."))
    assert type(error) is UpstreamError and error.retryable
    assert error.error_type == "overloaded"
    for status in (500, 504):
        error = CODEC.error(status, {}, b"<html>oops</html>")
        assert type(error) is UpstreamError and error.retryable
        assert error.error_type == "server_error"


# --- embeddings and models -----------------------------------------------------------------


def test_embeddings() -> None:
    wire = CODEC.embed_request(EmbeddingRequest(model="x", inputs=("a",), dimensions=2),
                               "text-embedding-004")
    assert wire.url == "http://gemini.test/v1beta/models/text-embedding-004:embedContent"
    assert orjson.loads(wire.body or b"") == {"content": {"parts": [{"text": "a"}]},
                                              "outputDimensionality": 2}
    wire = CODEC.embed_request(EmbeddingRequest(model="x", inputs=("a", "b")),
                               "text-embedding-004")
    assert wire.url.endswith("/models/text-embedding-004:batchEmbedContents")
    assert orjson.loads(wire.body or b"") == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}}]}
    one = CODEC.embed_response(b'{"embedding": {"values": [0.5, 1]}}', "e")
    assert one.vectors == [[0.5, 1.0]] and one.usage is None
    many = CODEC.embed_response(b'{"embeddings": [{"values": [1]}, {"values": [2]}]}', "e")
    assert many.vectors == [[1.0], [2.0]]


def test_models_response() -> None:
    body = b'{"models": [{"name": "models/gemini-2.0-flash"}, {"name": "models/embedding-001"}]}'
    assert CODEC.models_response(body) == ["gemini-2.0-flash", "embedding-001"]
