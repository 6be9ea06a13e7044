"""Ollama's native API: ``POST /api/chat`` (NDJSON stream), ``POST /api/embed``, ``GET /api/tags``.

Pure transforms between the canonical requests and Ollama's; the field mapping is tabled in
docs/providers.md. Ollama answers one choice, cannot force a tool call and cannot fetch
image URLs, so ``n`` > 1 and http(s) images are a 400.

Example::

    hi = ChatRequest(model="llama3", messages=(Message(role="user", content="hi"),))
    encode_chat_request(hi, "llama3", stream=True)
    # {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": True}
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any, Literal

import orjson

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatChoice,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from gateway.errors import GatewayError, InvalidRequestError, UpstreamError, UpstreamRejectedError
from gateway.providers.base import Framing, SseEvent, UpstreamRequest
from gateway.providers.openai import classify_error

__all__ = ["OllamaCodec", "OllamaStreamDecoder", "encode_chat_request"]

DEFAULT_BASE_URL = "http://localhost:11434"

_TOP_LEVEL_EXTRA = frozenset({"keep_alive", "think"})
# Ollama's runtime options (api.Options / Modelfile parameters) a client may pass as extras.
_OPTION_EXTRA = frozenset({
    "num_keep", "top_k", "min_p", "typical_p", "repeat_last_n", "repeat_penalty", "mirostat",
    "mirostat_tau", "mirostat_eta", "penalize_newline", "num_ctx", "num_batch", "num_gpu",
    "main_gpu", "use_mmap", "use_mlock", "num_thread", "numa", "low_vram", "vocab_only", "tfs_z",
})


class OllamaCodec:
    """Pure transforms for Ollama's native API (``base_url`` is the server root)."""

    framing: Framing = "ndjson"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
        self._chat_url = f"{base}/api/chat"
        self._embed_url = f"{base}/api/embed"
        self._tags_url = f"{base}/api/tags"
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:  # Ollama itself has no auth; a proxy in front of it may
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "application/x-ndjson"}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        body = encode_chat_request(request, model, stream=stream)
        headers = self._stream_headers if stream else self._headers
        return UpstreamRequest("POST", self._chat_url, headers, orjson.dumps(body))

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_chat_response(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> OllamaStreamDecoder:
        return OllamaStreamDecoder(self.name, model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        body: dict[str, Any] = {"model": model, "input": list(request.inputs)}
        if request.dimensions is not None:
            body["dimensions"] = request.dimensions
        return UpstreamRequest("POST", self._embed_url, self._headers, orjson.dumps(body))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        data = orjson.loads(body)
        prompt = int(data.get("prompt_eval_count") or 0)
        return Embeddings(
            model=str(data.get("model") or model),
            vectors=[[float(v) for v in vector] for vector in data["embeddings"]],
            usage=Usage(prompt_tokens=prompt, total_tokens=prompt),
        )

    def models_request(self) -> UpstreamRequest:
        return UpstreamRequest("GET", self._tags_url, self._headers)

    def models_response(self, body: bytes) -> list[str]:
        models = orjson.loads(body).get("models") or ()
        return [str(m.get("name") or m.get("model")) for m in models]

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        if status == 404:  # /api/chat and /api/embed answer 404 for a model not pulled
            message = _error_text(body)
            return UpstreamRejectedError(
                f"{self.name} does not have the requested model"
                + (f": {message}" if message else " (404)"),
                provider=self.name, status=status, param="model",
            )
        # Ollama's body is {"error": "<text>"}: the OpenAI classifier reads that shape too.
        return classify_error(self.name, status, headers, body)


def _error_text(body: bytes) -> str:
    try:
        error = orjson.loads(body).get("error")
    except Exception:
        return ""
    return str(error)[:1000] if isinstance(error, str) else ""


# --- request -------------------------------------------------------------------------------


def encode_chat_request(request: ChatRequest, model: str, *, stream: bool) -> dict[str, Any]:
    """The ``/api/chat`` body; raises InvalidRequestError for what Ollama cannot take.

    Sampling fields go in ``options``; extra fields ``keep_alive`` and ``think`` go top
    level, an ``options`` object is merged, Ollama's option names join ``options``, and the
    rest is dropped.
    """
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("Ollama returns one choice: 'n' must be 1.", param="n")
    names = {c.id: c.name for m in request.messages for c in m.tool_calls}
    body: dict[str, Any] = {
        "model": model,
        "messages": [_encode_message(m, i, names) for i, m in enumerate(request.messages)],
        "stream": stream,  # Ollama streams unless told otherwise
    }
    tools = request.tools
    if (choice := request.tool_choice) is not None:
        if choice.mode == "none":
            tools = ()
        elif choice.mode == "function":
            tools = tuple(t for t in tools if t.name == choice.function_name)
    if tools:
        body["tools"] = [
            {"type": "function", "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters or {"type": "object", "properties": {}},
            }}
            for t in tools
        ]
    if (fmt := request.response_format) is not None:
        if fmt.type == "json_schema" and fmt.json_schema and fmt.json_schema.schema is not None:
            body["format"] = fmt.json_schema.schema
        elif fmt.type != "text":
            body["format"] = "json"
    options: dict[str, Any] = {}
    for key in ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty"):
        if (value := getattr(request, key)) is not None:
            options[key] = value
    if request.output_limit is not None:
        options["num_predict"] = request.output_limit
    if request.stop:
        options["stop"] = list(request.stop)
    if request.extra.get("reasoning_effort") is not None and "think" not in request.extra:
        body["think"] = True  # asked for reasoning: Ollama's thinking, returned apart
    for key, value in request.extra.items():
        if key in _TOP_LEVEL_EXTRA:
            body[key] = value
        elif key == "options" and isinstance(value, dict):
            options = {**value, **options}
        elif key in _OPTION_EXTRA:
            options[key] = value
    if options:
        body["options"] = options
    return body


def _encode_message(message: Message, index: int, names: Mapping[str, str]) -> dict[str, Any]:
    role = "system" if message.role == "developer" else message.role
    out: dict[str, Any] = {"role": role, "content": message.content or ""}
    if message.parts:
        texts, images = [], []
        for j, part in enumerate(message.parts):
            where = f"messages[{index}].content[{j}]"
            if part.type == "text":
                texts.append(part.text)
            elif part.type == "image_url":
                images.append(_image_payload(part.url, f"{where}.image_url.url"))
            else:
                raise InvalidRequestError(f"Ollama does not accept {part.type} content.",
                                          param=where)
        out["content"] = "\n".join(texts)
        if images:
            out["images"] = images
    if message.tool_calls:
        out["tool_calls"] = [
            {"function": {"name": c.name, "arguments": _arguments_object(
                c.arguments, f"messages[{index}].tool_calls[{j}].function.arguments")}}
            for j, c in enumerate(message.tool_calls)
        ]
    if message.role == "tool":
        name = message.name or names.get(message.tool_call_id, "")
        if name:
            out["tool_name"] = name
    return out


def _image_payload(url: str, param: str) -> str:
    if url.startswith("data:"):
        header, comma, payload = url.partition(",")
        if comma and header.endswith(";base64") and payload:
            return payload
        raise InvalidRequestError("An image data: URL must be base64 encoded.", param=param)
    raise InvalidRequestError(
        "Ollama cannot fetch image URLs: send the image inline as a base64 data: URL.",
        param=param,
    )


def _arguments_object(arguments: str, param: str) -> Any:
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequestError("Tool call arguments must be a JSON object for Ollama.",
                                  param=param)
    return value


# --- response ------------------------------------------------------------------------------


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _decode_tool_calls(raw: Any) -> tuple[ToolCall, ...]:
    calls = []
    for call in raw or ():
        function = call.get("function") or {}
        arguments = function.get("arguments")
        calls.append(ToolCall(
            id=str(call.get("id") or f"call_{uuid.uuid4().hex[:24]}"),
            name=str(function.get("name") or ""),
            arguments=arguments if isinstance(arguments, str)
            else orjson.dumps(arguments if arguments is not None else {}).decode(),
        ))
    return tuple(calls)


def _finish(data: Mapping[str, Any], tool_calls: bool) -> FinishReason:
    if tool_calls:
        return "tool_calls"
    return "length" if data.get("done_reason") == "length" else "stop"


def _usage(data: Mapping[str, Any]) -> Usage:
    prompt = int(data.get("prompt_eval_count") or 0)
    completion = int(data.get("eval_count") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion)


def decode_chat_response(data: dict[str, Any], model: str) -> ChatCompletion:
    message = data["message"]  # absent: not a chat answer (the provider reports bad_response)
    tool_calls = _decode_tool_calls(message.get("tool_calls"))
    return ChatCompletion(
        id=_new_id(),
        created=int(time.time()),
        model=str(data.get("model") or model),
        choices=[ChatChoice(
            index=0,
            message=Message(role="assistant", content=str(message.get("content") or ""),
                            tool_calls=tool_calls,
                            reasoning=str(message.get("thinking") or "") or None),
            finish_reason=_finish(data, bool(tool_calls)),
        )],
        usage=_usage(data),
    )


class OllamaStreamDecoder:
    """NDJSON objects -> chunks; ``done`` turns true on the object with ``done: true``,
    which becomes a finish chunk and a usage-only chunk (always sent: the core drops it
    when the client did not ask)."""

    __slots__ = ("_created", "_id", "_model", "_provider", "_role_sent", "_tool_calls", "done")

    def __init__(self, provider: str, model: str):
        self._provider = provider
        self._model = model
        self._id = _new_id()
        self._created = int(time.time())
        self._role_sent = False
        self._tool_calls = 0
        self.done = False

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatChunk:
        return ChatChunk(id=self._id, created=self._created, model=self._model,
                         choices=choices, usage=usage)

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        data = orjson.loads(event.data)
        if "error" in data:
            raise UpstreamError(
                f"{self._provider} reported an error mid-stream: {str(data['error'])[:500]}",
                provider=self._provider, error_type="stream_error",
            )
        if data.get("model"):
            self._model = str(data["model"])
        message = data.get("message") or {}
        content = message.get("content") or ""
        thinking = str(message.get("thinking") or "") or None
        calls = _decode_tool_calls(message.get("tool_calls"))
        chunks: list[ChatChunk] = []
        if content or calls or thinking or not self._role_sent:
            deltas = tuple(
                ToolCallDelta(index=self._tool_calls + i, id=c.id, name=c.name,
                              arguments=c.arguments)
                for i, c in enumerate(calls)
            )
            self._tool_calls += len(calls)
            role: Literal["assistant"] | None = None if self._role_sent else "assistant"
            self._role_sent = True
            chunks.append(self._chunk([ChunkChoice(0, Delta(
                role=role, content=content if content or not deltas else None,
                tool_calls=deltas, reasoning=thinking))]))
        if data.get("done"):
            self.done = True
            finish = _finish(data, self._tool_calls > 0)
            chunks.append(self._chunk([ChunkChoice(0, Delta(), finish_reason=finish)]))
            chunks.append(self._chunk([], _usage(data)))
        return chunks
