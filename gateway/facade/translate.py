"""Pure translators between OpenAI's chat JSON and the core's protobuf messages.

Requests are validated as they are read: a wrong type raises :class:`ApiError`
(400) naming the field. Request fields the gateway does not model are kept in
``extra_json`` and reach OpenAI-compatible upstreams unchanged.
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
from llmgateway.v1 import budgets_pb2, chat_pb2, gateway_service_pb2, models_pb2

from gateway.facade.errors import ApiError

__all__ = [
    "chat_request_to_proto",
    "chunk_to_json",
    "completion_to_json",
    "embeddings_request_to_proto",
    "embeddings_to_json",
    "model_to_json",
    "usage_to_json",
    "parse_json_body",
]

_ROLES = {
    "system": chat_pb2.CHAT_ROLE_SYSTEM,
    "user": chat_pb2.CHAT_ROLE_USER,
    "assistant": chat_pb2.CHAT_ROLE_ASSISTANT,
    "tool": chat_pb2.CHAT_ROLE_TOOL,
    "developer": chat_pb2.CHAT_ROLE_DEVELOPER,
}
_ROLE_NAMES = {v: k for k, v in _ROLES.items()}
_FINISH_NAMES = {
    chat_pb2.FINISH_REASON_STOP: "stop",
    chat_pb2.FINISH_REASON_LENGTH: "length",
    chat_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
    chat_pb2.FINISH_REASON_CONTENT_FILTER: "content_filter",
    chat_pb2.FINISH_REASON_FUNCTION_CALL: "function_call",
}
_TOOL_CHOICE_MODES = {
    "auto": chat_pb2.TOOL_CHOICE_MODE_AUTO,
    "none": chat_pb2.TOOL_CHOICE_MODE_NONE,
    "required": chat_pb2.TOOL_CHOICE_MODE_REQUIRED,
}
_FORMATS = {
    "text": chat_pb2.RESPONSE_FORMAT_TYPE_TEXT,
    "json_object": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
    "json_schema": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA,
}
_INT32_MAX = 2**31 - 1
# Bounds on a request's lists: each item costs parsing and translating, so the body-size
# limit alone leaves ~300,000 one-line messages in 10 MB (docs/reliability.md).
MAX_MESSAGES = 10_000
MAX_TOOLS = 512
_T = TypeVar("_T")
_INT64_MAX = 2**63 - 1
# Fields handled explicitly; anything else is passed through in extra_json.
_KNOWN = frozenset({
    "model", "messages", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "temperature", "top_p", "max_tokens", "max_completion_tokens", "n", "stop", "seed",
    "presence_penalty", "frequency_penalty", "user", "stream", "stream_options",
})


def _bad(message: str, param: str | None) -> ApiError:
    return ApiError(400, message, param=param)


def json_text(value: Any, param: str) -> str:
    """``value`` (parsed from the body) as JSON text for the core. orjson reads JSON nested
    up to 1024 levels but writes only up to 254: a value nested in between is the caller's
    to fix (a 400), not a 500."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        raise _bad(f"'{param}' is nested too deeply.", param) from None


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 that says what is wrong with it."""
    if not raw:
        raise _bad("The request body is empty; expected a JSON object.", None)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "utf-8" in str(exc).lower() or "surrogate" in str(exc).lower():
            raise _bad("The request body is not valid UTF-8.", None) from None
        raise _bad(f"The request body is not valid JSON: {exc}", None) from None
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", None)
    return body


def _str(value: Any, param: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _bad(f"'{param}' must be a string.", param)
    return value


def _number(value: Any, param: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad(f"'{param}' must be a number.", param)
    if not low <= value <= high:
        raise _bad(f"'{param}' must be between {low:g} and {high:g}.", param)
    return float(value)


def _int(value: Any, param: str, low: int, high: int = _INT32_MAX) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON has one number type: 2.0 is the integer 2 (JSON Schema too)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(f"'{param}' must be an integer.", param)
    if not low <= value <= high:
        raise _bad(f"'{param}' must be between {low} and {high}.", param)
    return value


def _bool(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(f"'{param}' must be a boolean.", param)
    return value


def _object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"'{param}' must be an object.", param)
    return value


def _list(value: Any, param: str) -> list[Any]:
    if not isinstance(value, list):
        raise _bad(f"'{param}' must be an array.", param)
    return value


def _named(table: Mapping[str, _T], value: Any) -> _T | None:
    """``table[value]`` for a string ``value``, else None (a JSON object or array as an
    enum value is a wrong value, not a lookup that raises ``TypeError``)."""
    return table.get(value) if isinstance(value, str) else None


def _cache_control(raw: Mapping[str, Any], out: Any, param: str) -> None:
    """A ``cache_control`` object (Anthropic's prompt-cache breakpoint, as LiteLLM and
    Anthropic's own OpenAI-compatible clients write it on parts, messages and tools)."""
    value = raw.get("cache_control")
    if value is None:
        return
    where = f"{param}.cache_control"
    value = _object(value, where)
    out.cache_control.type = _str(value.get("type"), f"{where}.type", required=True)
    out.cache_control.ttl = _str(value.get("ttl"), f"{where}.ttl")


def _part(raw: Any, out: chat_pb2.ContentPart, param: str) -> None:
    raw = _object(raw, param)
    _cache_control(raw, out, param)
    kind = raw.get("type")
    if kind == "text":
        out.text = _str(raw.get("text"), f"{param}.text", required=True)
    elif kind == "image_url":
        image = raw.get("image_url")
        if isinstance(image, str):
            out.image_url.url = image
        else:
            image = _object(image, f"{param}.image_url")
            out.image_url.url = _str(image.get("url"), f"{param}.image_url.url", required=True)
            out.image_url.detail = _str(image.get("detail"), f"{param}.image_url.detail")
        if not out.image_url.url:
            raise _bad(f"'{param}.image_url.url' must not be empty.", f"{param}.image_url.url")
    elif kind == "input_audio":
        audio = _object(raw.get("input_audio"), f"{param}.input_audio")
        out.input_audio.data = _str(audio.get("data"), f"{param}.input_audio.data",
                                    required=True)
        out.input_audio.format = _str(audio.get("format"), f"{param}.input_audio.format")
    elif kind == "refusal":
        out.text = _str(raw.get("refusal"), f"{param}.refusal", required=True)
    else:
        raise _bad(f"'{param}.type' must be one of text, image_url, input_audio.",
                   f"{param}.type")


def _message(raw: Any, out: chat_pb2.ChatMessage, i: int) -> None:
    param = f"messages[{i}]"
    raw = _object(raw, param)
    role = _named(_ROLES, raw.get("role"))
    if role is None:
        raise _bad(f"'{param}.role' must be one of {', '.join(_ROLES)}.", f"{param}.role")
    out.role = role
    _cache_control(raw, out, param)
    content = raw.get("content")
    if isinstance(content, str):
        out.content = content
    elif isinstance(content, list):
        for j, part in enumerate(content):
            _part(part, out.parts.add(), f"{param}.content[{j}]")
    elif content is not None:
        raise _bad(f"'{param}.content' must be a string or an array of parts.",
                   f"{param}.content")
    out.name = _str(raw.get("name"), f"{param}.name")
    if (calls := raw.get("tool_calls")) is not None:
        for j, call in enumerate(_list(calls, f"{param}.tool_calls")):
            where = f"{param}.tool_calls[{j}]"
            call = _object(call, where)
            function = _object(call.get("function"), f"{where}.function")
            out.tool_calls.add(
                id=_str(call.get("id"), f"{where}.id"),
                name=_str(function.get("name"), f"{where}.function.name", required=True),
                arguments=_str(function.get("arguments"), f"{where}.function.arguments"),
            )
    out.tool_call_id = _str(raw.get("tool_call_id"), f"{param}.tool_call_id")
    if (refusal := raw.get("refusal")) is not None:
        out.refusal = _str(refusal, f"{param}.refusal")


def bounded(raw: Any, param: str, limit: int) -> list[Any]:
    """``raw`` as a list of at most ``limit`` items."""
    items = _list(raw, param)
    if len(items) > limit:
        raise _bad(f"'{param}' may hold at most {limit} items.", param)
    return items


def _tools(raw: Any, out: chat_pb2.ChatRequest) -> None:
    for i, tool in enumerate(bounded(raw, "tools", MAX_TOOLS)):
        tool = _object(tool, f"tools[{i}]")
        if tool.get("type", "function") != "function":
            raise _bad(f"'tools[{i}].type' must be 'function'.", f"tools[{i}].type")
        function = _object(tool.get("function"), f"tools[{i}].function")
        t = out.tools.add(
            name=_str(function.get("name"), f"tools[{i}].function.name", required=True),
            description=_str(function.get("description"), f"tools[{i}].function.description"),
        )
        if (params := function.get("parameters")) is not None:
            where = f"tools[{i}].function.parameters"
            t.parameters_json = json_text(_object(params, where), where)
        if (strict := function.get("strict")) is not None:
            t.strict = _bool(strict, f"tools[{i}].function.strict")
        _cache_control(tool, t, f"tools[{i}]")


def _tool_choice(raw: Any, out: chat_pb2.ToolChoice) -> None:
    if isinstance(raw, str):
        mode = _TOOL_CHOICE_MODES.get(raw)
        if mode is None:
            raise _bad("'tool_choice' must be auto, none, required or a function.",
                       "tool_choice")
        out.mode = mode
        return
    raw = _object(raw, "tool_choice")
    function = _object(raw.get("function"), "tool_choice.function")
    out.mode = chat_pb2.TOOL_CHOICE_MODE_FUNCTION
    out.function_name = _str(function.get("name"), "tool_choice.function.name", required=True)


def _response_format(raw: Any, out: chat_pb2.ResponseFormat) -> None:
    raw = _object(raw, "response_format")
    kind = _named(_FORMATS, raw.get("type"))
    if kind is None:
        raise _bad("'response_format.type' must be text, json_object or json_schema.",
                   "response_format.type")
    out.type = kind
    if kind == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        schema = _object(raw.get("json_schema"), "response_format.json_schema")
        js = out.json_schema
        js.name = _str(schema.get("name"), "response_format.json_schema.name", required=True)
        js.description = _str(schema.get("description"),
                              "response_format.json_schema.description")
        if (body := schema.get("schema")) is not None:
            where = "response_format.json_schema.schema"
            js.schema_json = json_text(_object(body, where), where)
        if (strict := schema.get("strict")) is not None:
            js.strict = _bool(strict, "response_format.json_schema.strict")


def chat_request_to_proto(body: dict[str, Any]) -> tuple[chat_pb2.ChatRequest, bool, bool]:
    """``(request, stream, include_usage)`` from an OpenAI chat completions body."""
    req = chat_pb2.ChatRequest()
    if "model" not in body:
        raise _bad("'model' is required.", "model")
    req.model = _str(body["model"], "model", required=True)
    if not req.model:
        raise _bad("'model' must not be empty.", "model")
    messages = _list(body.get("messages"), "messages")
    if not messages:
        raise _bad("'messages' must contain at least one message.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise _bad(f"'messages' may hold at most {MAX_MESSAGES} messages.", "messages")
    for i, message in enumerate(messages):
        _message(message, req.messages.add(), i)
    if (v := body.get("tools")) is not None:
        _tools(v, req)
    if (v := body.get("tool_choice")) is not None:
        _tool_choice(v, req.tool_choice)
    if (v := body.get("parallel_tool_calls")) is not None:
        req.parallel_tool_calls = _bool(v, "parallel_tool_calls")
    if (v := body.get("response_format")) is not None:
        _response_format(v, req.response_format)
    if (v := body.get("temperature")) is not None:
        req.temperature = _number(v, "temperature", 0, 2)
    if (v := body.get("top_p")) is not None:
        req.top_p = _number(v, "top_p", 0, 1)
    if (v := body.get("max_tokens")) is not None:
        req.max_tokens = _int(v, "max_tokens", 1)
    if (v := body.get("max_completion_tokens")) is not None:
        req.max_completion_tokens = _int(v, "max_completion_tokens", 1)
    if (v := body.get("n")) is not None:
        req.n = _int(v, "n", 1, 128)
    if (v := body.get("stop")) is not None:
        stops = [v] if isinstance(v, str) else _list(v, "stop")
        for j, stop in enumerate(stops):
            req.stop.append(_str(stop, f"stop[{j}]", required=True))
    if (v := body.get("seed")) is not None:
        req.seed = _int(v, "seed", -_INT64_MAX - 1, _INT64_MAX)
    if (v := body.get("presence_penalty")) is not None:
        req.presence_penalty = _number(v, "presence_penalty", -2, 2)
    if (v := body.get("frequency_penalty")) is not None:
        req.frequency_penalty = _number(v, "frequency_penalty", -2, 2)
    req.user = _str(body.get("user"), "user")
    stream = _bool(body["stream"], "stream") if body.get("stream") is not None else False
    include_usage = False
    if (v := body.get("stream_options")) is not None:
        options = _object(v, "stream_options")
        if (usage := options.get("include_usage")) is not None:
            include_usage = _bool(usage, "stream_options.include_usage")
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    if extra:
        try:
            req.extra_json = orjson.dumps(extra).decode()
        except orjson.JSONEncodeError:
            for key, value in extra.items():  # the 400 names the field nested too deeply
                json_text({key: value}, key)
            raise _bad("The request's extra fields are nested too deeply.", None) from None
    return req, stream, include_usage


# --- responses -----------------------------------------------------------------------------


def tools_json(tools: Any) -> list[dict[str, Any]]:
    """Tools in chat completions' shape (``{"type": "function", "function": {...}}``)."""
    out = []
    for t in tools:
        function: dict[str, Any] = {"name": t.name}
        if t.description:
            function["description"] = t.description
        if t.parameters_json:
            function["parameters"] = orjson.loads(t.parameters_json)
        if t.HasField("strict"):
            function["strict"] = t.strict
        out.append({"type": "function", "function": function})
    return out


def tool_choice_json(choice: chat_pb2.ToolChoice) -> Any:
    if choice.mode == chat_pb2.TOOL_CHOICE_MODE_FUNCTION:
        return {"type": "function", "name": choice.function_name}
    return {v: k for k, v in _TOOL_CHOICE_MODES.items()}.get(choice.mode, "auto")



def _usage_json(usage: chat_pb2.Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_prompt_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }


def _tool_calls_json(calls: Any) -> list[dict[str, Any]]:
    return [{"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}} for c in calls]


def completion_to_json(completion: chat_pb2.ChatCompletion) -> dict[str, Any]:
    choices = []
    for choice in completion.choices:
        m = choice.message
        message: dict[str, Any] = {
            "role": "assistant",
            "content": m.content if m.HasField("content") else None,
            "refusal": m.refusal if m.HasField("refusal") else None,
        }
        if m.tool_calls:
            message["tool_calls"] = _tool_calls_json(m.tool_calls)
        choices.append({"index": choice.index, "message": message, "logprobs": None,
                        "finish_reason": _FINISH_NAMES.get(choice.finish_reason)})
    out: dict[str, Any] = {
        "id": completion.id,
        "object": "chat.completion",
        "created": completion.created,
        "model": completion.model,
        "choices": choices,
        "usage": _usage_json(completion.usage) if completion.HasField("usage") else None,
        "system_fingerprint": completion.system_fingerprint or None,
    }
    g = completion.gateway
    out["x_gateway"] = {
        "provider": g.provider, "model": g.model, "latency_ms": g.latency_ms,
        "cost_usd": g.cost_usd, "cache_hit": g.cache_hit, "request_id": g.request_id,
        "trace_id": g.trace_id or None,
    }
    return out


def chunk_to_json(chunk: chat_pb2.ChatCompletionChunk, include_usage: bool) -> dict[str, Any]:
    choices = []
    for choice in chunk.choices:
        d = choice.delta
        delta: dict[str, Any] = {}
        if d.role:
            delta["role"] = _ROLE_NAMES.get(d.role, "assistant")
        if d.HasField("content"):
            delta["content"] = d.content
        if d.HasField("refusal"):
            delta["refusal"] = d.refusal
        if d.tool_calls:
            calls = []
            for c in d.tool_calls:
                call: dict[str, Any] = {"index": c.index}
                if c.id:
                    call["id"] = c.id
                    call["type"] = "function"
                function: dict[str, str] = {}
                if c.name:
                    function["name"] = c.name
                function["arguments"] = c.arguments
                call["function"] = function
                calls.append(call)
            delta["tool_calls"] = calls
        choices.append({"index": choice.index, "delta": delta, "logprobs": None,
                        "finish_reason": _FINISH_NAMES.get(choice.finish_reason)})
    out: dict[str, Any] = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "choices": choices,
    }
    if chunk.system_fingerprint:
        out["system_fingerprint"] = chunk.system_fingerprint
    if include_usage:
        out["usage"] = _usage_json(chunk.usage) if chunk.HasField("usage") else None
    return out


def model_to_json(model: models_pb2.Model) -> dict[str, Any]:
    out: dict[str, Any] = {"id": model.id, "object": "model", "created": model.created,
                           "owned_by": model.owned_by}
    if model.targets:
        out["targets"] = list(model.targets)
    if model.fallbacks:
        out["fallbacks"] = list(model.fallbacks)
    return out


# --- embeddings ----------------------------------------------------------------------------


def embeddings_request_to_proto(
    body: dict[str, Any],
) -> tuple[gateway_service_pb2.CreateEmbeddingsRequest, str]:
    """``(request, encoding_format)`` from an OpenAI embeddings body."""
    req = gateway_service_pb2.CreateEmbeddingsRequest()
    if "model" not in body:
        raise _bad("'model' is required.", "model")
    req.model = _str(body["model"], "model", required=True)
    if not req.model:
        raise _bad("'model' must not be empty.", "model")
    raw = body.get("input")
    if isinstance(raw, str):
        req.inputs.append(raw)
    elif isinstance(raw, list) and raw:
        for i, text in enumerate(raw):
            if not isinstance(text, str):
                raise _bad("'input' must be a string or an array of strings "
                           "(token arrays are not supported).", f"input[{i}]")
            req.inputs.append(text)
    else:
        raise _bad("'input' must be a non-empty string or array of strings.", "input")
    if (v := body.get("dimensions")) is not None:
        req.dimensions = _int(v, "dimensions", 1, 65536)
    req.user = _str(body.get("user"), "user")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise _bad("'encoding_format' must be float or base64.", "encoding_format")
    return req, encoding


def embeddings_to_json(
    response: gateway_service_pb2.CreateEmbeddingsResponse, encoding: str
) -> dict[str, Any]:
    data = []
    for item in response.embeddings:
        values = item.values
        vector: Any = (
            base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
            if encoding == "base64" else list(values)
        )
        data.append({"object": "embedding", "index": item.index, "embedding": vector})
    g = response.gateway
    return {
        "object": "list",
        "data": data,
        "model": response.model,
        "usage": {"prompt_tokens": response.usage.prompt_tokens,
                  "total_tokens": response.usage.total_tokens},
        "x_gateway": {"provider": g.provider, "model": g.model, "latency_ms": g.latency_ms,
                      "cost_usd": g.cost_usd, "request_id": g.request_id},
    }


def usage_to_json(usage: gateway_service_pb2.GetUsageResponse) -> dict[str, Any]:
    return {
        "object": "usage",
        "tenant_id": usage.tenant_id,
        "period_start": usage.period_start,
        "requests": usage.requests,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "cost_usd": usage.cost_usd,
        "monthly_budget_usd": (usage.monthly_budget_usd
                               if usage.HasField("monthly_budget_usd") else None),
        "budget_used_ratio": (usage.budget_used_ratio
                              if usage.HasField("budget_used_ratio") else None),
        "budget_period": _PERIOD_NAMES.get(usage.budget_period, "monthly"),
        "budgets": [{
            "scope": _SCOPE_NAMES.get(b.scope, "tenant"),
            **({"api_key_id": b.api_key_id} if b.api_key_id else {}),
            **({"model": b.model} if b.model else {}),
            "period": _PERIOD_NAMES.get(b.period, "monthly"), "period_start": b.period_start,
            "budget_usd": b.budget_usd, "cost_usd": b.cost_usd, "requests": b.requests,
            "used_ratio": b.used_ratio,
        } for b in usage.budgets],
    }


_PERIOD_NAMES = {budgets_pb2.BUDGET_PERIOD_MONTHLY: "monthly",
                 budgets_pb2.BUDGET_PERIOD_DAILY: "daily"}
_SCOPE_NAMES = {budgets_pb2.BUDGET_SCOPE_TENANT: "tenant",
                budgets_pb2.BUDGET_SCOPE_API_KEY: "api_key",
                budgets_pb2.BUDGET_SCOPE_MODEL: "model"}
