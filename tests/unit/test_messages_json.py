"""Anthropic Messages JSON <-> messages.proto: round trips and request validation."""

from __future__ import annotations

import copy
import doctest
from typing import Any

import orjson
import pytest
from llmgateway.v1 import messages_pb2

from gateway import messages_json
from gateway.messages_json import (
    MessagesJsonError,
    event_from_json,
    event_to_json,
    message_from_json,
    message_to_json,
    request_from_json,
    request_to_json,
    usage_from_json,
    usage_to_json,
)

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {"type": "string", "description": "The city and state"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["location"],
    },
    "cache_control": {"type": "ephemeral"},
}

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)

FULL_REQUEST: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 4096,
    "system": [
        {"type": "text", "text": "You are a weather bot."},
        {
            "type": "text",
            "text": "Long context...",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        },
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What's the weather in Paris?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {
                    "type": "document",
                    "source": {
                        "type": "base64",
                        "media_type": "application/pdf",
                        "data": "JVBERi0x",
                    },
                    "title": "Report",
                    "context": "Q3 numbers",
                    "citations": {"enabled": True},
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "document",
                    "source": {
                        "type": "text",
                        "media_type": "text/plain",
                        "data": "Grass is green.",
                    },
                },
                {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}},
                {
                    "type": "document",
                    "source": {"type": "content", "content": [{"type": "text", "text": "chunk"}]},
                },
                {
                    "type": "document",
                    "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "thinking",
                    "thinking": "The user wants the weather; call the tool.",
                    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
                },
                {
                    "type": "redacted_thinking",
                    "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw",
                },
                {"type": "text", "text": "Let me check.", "citations": None},
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {
                        "location": "Paris, France",
                        "nested": {"big": 9007199254740993, "neg": -(2**63), "u64": 2**64 - 1},
                        "floats": [0.1, 1e-7, 3.141592653589793, 2.5e300],
                        "flags": [True, False, None],
                    },
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "15 degrees",
                    "cache_control": {"type": "ephemeral"},
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02",
                    "content": [
                        {"type": "text", "text": "sunny"},
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                        },
                        {
                            "type": "search_result",
                            "source": "https://x",
                            "title": "t",
                            "content": [],
                        },
                    ],
                    "is_error": False,
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_03",
                    "content": "boom",
                    "is_error": True,
                },
                {"type": "tool_result", "tool_use_id": "toolu_04"},
                {"type": "tool_result", "tool_use_id": "toolu_05", "content": []},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "server_tool_use",
                    "id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
                    "name": "web_search",
                    "input": {"query": "weather Paris"},
                },
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": "srvtoolu_01WYG3ziw53XMcoyKL4XcZmE",
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": "https://weather.example",
                            "title": "Paris weather",
                            "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgx",
                            "page_age": "April 30, 2025",
                        }
                    ],
                },
                {
                    "type": "text",
                    "text": "It is sunny.",
                    "citations": [
                        {
                            "type": "web_search_result_location",
                            "url": "https://weather.example",
                            "title": "Paris weather",
                            "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm",
                            "cited_text": "Sunny, 15 degrees",
                        }
                    ],
                },
            ],
        },
        {"role": "user", "content": "Thanks! And tomorrow?"},
        {"role": "assistant", "content": []},
    ],
    "tools": [
        WEATHER_TOOL,
        {"type": "custom", "name": "noop", "input_schema": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 5},
        {"type": "bash_20250124", "name": "bash"},
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["\n\nHuman:", "END"],
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 40,
    "metadata": {"user_id": "13803d75-b4b5-4c3e-b2a2-6f21399b021b"},
    "thinking": {"type": "enabled", "budget_tokens": 2048},
    "service_tier": "auto",
    "container": "container_011CN",
    "output_config": {"effort": "high"},
    "cache_control": {"type": "ephemeral"},
}


