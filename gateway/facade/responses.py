"""The Responses API in JSON: requests to ``ResponseRequest``, responses and stream
events back to the API's objects.

Input items become chat messages: messages (``input_text`` / ``input_image`` /
``output_text`` parts), ``function_call`` items (consecutive ones merged into one
assistant message), ``function_call_output`` items (tool messages). Function tools
are the only tools the gateway runs; request fields it does not model go to
``extra_json``.
"""

from __future__ import annotations

from typing import Any

import orjson
from llmgateway.v1 import chat_pb2, gateway_service_pb2, responses_pb2

from gateway.facade.errors import ApiError
from gateway.facade.translate import (
    MAX_MESSAGES,
    MAX_TOOLS,
    _bool,
    _int,
    _list,
    _named,
    _number,
    _object,
    _str,
    bounded,
    json_text,
    tool_choice_json,
    tools_json,
)

__all__ = ["event_json", "request_to_proto", "response_json"]

_ROLES = {"user": chat_pb2.CHAT_ROLE_USER, "system": chat_pb2.CHAT_ROLE_SYSTEM,
          "developer": chat_pb2.CHAT_ROLE_DEVELOPER, "assistant": chat_pb2.CHAT_ROLE_ASSISTANT}
_KNOWN = frozenset({
    "model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p",
    "max_output_tokens", "text", "store", "metadata", "previous_response_id",
    "parallel_tool_calls", "user", "stream", "truncation", "reasoning", "include",
})
_STATUS = {
    responses_pb2.RESPONSE_STATUS_IN_PROGRESS: "in_progress",
    responses_pb2.RESPONSE_STATUS_COMPLETED: "completed",
    responses_pb2.RESPONSE_STATUS_INCOMPLETE: "incomplete",
    responses_pb2.RESPONSE_STATUS_FAILED: "failed",
}
_EVENTS = {
    responses_pb2.RESPONSE_EVENT_TYPE_CREATED: "response.created",
    responses_pb2.RESPONSE_EVENT_TYPE_IN_PROGRESS: "response.in_progress",
    responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED: "response.output_item.added",
    responses_pb2.RESPONSE_EVENT_TYPE_CONTENT_PART_ADDED: "response.content_part.added",
    responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DELTA: "response.output_text.delta",
    responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DONE: "response.output_text.done",
    responses_pb2.RESPONSE_EVENT_TYPE_CONTENT_PART_DONE: "response.content_part.done",
    responses_pb2.RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DELTA:
        "response.function_call_arguments.delta",
    responses_pb2.RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DONE:
        "response.function_call_arguments.done",
    responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE: "response.output_item.done",
    responses_pb2.RESPONSE_EVENT_TYPE_COMPLETED: "response.completed",
    responses_pb2.RESPONSE_EVENT_TYPE_INCOMPLETE: "response.incomplete",
    responses_pb2.RESPONSE_EVENT_TYPE_FAILED: "response.failed",
    responses_pb2.RESPONSE_EVENT_TYPE_ERROR: "error",
}


def _bad(message: str, param: str | None) -> ApiError:
    return ApiError(400, message, param=param)


# --- requests ------------------------------------------------------------------------------


def _content(raw: Any, out: chat_pb2.ChatMessage, param: str) -> None:
    if isinstance(raw, str):
        out.content = raw
        return
    for j, part in enumerate(_list(raw, param)):
        where = f"{param}[{j}]"
        part = _object(part, where)
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            out.parts.add(text=_str(part.get("text"), f"{where}.text", required=True))
        elif kind == "refusal":
            out.refusal = _str(part.get("refusal"), f"{where}.refusal", required=True)
        elif kind == "input_image":
            url = _str(part.get("image_url"), f"{where}.image_url", required=True)
            if not url:
                raise _bad(f"'{where}.image_url' must not be empty.", f"{where}.image_url")
            image = out.parts.add().image_url
            image.url = url
            image.detail = _str(part.get("detail"), f"{where}.detail")
        else:
            raise _bad(f"'{where}.type' must be input_text, input_image or output_text "
                       "(files are not supported).", f"{where}.type")


def _input(raw: Any, req: gateway_service_pb2.ResponseRequest) -> None:
    if isinstance(raw, str):
        req.input.add(role=chat_pb2.CHAT_ROLE_USER, content=raw)
        return
    for i, item in enumerate(bounded(raw, "input", MAX_MESSAGES)):
        where = f"input[{i}]"
        item = _object(item, where)
        kind = item.get("type", "message")
        if kind == "message":
            role = _named(_ROLES, item.get("role"))
            if role is None:
                raise _bad(f"'{where}.role' must be user, assistant, system or developer.",
                           f"{where}.role")
            message = req.input.add(role=role)
            _content(item.get("content"), message, f"{where}.content")
        elif kind == "function_call":
            last = req.input[-1] if req.input else None
            if last is None or last.role != chat_pb2.CHAT_ROLE_ASSISTANT or (
                    last.HasField("content") and not last.tool_calls):
                last = req.input.add(role=chat_pb2.CHAT_ROLE_ASSISTANT)
            last.tool_calls.add(
                id=_str(item.get("call_id"), f"{where}.call_id", required=True),
                name=_str(item.get("name"), f"{where}.name", required=True),
                arguments=_str(item.get("arguments"), f"{where}.arguments"))
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str):
                output = json_text(output, f"{where}.output")
            req.input.add(role=chat_pb2.CHAT_ROLE_TOOL, content=output,
                          tool_call_id=_str(item.get("call_id"), f"{where}.call_id",
                                            required=True))
        else:
            raise _bad(f"'{where}.type' {kind!r} is not supported (message, function_call, "
                       "function_call_output).", f"{where}.type")


