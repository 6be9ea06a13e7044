"""Anthropic Messages <-> canonical translation for non-Anthropic models."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.domain import (
    CacheControl,
    ChatChoice,
    ChatChunk,
    ChatCompletion,
    ChunkChoice,
    ContentPart,
    Delta,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolCallDelta,
    ToolChoice,
    Usage,
)
from gateway.errors import InvalidRequestError
from gateway.providers.messages_translation import (
    StreamTranslator,
    chat_request,
    completion_to_message,
    estimate_input_tokens,
)

HI = [{"role": "user", "content": "hi"}]
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER = {"name": "weather", "description": "Weather of a city", "input_schema": SCHEMA}


def body(**kwargs: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "max_tokens": 100, "messages": HI, **kwargs}


def refused(request: dict[str, Any]) -> InvalidRequestError:
    with pytest.raises(InvalidRequestError) as info:
        chat_request(request)
    return info.value


# --- request -------------------------------------------------------------------------------


def test_minimal_request() -> None:
    req = chat_request(body())
    assert req.model == "gpt-4o"
    assert req.messages == (Message(role="user", content="hi"),)
    assert req.max_completion_tokens == 100 and req.max_tokens is None
    assert (req.tools, req.tool_choice, req.parallel_tool_calls) == ((), None, None)
    assert (req.temperature, req.top_p, req.stop, req.user, req.extra) == (
        None, None, (), "", {})


def test_system_string() -> None:
    req = chat_request(body(system="Be brief."))
    assert req.messages[0] == Message(role="system", content="Be brief.")
    assert req.messages[1].role == "user"


def test_system_blocks_joined_unless_a_block_sets_a_cache_breakpoint() -> None:
    system = [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]
    req = chat_request(body(system=system, cache_control={"type": "ephemeral"}))
    assert req.messages[0] == Message(role="system", content="One.\n\nTwo.")
    system[0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}  # type: ignore[assignment]
    assert chat_request(body(system=system)).messages[0] == Message(role="system", parts=(
        ContentPart(type="text", text="One.", cache_control=CacheControl(ttl="1h")),
        ContentPart(type="text", text="Two.")))


def test_a_cache_control_that_is_not_ephemeral_is_refused() -> None:
    msg = [{"role": "user", "content": [{"type": "text", "text": "hello",
                                         "cache_control": {"type": "forever"}}]}]
    assert refused(body(messages=msg)).param == "messages.0.content.0.cache_control.type"


def test_empty_system_sends_nothing() -> None:
    assert chat_request(body(system="")).messages == (Message(role="user", content="hi"),)
    assert chat_request(body(system=[])).messages == (Message(role="user", content="hi"),)


def test_system_turn_in_messages() -> None:
    req = chat_request(body(messages=[*HI, {"role": "system", "content": "Now be terse."}]))
    assert req.messages[1] == Message(role="system", content="Now be terse.")


def test_system_block_not_text_is_refused() -> None:
    error = refused(body(system=[{"type": "image", "source": {}}]))
    assert error.param == "system.0"


def test_user_blocks_single_text_becomes_content() -> None:
    msg = [{"role": "user", "content": [{"type": "text", "text": "hello",
                                         "cache_control": {"type": "ephemeral"}}]}]
    assert chat_request(body(messages=msg)).messages == (
        Message(role="user", content="hello", cache_control=CacheControl()),)


def test_user_images() -> None:
    msg = [{"role": "user", "content": [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                     "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://x.test/cat.jpg"}},
    ]}]
    assert chat_request(body(messages=msg)).messages == (Message(role="user", parts=(
        ContentPart(type="text", text="What is in these?"),
        ContentPart(type="image_url", url="data:image/png;base64,iVBORw0KGgo="),
        ContentPart(type="image_url", url="https://x.test/cat.jpg"),
    )),)


def test_file_image_source_is_refused() -> None:
    msg = [{"role": "user", "content": [
        {"type": "text", "text": "x"},
        {"type": "image", "source": {"type": "file", "file_id": "file_1"}}]}]
    error = refused(body(messages=msg))
    assert error.param == "messages.0.content.1.source"


def test_tools_and_tool_choice_kinds() -> None:
    tools = [WEATHER, {"type": "custom", "name": "clock", "input_schema": {"type": "object"},
                       "strict": True, "cache_control": {"type": "ephemeral"}}]
    req = chat_request(body(tools=tools))
    assert req.tools == (Tool(name="weather", description="Weather of a city",
                              parameters=SCHEMA),
                         Tool(name="clock", parameters={"type": "object"}, strict=True,
                              cache_control=CacheControl()))
    cases = {
        "auto": ToolChoice("auto"), "any": ToolChoice("required"),
        "none": ToolChoice("none"),
    }
    for kind, expected in cases.items():
        req = chat_request(body(tools=tools, tool_choice={"type": kind}))
        assert (req.tool_choice, req.parallel_tool_calls) == (expected, None)
    req = chat_request(body(tools=tools, tool_choice={"type": "tool", "name": "clock"}))
    assert req.tool_choice == ToolChoice("function", function_name="clock")


def test_disable_parallel_tool_use() -> None:
    for kind in ("auto", "any"):
        req = chat_request(body(tools=[WEATHER], tool_choice={
            "type": kind, "disable_parallel_tool_use": True}))
        assert req.parallel_tool_calls is False
    req = chat_request(body(tools=[WEATHER], tool_choice={
        "type": "tool", "name": "weather", "disable_parallel_tool_use": False}))
    assert req.parallel_tool_calls is None
    # OpenAI refuses parallel_tool_calls without tools
    req = chat_request(body(tool_choice={"type": "auto", "disable_parallel_tool_use": True}))
    assert req.parallel_tool_calls is None


def test_unknown_tool_choice_is_refused() -> None:
    assert refused(body(tool_choice={"type": "some"})).param == "tool_choice.type"


def test_server_tools_are_refused() -> None:
    for tool in ({"type": "web_search_20250305", "name": "web_search"},
                 {"type": "bash_20250124", "name": "bash"}):
        error = refused(body(tools=[WEATHER, tool]))
        assert error.param == "tools.1"
        assert error.message == f"{tool['type']} tools cannot be sent to a non-Anthropic model"


def test_tool_round_trip() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Rome?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Two calls.", "signature": "sig"},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "toolu_2", "name": "weather", "input": {"city": "Rome"}},
        ]},
        {"role": "user", "content": [
            {"type": "text", "text": "Here you go."},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True,
             "content": [{"type": "text", "text": "timeout"},
                         {"type": "text", "text": "retry later"}]},
        ]},
        {"role": "assistant", "content": [{"type": "redacted_thinking", "data": "x"}]},
    ]
    req = chat_request(body(messages=messages, tools=[WEATHER]))
    assert req.messages == (
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(role="assistant", content="Checking.", tool_calls=(
            ToolCall("toolu_1", "weather", '{"city":"Paris"}'),
            ToolCall("toolu_2", "weather", '{"city":"Rome"}'))),
        Message(role="tool", content="18C", tool_call_id="toolu_1"),
        Message(role="tool", content="Error: timeout\nretry later", tool_call_id="toolu_2"),
        Message(role="user", content="Here you go."),
    )


def test_tool_result_shapes() -> None:
    messages = [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "a"},
        {"type": "tool_result", "tool_use_id": "b", "is_error": True},
    ]}]
    assert chat_request(body(messages=messages)).messages == (
        Message(role="tool", content="", tool_call_id="a"),
        Message(role="tool", content="Error", tool_call_id="b"),
    )


def test_assistant_texts_and_calls_only() -> None:
    messages = [*HI, {"role": "assistant", "content": [
        {"type": "text", "text": "a"}, {"type": "text", "text": "b"},
        {"type": "tool_use", "id": "t", "name": "n", "input": {}}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "u", "name": "n", "input": {"x": [1]}}]}]
    got = chat_request(body(messages=messages)).messages
    assert got[1] == Message(role="assistant", parts=(
        ContentPart(type="text", text="a"), ContentPart(type="text", text="b")),
        tool_calls=(ToolCall("t", "n", "{}"),))
    assert got[2] == Message(role="assistant", content=None,
                             tool_calls=(ToolCall("u", "n", '{"x":[1]}'),))


def test_image_in_tool_result_is_refused() -> None:
    messages = [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "a", "content": [
            {"type": "text", "text": "see"},
            {"type": "image", "source": {"type": "url", "url": "https://x.test/i.png"}}]}]}]
    error = refused(body(messages=messages))
    assert error.param == "messages.0.content.0.content.1"
    assert error.message == (
        "image blocks inside a tool_result cannot be sent to a non-Anthropic model")


@pytest.mark.parametrize("kind", ["document", "search_result", "container_upload",
                                  "server_tool_use", "web_search_tool_result", "mystery"])
def test_refused_blocks(kind: str) -> None:
    messages = [*HI, {"role": "user", "content": [{"type": "text", "text": "x"},
                                                  {"type": kind}]}]
    error = refused(body(messages=messages))
    assert error.param == "messages.1.content.1"
    assert error.message == f"{kind} blocks cannot be sent to a non-Anthropic model"


def test_refused_blocks_in_assistant_turns() -> None:
    for kind in ("image", "server_tool_use", "tool_result"):
        messages = [*HI, {"role": "assistant", "content": [{"type": kind}]}]
        assert refused(body(messages=messages)).param == "messages.1.content.0"
    messages = [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b"}]}]
    assert refused(body(messages=messages)).param == "messages.0.content.0"


def test_bad_role_is_refused() -> None:
    assert refused(body(messages=[{"role": "tool", "content": "x"}])).param == (
        "messages.0.role")


def test_sampling_stop_metadata_top_k() -> None:
    req = chat_request(body(temperature=0.5, top_p=1, top_k=40, stop_sequences=["END", "##"],
                            metadata={"user_id": "u-1"}, stream=True))
    assert (req.temperature, req.top_p) == (0.5, 1.0)
    assert req.stop == ("END", "##")
    assert req.user == "u-1"
    assert req.extra == {"top_k": 40}


def test_metadata_other_keys_refused() -> None:
    assert refused(body(metadata={"tenant": "x"})).param == "metadata.tenant"


@pytest.mark.parametrize(("budget", "effort"), [
    (1024, "low"), (4095, "low"), (4096, "medium"), (16383, "medium"), (16384, "high"),
    (64000, "high"),
])
def test_thinking_enabled_maps_to_reasoning_effort(budget: int, effort: str) -> None:
    req = chat_request(body(thinking={"type": "enabled", "budget_tokens": budget}))
    assert req.extra == {"reasoning_effort": effort}


def test_thinking_disabled_and_adaptive_send_nothing() -> None:
    for kind in ("disabled", "adaptive"):
        assert chat_request(body(thinking={"type": kind})).extra == {}


def test_thinking_bad_shapes() -> None:
    assert refused(body(thinking={"type": "on"})).param == "thinking.type"
    assert refused(body(thinking={"type": "enabled"})).param == "thinking.budget_tokens"


def test_output_config() -> None:
    req = chat_request(body(
        thinking={"type": "enabled", "budget_tokens": 2000},
        output_config={"effort": "max", "format": {"type": "json_schema", "schema": SCHEMA}}))
    assert req.extra == {"reasoning_effort": "high"}
    assert req.response_format == ResponseFormat(
        type="json_schema", json_schema=JsonSchemaFormat(name="output", schema=SCHEMA))
    assert chat_request(body(output_config={"effort": "medium"})).extra == {
        "reasoning_effort": "medium"}
    assert refused(body(output_config={"effort": "huge"})).param == "output_config.effort"
    assert refused(body(output_config={"task_budget": 5})).param == "output_config.task_budget"


def test_unknown_top_level_fields_refused_harmless_ignored() -> None:
    for field, value in (("container", "c1"), ("mcp_servers", []), ("inference_geo", "us"),
                         ("speed", "fast"), ("context_management", {})):
        error = refused(body(**{field: value}))
        assert error.param == field
        assert error.message == f"'{field}' cannot be sent to a non-Anthropic model"
    req = chat_request(body(service_tier="standard_only", speed="standard", container=None))
    assert req.messages == (Message(role="user", content="hi"),)


def test_max_tokens_zero_refused() -> None:
    assert refused(body(max_tokens=0)).param == "max_tokens"


# --- answer --------------------------------------------------------------------------------


def completion(message: Message, finish: Any = "stop", usage: Usage | None = None,
               id: str = "chatcmpl-1", model: str = "gpt-4o-2024-08-06") -> ChatCompletion:
    return ChatCompletion(id=id, created=1, model=model,
                          choices=[ChatChoice(0, message, finish)], usage=usage)


def test_text_answer() -> None:
    out = completion_to_message(completion(
        Message(role="assistant", content="Hello!"),
        usage=Usage(prompt_tokens=12, completion_tokens=3, total_tokens=15)), "gpt-4o")
    assert out == {
        "id": "msg_chatcmpl-1", "type": "message", "role": "assistant",
        "model": "gpt-4o-2024-08-06",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 3, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0},
    }


def test_tool_call_answer() -> None:
    message = Message(role="assistant", content=None, tool_calls=(
        ToolCall("call_1", "weather", '{"city": "Paris"}'),
        ToolCall("call_2", "weather", "not json")))
    out = completion_to_message(completion(message, "tool_calls"), "gpt-4o")
    assert out["content"] == [
        {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "weather", "input": {}},
    ]
    assert out["stop_reason"] == "tool_use"


def test_text_then_tool_calls_and_missing_ids() -> None:
    message = Message(role="assistant", content="Let me check.",
                      tool_calls=(ToolCall("", "clock", ""),))
    out = completion_to_message(completion(message, "stop", id="", model=""), "gemini-x")
    assert out["content"][0] == {"type": "text", "text": "Let me check."}
    call = out["content"][1]
    assert call["id"].startswith("toolu_") and len(call["id"]) == 30
    assert (call["name"], call["input"]) == ("clock", {})
    assert out["id"].startswith("msg_") and len(out["id"]) == 28
    assert out["model"] == "gemini-x"
    assert out["stop_reason"] == "tool_use"  # "stop" after tool calls


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
    ("content_filter", "refusal"), (None, "end_turn"),
])
def test_stop_reasons(finish: Any, stop_reason: str) -> None:
    out = completion_to_message(completion(Message(role="assistant", content="x"), finish), "m")
    assert out["stop_reason"] == stop_reason
    assert out["stop_sequence"] is None


def test_refusal_answer() -> None:
    out = completion_to_message(completion(
        Message(role="assistant", content=None, refusal="I can't help with that.")), "m")
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_usage_with_cache_and_reasoning() -> None:
    usage = Usage(prompt_tokens=1000, completion_tokens=50, total_tokens=1050,
                  cached_prompt_tokens=600, cache_creation_prompt_tokens=100,
                  reasoning_tokens=20)
    out = completion_to_message(completion(Message(role="assistant", content="x"),
                                           usage=usage, id="msg_abc"), "m")
    assert out["id"] == "msg_abc"
    assert out["usage"] == {"input_tokens": 300, "output_tokens": 50,
                            "cache_creation_input_tokens": 100,
                            "cache_read_input_tokens": 600,
                            "output_tokens_details": {"thinking_tokens": 20}}


def test_empty_answer() -> None:
    out = completion_to_message(ChatCompletion(id="x", created=1, model="", choices=[]), "m")
    assert (out["content"], out["stop_reason"]) == ([], "end_turn")
    assert out["usage"]["input_tokens"] == 0


# --- stream --------------------------------------------------------------------------------


def chunk(delta: Delta | None = None, finish: Any = None, usage: Usage | None = None,
          index: int = 0) -> ChatChunk:
    choices = [] if delta is None and finish is None else [
        ChunkChoice(index, delta or Delta(), finish)]
    return ChatChunk(id="chatcmpl-9", created=1, model="gpt-4o-mini", choices=choices,
                     usage=usage)


def run(chunks: list[ChatChunk]) -> list[dict[str, Any]]:
    translator = StreamTranslator("requested")
    events = [e for c in chunks for e in translator.feed(c)]
    return events + translator.finish()


MESSAGE_START = {"type": "message_start", "message": {
    "id": "msg_chatcmpl-9", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
    "content": [], "stop_reason": None, "stop_sequence": None,
    "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
              "cache_read_input_tokens": 0}}}


def test_stream_text_and_two_tool_calls() -> None:
    events = run([
        chunk(Delta(role="assistant", content="")),
        chunk(Delta(content="Let me ")),
        chunk(Delta(content="check.")),
        chunk(Delta(tool_calls=(ToolCallDelta(0, id="call_a", name="weather"),))),
        chunk(Delta(tool_calls=(ToolCallDelta(0, arguments='{"city":'),))),
        chunk(Delta(tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),))),
        chunk(Delta(tool_calls=(ToolCallDelta(1, id="call_b", name="weather",
                                              arguments='{"city":"Rome"}'),))),
        chunk(finish="tool_calls"),
        chunk(usage=Usage(prompt_tokens=200, completion_tokens=40, total_tokens=240,
                          cached_prompt_tokens=128)),
    ])
    assert events == [
        MESSAGE_START,
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "Let me "}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "check."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "call_a", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '{"city":'}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "call_b", "name": "weather", "input": {}}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '{"city":"Rome"}'}},
        {"type": "content_block_stop", "index": 2},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 72, "output_tokens": 40, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 128}},
        {"type": "message_stop"},
    ]
    partial = "".join(e["delta"]["partial_json"] for e in events
                      if e["type"] == "content_block_delta" and e["index"] == 1)
    assert orjson.loads(partial) == {"city": "Paris"}


def test_stream_events_come_as_chunks_arrive() -> None:
    translator = StreamTranslator("m")
    assert [e["type"] for e in translator.feed(chunk(Delta(role="assistant", content="")))] == [
        "message_start"]
    assert translator.feed(chunk(Delta(content="a"))) == [
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "text_delta", "text": "a"}}]
    assert translator.feed(chunk(finish="length")) == []  # held until finish()
    assert [e["type"] for e in translator.finish()] == [
        "content_block_stop", "message_delta", "message_stop"]
    assert translator.finish() == []
    assert translator.feed(chunk(Delta(content="late"))) == []


def test_empty_stream() -> None:
    events = run([])
    assert events[0]["type"] == "message_start"
    assert events[0]["message"]["model"] == "requested"
    assert events[0]["message"]["id"].startswith("msg_")
    assert events[1:] == [
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                   "cache_read_input_tokens": 0}},
        {"type": "message_stop"},
    ]


def test_stream_role_only_then_finish() -> None:
    events = run([chunk(Delta(role="assistant", content="")), chunk(finish="stop")])
    assert [e["type"] for e in events] == ["message_start", "message_delta", "message_stop"]


def test_stream_text_after_tool_call_and_other_choices_ignored() -> None:
    events = run([
        chunk(Delta(tool_calls=(ToolCallDelta(0, id="", name="clock"),))),
        chunk(Delta(content="ignored"), index=1),
        chunk(Delta(content="done")),
        chunk(finish="stop"),
    ])
    assert [(e["type"], e.get("index")) for e in events] == [
        ("message_start", None), ("content_block_start", 0), ("content_block_stop", 0),
        ("content_block_start", 1), ("content_block_delta", 1), ("content_block_stop", 1),
        ("message_delta", None), ("message_stop", None)]
    assert events[1]["content_block"]["id"].startswith("toolu_")
    assert events[4]["delta"] == {"type": "text_delta", "text": "done"}
    assert events[6]["delta"]["stop_reason"] == "tool_use"


def test_stream_refusal() -> None:
    events = run([chunk(Delta(refusal="No.")), chunk(finish="stop")])
    assert events[2]["delta"] == {"type": "text_delta", "text": "No."}
    assert events[4]["delta"]["stop_reason"] == "refusal"


# --- count_tokens --------------------------------------------------------------------------


def test_estimate_input_tokens() -> None:
    request = {
        "model": "m", "max_tokens": 10, "system": "x" * 10,
        "tools": [{"name": "ab", "description": "cd", "input_schema": {}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "y" * 7},
                {"type": "image", "source": {"type": "url", "url": "https://x.test/i.png"}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "not counted", "signature": "s"},
                {"type": "tool_use", "id": "t", "name": "n", "input": {"a": 1}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "z" * 5}]},
        ],
    }
    # chars: 10 system + 7 text + (1 + 7) tool_use + 5 result + (2 + 2 + 2) tool = 36
    assert estimate_input_tokens(request) == 36 // 4 + 3 * 4 + 1600


def test_estimate_input_tokens_rounds_up_and_is_at_least_one() -> None:
    assert estimate_input_tokens({"messages": [{"role": "user", "content": "hello"}]}) == 2 + 3
    assert estimate_input_tokens({"messages": []}) == 1


def test_reasoning_becomes_a_leading_thinking_block() -> None:
    answer = ChatCompletion(id="x", created=0, model="m", choices=[ChatChoice(
        0, Message(role="assistant", content="Mild.", reasoning="Spring in Paris."), "stop")])
    assert completion_to_message(answer, "m")["content"] == [
        {"type": "thinking", "thinking": "Spring in Paris.", "signature": ""},
        {"type": "text", "text": "Mild."}]


def test_streamed_reasoning_is_a_thinking_block_before_the_text() -> None:
    translator = StreamTranslator("m")

    def chunk(delta: Delta) -> ChatChunk:
        return ChatChunk(id="c", created=0, model="m", choices=[ChunkChoice(0, delta)])

    events = translator.feed(chunk(Delta(role="assistant", content="")))
    events += translator.feed(chunk(Delta(reasoning="Spring")))
    events += translator.feed(chunk(Delta(reasoning=" in Paris.")))
    events += translator.feed(chunk(Delta(content="Mild.")))
    events += translator.finish()
    shown = [(e["type"], e.get("index"), (e.get("content_block") or e.get("delta") or {})
              .get("type")) for e in events]
    assert shown == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"), ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "thinking_delta"), ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"), ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None), ("message_delta", None, None),
        ("message_stop", None, None)]