def roundtrip_request(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    before = copy.deepcopy(body)
    request, _ = request_from_json(body, **kw)
    assert body == before  # the input is not modified
    wire = messages_pb2.MessagesRequest.FromString(request.SerializeToString())
    assert wire == request
    return request_to_json(wire)


def test_module_example() -> None:
    failures, _ = doctest.testmod(messages_json)
    assert failures == 0


def test_full_request_round_trips_and_is_typed() -> None:
    request, stream = request_from_json({**FULL_REQUEST, "stream": True})
    assert stream is True
    assert request_to_json(request) == FULL_REQUEST
    assert roundtrip_request(FULL_REQUEST) == FULL_REQUEST

    assert request.model == "claude-sonnet-4-5" and request.max_tokens == 4096
    assert not request.HasField("system_text")
    assert request.system[1].cache_control.ttl == "1h"
    user = request.messages[0]
    assert user.role == "user" and not user.HasField("text")
    assert user.content[1].image.source.media_type == "image/png"
    assert user.content[2].image.source.url == "https://example.com/a.jpg"
    doc = user.content[3]
    assert doc.document.source.data == "JVBERi0x"
    assert orjson.loads(doc.extra_json) == {
        "title": "Report",
        "context": "Q3 numbers",
        "citations": {"enabled": True},
    }
    assert orjson.loads(user.content[6].document.source.content_json) == [
        {"type": "text", "text": "chunk"}
    ]
    assert user.content[7].document.source.file_id.startswith("file_")
    assistant = request.messages[1]
    assert assistant.content[0].thinking.signature.startswith("EqQB")
    assert assistant.content[1].redacted_thinking.data.startswith("Emw")
    tool_input = orjson.loads(assistant.content[3].tool_use.input_json)
    assert tool_input["nested"]["big"] == 9007199254740993
    results = request.messages[2].content
    assert results[0].tool_result.text == "15 degrees"
    assert results[0].cache_control.type == "ephemeral"
    assert [b.WhichOneof("block") for b in results[1].tool_result.content] == [
        "text",
        "image",
        "other_json",
    ]
    assert results[1].tool_result.HasField("is_error") and not results[1].tool_result.is_error
    assert results[2].tool_result.is_error
    assert not results[3].tool_result.HasField("text") and not results[3].tool_result.content
    assert request.messages[3].content[0].WhichOneof("block") == "other_json"
    assert request.messages[4].text == "Thanks! And tomorrow?"
    assert request.messages[5].HasField("text") is False and len(request.messages[5].content) == 0
    tools = request.tools
    assert tools[0].type == "" and tools[0].cache_control.type == "ephemeral"
    assert tools[1].type == "custom"
    assert tools[2].type == "web_search_20250305" and orjson.loads(tools[2].extra_json) == {
        "max_uses": 5
    }
    assert tools[3].input_schema_json == ""
    assert request.tool_choice.disable_parallel_tool_use is True
    assert list(request.stop_sequences) == ["\n\nHuman:", "END"]
    assert request.temperature == 0.7 and request.top_p == 0.95 and request.top_k == 40
    assert request.metadata.user_id.startswith("1380")
    assert request.thinking.budget_tokens == 2048
    assert orjson.loads(request.extra_json) == {
        "service_tier": "auto",
        "container": "container_011CN",
        "output_config": {"effort": "high"},
        "cache_control": {"type": "ephemeral"},
    }


MINIMAL = {
    "model": "claude-haiku-4-5",
    "max_tokens": 1,
    "messages": [{"role": "user", "content": "hi"}],
}


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"system": "Be brief."},
        {"system": ""},
        {"system": []},
        {"system": [{"type": "text", "text": "Be brief.", "cache_control": None}]},
        {"tools": []},
        {"tools": [{"name": "t", "input_schema": {"type": "object"}, "description": ""}]},
        {"tools": [{"name": "t", "input_schema": {"type": "object"}, "type": None}]},
        {"tools": [{"type": "web_search_20250305", "name": "web_search", "input_schema": None}]},
        {"tool_choice": {"type": "auto"}},
        {"tool_choice": {"type": "any", "disable_parallel_tool_use": False}},
        {"tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}},
        {"tool_choice": {"type": "none"}},
        {"tool_choice": {"type": "auto", "name": "ignored"}},
        {"stop_sequences": []},
        {"temperature": 1, "top_p": 0},
        {"temperature": 0.0},
        {"top_k": 0},
        {"metadata": {}},
        {"metadata": {"user_id": None}},
        {"metadata": {"user_id": ""}},
        {"thinking": {"type": "disabled"}},
        {"thinking": {"type": "adaptive", "display": "omitted"}},
        {"thinking": {"type": "enabled", "budget_tokens": 1024, "display": "summarized"}},
        {"messages": []},
        {"messages": [{"role": "user", "content": ""}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": ""}]}]},
        {"messages": [{"role": "user", "content": "x", "name": "bob"}]},
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "", "signature": ""},
                        {"type": "redacted_thinking", "data": ""},
                        {"type": "tool_use", "id": "", "name": "", "input": {}},
                        {"type": "tool_result", "tool_use_id": "", "content": ""},
                    ],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "", "data": ""},
                        },
                        {"type": "image", "source": {"type": "url", "url": "u", "detail": "hi"}},
                        {
                            "type": "text",
                            "text": "x",
                            "cache_control": {"type": "ephemeral", "ttl": ""},
                        },
                        {
                            "type": "text",
                            "text": "x",
                            "cache_control": {"type": "ephemeral", "x": 1},
                        },
                        {"type": "container_upload", "file_id": "file_1"},
                    ],
                }
            ]
        },
    ],
)
def test_request_variants_round_trip(extra: dict[str, Any]) -> None:
    body = {**MINIMAL, **extra}
    assert roundtrip_request(body) == body