def _tools(raw: Any, req: gateway_service_pb2.ResponseRequest) -> None:
    for i, tool in enumerate(bounded(raw, "tools", MAX_TOOLS)):
        tool = _object(tool, f"tools[{i}]")
        if tool.get("type") != "function":
            raise _bad(f"'tools[{i}].type' must be 'function': the gateway runs function "
                       "tools only.", f"tools[{i}].type")
        t = req.tools.add(name=_str(tool.get("name"), f"tools[{i}].name", required=True),
                          description=_str(tool.get("description"), f"tools[{i}].description"))
        if (params := tool.get("parameters")) is not None:
            where = f"tools[{i}].parameters"
            t.parameters_json = json_text(_object(params, where), where)
        if (strict := tool.get("strict")) is not None:
            t.strict = _bool(strict, f"tools[{i}].strict")


def _tool_choice(raw: Any, out: chat_pb2.ToolChoice) -> None:
    modes = {"auto": chat_pb2.TOOL_CHOICE_MODE_AUTO, "none": chat_pb2.TOOL_CHOICE_MODE_NONE,
             "required": chat_pb2.TOOL_CHOICE_MODE_REQUIRED}
    if isinstance(raw, str) and raw in modes:
        out.mode = modes[raw]
        return
    choice = _object(raw, "tool_choice")
    if choice.get("type") != "function":
        raise _bad("'tool_choice' must be auto, none, required or a function.", "tool_choice")
    out.mode = chat_pb2.TOOL_CHOICE_MODE_FUNCTION
    out.function_name = _str(choice.get("name"), "tool_choice.name", required=True)


def _text_format(raw: Any, out: chat_pb2.ResponseFormat) -> None:
    text = _object(raw, "text")
    if (fmt := text.get("format")) is None:
        return
    fmt = _object(fmt, "text.format")
    kinds = {"text": chat_pb2.RESPONSE_FORMAT_TYPE_TEXT,
             "json_object": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT,
             "json_schema": chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA}
    kind = _named(kinds, fmt.get("type"))
    if kind is None:
        raise _bad("'text.format.type' must be text, json_object or json_schema.",
                   "text.format.type")
    out.type = kind
    if kind == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        js = out.json_schema
        js.name = _str(fmt.get("name"), "text.format.name", required=True)
        js.description = _str(fmt.get("description"), "text.format.description")
        if (schema := fmt.get("schema")) is not None:
            js.schema_json = json_text(_object(schema, "text.format.schema"),
                                        "text.format.schema")
        if (strict := fmt.get("strict")) is not None:
            js.strict = _bool(strict, "text.format.strict")


def request_to_proto(body: dict[str, Any]) -> tuple[gateway_service_pb2.ResponseRequest, bool]:
    """``(request, stream)`` from a ``POST /v1/responses`` body."""
    req = gateway_service_pb2.ResponseRequest()
    if "model" not in body:
        raise _bad("'model' is required.", "model")
    req.model = _str(body["model"], "model", required=True)
    if body.get("input") is not None:
        _input(body["input"], req)
    req.instructions = _str(body.get("instructions"), "instructions")
    if (v := body.get("tools")) is not None:
        _tools(v, req)
    if (v := body.get("tool_choice")) is not None:
        _tool_choice(v, req.tool_choice)
    if (v := body.get("temperature")) is not None:
        req.temperature = _number(v, "temperature", 0, 2)
    if (v := body.get("top_p")) is not None:
        req.top_p = _number(v, "top_p", 0, 1)
    if (v := body.get("max_output_tokens")) is not None:
        req.max_output_tokens = _int(v, "max_output_tokens", 1)
    if (v := body.get("text")) is not None:
        _text_format(v, req.text_format)
    if (v := body.get("store")) is not None:
        req.store = _bool(v, "store")
    if (v := body.get("metadata")) is not None:
        metadata = _object(v, "metadata")
        if len(metadata) > 16:
            raise _bad("'metadata' holds at most 16 pairs.", "metadata")
        for key, value in metadata.items():
            req.metadata[key] = _str(value, f"metadata.{key}", required=True)
    req.previous_response_id = _str(body.get("previous_response_id"), "previous_response_id")
    if (v := body.get("parallel_tool_calls")) is not None:
        req.parallel_tool_calls = _bool(v, "parallel_tool_calls")
    req.user = _str(body.get("user"), "user")
    stream = _bool(body["stream"], "stream") if body.get("stream") is not None else False
    extra = {k: v for k, v in body.items() if k not in _KNOWN}
    if extra:
        try:
            req.extra_json = orjson.dumps(extra).decode()
        except orjson.JSONEncodeError:  # see _json_text
            raise _bad(f"The fields passed on to the provider ({', '.join(sorted(extra))}) "
                       "are nested too deeply.", None) from None
    return req, stream


