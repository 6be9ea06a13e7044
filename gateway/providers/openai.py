"""OpenAI Chat Completions, and any server that speaks it (vLLM, Groq, LM Studio, ...).

Canonical requests map almost one to one; fields the gateway does not model
(``ChatRequest.extra``) pass through unchanged, so OpenAI-compatible servers get
their own parameters.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatChoice,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ChunkChoice,
    ContentPart,
    Delta,
    EmbeddingRequest,
    Embeddings,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.errors import (
    GatewayError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.base import Framing, SseEvent, UpstreamRequest

__all__ = ["OpenAICodec", "classify_error", "encode_request", "parse_retry_after"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAICodec:
    """Pure transforms for ``POST {base_url}/chat/completions``."""

    framing: Framing = "sse"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._url = f"{base}/chat/completions"
        self._embeddings_url = f"{base}/embeddings"
        self._models_url = f"{base}/models"
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        body = encode_request(request, model)
        if stream:
            body["stream"] = True
            if include_usage:
                body["stream_options"] = {"include_usage": True}
        headers = self._stream_headers if stream else self._headers
        return UpstreamRequest("POST", self._url, headers, orjson.dumps(body))

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_completion(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(self.name, model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        return UpstreamRequest("POST", self._embeddings_url, self._headers,
                               orjson.dumps(encode_embedding_request(request, model)))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        return decode_embeddings(orjson.loads(body), model)

    def models_request(self) -> UpstreamRequest:
        return UpstreamRequest("GET", self._models_url, self._headers)

    def models_response(self, body: bytes) -> list[str]:
        return [str(m["id"]) for m in orjson.loads(body).get("data") or ()]

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return classify_error(self.name, status, headers, body)


class OpenAIStreamDecoder:
    __slots__ = ("_model", "_provider", "done")

    def __init__(self, provider: str, model: str):
        self._provider = provider
        self._model = model
        self.done = False

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        if event.data == "[DONE]":
            self.done = True
            return []
        data = orjson.loads(event.data)
        if "error" in data and "choices" not in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise UpstreamError(
                f"{self._provider} reported an error mid-stream: "
                f"{str(error.get('message', 'unknown error'))[:500]}",
                provider=self._provider,
                error_type="stream_error",
            )
        return [decode_chunk(data, self._model)]


# --- request -------------------------------------------------------------------------------


def encode_request(request: ChatRequest, model: str) -> dict[str, Any]:
    """The OpenAI JSON body (without ``stream``) for a canonical request."""
    body: dict[str, Any] = dict(request.extra) if request.extra else {}
    body["model"] = model
    body["messages"] = [_encode_message(m) for m in request.messages]
    if request.tools:
        tools = []
        for tool in request.tools:
            function: dict[str, Any] = {"name": tool.name}
            if tool.description:
                function["description"] = tool.description
            if tool.parameters is not None:
                function["parameters"] = tool.parameters
            if tool.strict is not None:
                function["strict"] = tool.strict
            tools.append({"type": "function", "function": function})
        body["tools"] = tools
    if (choice := request.tool_choice) is not None:
        body["tool_choice"] = (
            {"type": "function", "function": {"name": choice.function_name}}
            if choice.mode == "function"
            else choice.mode
        )
    if (fmt := request.response_format) is not None:
        if fmt.type == "json_schema" and fmt.json_schema is not None:
            schema: dict[str, Any] = {"name": fmt.json_schema.name}
            if fmt.json_schema.description:
                schema["description"] = fmt.json_schema.description
            if fmt.json_schema.schema is not None:
                schema["schema"] = fmt.json_schema.schema
            if fmt.json_schema.strict is not None:
                schema["strict"] = fmt.json_schema.strict
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        else:
            body["response_format"] = {"type": fmt.type}
    for key in ("parallel_tool_calls", "temperature", "top_p", "max_tokens",
                "max_completion_tokens", "n", "seed", "presence_penalty", "frequency_penalty"):
        value = getattr(request, key)
        if value is not None:
            body[key] = value
    if request.stop:
        body["stop"] = list(request.stop)
    if request.user:
        body["user"] = request.user
    return body


def _encode_message(message: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    if message.parts:
        out["content"] = [_encode_part(p) for p in message.parts]
    else:
        out["content"] = message.content
    if message.name:
        out["name"] = message.name
    if message.tool_calls:
        out["tool_calls"] = [
            {"id": c.id, "type": "function",
             "function": {"name": c.name, "arguments": c.arguments}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        out["tool_call_id"] = message.tool_call_id
    if message.refusal is not None:
        out["refusal"] = message.refusal
    return out


def _encode_part(part: ContentPart) -> dict[str, Any]:
    if part.type == "text":
        return {"type": "text", "text": part.text}
    if part.type == "image_url":
        image: dict[str, str] = {"url": part.url}
        if part.detail:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    return {"type": "input_audio", "input_audio": {"data": part.data, "format": part.format}}


# --- response ------------------------------------------------------------------------------


def decode_usage(data: Any) -> Usage | None:
    if not isinstance(data, dict):
        return None
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    prompt = int(data.get("prompt_tokens") or 0)
    completion = int(data.get("completion_tokens") or 0)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=int(data.get("total_tokens") or prompt + completion),
        cached_prompt_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def _decode_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    if not raw:
        return ()
    return tuple(
        ToolCall(
            id=str(c.get("id") or ""),
            name=str((c.get("function") or {}).get("name") or ""),
            arguments=str((c.get("function") or {}).get("arguments") or ""),
        )
        for c in raw
    )


def decode_completion(data: dict[str, Any], model: str) -> ChatCompletion:
    choices = []
    for i, raw in enumerate(data["choices"]):
        msg = raw.get("message") or {}
        choices.append(
            ChatChoice(
                index=int(raw.get("index", i)),
                message=Message(
                    role="assistant",
                    content=msg.get("content"),
                    tool_calls=_decode_tool_calls(msg.get("tool_calls")),
                    refusal=msg.get("refusal"),
                    reasoning=_reasoning(msg),
                ),
                finish_reason=raw.get("finish_reason"),
            )
        )
    return ChatCompletion(
        id=str(data.get("id") or ""),
        created=int(data.get("created") or time.time()),
        model=str(data.get("model") or model),
        choices=choices,
        usage=decode_usage(data.get("usage")),
        system_fingerprint=str(data.get("system_fingerprint") or ""),
    )


def _reasoning(message: dict[str, Any]) -> str | None:
    """The reasoning text compatible servers return beside the content: DeepSeek's and
    vLLM's ``reasoning_content``, or ``reasoning`` (vLLM, OpenRouter). OpenAI's own API
    returns none in chat completions."""
    value = message.get("reasoning_content") or message.get("reasoning")
    return value if isinstance(value, str) and value else None


def decode_chunk(data: dict[str, Any], model: str) -> ChatChunk:
    choices = []
    for raw in data.get("choices") or ():
        delta = raw.get("delta") or {}
        tool_calls = tuple(
            ToolCallDelta(
                index=int(c.get("index", 0)),
                id=str(c.get("id") or ""),
                name=str((c.get("function") or {}).get("name") or ""),
                arguments=str((c.get("function") or {}).get("arguments") or ""),
            )
            for c in delta.get("tool_calls") or ()
        )
        choices.append(
            ChunkChoice(
                index=int(raw.get("index", 0)),
                delta=Delta(
                    role=delta.get("role"),
                    content=delta.get("content"),
                    tool_calls=tool_calls,
                    refusal=delta.get("refusal"),
                    reasoning=_reasoning(delta),
                ),
                finish_reason=raw.get("finish_reason"),
            )
        )
    return ChatChunk(
        id=str(data.get("id") or ""),
        created=int(data.get("created") or time.time()),
        model=str(data.get("model") or model),
        choices=choices,
        usage=decode_usage(data.get("usage")),
        system_fingerprint=str(data.get("system_fingerprint") or ""),
    )


# --- embeddings ----------------------------------------------------------------------------


def encode_embedding_request(request: EmbeddingRequest, model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": list(request.inputs),
                            "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.user:
        body["user"] = request.user
    return body


def decode_embeddings(data: dict[str, Any], model: str) -> Embeddings:
    items = sorted(data["data"], key=lambda item: int(item.get("index", 0)))
    return Embeddings(
        model=str(data.get("model") or model),
        vectors=[[float(v) for v in item["embedding"]] for item in items],
        usage=decode_usage(data.get("usage")),
    )


# --- errors --------------------------------------------------------------------------------


def parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from ``Retry-After`` (seconds form) or ``retry-after-ms``; None if absent."""
    for name, scale in (("retry-after-ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


def _error_message(body: bytes) -> tuple[str, str | None]:
    try:
        error = orjson.loads(body).get("error")
    except Exception:
        return "", None
    if isinstance(error, dict):
        param = error.get("param")
        return str(error.get("message") or "")[:1000], str(param) if param else None
    if isinstance(error, str):
        return error[:1000], None
    return "", None


def classify_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> GatewayError:
    """The meaning of an OpenAI-style error answer.

    The caller's mistakes (400, 404, 409, 413, 422) go back as 400 with the
    provider's message; our credentials failing (401, 403) is the gateway's
    problem and the provider's text is not repeated, as it may echo the key.
    """
    message, param = _error_message(body)
    if status in (400, 404, 409, 413, 422):
        return UpstreamRejectedError(
            message or f"{provider} rejected the request ({status})",
            provider=provider, status=status, param=param,
        )
    if status in (401, 403):
        return UpstreamError(
            f"{provider} refused the gateway's credentials ({status})",
            provider=provider, status=status, retryable=False, error_type="auth_error",
        )
    if status == 429:
        return UpstreamRateLimitedError(
            f"{provider} is rate limiting requests (429)",
            provider=provider, status=status, retry_after=parse_retry_after(headers),
            error_type="rate_limited",
        )
    return UpstreamError(
        f"{provider} failed with status {status}",
        provider=provider, status=status,
        retryable=status == 408 or status >= 500,
        retry_after=parse_retry_after(headers),
        error_type="server_error" if status >= 500 else "http_error",
    )