def test_presence_of_system_tools_and_content() -> None:
    as_string, _ = request_from_json({**MINIMAL, "system": "S"})
    as_blocks, _ = request_from_json({**MINIMAL, "system": [{"type": "text", "text": "S"}]})
    assert as_string.system_text == "S" and not as_string.system
    assert not as_blocks.HasField("system_text") and as_blocks.system[0].text.text == "S"
    with_tools, _ = request_from_json({**MINIMAL, "tools": []})
    without, _ = request_from_json(MINIMAL)
    assert with_tools.has_tools and not without.has_tools
    assert "tools" not in request_to_json(without)
    # A request built by the core (no has_tools) still writes its tools.
    built = messages_pb2.MessagesRequest(
        model="m", max_tokens=5, tools=[messages_pb2.MessageTool(name="t", input_schema_json="{}")]
    )
    built.messages.add(role="user", text="hi")
    assert request_to_json(built) == {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"name": "t", "input_schema": {}}],
    }


def test_stream_is_read_not_stored() -> None:
    request, stream = request_from_json({**MINIMAL, "stream": False})
    assert stream is False and request.extra_json == ""
    assert request_to_json(request) == MINIMAL
    assert request_from_json(MINIMAL)[1] is False


def test_count_tokens() -> None:
    body = {"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "hi"}]}
    request, stream = request_from_json(body, count_tokens=True)
    assert stream is False and request.max_tokens == 0
    assert request_to_json(request) == body
    with_stream = {**body, "stream": True, "max_tokens": 10}
    request, stream = request_from_json(with_stream, count_tokens=True)
    assert stream is False and orjson.loads(request.extra_json) == {"stream": True}
    assert request_to_json(request) == with_stream
    with pytest.raises(MessagesJsonError) as info:
        request_from_json(body)
    assert info.value.param == "max_tokens"


def test_floats_and_ints_keep_their_values() -> None:
    body = {**MINIMAL, "temperature": 1, "top_p": 0.1}
    out = roundtrip_request(body)
    assert out == body and out["temperature"] == 1.0 and out["top_p"] == 0.1


def test_a_whole_number_written_as_a_float_is_an_integer() -> None:
    request, _ = request_from_json({**MINIMAL, "max_tokens": 1024.0})
    assert request.max_tokens == 1024 and request_to_json(request)["max_tokens"] == 1024


# --- Validation ------------------------------------------------------------------------


def _bad(body: Any, **kw: Any) -> MessagesJsonError:
    with pytest.raises(MessagesJsonError) as info:
        request_from_json(body, **kw)
    return info.value


def _msg(*content: Any) -> dict[str, Any]:
    return {**MINIMAL, "messages": [{"role": "user", "content": list(content)}]}


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"max_tokens": 1, "messages": []}, "model", "model: Field required"),
        ({**MINIMAL, "model": ""}, "model", "model: String should have at least 1 character"),
        ({**MINIMAL, "model": 5}, "model", "model: Input should be a valid string"),
        ({"model": "m", "messages": []}, "max_tokens", "max_tokens: Field required"),
        ({**MINIMAL, "max_tokens": 0}, "max_tokens", None),
        (
            {**MINIMAL, "max_tokens": True},
            "max_tokens",
            "max_tokens: Input should be a valid integer",
        ),
        ({**MINIMAL, "max_tokens": 1.5}, "max_tokens", None),
        ({**MINIMAL, "max_tokens": 2**31}, "max_tokens", None),
        ({**MINIMAL, "messages": None}, "messages", "messages: Input should be a valid list"),
        ({"model": "m", "max_tokens": 1}, "messages", "messages: Field required"),
        ({**MINIMAL, "messages": ["hi"]}, "messages.0", None),
        (
            {**MINIMAL, "messages": [{"role": "system", "content": "x"}]},
            "messages.0.role",
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {**MINIMAL, "messages": [{"content": "x"}]},
            "messages.0.role",
            "messages.0.role: Field required",
        ),
        ({**MINIMAL, "messages": [{"role": "user"}]}, "messages.0.content", None),
        ({**MINIMAL, "messages": [{"role": "user", "content": 3}]}, "messages.0.content", None),
        (_msg("text"), "messages.0.content.0", None),
        (
            _msg({"text": "x"}),
            "messages.0.content.0.type",
            "messages.0.content.0.type: Field required",
        ),
        (_msg({"type": 1}), "messages.0.content.0.type", None),
        (_msg({"type": "text"}), "messages.0.content.0.text", None),
        (_msg({"type": "text", "text": None}), "messages.0.content.0.text", None),
        (
            _msg({"type": "text", "text": "a"}, {"type": "text", "text": "b"}, {"type": "image"}),
            "messages.0.content.2.source",
            "messages.0.content.2.source: Field required",
        ),
        (_msg({"type": "image", "source": "x"}), "messages.0.content.0.source", None),
        (_msg({"type": "document", "source": {}}), "messages.0.content.0.source.type", None),
        (
            _msg({"type": "image", "source": {"type": "url", "url": 1}}),
            "messages.0.content.0.source.url",
            None,
        ),
        (_msg({"type": "tool_use", "name": "n", "input": {}}), "messages.0.content.0.id", None),
        (_msg({"type": "tool_use", "id": "i", "input": {}}), "messages.0.content.0.name", None),
        (
            _msg({"type": "tool_use", "id": "i", "name": "n", "input": []}),
            "messages.0.content.0.input",
            None,
        ),
        (_msg({"type": "tool_use", "id": "i", "name": "n"}), "messages.0.content.0.input", None),
        (_msg({"type": "tool_result"}), "messages.0.content.0.tool_use_id", None),
        (
            _msg({"type": "tool_result", "tool_use_id": "t", "content": {}}),
            "messages.0.content.0.content",
            None,
        ),
        (
            _msg({"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}),
            "messages.0.content.0.content.0.text",
            None,
        ),
        (
            _msg({"type": "tool_result", "tool_use_id": "t", "content": ["x"]}),
            "messages.0.content.0.content.0",
            None,
        ),
        (
            _msg({"type": "tool_result", "tool_use_id": "t", "is_error": "yes"}),
            "messages.0.content.0.is_error",
            None,
        ),
        (_msg({"type": "thinking", "thinking": "t"}), "messages.0.content.0.signature", None),
        (_msg({"type": "thinking", "signature": "s"}), "messages.0.content.0.thinking", None),
        (_msg({"type": "redacted_thinking"}), "messages.0.content.0.data", None),
        (
            _msg({"type": "text", "text": "x", "cache_control": "ephemeral"}),
            "messages.0.content.0.cache_control",
            None,
        ),
        (
            _msg({"type": "text", "text": "x", "cache_control": {"ttl": "5m"}}),
            "messages.0.content.0.cache_control.type",
            None,
        ),
        ({**MINIMAL, "system": 5}, "system", None),
        (
            {**MINIMAL, "system": [{"type": "image"}]},
            "system.0.type",
            "system.0.type: Input should be 'text'",
        ),
        ({**MINIMAL, "system": ["x"]}, "system.0", None),
        ({**MINIMAL, "system": [{"type": "text", "text": 1}]}, "system.0.text", None),
        (
            {**MINIMAL, "temperature": "0.5"},
            "temperature",
            "temperature: Input should be a valid number",
        ),
        ({**MINIMAL, "temperature": True}, "temperature", None),
        ({**MINIMAL, "top_p": None}, "top_p", None),
        ({**MINIMAL, "top_k": 1.5}, "top_k", None),
        ({**MINIMAL, "top_k": False}, "top_k", None),
        ({**MINIMAL, "top_k": -1}, "top_k", None),
        ({**MINIMAL, "stop_sequences": "END"}, "stop_sequences", None),
        ({**MINIMAL, "stop_sequences": ["a", 1]}, "stop_sequences.1", None),
        ({**MINIMAL, "metadata": "u"}, "metadata", None),
        ({**MINIMAL, "metadata": {"user_id": 5}}, "metadata.user_id", None),
        ({**MINIMAL, "thinking": {}}, "thinking.type", None),
        ({**MINIMAL, "thinking": {"type": "enabled"}}, "thinking.budget_tokens", None),
        (
            {**MINIMAL, "thinking": {"type": "enabled", "budget_tokens": 512}},
            "thinking.budget_tokens",
            None,
        ),
        (
            {**MINIMAL, "thinking": {"type": "enabled", "budget_tokens": 2**40}},
            "thinking.budget_tokens",
            None,
        ),
        ({**MINIMAL, "tools": {}}, "tools", None),
        ({**MINIMAL, "tools": [WEATHER_TOOL, "x"]}, "tools.1", None),
        (
            {**MINIMAL, "tools": [{"input_schema": {}}]},
            "tools.0.name",
            "tools.0.name: Field required",
        ),
        (
            {**MINIMAL, "tools": [{"name": "t"}]},
            "tools.0.input_schema",
            "tools.0.input_schema: Field required",
        ),
        ({**MINIMAL, "tools": [{"name": "t", "type": "custom"}]}, "tools.0.input_schema", None),
        ({**MINIMAL, "tools": [{"name": "t", "input_schema": "{}"}]}, "tools.0.input_schema", None),
        (
            {**MINIMAL, "tools": [{"name": "t", "input_schema": {}, "type": 1}]},
            "tools.0.type",
            None,
        ),
        (
            {**MINIMAL, "tools": [{"name": "t", "input_schema": {}, "description": 1}]},
            "tools.0.description",
            None,
        ),
        (
            {**MINIMAL, "tools": [{**WEATHER_TOOL, "cache_control": {"type": None}}]},
            "tools.0.cache_control.type",
            None,
        ),
        ({**MINIMAL, "tool_choice": "auto"}, "tool_choice", None),
        (
            {**MINIMAL, "tool_choice": {"type": "required"}},
            "tool_choice.type",
            "tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'",
        ),
        (
            {**MINIMAL, "tool_choice": {"type": "tool"}},
            "tool_choice.name",
            "tool_choice.name: Field required",
        ),
        (
            {**MINIMAL, "tool_choice": {"type": "any", "disable_parallel_tool_use": 1}},
            "tool_choice.disable_parallel_tool_use",
            None,
        ),
        ({**MINIMAL, "stream": "true"}, "stream", "stream: Input should be a valid boolean"),
        (
            {
                **MINIMAL,
                "messages": [
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": "b"},
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "c"},
                            {"type": "document", "source": []},
                        ],
                    },
                ],
            },
            "messages.2.content.1.source",
            None,
        ),
    ],
)
def test_request_validation(body: Any, param: str, message: str | None) -> None:
    err = _bad(body)
    assert err.param == param
    assert err.message.startswith(f"{param}: ")
    assert str(err) == err.message
    if message is not None:
        assert err.message == message


