"""The only core module that imports ``llmgateway.v1``: proto <-> domain.

Converting a request also validates it, so gRPC callers get the same
INVALID_ARGUMENT answers as REST callers. The builders write messages field by
field (no ``json_format`` round trips) because they sit on the hot path.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from llmgateway.v1 import chat_pb2, embeddings_pb2, gateway_service_pb2, models_pb2

from gateway.domain import (
    CacheControl,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ContentPart,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    JsonSchemaFormat,
    Message,
    ModelInfo,
    ResponseFormat,
    Role,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)
from gateway.errors import InvalidRequestError

__all__ = [
    "chat_request_from_proto",
    "embedding_request_from_proto",
    "embeddings_to_proto",
    "chunk_to_proto",
    "completion_to_proto",
    "model_to_proto",
]

_ROLES: dict[int, Role] = {
    chat_pb2.CHAT_ROLE_SYSTEM: "system",
    chat_pb2.CHAT_ROLE_USER: "user",
    chat_pb2.CHAT_ROLE_ASSISTANT: "assistant",
    chat_pb2.CHAT_ROLE_TOOL: "tool",
    chat_pb2.CHAT_ROLE_DEVELOPER: "developer",
}
_ROLE_NUMBERS = {v: k for k, v in _ROLES.items()}
_FINISH: dict[str, int] = {
    "stop": chat_pb2.FINISH_REASON_STOP,
    "length": chat_pb2.FINISH_REASON_LENGTH,
    "tool_calls": chat_pb2.FINISH_REASON_TOOL_CALLS,
    "content_filter": chat_pb2.FINISH_REASON_CONTENT_FILTER,
    "function_call": chat_pb2.FINISH_REASON_FUNCTION_CALL,
}
_TOOL_CHOICE = {
    chat_pb2.TOOL_CHOICE_MODE_AUTO: "auto",
    chat_pb2.TOOL_CHOICE_MODE_NONE: "none",
    chat_pb2.TOOL_CHOICE_MODE_REQUIRED: "required",
    chat_pb2.TOOL_CHOICE_MODE_FUNCTION: "function",
}
_FORMATS = {
    chat_pb2.RESPONSE_FORMAT_TYPE_TEXT: "text",
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_OBJECT: "json_object",
    chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA: "json_schema",
}
MAX_N = 128
MAX_MODEL_NAME = 256  # longer is no model anyone serves; it would only bloat logs and errors
MAX_EMBEDDING_INPUTS = 2048
MAX_DIMENSIONS = 65536  # the REST facade's bound too; a vector of 2**31 floats is no request
# Nesting of the JSON text fields (schemas, extra fields): far past any real schema, and
# far enough below the 254 levels orjson writes that the upstream body and the REST answer
# echoing it (a few levels deeper) can still be written.
MAX_JSON_DEPTH = 128


def _nested_too_deeply(value: Any) -> bool:
    """Whether objects and arrays nest more than MAX_JSON_DEPTH deep in ``value``; walked
    with a stack, as the value may be nested as deep as the parser allows (1024)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else None
        if children is None:
            continue
        if depth > MAX_JSON_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _json_object(text: str, param: str) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise InvalidRequestError(f"'{param}' is not valid JSON", param=param) from None
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'{param}' must be a JSON object", param=param)
    # Counting brackets is cheap and a deeper value needs more of them than the bound.
    if text.count("{") + text.count("[") > MAX_JSON_DEPTH and _nested_too_deeply(value):
        raise InvalidRequestError(f"'{param}' nests objects and arrays more than "
                                  f"{MAX_JSON_DEPTH} levels deep", param=param)
    return value


def _cache_control(owner: Any) -> CacheControl | None:
    """The ``cache_control`` of a part, message or tool, when it has one."""
    if not owner.HasField("cache_control"):
        return None
    control = owner.cache_control
    return CacheControl(control.type or "ephemeral", control.ttl)


