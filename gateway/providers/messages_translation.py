"""Anthropic Messages requests served by a non-Anthropic model: Messages JSON <-> canonical.

The mirror image of :mod:`gateway.providers.anthropic` (which serves canonical requests with
Claude). Pure functions over plain dicts; the caller parses the body and writes the JSON or SSE.

Request (:func:`chat_request`):

- ``system`` (string or text blocks, texts joined with a blank line) becomes one leading
  ``system`` message; a ``system`` turn inside ``messages`` stays a system message in place.
- User text and images become parts (a lone text block becomes plain ``content``); a base64
  image becomes a ``data:`` URL, a URL image its URL. ``tool_result`` blocks become ``tool``
  messages placed before the rest of their user turn (OpenAI wants them right after the
  calls); their text blocks are joined with newlines, and ``is_error: true`` prefixes the
  text with ``"Error: "`` so the model still learns that the tool failed.
- Assistant text becomes content, ``tool_use`` blocks become tool calls (input as JSON text).
- ``tools`` (client tools only) -> tools; ``tool_choice`` auto/any/tool/none -> auto/required/
  function/none, ``disable_parallel_tool_use`` -> ``parallel_tool_calls=False`` (only when
  tools are given: OpenAI refuses the flag without tools).
- ``max_tokens`` -> ``max_completion_tokens``: like Anthropic's it counts reasoning tokens,
  and OpenAI's reasoning models refuse ``max_tokens``. ``stop_sequences`` -> ``stop``;
  ``temperature`` and ``top_p`` as they are; ``metadata.user_id`` -> ``user``.
- ``top_k`` -> ``extra["top_k"]``: Gemini and Ollama read it, OpenAI-compatible upstreams
  receive it as a body field (vLLM takes it, OpenAI itself refuses it).
- ``thinking`` enabled -> ``extra["reasoning_effort"]`` by ``budget_tokens``: below 4096
  ``low``, below 16384 ``medium``, else ``high``; ``output_config.effort`` sets it directly
  (``xhigh`` and ``max`` become ``high``) and wins over ``thinking``. Disabled and adaptive
  thinking send nothing (the provider's default). Gemini reads the extra as a
  ``thinkingConfig`` (with its thought summaries), Ollama as ``think: true``.
- ``output_config.format`` (a JSON schema) -> a ``json_schema`` response format named
  ``output``.

``cache_control`` on system blocks, user text and image blocks, ``tool_result`` blocks and
tools is carried to the canonical request: Bedrock's Converse turns it into a ``cachePoint``
after the block; providers without breakpoints (OpenAI, Gemini, Ollama) cache on their own
and ignore it.

Ignored, with no effect on the answer: ``cache_control`` on assistant blocks, ``stream``
(the caller streams or not), ``service_tier`` (both values hold for an upstream that has one
tier), ``speed: "standard"``, top-level fields sent as null, block fields other than those
above (``citations``, ...), and tool fields other than name, description, input_schema,
strict and cache_control (``input_examples``, ``defer_loading``, ...).

Dropped: ``thinking`` and ``redacted_thinking`` blocks of earlier assistant turns. The
canonical messages cannot carry them, they are the model's own reasoning, and the Anthropic
API itself strips them from turns before the latest one.

Refused with :class:`InvalidRequestError` naming the path (``messages.0.content.1``):
documents, search results, container uploads, file-id images, images inside tool results
or assistant turns, server tool blocks and any other block type; server and
Anthropic-defined tools (a ``type`` other than ``custom``); ``max_tokens: 0``; ``speed:
"fast"``; any other top-level field (``container``, ``mcp_servers``, ``inference_geo``, ...).

A trailing assistant turn (prefill) is sent as an assistant message; whether the upstream
continues it or answers after it is the upstream's behaviour.

Answer (:func:`completion_to_message`, :class:`StreamTranslator`): the provider's reasoning
text (``reasoning_content`` of OpenAI-compatible servers, Ollama's ``thinking``, Gemini's
thought summaries) becomes a leading ``thinking`` block with an empty signature (there is
none to give; sent back later, it is dropped like any earlier thinking). Finish reasons map back
(stop -> ``end_turn``, length -> ``max_tokens``, tool_calls -> ``tool_use``, content_filter ->
``refusal``); a refusal text becomes a text block and stop reason ``refusal``; ``stop_sequence``
is always null (the canonical answer does not say which sequence matched). Usage:
``input_tokens`` excludes cache reads and creations, which have their own fields.

Example::

    chat_request({"model": "gpt-4o", "max_tokens": 64,
                  "messages": [{"role": "user", "content": "hi"}]})
    # ChatRequest(model="gpt-4o", messages=(Message(role="user", content="hi"),),
    #             max_completion_tokens=64)
"""