def test_body_must_be_an_object() -> None:
    bodies: list[Any] = [[], "x", None, 1]
    for body in bodies:
        err = _bad(body)
        assert err.param == ""


def test_count_tokens_still_validates_max_tokens_when_given() -> None:
    body = {"model": "m", "messages": [], "max_tokens": "5"}
    assert _bad(body, count_tokens=True).param == "max_tokens"


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**MINIMAL, "output_config": _nest(300)}, ""),
        (
            _msg({"type": "tool_use", "id": "i", "name": "n", "input": {"x": _nest(300)}}),
            "messages.0.content.0.input",
        ),
        (_msg({"type": "mystery", "x": _nest(300)}), "messages.0.content.0"),
        (
            {**MINIMAL, "tools": [{"name": "t", "input_schema": {"x": _nest(300)}}]},
            "tools.0.input_schema",
        ),
    ],
)
def test_too_deep_values_are_refused(body: dict[str, Any], param: str) -> None:
    err = _bad(body)
    assert err.param == param


def test_depth_counts_from_the_top_of_the_document() -> None:
    # The input alone is writable, but not inside the body five levels down.
    deep_input = {"x": _nest(250)}
    orjson.dumps(deep_input)
    body = _msg({"type": "tool_use", "id": "i", "name": "n", "input": deep_input})
    with pytest.raises(orjson.JSONEncodeError):
        orjson.dumps(body)
    err = _bad(body)
    assert err.param == "messages.0.content.0.input"
    ok = _msg({"type": "tool_use", "id": "i", "name": "n", "input": {"x": _nest(248)}})
    out = roundtrip_request(ok)
    assert out == ok
    orjson.dumps(out)