def _message_from_proto(msg: chat_pb2.ChatMessage, i: int) -> Message:
    role = _ROLES.get(msg.role)
    if role is None:
        raise InvalidRequestError(f"messages[{i}].role is missing or unknown",
                                  param=f"messages[{i}].role")
    parts: list[ContentPart] = []
    for j, part in enumerate(msg.parts):
        kind = part.WhichOneof("part")
        if kind == "text":
            parts.append(ContentPart("text", text=part.text,
                                     cache_control=_cache_control(part)))
        elif kind == "image_url":
            if not part.image_url.url:
                raise InvalidRequestError(
                    f"messages[{i}].content[{j}].image_url.url is required",
                    param=f"messages[{i}].content[{j}].image_url.url")
            parts.append(ContentPart("image_url", url=part.image_url.url,
                                     detail=part.image_url.detail,
                                     cache_control=_cache_control(part)))
        elif kind == "input_audio":
            parts.append(ContentPart("input_audio", data=part.input_audio.data,
                                     format=part.input_audio.format))
        else:
            raise InvalidRequestError(f"messages[{i}].content[{j}] is empty",
                                      param=f"messages[{i}].content[{j}]")
    if role == "tool" and not msg.tool_call_id:
        raise InvalidRequestError(f"messages[{i}].tool_call_id is required for a tool message",
                                  param=f"messages[{i}].tool_call_id")
    return Message(
        role=role,
        content=msg.content if msg.HasField("content") else None,
        parts=tuple(parts),
        name=msg.name,
        tool_calls=tuple(ToolCall(c.id, c.name, c.arguments) for c in msg.tool_calls),
        tool_call_id=msg.tool_call_id,
        refusal=msg.refusal if msg.HasField("refusal") else None,
        cache_control=_cache_control(msg),
    )


