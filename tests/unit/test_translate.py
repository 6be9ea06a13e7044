"""The facade's translators: OpenAI chat JSON -> protobuf (validated, errors naming the
field), and the round trip JSON -> proto -> domain -> OpenAI wire body."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from llmgateway.v1 import chat_pb2

from gateway.facade import translate
from gateway.facade.errors import ApiError
from gateway.proto import chat_request_from_proto
from gateway.providers.openai import encode_request

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"},
                                                   "days": {"type": "integer", "maximum": 10}},
                  "required": ["city"], "additionalProperties": False}

FULL_REQUEST: dict[str, Any] = {
    "model": "gpt-4o-mini",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "developer", "content": "Answer in French."},
        {"role": "user", "name": "alice", "content": [
            {"type": "text", "text": "What is in these images?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png",
                                                "detail": "high"}},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
        ]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"temp": 21}'},
        {"role": "assistant", "content": "Il fait 21 degrés.", "refusal": None},
        {"role": "user", "content": ""},
    ],
    "tools": [
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
                                          "parameters": WEATHER_SCHEMA, "strict": True}},
        {"type": "function", "function": {"name": "noop"}},
    ],
    "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    "parallel_tool_calls": False,
    "response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "description": "The answer", "schema": WEATHER_SCHEMA,
        "strict": True}},
    "temperature": 0.7,
    "top_p": 0.9,
    "max_tokens": 256,
    "max_completion_tokens": 300,
    "n": 2,
    "stop": ["\n\n", "END"],
    "seed": 2**40 + 7,
    "presence_penalty": -0.5,
    "frequency_penalty": 1.25,
    "user": "user-123",
    "stream": True,
    "stream_options": {"include_usage": True},
    # Not modelled by the gateway: passed through.
    "logprobs": True,
    "top_logprobs": 3,
    "metadata": {"team": "search", "nested": {"a": [1, 2.5, None]}},
    "service_tier": "flex",
}


def to_proto(body: dict[str, Any]) -> chat_pb2.ChatRequest:
    request, _, _ = translate.chat_request_to_proto(body)
    return request


def round_trip(body: dict[str, Any], model: str | None = None) -> dict[str, Any]:
    request = chat_request_from_proto(to_proto(body))
    return encode_request(request, model or body["model"])


def minimal(**fields: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **fields}


def bad(body: dict[str, Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        translate.chat_request_to_proto(body)
    err = caught.value
    assert err.status == 400
    assert err.type == "invalid_request_error"
    assert err.message
    return err


# --- JSON -> proto -------------------------------------------------------------------------


def test_full_request_to_proto() -> None:
    request, stream, include_usage = translate.chat_request_to_proto(copy.deepcopy(FULL_REQUEST))
    assert (stream, include_usage) == (True, True)
    assert request.model == "gpt-4o-mini"
    roles = [m.role for m in request.messages]
    assert roles == [chat_pb2.CHAT_ROLE_SYSTEM, chat_pb2.CHAT_ROLE_DEVELOPER,
                     chat_pb2.CHAT_ROLE_USER, chat_pb2.CHAT_ROLE_ASSISTANT,
                     chat_pb2.CHAT_ROLE_TOOL, chat_pb2.CHAT_ROLE_ASSISTANT,
                     chat_pb2.CHAT_ROLE_USER]
    user = request.messages[2]
    assert user.name == "alice"
    assert not user.HasField("content")
    assert [p.WhichOneof("part") for p in user.parts] == [
        "text", "image_url", "image_url", "input_audio"]
    assert user.parts[1].image_url.url == "https://example.com/a.png"
    assert user.parts[1].image_url.detail == "high"
    assert user.parts[2].image_url.detail == ""
    assert (user.parts[3].input_audio.data, user.parts[3].input_audio.format) == (
        "UklGRg==", "wav")
    assistant = request.messages[3]
    assert not assistant.HasField("content")
    assert [(c.id, c.name, c.arguments) for c in assistant.tool_calls] == [
        ("call_1", "get_weather", '{"city": "Paris"}')]
    assert request.messages[4].tool_call_id == "call_1"
    assert request.messages[6].HasField("content") and request.messages[6].content == ""

    weather, noop = request.tools
    assert weather.name == "get_weather" and weather.description == "Weather"
    assert orjson.loads(weather.parameters_json) == WEATHER_SCHEMA
    assert weather.HasField("strict") and weather.strict is True
    assert noop.parameters_json == "" and not noop.HasField("strict")
    assert request.tool_choice.mode == chat_pb2.TOOL_CHOICE_MODE_FUNCTION
    assert request.tool_choice.function_name == "get_weather"
    assert request.HasField("parallel_tool_calls") and request.parallel_tool_calls is False
    fmt = request.response_format
    assert fmt.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
    assert (fmt.json_schema.name, fmt.json_schema.description) == ("answer", "The answer")
    assert orjson.loads(fmt.json_schema.schema_json) == WEATHER_SCHEMA
    assert fmt.json_schema.strict is True
    assert request.temperature == pytest.approx(0.7)
    assert request.top_p == pytest.approx(0.9)
    assert (request.max_tokens, request.max_completion_tokens, request.n) == (256, 300, 2)
    assert list(request.stop) == ["\n\n", "END"]
    assert request.seed == 2**40 + 7
    assert request.presence_penalty == -0.5 and request.frequency_penalty == 1.25
    assert request.user == "user-123"
    assert orjson.loads(request.extra_json) == {
        "logprobs": True, "top_logprobs": 3, "service_tier": "flex",
        "metadata": {"team": "search", "nested": {"a": [1, 2.5, None]}}}


def test_minimal_request_leaves_optionals_unset() -> None:
    request, stream, include_usage = translate.chat_request_to_proto(minimal())
    assert (stream, include_usage) == (False, False)
    for field in ("temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "seed",
                  "presence_penalty", "frequency_penalty", "parallel_tool_calls",
                  "tool_choice", "response_format"):
        assert not request.HasField(field), field
    assert request.extra_json == ""
    assert list(request.tools) == [] and list(request.stop) == []


def test_explicit_nulls_mean_absent() -> None:
    request, stream, _ = translate.chat_request_to_proto(minimal(
        temperature=None, tools=None, tool_choice=None, stop=None, stream=None, user=None,
        response_format=None, stream_options=None))
    assert not request.HasField("temperature") and not request.HasField("tool_choice")
    assert stream is False
    assert request.extra_json == ""


@pytest.mark.parametrize(
    ("choice", "mode", "name"),
    [("auto", chat_pb2.TOOL_CHOICE_MODE_AUTO, ""),
     ("none", chat_pb2.TOOL_CHOICE_MODE_NONE, ""),
     ("required", chat_pb2.TOOL_CHOICE_MODE_REQUIRED, ""),
     ({"type": "function", "function": {"name": "f"}}, chat_pb2.TOOL_CHOICE_MODE_FUNCTION, "f")],
)
def test_tool_choice_variants(choice: Any, mode: int, name: str) -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    request = to_proto(minimal(tools=tools, tool_choice=choice))
    assert request.tool_choice.mode == mode
    assert request.tool_choice.function_name == name
    assert round_trip(minimal(tools=tools, tool_choice=choice))["tool_choice"] == choice


@pytest.mark.parametrize(
    ("fmt", "kind"),
    [({"type": "text"}, chat_pb2.RESPONSE_FORMAT_TYPE_TEXT),
     ({"type": "json_object"}, chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT)],
)
def test_simple_response_formats(fmt: dict[str, Any], kind: int) -> None:
    assert to_proto(minimal(response_format=fmt)).response_format.type == kind
    assert round_trip(minimal(response_format=fmt))["response_format"] == fmt


def test_image_url_as_string_or_object() -> None:
    body = minimal(messages=[{"role": "user", "content": [
        {"type": "image_url", "image_url": "https://example.com/s.png"},
        {"type": "image_url", "image_url": {"url": "https://example.com/o.png", "detail": "low"}},
    ]}])
    parts = to_proto(body).messages[0].parts
    assert [(p.image_url.url, p.image_url.detail) for p in parts] == [
        ("https://example.com/s.png", ""), ("https://example.com/o.png", "low")]
    assert round_trip(body)["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "https://example.com/s.png"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/o.png", "detail": "low"}},
    ]


@pytest.mark.parametrize(("stop", "expected"),
                         [("END", ["END"]), (["a", "b"], ["a", "b"]), ([], [])])
def test_stop_string_or_list(stop: Any, expected: list[str]) -> None:
    assert list(to_proto(minimal(stop=stop)).stop) == expected
    assert round_trip(minimal(stop=stop)).get("stop", []) == expected


def test_unknown_fields_go_to_extra_json_and_back() -> None:
    extra = {"logit_bias": {"50256": -100}, "vendor_flag": [1, {"x": "y"}],
             "reasoning_effort": "low", "big": 12345678901234567890}
    request = to_proto(minimal(**extra))
    assert orjson.loads(request.extra_json) == extra
    sent = round_trip(minimal(**extra))
    for key, value in extra.items():
        assert sent[key] == value


def test_stream_options_without_stream() -> None:
    _, stream, include_usage = translate.chat_request_to_proto(
        minimal(stream=False, stream_options={"include_usage": True}))
    assert (stream, include_usage) == (False, True)


# --- wrong types name their param ----------------------------------------------------------

TOOL = {"type": "function", "function": {"name": "f"}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": [{"role": "user", "content": "x"}]}, "model"),
        (minimal(model=5), "model"),
        (minimal(model=""), "model"),
        ({"model": "m"}, "messages"),
        (minimal(messages="hi"), "messages"),
        (minimal(messages=[]), "messages"),
        (minimal(messages=["hi"]), "messages[0]"),
        (minimal(messages=[{"content": "no role"}]), "messages[0].role"),
        (minimal(messages=[{"role": "robot", "content": "x"}]), "messages[0].role"),
        (minimal(messages=[{"role": "user", "content": 5}]), "messages[0].content"),
        (minimal(messages=[{"role": "user", "content": {"text": "x"}}]), "messages[0].content"),
        (minimal(messages=[{"role": "user", "content": ["x"]}]), "messages[0].content[0]"),
        (minimal(messages=[{"role": "user", "content": [{"type": "video"}]}]),
         "messages[0].content[0].type"),
        (minimal(messages=[{"role": "user", "content": [{"type": "text"}]}]),
         "messages[0].content[0].text"),
        (minimal(messages=[{"role": "user", "content": [{"type": "text", "text": 1}]}]),
         "messages[0].content[0].text"),
        (minimal(messages=[{"role": "user", "content": [
            {"type": "text", "text": "a"}, {"type": "image_url", "image_url": ""}]}]),
         "messages[0].content[1].image_url.url"),
        (minimal(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": 5}}]}]),
         "messages[0].content[0].image_url.url"),
        (minimal(messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": 5}]}]),
         "messages[0].content[0].image_url"),
        (minimal(messages=[{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"format": "wav"}}]}]),
         "messages[0].content[0].input_audio.data"),
        (minimal(messages=[{"role": "user", "content": "x", "name": 5}]), "messages[0].name"),
        (minimal(messages=[{"role": "assistant", "tool_calls": "x"}]), "messages[0].tool_calls"),
        (minimal(messages=[{"role": "assistant", "tool_calls": [
            {"id": "c", "function": {"arguments": "{}"}}]}]),
         "messages[0].tool_calls[0].function.name"),
        (minimal(messages=[{"role": "assistant", "tool_calls": [{"id": "c"}]}]),
         "messages[0].tool_calls[0].function"),
        (minimal(messages=[{"role": "tool", "content": "x", "tool_call_id": 5}]),
         "messages[0].tool_call_id"),
        (minimal(tools={}), "tools"),
        (minimal(tools=["f"]), "tools[0]"),
        (minimal(tools=[{"type": "retrieval"}]), "tools[0].type"),
        (minimal(tools=[{"type": "function"}]), "tools[0].function"),
        (minimal(tools=[TOOL, {"type": "function", "function": {"description": "x"}}]),
         "tools[1].function.name"),
        (minimal(tools=[{"type": "function", "function": {"name": "f", "parameters": []}}]),
         "tools[0].function.parameters"),
        (minimal(tools=[{"type": "function", "function": {"name": "f", "strict": "yes"}}]),
         "tools[0].function.strict"),
        (minimal(tools=[TOOL], tool_choice="sometimes"), "tool_choice"),
        (minimal(tools=[TOOL], tool_choice=5), "tool_choice"),
        (minimal(tools=[TOOL], tool_choice={"type": "function"}), "tool_choice.function"),
        (minimal(tools=[TOOL], tool_choice={"type": "function", "function": {}}),
         "tool_choice.function.name"),
        (minimal(parallel_tool_calls="yes"), "parallel_tool_calls"),
        (minimal(response_format="json"), "response_format"),
        (minimal(response_format={"type": "xml"}), "response_format.type"),
        (minimal(response_format={"type": "json_schema"}), "response_format.json_schema"),
        (minimal(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
         "response_format.json_schema.name"),
        (minimal(response_format={"type": "json_schema",
                                  "json_schema": {"name": "a", "schema": "{}"}}),
         "response_format.json_schema.schema"),
        (minimal(temperature="hot"), "temperature"),
        (minimal(temperature=True), "temperature"),
        (minimal(temperature=2.5), "temperature"),
        (minimal(temperature=-0.1), "temperature"),
        (minimal(top_p=1.5), "top_p"),
        (minimal(max_tokens=0), "max_tokens"),
        (minimal(max_tokens=1.5), "max_tokens"),
        (minimal(max_tokens=True), "max_tokens"),
        (minimal(max_tokens=2**31), "max_tokens"),
        (minimal(max_completion_tokens="10"), "max_completion_tokens"),
        (minimal(n=0), "n"),
        (minimal(n=129), "n"),
        (minimal(stop=5), "stop"),
        (minimal(stop=["ok", 1]), "stop[1]"),
        (minimal(seed=2**64), "seed"),
        (minimal(seed="1"), "seed"),
        (minimal(presence_penalty=3), "presence_penalty"),
        (minimal(frequency_penalty="high"), "frequency_penalty"),
        (minimal(user=5), "user"),
        (minimal(stream="yes"), "stream"),
        (minimal(stream_options="usage"), "stream_options"),
        (minimal(stream_options={"include_usage": 1}), "stream_options.include_usage"),
    ],
)
def test_wrong_types_raise_400_naming_the_param(body: dict[str, Any], param: str) -> None:
    err = bad(body)
    assert err.param == param, err.message
    assert param.split("[")[0].split(".")[0] in err.message


def test_api_error_body_shape() -> None:
    err = bad(minimal(temperature="hot"))
    assert orjson.loads(err.body()) == {"error": {
        "message": err.message, "type": "invalid_request_error", "param": "temperature",
        "code": None}}
    assert err.headers() == {}


@pytest.mark.parametrize(
    ("raw", "words"),
    [(b"", "empty"), (b"{", "not valid JSON"), (b"[1, 2]", "JSON object"),
     (b'"text"', "JSON object"), (b"\xff\xfe", "UTF-8"), (b'{"a": "\xed\xa0\x80"}', "UTF-8")],
)
def test_parse_json_body_rejects(raw: bytes, words: str) -> None:
    with pytest.raises(ApiError) as caught:
        translate.parse_json_body(raw)
    assert caught.value.status == 400
    assert words in caught.value.message


def test_parse_json_body() -> None:
    assert translate.parse_json_body(b'{"model": "m"}') == {"model": "m"}


# --- round trip to the OpenAI wire ---------------------------------------------------------


def test_full_request_round_trips_to_an_equivalent_openai_body() -> None:
    sent = round_trip(copy.deepcopy(FULL_REQUEST), model="gpt-4o-mini-2024-07-18")
    expected = copy.deepcopy(FULL_REQUEST)
    del expected["stream"], expected["stream_options"]  # the provider adds its own
    expected["model"] = "gpt-4o-mini-2024-07-18"  # the target's upstream name
    # Equivalent spellings the encoder normalises to: explicit null refusal is omitted.
    del expected["messages"][5]["refusal"]
    assert sent == expected


def test_round_trip_of_a_plain_request_is_exact() -> None:
    body = {"model": "m", "messages": [{"role": "system", "content": "s"},
                                       {"role": "user", "content": "u"}],
            "temperature": 0, "max_tokens": 5}
    assert round_trip(body) == body


def test_json_schema_keeps_key_order_and_big_integers() -> None:
    schema = {"type": "object", "required": ["z", "a"],
              "properties": {"z": {"type": "integer", "maximum": 2**53 + 1},
                             "a": {"type": "string"}}}
    body = minimal(response_format={"type": "json_schema",
                                    "json_schema": {"name": "s", "schema": schema}})
    sent = round_trip(body)["response_format"]["json_schema"]["schema"]
    assert sent == schema
    assert list(sent["properties"]) == ["z", "a"]
    assert sent["properties"]["z"]["maximum"] == 2**53 + 1


def test_proto_validation_matches_for_direct_grpc_callers() -> None:
    """The core validates again what the facade built; a valid body passes both."""
    request = to_proto(copy.deepcopy(FULL_REQUEST))
    domain = chat_request_from_proto(request)
    assert domain.model == "gpt-4o-mini"
    assert domain.tool_choice is not None and domain.tool_choice.function_name == "get_weather"
    assert domain.response_format is not None and domain.response_format.json_schema is not None
    assert domain.response_format.json_schema.schema == WEATHER_SCHEMA
    assert domain.tools[0].parameters == WEATHER_SCHEMA
    assert domain.stop == ("\n\n", "END")
    assert domain.output_limit == 300
    assert domain.messages[2].text() == "What is in these images?"
    assert domain.extra["service_tier"] == "flex"


# --- responses -----------------------------------------------------------------------------


def test_completion_to_json() -> None:
    completion = chat_pb2.ChatCompletion(
        id="chatcmpl-1", created=1700000000, model="gpt-4o-mini", system_fingerprint="fp",
        choices=[chat_pb2.ChatChoice(
            index=0, finish_reason=chat_pb2.FINISH_REASON_TOOL_CALLS,
            message=chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_ASSISTANT, tool_calls=[
                chat_pb2.ToolCall(id="c1", name="f", arguments="{}")]))],
        usage=chat_pb2.Usage(prompt_tokens=3, completion_tokens=4, total_tokens=7,
                             cached_prompt_tokens=1),
        gateway=chat_pb2.GatewayInfo(provider="upstream", model="gpt-4o-mini",
                                     request_id="r1"),
    )
    out = translate.completion_to_json(completion)
    assert out["object"] == "chat.completion"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {"role": "assistant", "content": None, "refusal": None,
                                 "tool_calls": [{"id": "c1", "type": "function",
                                                 "function": {"name": "f", "arguments": "{}"}}]}
    assert out["usage"]["total_tokens"] == 7
    assert out["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}
    assert out["x_gateway"]["provider"] == "upstream"
    assert out["x_gateway"]["request_id"] == "r1"


def test_chunk_to_json_usage_only_when_asked() -> None:
    chunk = chat_pb2.ChatCompletionChunk(id="c", created=1, model="m", choices=[
        chat_pb2.ChatChunkChoice(index=0, delta=chat_pb2.ChatDelta(
            role=chat_pb2.CHAT_ROLE_ASSISTANT, content=""))])
    assert "usage" not in translate.chunk_to_json(chunk, include_usage=False)
    with_usage = translate.chunk_to_json(chunk, include_usage=True)
    assert with_usage["usage"] is None
    assert with_usage["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert with_usage["choices"][0]["finish_reason"] is None
    final = chat_pb2.ChatCompletionChunk(id="c", created=1, model="m",
                                         usage=chat_pb2.Usage(prompt_tokens=1, total_tokens=3,
                                                              completion_tokens=2))
    out = translate.chunk_to_json(final, include_usage=True)
    assert out["choices"] == [] and out["usage"]["total_tokens"] == 3