def test_bad_json_text_in_a_proto_is_reported() -> None:
    request, _ = request_from_json(MINIMAL)
    request.messages[0].extra_json = "{not json"
    with pytest.raises(MessagesJsonError) as info:
        request_to_json(request)
    assert info.value.param == "messages.0.extra_json"
    request.messages[0].extra_json = ""
    request.messages[0].ClearField("text")
    request.messages[0].content.add().tool_use.input_json = "nope"
    with pytest.raises(MessagesJsonError) as info:
        request_to_json(request)
    assert info.value.param == "messages.0.content.0.tool_use.input_json"


# --- Messages ------------------------------------------------------------------------

MESSAGE: dict[str, Any] = {
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {
            "type": "thinking",
            "thinking": "Let me think.",
            "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve",
        },
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
        {"type": "text", "text": "Hi! My name is Claude."},
        {
            "type": "text",
            "text": "the grass is green",
            "citations": [
                {
                    "type": "char_location",
                    "cited_text": "The grass is green.",
                    "document_index": 0,
                    "document_title": "Example Document",
                    "start_char_index": 0,
                    "end_char_index": 20,
                }
            ],
        },
        {
            "type": "server_tool_use",
            "id": "srvtoolu_1",
            "name": "web_search",
            "input": {"query": "q"},
        },
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "days": 3, "lat": 37.7749},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 2095,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 1800,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 503,
        "server_tool_use": {"web_search_requests": 1},
        "service_tier": "standard",
    },
    "container": None,
}