from __future__ import annotations

import math
import secrets
from typing import Any, Literal

import orjson

from gateway.domain import (
    CacheControl,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ContentPart,
    FinishReason,
    JsonSchemaFormat,
    Message,
    ResponseFormat,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from gateway.errors import InvalidRequestError

__all__ = ["StreamTranslator", "chat_request", "completion_to_message",
           "estimate_input_tokens"]

_STOP: dict[FinishReason, str] = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
    "function_call": "tool_use", "content_filter": "refusal",
}
_TOOL_CHOICE: dict[str, Literal["auto", "none", "required", "function"]] = {
    "auto": "auto", "any": "required", "tool": "function", "none": "none",
}
_EFFORT = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
_TRANSLATED = frozenset({
    "model", "messages", "max_tokens", "system", "stop_sequences", "temperature", "top_p",
    "top_k", "metadata", "tools", "tool_choice", "thinking", "output_config",
})
_IGNORED = frozenset({"stream", "cache_control", "service_tier"})  # the top-level hint
_THINKING = frozenset({"thinking", "redacted_thinking"})
_JSON_SCHEMA_NAME = "output"

# estimate_input_tokens
CHARS_PER_TOKEN = 4
MESSAGE_OVERHEAD_TOKENS = 3
IMAGE_TOKENS = 1600  # Anthropic's figure for a ~1.15 megapixel image, the largest unscaled


def _refuse(what: str, param: str) -> InvalidRequestError:
    what = what.strip() or "untyped"
    return InvalidRequestError(f"{what} cannot be sent to a non-Anthropic model", param=param)