# --- responses -----------------------------------------------------------------------------


def _item_json(item: responses_pb2.ResponseOutputItem, status: str) -> dict[str, Any]:
    if item.HasField("message"):
        m = item.message
        content: list[dict[str, Any]] = []
        if m.text or not m.HasField("refusal"):
            content.append({"type": "output_text", "text": m.text, "annotations": []})
        if m.HasField("refusal"):
            content.append({"type": "refusal", "refusal": m.refusal})
        return {"type": "message", "id": m.id, "status": status, "role": "assistant",
                "content": content}
    f = item.function_call
    return {"type": "function_call", "id": f.id, "call_id": f.call_id, "name": f.name,
            "arguments": f.arguments, "status": status}


def _format_json(fmt: chat_pb2.ResponseFormat) -> dict[str, Any]:
    if fmt.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT:
        return {"type": "json_object"}
    if fmt.type == chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA:
        js = fmt.json_schema
        out: dict[str, Any] = {"type": "json_schema", "name": js.name,
                               "schema": orjson.loads(js.schema_json) if js.schema_json else {}}
        if js.description:
            out["description"] = js.description
        if js.HasField("strict"):
            out["strict"] = js.strict
        return out
    return {"type": "text"}


def response_json(r: responses_pb2.Response) -> dict[str, Any]:
    status = _STATUS.get(r.status, "in_progress")
    item_status = "completed" if status != "in_progress" else "in_progress"
    usage = r.usage if r.HasField("usage") else None
    out: dict[str, Any] = {
        "id": r.id, "object": "response", "created_at": r.created_at, "status": status,
        "error": {"code": r.error.code, "message": r.error.message}
        if r.HasField("error") else None,
        "incomplete_details": {"reason": r.incomplete_reason} if r.incomplete_reason else None,
        "instructions": r.instructions or None,
        "max_output_tokens": r.max_output_tokens if r.HasField("max_output_tokens") else None,
        "model": r.model,
        "output": [_item_json(item, item_status) for item in r.output],
        "parallel_tool_calls": r.parallel_tool_calls if r.HasField("parallel_tool_calls")
        else True,
        "previous_response_id": r.previous_response_id or None,
        "reasoning": {"effort": None, "summary": None},
        "store": r.store,
        "temperature": r.temperature if r.HasField("temperature") else 1.0,
        "text": {"format": _format_json(r.text_format)},
        "tool_choice": tool_choice_json(r.tool_choice) if r.HasField("tool_choice") else "auto",
        "tools": [{"type": "function", **t["function"]} for t in tools_json(r.tools)],
        "top_p": r.top_p if r.HasField("top_p") else 1.0,
        "truncation": "disabled",
        "usage": None if usage is None else {
            "input_tokens": usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_prompt_tokens},
            "output_tokens": usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.total_tokens,
        },
        "user": r.user or None,
        "metadata": dict(r.metadata),
    }
    if r.HasField("gateway"):
        g = r.gateway
        out["x_gateway"] = {"provider": g.provider, "model": g.model,
                            "latency_ms": g.latency_ms, "cost_usd": g.cost_usd,
                            "request_id": g.request_id, "trace_id": g.trace_id or None}

    return out


def event_json(e: responses_pb2.ResponseEvent) -> tuple[str, dict[str, Any]]:
    """``(event name, data)`` of one streamed event."""
    name = _EVENTS[e.type]
    data: dict[str, Any] = {"type": name, "sequence_number": e.sequence_number}
    kind = e.type
    if e.HasField("response"):
        data["response"] = response_json(e.response)
    elif kind in (responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED,
                  responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE):
        done = kind == responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE
        data["output_index"] = e.output_index
        data["item"] = _item_json(e.item, "completed" if done else "in_progress")
    elif kind == responses_pb2.RESPONSE_EVENT_TYPE_ERROR:
        data.update({"code": e.error.code, "message": e.error.message, "param": None})
    else:
        data["item_id"] = e.item_id
        data["output_index"] = e.output_index
        if kind in (responses_pb2.RESPONSE_EVENT_TYPE_CONTENT_PART_ADDED,
                    responses_pb2.RESPONSE_EVENT_TYPE_CONTENT_PART_DONE):
            data["content_index"] = e.content_index
            data["part"] = {"type": "output_text", "text": e.text, "annotations": []}
        elif kind == responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DELTA:
            data.update({"content_index": e.content_index, "delta": e.delta, "logprobs": []})
        elif kind == responses_pb2.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DONE:
            data.update({"content_index": e.content_index, "text": e.text, "logprobs": []})
        elif kind == responses_pb2.RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DELTA:
            data["delta"] = e.delta
        else:
            data["arguments"] = e.arguments
    return name, data