def test_message_round_trips() -> None:
    message = message_from_json(MESSAGE)
    assert message_to_json(message) == MESSAGE
    assert message.stop_reason == "tool_use" and not message.HasField("stop_sequence")
    assert message.usage.input_tokens == 2095 and message.usage.cache_read_input_tokens == 1800
    assert [b.WhichOneof("block") for b in message.content] == [
        "thinking",
        "redacted_thinking",
        "text",
        "text",
        "other_json",
        "other_json",
        "tool_use",
    ]
    assert orjson.loads(message.extra_json) == {"container": None}
    stopped = {**MESSAGE, "stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert message_to_json(message_from_json(stopped)) == stopped


def test_message_to_json_always_has_type_and_nulls() -> None:
    built = messages_pb2.AssistantMessage(id="msg_1", model="m")
    built.content.add().text.text = "hi"
    assert message_to_json(built) == {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 0,
            "output_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ([], ""),
        ({**MESSAGE, "type": "error"}, "type"),
        ({**MESSAGE, "content": "hi"}, "content"),
        ({**MESSAGE, "content": [{"type": "text"}]}, "content.0.text"),
        ({**MESSAGE, "usage": {"input_tokens": "3"}}, "usage.input_tokens"),
        ({**MESSAGE, "usage": {"input_tokens": 2**64}}, "usage.input_tokens"),
        ({**MESSAGE, "stop_reason": 1}, "stop_reason"),
        ({**MESSAGE, "id": None}, "id"),
    ],
)
def test_message_shapes_it_cannot_read(data: Any, param: str) -> None:
    with pytest.raises(MessagesJsonError) as info:
        message_from_json(data)
    assert info.value.param == param