def _str(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequestError(f"'{param}' must be a string", param=param)
    return value


def _dict(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'{param}' must be an object", param=param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequestError(f"'{param}' must be an array", param=param)
    return value


def _number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequestError(f"'{param}' must be a number", param=param)
    return float(value)


def _int(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(f"'{param}' must be an integer", param=param)
    return value


# --- request -------------------------------------------------------------------------------


def chat_request(body: dict[str, Any]) -> ChatRequest:
    """The canonical request for an Anthropic Messages body; ``model`` is kept as sent."""
    for key, value in body.items():
        if key in _TRANSLATED or key in _IGNORED or value is None:
            continue
        if key == "speed" and value == "standard":
            continue
        raise _refuse(f"'{key}'", key)
    messages: list[Message] = []
    if (system := body.get("system")) is not None:
        messages.extend(_system(system, "system"))
    for i, turn in enumerate(_list(body.get("messages"), "messages")):
        messages.extend(_turn(_dict(turn, f"messages.{i}"), f"messages.{i}"))
    tools = tuple(_tool(_dict(t, f"tools.{n}"), f"tools.{n}")
                  for n, t in enumerate(_list(body.get("tools") or [], "tools")))
    tool_choice, parallel = _tool_choice(body.get("tool_choice"))
    extra: dict[str, Any] = {}
    if (top_k := body.get("top_k")) is not None:
        extra["top_k"] = _int(top_k, "top_k")
    if (effort := _reasoning_effort(body)) is not None:
        extra["reasoning_effort"] = effort
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and _int(max_tokens, "max_tokens") < 1:
        raise _refuse("max_tokens 0 (prompt cache pre-warming)", "max_tokens")
    metadata = _dict(body.get("metadata") or {}, "metadata")
    for key in metadata:
        if key != "user_id":
            raise _refuse(f"'metadata.{key}'", f"metadata.{key}")
    user = metadata.get("user_id")
    temperature, top_p = body.get("temperature"), body.get("top_p")
    return ChatRequest(
        model=_str(body.get("model"), "model"),
        messages=tuple(messages),
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=False if parallel is False and tools else None,
        response_format=_response_format(body.get("output_config")),
        temperature=None if temperature is None else _number(temperature, "temperature"),
        top_p=None if top_p is None else _number(top_p, "top_p"),
        max_completion_tokens=max_tokens,
        stop=tuple(_str(s, f"stop_sequences.{n}")
                   for n, s in enumerate(_list(body.get("stop_sequences") or [],
                                               "stop_sequences"))),
        user="" if user is None else _str(user, "metadata.user_id"),
        extra=extra,
    )


def _cache(block: dict[str, Any], where: str) -> CacheControl | None:
    """A block's ``cache_control`` breakpoint: ``{"type": "ephemeral", "ttl"?}``."""
    value = block.get("cache_control")
    if value is None:
        return None
    value = _dict(value, f"{where}.cache_control")
    if value.get("type") != "ephemeral":
        raise InvalidRequestError(f"'{where}.cache_control.type' must be 'ephemeral'",
                                  param=f"{where}.cache_control.type")
    ttl = value.get("ttl")
    return CacheControl(ttl="" if ttl is None else _str(ttl, f"{where}.cache_control.ttl"))


def _system(system: Any, param: str) -> list[Message]:
    """The system prompt: one text, its blocks joined by blank lines, unless a block sets a
    cache breakpoint; then its blocks as parts, each keeping its ``cache_control``."""
    if isinstance(system, str):
        return [Message(role="system", content=system)] if system else []
    parts = []
    for n, block in enumerate(_list(system, param)):
        block = _dict(block, f"{param}.{n}")
        if block.get("type") != "text":
            raise _refuse(f"{block.get('type')} blocks in a system prompt", f"{param}.{n}")
        text = _str(block.get("text"), f"{param}.{n}.text")
        if text:
            parts.append(ContentPart(type="text", text=text,
                                     cache_control=_cache(block, f"{param}.{n}")))
    if not parts:
        return []
    if any(p.cache_control for p in parts):
        return [Message(role="system", parts=tuple(parts))]
    return [Message(role="system", content="\n\n".join(p.text for p in parts))]


def _turn(turn: dict[str, Any], path: str) -> list[Message]:
    role, content = turn.get("role"), turn.get("content")
    if role == "system":
        return _system(content, f"{path}.content")
    if role not in ("user", "assistant"):
        raise InvalidRequestError(f"'{path}.role' must be user, assistant or system",
                                  param=f"{path}.role")
    if isinstance(content, str):
        return [Message(role=role, content=content)]
    blocks = _list(content, f"{path}.content")
    if role == "assistant":
        message = _assistant(blocks, f"{path}.content")
        return [message] if message is not None else []
    return _user(blocks, f"{path}.content")


def _user(blocks: list[Any], path: str) -> list[Message]:
    results: list[Message] = []
    parts: list[ContentPart] = []
    for j, block in enumerate(blocks):
        where = f"{path}.{j}"
        block = _dict(block, where)
        kind = block.get("type")
        if kind == "text":
            parts.append(ContentPart(type="text", text=_str(block.get("text"), f"{where}.text"),
                                     cache_control=_cache(block, where)))
        elif kind == "image":
            parts.append(_image(block, where))
        elif kind == "tool_result":
            results.append(_tool_result(block, where))
        else:
            raise _refuse(f"{kind} blocks", where)
    if not parts:
        return results
    if len(parts) == 1 and parts[0].type == "text":
        return [*results, Message(role="user", content=parts[0].text,
                                  cache_control=parts[0].cache_control)]
    return [*results, Message(role="user", parts=tuple(parts))]


def _image(block: dict[str, Any], where: str) -> ContentPart:
    source = _dict(block.get("source"), f"{where}.source")
    kind = source.get("type")
    if kind == "base64":
        media_type = _str(source.get("media_type"), f"{where}.source.media_type")
        data = _str(source.get("data"), f"{where}.source.data")
        return ContentPart(type="image_url", url=f"data:{media_type};base64,{data}",
                           cache_control=_cache(block, where))
    if kind == "url":
        return ContentPart(type="image_url", url=_str(source.get("url"), f"{where}.source.url"),
                           cache_control=_cache(block, where))
    raise _refuse(f"{kind} image sources", f"{where}.source")


def _tool_result(block: dict[str, Any], where: str) -> Message:
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        texts = []
        for k, item in enumerate(_list(content, f"{where}.content")):
            item = _dict(item, f"{where}.content.{k}")
            kind = item.get("type")
            if kind != "text":
                # OpenAI-style tool messages carry text only
                raise _refuse(f"{kind} blocks inside a tool_result", f"{where}.content.{k}")
            texts.append(_str(item.get("text"), f"{where}.content.{k}.text"))
        text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"Error: {text}" if text else "Error"
    return Message(role="tool", content=text,
                   tool_call_id=_str(block.get("tool_use_id"), f"{where}.tool_use_id"),
                   cache_control=_cache(block, where))


def _assistant(blocks: list[Any], path: str) -> Message | None:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(blocks):
        where = f"{path}.{j}"
        block = _dict(block, where)
        kind = block.get("type")
        if kind == "text":
            texts.append(_str(block.get("text"), f"{where}.text"))
        elif kind == "tool_use":
            arguments = orjson.dumps(_dict(block.get("input", {}), f"{where}.input")).decode()
            calls.append(ToolCall(id=_str(block.get("id"), f"{where}.id"),
                                  name=_str(block.get("name"), f"{where}.name"),
                                  arguments=arguments))
        elif kind in _THINKING:
            continue  # earlier reasoning: see the module docstring
        else:
            raise _refuse(f"{kind} blocks", where)
    if not texts and not calls:
        return None
    if len(texts) > 1:
        parts = tuple(ContentPart(type="text", text=t) for t in texts)
        return Message(role="assistant", parts=parts, tool_calls=tuple(calls))
    return Message(role="assistant", content=texts[0] if texts else None,
                   tool_calls=tuple(calls))


def _tool(tool: dict[str, Any], where: str) -> Tool:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise _refuse(f"{kind} tools", where)
    description = tool.get("description")
    schema = tool.get("input_schema")
    strict = tool.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise InvalidRequestError(f"'{where}.strict' must be a boolean", param=f"{where}.strict")
    return Tool(
        name=_str(tool.get("name"), f"{where}.name"),
        description="" if description is None else _str(description, f"{where}.description"),
        parameters=None if schema is None else _dict(schema, f"{where}.input_schema"),
        strict=strict,
        cache_control=_cache(tool, where),
    )


def _tool_choice(value: Any) -> tuple[ToolChoice | None, bool | None]:
    if value is None:
        return None, None
    choice = _dict(value, "tool_choice")
    mode = _TOOL_CHOICE.get(str(choice.get("type")))
    if mode is None:
        raise InvalidRequestError("'tool_choice.type' must be auto, any, tool or none",
                                  param="tool_choice.type")
    name = _str(choice.get("name"), "tool_choice.name") if mode == "function" else ""
    parallel = False if choice.get("disable_parallel_tool_use") is True else None
    return ToolChoice(mode=mode, function_name=name), parallel


def _reasoning_effort(body: dict[str, Any]) -> str | None:
    config = body.get("output_config")
    if isinstance(config, dict) and config.get("effort") is not None:
        effort = _EFFORT.get(str(config["effort"]))
        if effort is None:
            raise InvalidRequestError(
                "'output_config.effort' must be low, medium, high, xhigh or max",
                param="output_config.effort")
        return effort
    thinking = body.get("thinking")
    if thinking is None:
        return None
    kind = _dict(thinking, "thinking").get("type")
    if kind in ("disabled", "adaptive"):
        return None
    if kind != "enabled":
        raise InvalidRequestError("'thinking.type' must be enabled, disabled or adaptive",
                                  param="thinking.type")
    budget = _int(thinking.get("budget_tokens"), "thinking.budget_tokens")
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _response_format(value: Any) -> ResponseFormat | None:
    if value is None:
        return None
    config = _dict(value, "output_config")
    for key, item in config.items():
        if key not in ("effort", "format") and item is not None:
            raise _refuse(f"'output_config.{key}'", f"output_config.{key}")
    if config.get("format") is None:
        return None
    fmt = _dict(config["format"], "output_config.format")
    if fmt.get("type") != "json_schema":
        raise _refuse(f"{fmt.get('type')} output formats", "output_config.format.type")
    schema = _dict(fmt.get("schema"), "output_config.format.schema")
    return ResponseFormat(type="json_schema",
                          json_schema=JsonSchemaFormat(name=_JSON_SCHEMA_NAME, schema=schema))


# --- answer --------------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _message_id(provider_id: str) -> str:
    if provider_id.startswith("msg_"):
        return provider_id
    return f"msg_{provider_id}" if provider_id else _new_id("msg")


def _stop_reason(finish: FinishReason | None, called: bool, refused: bool) -> str:
    if refused:
        return "refusal"
    if called and finish in (None, "stop"):
        return "tool_use"  # some OpenAI-compatible servers say "stop" after tool calls
    return _STOP.get(finish, "end_turn") if finish is not None else "end_turn"


def _usage(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    cached, created = usage.cached_prompt_tokens, usage.cache_creation_prompt_tokens
    out: dict[str, Any] = {
        "input_tokens": max(usage.prompt_tokens - cached - created, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": cached,
    }
    if usage.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": usage.reasoning_tokens}
    return out


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def completion_to_message(completion: ChatCompletion, model: str) -> dict[str, Any]:
    """The Anthropic ``message`` JSON for a canonical answer (its first choice)."""
    content: list[dict[str, Any]] = []
    finish: FinishReason | None = None
    calls: tuple[ToolCall, ...] = ()
    refused = False
    if completion.choices:
        choice = completion.choices[0]
        message, finish, calls = choice.message, choice.finish_reason, choice.message.tool_calls
        refused = bool(message.refusal)
        if message.reasoning:  # the provider's reasoning, unsigned (it cannot be verified)
            content.append({"type": "thinking", "thinking": message.reasoning,
                            "signature": ""})
        text = message.text() + (message.refusal or "")
        if text:
            content.append({"type": "text", "text": text})
        content.extend({"type": "tool_use", "id": call.id or _new_id("toolu"),
                        "name": call.name, "input": _arguments(call.arguments)}
                       for call in calls)
    return {
        "id": _message_id(completion.id),
        "type": "message",
        "role": "assistant",
        "model": completion.model or model,
        "content": content,
        "stop_reason": _stop_reason(finish, bool(calls), refused),
        "stop_sequence": None,
        "usage": _usage(completion.usage),
    }


class StreamTranslator:
    """Canonical chunks -> Anthropic stream events; one instance per stream.

    ``message_start`` goes out with the first chunk (or at :meth:`finish` for an empty
    stream). Its usage is all zeros: the canonical stream reports usage only at its end, so
    the real counts (input, output and cache tokens) travel in ``message_delta.usage``.
    Text and each tool call are content blocks, closed when the next one starts; each call's
    pieces come contiguously in canonical streams. ``message_delta`` and ``message_stop``
    wait for :meth:`finish`, since a usage-only chunk may follow the finish chunk.
    """

    __slots__ = ("_blocks", "_called", "_finish", "_id", "_model", "_open",
                 "_refused", "_started", "_tool", "_usage", "_done")

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._started = False
        self._done = False
        self._blocks = 0  # blocks started so far; the open one is _blocks - 1
        self._open: Literal["text", "tool_use", "thinking"] | None = None
        self._tool = -1  # canonical index of the open tool call
        self._called = False
        self._refused = False
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def _start(self, chunk: ChatChunk | None) -> list[dict[str, Any]]:
        if self._started:
            return []
        self._started = True
        if chunk is not None:
            self._model = chunk.model or self._model
        self._id = _message_id(chunk.id if chunk is not None else "")
        return [{"type": "message_start", "message": {
            "id": self._id, "type": "message", "role": "assistant", "model": self._model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}]

    def _close(self) -> list[dict[str, Any]]:
        if self._open is None:
            return []
        self._open = None
        return [{"type": "content_block_stop", "index": self._blocks - 1}]

    def _begin(self, block: dict[str, Any]) -> list[dict[str, Any]]:
        events = self._close()
        self._open = block["type"]
        events.append({"type": "content_block_start", "index": self._blocks,
                       "content_block": block})
        self._blocks += 1
        return events

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        return {"type": "content_block_delta", "index": self._blocks - 1, "delta": delta}

    def _text(self, text: str) -> list[dict[str, Any]]:
        events = [] if self._open == "text" else self._begin({"type": "text", "text": ""})
        events.append(self._delta({"type": "text_delta", "text": text}))
        return events

    def feed(self, chunk: ChatChunk) -> list[dict[str, Any]]:
        """The events this chunk produces (none for a role-only or usage-only chunk)."""
        if self._done:
            return []
        events = self._start(chunk)
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # n is never set for Messages requests
            delta = choice.delta
            if delta.reasoning:
                if self._open != "thinking":
                    events.extend(self._begin({"type": "thinking", "thinking": "",
                                               "signature": ""}))
                events.append(self._delta({"type": "thinking_delta",
                                           "thinking": delta.reasoning}))
            if delta.content:
                events.extend(self._text(delta.content))
            if delta.refusal:
                self._refused = True
                events.extend(self._text(delta.refusal))
            for call in delta.tool_calls:
                if self._open != "tool_use" or call.index != self._tool:
                    self._called = True
                    self._tool = call.index
                    events.extend(self._begin({"type": "tool_use",
                                               "id": call.id or _new_id("toolu"),
                                               "name": call.name, "input": {}}))
                if call.arguments:
                    events.append(self._delta({"type": "input_json_delta",
                                               "partial_json": call.arguments}))
            if choice.finish_reason is not None:
                self._finish = choice.finish_reason
        return events

    def finish(self) -> list[dict[str, Any]]:
        """The closing events: the open block's stop, ``message_delta``, ``message_stop``."""
        if self._done:
            return []
        self._done = True
        events = self._start(None)
        events.extend(self._close())
        events.append({
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(self._finish, self._called, self._refused),
                      "stop_sequence": None},
            "usage": _usage(self._usage),
        })
        events.append({"type": "message_stop"})
        return events


# --- count_tokens --------------------------------------------------------------------------


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """An estimate of the input tokens of a Messages body, for models without a counter.

    ``ceil(characters / 4)`` over all text the model reads (system, message text, tool
    results, tool_use names and inputs as JSON, tool names, descriptions and input schemas
    as JSON), plus 3 tokens per message (the system prompt counts as one) and 1600 per
    image (Anthropic's figure for a ~1.15 megapixel image), at least 1. Thinking blocks,
    which are not sent, and blocks the translation refuses count nothing. Deterministic,
    never raises; real tokenizers differ by tens of percent.
    """
    chars = 0
    images = 0
    messages = 0

    def count(content: Any) -> None:
        nonlocal chars, images
        if isinstance(content, str):
            chars += len(content)
            return
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                chars += len(block["text"])
            elif kind == "image":
                images += 1
            elif kind == "tool_use":
                chars += len(str(block.get("name") or ""))
                chars += len(orjson.dumps(block.get("input") or {}).decode())
            elif kind == "tool_result":
                count(block.get("content"))

    if (system := body.get("system")) is not None:
        messages += 1
        count(system)
    for turn in body.get("messages") or ():
        if isinstance(turn, dict):
            messages += 1
            count(turn.get("content"))
    for tool in body.get("tools") or ():
        if isinstance(tool, dict):
            chars += len(str(tool.get("name") or "")) + len(str(tool.get("description") or ""))
            chars += len(orjson.dumps(tool.get("input_schema") or {}).decode())
    tokens = (math.ceil(chars / CHARS_PER_TOKEN) + MESSAGE_OVERHEAD_TOKENS * messages
              + IMAGE_TOKENS * images)
    return max(tokens, 1)