def chat_request_from_proto(req: chat_pb2.ChatRequest) -> ChatRequest:
    """Validate and convert; raises :class:`InvalidRequestError` naming the field."""
    if not req.model:
        raise InvalidRequestError("'model' is required", param="model")
    if len(req.model) > MAX_MODEL_NAME:
        raise InvalidRequestError(f"'model' is longer than {MAX_MODEL_NAME} characters",
                                  param="model")
    if not req.messages:
        raise InvalidRequestError("'messages' must contain at least one message",
                                  param="messages")
    messages = tuple(_message_from_proto(m, i) for i, m in enumerate(req.messages))
    tools = tuple(
        Tool(
            name=t.name,
            description=t.description,
            parameters=_json_object(t.parameters_json, f"tools[{i}].function.parameters"),
            strict=t.strict if t.HasField("strict") else None,
            cache_control=_cache_control(t),
        )
        for i, t in enumerate(req.tools)
    )
    for i, tool in enumerate(tools):
        if not tool.name:
            raise InvalidRequestError(f"tools[{i}].function.name is required",
                                      param=f"tools[{i}].function.name")
    tool_choice = None
    if req.HasField("tool_choice"):
        mode = _TOOL_CHOICE.get(req.tool_choice.mode)
        if mode is None:
            raise InvalidRequestError("'tool_choice' has an unknown mode", param="tool_choice")
        if mode == "function" and not req.tool_choice.function_name:
            raise InvalidRequestError("'tool_choice' names no function", param="tool_choice")
        tool_choice = ToolChoice(cast(Any, mode), req.tool_choice.function_name)
    response_format = None
    if req.HasField("response_format"):
        kind = _FORMATS.get(req.response_format.type)
        if kind is None:
            raise InvalidRequestError("'response_format.type' is unknown",
                                      param="response_format.type")
        schema = None
        if kind == "json_schema":
            js = req.response_format.json_schema
            if not js.name:
                raise InvalidRequestError("'response_format.json_schema.name' is required",
                                          param="response_format.json_schema.name")
            schema = JsonSchemaFormat(
                name=js.name,
                schema=_json_object(js.schema_json, "response_format.json_schema.schema"),
                description=js.description,
                strict=js.strict if js.HasField("strict") else None,
            )
        response_format = ResponseFormat(cast(Any, kind), schema)

    def opt(field: str) -> Any:
        return getattr(req, field) if req.HasField(field) else None

    n = opt("n")
    if n is not None and not 1 <= n <= MAX_N:
        raise InvalidRequestError(f"'n' must be between 1 and {MAX_N}", param="n")
    for field in ("max_tokens", "max_completion_tokens"):
        value = opt(field)
        if value is not None and value < 1:
            raise InvalidRequestError(f"'{field}' must be at least 1", param=field)
    temperature = opt("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        raise InvalidRequestError("'temperature' must be between 0 and 2", param="temperature")
    top_p = opt("top_p")
    if top_p is not None and not 0 <= top_p <= 1:
        raise InvalidRequestError("'top_p' must be between 0 and 1", param="top_p")
    return ChatRequest(
        model=req.model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=opt("parallel_tool_calls"),
        response_format=response_format,
        temperature=temperature,
        top_p=top_p,
        max_tokens=opt("max_tokens"),
        max_completion_tokens=opt("max_completion_tokens"),
        n=n,
        stop=tuple(req.stop),
        seed=opt("seed"),
        presence_penalty=opt("presence_penalty"),
        frequency_penalty=opt("frequency_penalty"),
        user=req.user,
        extra=_json_object(req.extra_json, "extra") or {},
    )


def _usage_into(usage: Usage, out: chat_pb2.Usage) -> None:
    out.prompt_tokens = usage.prompt_tokens
    out.completion_tokens = usage.completion_tokens
    out.total_tokens = usage.total_tokens
    out.cached_prompt_tokens = usage.cached_prompt_tokens
    out.cache_creation_prompt_tokens = usage.cache_creation_prompt_tokens
    out.reasoning_tokens = usage.reasoning_tokens


def _finish(reason: FinishReason | None) -> int:
    return _FINISH.get(reason, 0) if reason else 0


def completion_to_proto(
    completion: ChatCompletion, gateway: chat_pb2.GatewayInfo
) -> gateway_service_pb2.CreateChatCompletionResponse:
    response = gateway_service_pb2.CreateChatCompletionResponse()
    out = response.completion
    out.id = completion.id
    out.created = completion.created
    out.model = completion.model
    out.system_fingerprint = completion.system_fingerprint
    for choice in completion.choices:
        c = out.choices.add()
        c.index = choice.index
        c.finish_reason = _finish(choice.finish_reason)  # type: ignore[assignment]
        m, msg = c.message, choice.message
        m.role = _ROLE_NUMBERS[msg.role]  # type: ignore[assignment]
        if msg.content is not None:
            m.content = msg.content
        if msg.refusal is not None:
            m.refusal = msg.refusal
        for call in msg.tool_calls:
            m.tool_calls.add(id=call.id, name=call.name, arguments=call.arguments)
    if completion.usage is not None:
        _usage_into(completion.usage, out.usage)
    out.gateway.CopyFrom(gateway)
    return response


def chunk_to_proto(chunk: ChatChunk) -> gateway_service_pb2.StreamChatCompletionResponse:
    response = gateway_service_pb2.StreamChatCompletionResponse()
    out = response.chunk
    out.id = chunk.id
    out.created = chunk.created
    out.model = chunk.model
    if chunk.system_fingerprint:
        out.system_fingerprint = chunk.system_fingerprint
    for choice in chunk.choices:
        c = out.choices.add()
        c.index = choice.index
        c.finish_reason = _finish(choice.finish_reason)  # type: ignore[assignment]
        d, delta = c.delta, choice.delta
        if delta.role is not None:
            d.role = _ROLE_NUMBERS[delta.role]  # type: ignore[assignment]
        if delta.content is not None:
            d.content = delta.content
        if delta.refusal is not None:
            d.refusal = delta.refusal
        for call in delta.tool_calls:
            d.tool_calls.add(index=call.index, id=call.id, name=call.name,
                             arguments=call.arguments)
    if chunk.usage is not None:
        _usage_into(chunk.usage, out.usage)
    return response


def model_to_proto(info: ModelInfo) -> models_pb2.Model:
    return models_pb2.Model(
        id=info.id,
        created=info.created,
        owned_by=info.owned_by,
        targets=info.targets,
        fallbacks=info.fallbacks,
    )


def embedding_request_from_proto(
    req: gateway_service_pb2.CreateEmbeddingsRequest,
) -> EmbeddingRequest:
    if not req.model:
        raise InvalidRequestError("'model' is required", param="model")
    if len(req.model) > MAX_MODEL_NAME:
        raise InvalidRequestError(f"'model' is longer than {MAX_MODEL_NAME} characters",
                                  param="model")
    if not req.inputs:
        raise InvalidRequestError("'input' must contain at least one text", param="input")
    if len(req.inputs) > MAX_EMBEDDING_INPUTS:
        raise InvalidRequestError(f"'input' may hold at most {MAX_EMBEDDING_INPUTS} texts",
                                  param="input")
    dimensions = req.dimensions if req.HasField("dimensions") else None
    if dimensions is not None and not 1 <= dimensions <= MAX_DIMENSIONS:
        raise InvalidRequestError(f"'dimensions' must be between 1 and {MAX_DIMENSIONS}",
                                  param="dimensions")
    return EmbeddingRequest(model=req.model, inputs=tuple(req.inputs), dimensions=dimensions,
                            user=req.user)


def embeddings_to_proto(
    result: Embeddings, gateway: chat_pb2.GatewayInfo
) -> gateway_service_pb2.CreateEmbeddingsResponse:
    response = gateway_service_pb2.CreateEmbeddingsResponse(model=result.model)
    response.embeddings.extend(
        embeddings_pb2.Embedding(index=i, values=vector) for i, vector in enumerate(result.vectors)
    )
    if result.usage is not None:
        _usage_into(result.usage, response.usage)
    response.gateway.CopyFrom(gateway)
    return response