def test_usage_rules() -> None:
    full = {
        "input_tokens": 10,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }
    assert usage_to_json(usage_from_json(full)) == full
    assert usage_from_json(full).extra_json == ""
    with_nulls = {
        "input_tokens": 10,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "output_tokens": 1,
    }
    assert usage_to_json(usage_from_json(with_nulls)) == with_nulls
    # A message's usage always has the four counts.
    assert usage_to_json(usage_from_json({"input_tokens": 3, "output_tokens": 4})) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
    assert usage_to_json(messages_pb2.MessageUsage(output_tokens=7, cache_read_input_tokens=2)) == {
        "input_tokens": 0,
        "output_tokens": 7,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2,
    }


# --- Stream events -------------------------------------------------------------------

START_MESSAGE: dict[str, Any] = {
    "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY",
    "type": "message",
    "role": "assistant",
    "content": [],
    "model": "claude-sonnet-4-5-20250929",
    "stop_reason": None,
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 2,
        "service_tier": "standard",
    },
}

EVENTS: list[dict[str, Any]] = [
    {"type": "message_start", "message": START_MESSAGE},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": "", "citations": []},
    },
    {
        "type": "content_block_start",
        "index": 1,
        "content_block": {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": ""},
    },
    {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "thinking", "thinking": "", "signature": ""},
    },
    {
        "type": "content_block_start",
        "index": 2,
        "content_block": {"type": "redacted_thinking", "data": "EmwKAhgB"},
    },
    {
        "type": "content_block_start",
        "index": 3,
        "content_block": {
            "type": "server_tool_use",
            "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
            "name": "web_search",
            "input": {},
        },
    },
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": ""}},
    {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "thinking_delta", "thinking": "Let me solve"},
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {
            "type": "signature_delta",
            "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
        },
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {
            "type": "citations_delta",
            "citation": {
                "type": "char_location",
                "cited_text": "The grass is green.",
                "document_index": 0,
                "document_title": "Example Document",
                "start_char_index": 0,
                "end_char_index": 20,
            },
        },
    },
    {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "x", "future": 1},
    },
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": 15},
    },
    {
        "type": "message_delta",
        "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END", "container": None},
        "usage": {
            "input_tokens": 472,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 100,
            "output_tokens": 15,
            "server_tool_use": {"web_search_requests": 1},
        },
    },
    {
        "type": "message_delta",
        "delta": {"stop_reason": None, "stop_sequence": None},
        "usage": {"output_tokens": 0},
    },
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}},
    {"type": "message_stop"},
    {"type": "ping"},
    {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    {
        "type": "error",
        "error": {"type": "api_error", "message": "x", "details": {}},
        "request_id": "req_1",
    },
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn"},
        "usage": {"output_tokens": 1},
        "context_management": {},
    },
    {"type": "ping", "at": 1},
    {"type": "some_future_event", "payload": [1, 2.5, {"a": None}]},
]


@pytest.mark.parametrize("data", EVENTS, ids=lambda e: str(e["type"]))
def test_event_round_trips(data: dict[str, Any]) -> None:
    event = event_from_json(data)
    wire = messages_pb2.MessageStreamEvent.FromString(event.SerializeToString())
    name, out = event_to_json(wire)
    assert out == data
    assert name == data["type"]


def test_events_are_typed() -> None:
    kinds = [event_from_json(e).WhichOneof("event") for e in EVENTS]
    assert kinds == [
        "message_start",
        *["content_block_start"] * 7,
        *["content_block_delta"] * 7,
        "content_block_stop",
        *["message_delta"] * 4,
        "message_stop",
        "ping",
        "error",
        "other_json",
        "other_json",
        "other_json",
        "other_json",
    ]
    start = event_from_json(EVENTS[0]).message_start
    assert start.stop_reason == "" and not start.HasField("stop_sequence") and not start.content
    assert (
        event_from_json(EVENTS[7]).content_block_start.content_block.WhichOneof("block")
        == "other_json"
    )
    assert event_from_json(EVENTS[13]).content_block_delta.delta.WhichOneof("delta") == "other_json"
    delta = event_from_json(EVENTS[17]).message_delta
    assert delta.stop_sequence == "END" and delta.usage.cache_read_input_tokens == 100
    assert event_from_json(EVENTS[22]).error.type == "overloaded_error"


def test_message_delta_usage_rule() -> None:
    # Built by the core: output_tokens always, other counts when not 0.
    event = messages_pb2.MessageStreamEvent(
        message_delta=messages_pb2.MessageDelta(
            stop_reason="max_tokens",
            usage=messages_pb2.MessageUsage(output_tokens=0, input_tokens=9),
        )
    )
    assert event_to_json(event) == (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens", "stop_sequence": None},
            "usage": {"input_tokens": 9, "output_tokens": 0},
        },
    )


@pytest.mark.parametrize(
    ("data", "param"),
    [
        ("x", ""),
        ({"index": 0}, "type"),
        (
            {
                "type": "content_block_delta",
                "index": "0",
                "delta": {"type": "text_delta", "text": "a"},
            },
            "index",
        ),
        ({"type": "content_block_delta", "index": 0}, "delta"),
        (
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta"}},
            "delta.text",
        ),
        ({"type": "content_block_delta", "index": 0, "delta": {"text": "a"}}, "delta.type"),
        (
            {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use"}},
            "content_block.id",
        ),
        ({"type": "content_block_start", "index": 0}, "content_block"),
        ({"type": "content_block_stop"}, "index"),
        ({"type": "message_start", "message": {"content": {}}}, "message.content"),
        (
            {"type": "message_delta", "delta": {"stop_reason": 1}, "usage": {"output_tokens": 1}},
            "delta.stop_reason",
        ),
        (
            {
                "type": "message_delta",
                "delta": {},
                "usage": {"output_tokens": None, "input_tokens": "1"},
            },
            "usage.input_tokens",
        ),
        ({"type": "message_delta", "usage": {"output_tokens": 1}}, "delta"),
        ({"type": "some_future_event", "deep": _nest(300)}, ""),
    ],
)
def test_event_shapes_it_cannot_read(data: Any, param: str) -> None:
    with pytest.raises(MessagesJsonError) as info:
        event_from_json(data)
    assert info.value.param == param


def test_event_to_json_needs_a_kind() -> None:
    with pytest.raises(MessagesJsonError):
        event_to_json(messages_pb2.MessageStreamEvent())
    with pytest.raises(MessagesJsonError) as info:
        event_to_json(messages_pb2.MessageStreamEvent(other_json='{"no": "type"}'))
    assert info.value.param == "other_json"


def test_module_imports_nothing_from_the_gateway() -> None:
    source = messages_json.__file__
    with open(source, encoding="utf-8") as f:
        text = f.read()
    assert "from gateway" not in text and "import gateway" not in text
