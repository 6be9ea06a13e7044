"""Anthropic Messages: ``POST {base_url}/v1/messages`` (SSE with named events), ``GET /v1/models``.

Pure transforms between the canonical chat request and the Messages API; the field
mapping, finish reasons and error meanings are tabled in docs/providers.md. Anthropic has no
embeddings API.

Example::

    hi = ChatRequest(model="claude-haiku", messages=(Message(role="user", content="hi"),))
    encode_request(hi, "claude-haiku-4-5")
    # {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "hi"}],
    #  "max_tokens": 4096}
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from gateway.config import ProviderConfig
from gateway.domain import (
    CacheControl,
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
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.base import AnthropicHeaders, Framing, SseEvent, UpstreamRequest
from gateway.providers.openai import parse_retry_after

__all__ = ["AnthropicCodec", "AnthropicStreamDecoder", "MessagesEventDecoder", "classify_error",
           "decode_message", "encode_request"]

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096  # Anthropic requires max_tokens; LiteLLM's default too
JSON_TOOL_NAME = "json_tool_call"  # LiteLLM's name for the JSON-mode tool
PASSTHROUGH = ("top_k", "thinking")  # extra fields that are Anthropic's own

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "pause_turn": "stop", "max_tokens": "length",
    "model_context_window_exceeded": "length", "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


class AnthropicCodec:
    """Pure transforms for the Messages API."""

    framing: Framing = "sse"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        base = self._base_url(config)
        self._url = f"{base}/v1/messages"
        self._count_url = f"{base}/v1/messages/count_tokens"
        self._models_url = f"{base}/v1/models?limit=1000"
        headers = {"content-type": "application/json",
                   "anthropic-version": config.api_version or DEFAULT_VERSION, **config.headers}
        if config.api_key:
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._betas = tuple(b.strip() for b in headers.get("anthropic-beta", "").split(",")
                            if b.strip())

    def _base_url(self, config: ProviderConfig) -> str:
        """Where ``/v1/messages`` hangs (a cloud that serves the same API overrides it)."""
        return (config.base_url or DEFAULT_BASE_URL).rstrip("/")

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key}

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        body = encode_request(request, model)
        if stream:
            body["stream"] = True
        headers = self._stream_headers if stream else self._headers
        return UpstreamRequest("POST", self._url, headers, orjson.dumps(body))

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_message(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder(self.name, model)

    # --- the Messages API passed through (MessagesWire) ---

    def _passthrough_headers(self, base: Mapping[str, str],
                             client: AnthropicHeaders) -> dict[str, str]:
        """The configured headers, with the client's API version (it knows the shapes it
        reads) and its beta flags added to the configured ones."""
        headers = dict(base)
        if client.version:
            headers["anthropic-version"] = client.version
        betas = self._betas + tuple(b for b in client.betas if b not in self._betas)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return headers

    def messages_request(self, body: Mapping[str, Any], model: str, *, stream: bool,
                         headers: AnthropicHeaders) -> UpstreamRequest:
        out = {**body, "model": model}
        if stream:
            out["stream"] = True
        return UpstreamRequest("POST", self._url, self._passthrough_headers(
            self._stream_headers if stream else self._headers, headers), orjson.dumps(out))

    def count_tokens_request(self, body: Mapping[str, Any], model: str, *,
                             headers: AnthropicHeaders) -> UpstreamRequest:
        return UpstreamRequest("POST", self._count_url, self._passthrough_headers(
            self._headers, headers), orjson.dumps({**body, "model": model}))

    def message_response(self, body: bytes) -> dict[str, Any]:
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ValueError("not a message object")
        return data

    def count_tokens_response(self, body: bytes) -> int:
        count = orjson.loads(body)["input_tokens"]
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("input_tokens is not an integer")
        return count

    def messages_decoder(self) -> MessagesEventDecoder:
        return MessagesEventDecoder(self.name)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        raise InvalidRequestError(
            f"anthropic does not offer embeddings; '{request.model}' cannot embed text",
            param="model")

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        raise InvalidRequestError("anthropic does not offer embeddings", param="model")

    def models_request(self) -> UpstreamRequest:
        return UpstreamRequest("GET", self._models_url, self._headers)

    def models_response(self, body: bytes) -> list[str]:
        return [str(m["id"]) for m in orjson.loads(body).get("data") or ()]

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return classify_error(self.name, status, headers, body)


# --- request -------------------------------------------------------------------------------


def encode_request(request: ChatRequest, model: str) -> dict[str, Any]:
    """The Messages JSON body (without ``stream``) for a canonical request.

    System and developer messages become the top-level ``system``; consecutive same-role
    messages merge into one turn, tool results into user turns. JSON mode as LiteLLM does
    it, since the classic API has none: a tool named :data:`JSON_TOOL_NAME` whose
    ``input_schema`` is the schema is added and forced, and its input comes back as the
    message content with finish_reason ``stop``.
    """
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("anthropic returns one choice; 'n' must be 1", param="n")
    body: dict[str, Any] = {k: request.extra[k] for k in PASSTHROUGH if k in request.extra}
    body["model"] = model
    if system := _encode_system(request.messages):
        body["system"] = system
    body["messages"] = _encode_turns(request.messages)
    limit = request.output_limit
    body["max_tokens"] = limit if limit is not None else DEFAULT_MAX_TOKENS
    tools = [_encode_tool(t.name, t.description, t.parameters, t.cache_control)
             for t in request.tools]
    choice: dict[str, Any] | None = None
    if (c := request.tool_choice) is not None:
        choice = ({"type": "tool", "name": c.function_name} if c.mode == "function"
                  else {"type": {"required": "any"}.get(c.mode, c.mode)})
    fmt = request.response_format
    if fmt is not None and fmt.type != "text":
        schema = fmt.json_schema.schema if fmt.json_schema is not None else None
        description = fmt.json_schema.description if fmt.json_schema is not None else ""
        tools.append(_encode_tool(JSON_TOOL_NAME, description or "Respond with JSON.",
                                  schema or {**_EMPTY_SCHEMA, "additionalProperties": True}))
        choice = {"type": "tool", "name": JSON_TOOL_NAME}
    if tools:
        body["tools"] = tools
        if request.parallel_tool_calls is False and (choice or {}).get("type") != "none":
            choice = {"type": "auto", **(choice or {}), "disable_parallel_tool_use": True}
        if choice is not None:
            body["tool_choice"] = choice
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None and not (
            request.temperature is not None and _one_sampler(model)):
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.user:
        body["metadata"] = {"user_id": request.user}
    return body


def _cache(control: CacheControl | None) -> dict[str, str] | None:
    if control is None:
        return None
    return {"type": control.type, "ttl": control.ttl} if control.ttl else {"type": control.type}


def _cached(block: dict[str, Any], control: CacheControl | None) -> dict[str, Any]:
    """``block`` with a prompt-cache breakpoint when ``control`` sets one."""
    if (cache := _cache(control)) is not None:
        block["cache_control"] = cache
    return block


def _encode_system(messages: tuple[Message, ...]) -> str | list[dict[str, Any]]:
    """System and developer messages, joined into one string; as text blocks when one of
    them sets a cache breakpoint (only a block can carry ``cache_control``)."""
    system = [m for m in messages if m.role in ("system", "developer")]
    if not any(m.cache_control or any(p.cache_control for p in m.parts) for m in system):
        return "\n\n".join(t for m in system if (t := m.text()))
    blocks: list[dict[str, Any]] = []
    for m in system:
        if m.parts:
            blocks.extend(_cached({"type": "text", "text": p.text}, p.cache_control)
                          for p in m.parts if p.type == "text" and p.text)
        elif m.content:
            blocks.append(_cached({"type": "text", "text": m.content}, m.cache_control))
    return blocks


def _one_sampler(model: str) -> bool:
    """Whether ``model`` may refuse ``temperature`` and ``top_p`` together (400 "cannot both
    be specified", every Claude from Opus 4.1 on). Only the Claude 3 family (also under a
    cloud's prefix, ``us.anthropic.claude-3-...``) is known to take both; any other id, a
    deployment's own name included, gets the answer that cannot fail."""
    return "claude-3" not in model


def _encode_tool(name: str, description: str, schema: dict[str, Any] | None,
                 cache_control: CacheControl | None = None) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name}
    if description:
        tool["description"] = description
    tool["input_schema"] = {"type": "object", **schema} if schema else dict(_EMPTY_SCHEMA)
    return _cached(tool, cache_control)


def _encode_turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role in ("system", "developer"):
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text" and (
                "cache_control" not in content[0]):
            turn["content"] = content[0]["text"]
    return turns


def _blocks(message: Message) -> list[dict[str, Any]]:
    if message.role == "tool":
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
        if text := message.text():
            result["content"] = text
        return [_cached(result, message.cache_control)]
    blocks: list[dict[str, Any]] = []
    if not message.parts:
        if message.content:
            blocks.append(_cached({"type": "text", "text": message.content},
                                  message.cache_control))
    for part in message.parts:
        if part.type == "text":
            if part.text:
                blocks.append(_cached({"type": "text", "text": part.text}, part.cache_control))
        elif part.type == "image_url":
            blocks.append(_cached({"type": "image", "source": _image_source(part.url)},
                                  part.cache_control))
        else:
            raise InvalidRequestError("anthropic does not accept audio input",
                                      param="messages")
    for call in message.tool_calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                       "input": _arguments(call.arguments)})
    return blocks


def _image_source(url: str) -> dict[str, str]:
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, *params = header.split(";")
        if "base64" not in params or not media_type:
            raise InvalidRequestError("image data: URLs must be base64 with a media type",
                                      param="messages")
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequestError("image URLs must be http(s) or data: URLs", param="messages")


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- response ------------------------------------------------------------------------------


def decode_usage(data: Any) -> Usage:
    """Anthropic's ``input_tokens`` excludes cached tokens; OpenAI's ``prompt_tokens``
    counts reads and creations too (what LiteLLM reports)."""
    data = data if isinstance(data, dict) else {}
    cache_read = int(data.get("cache_read_input_tokens") or 0)
    cache_creation = int(data.get("cache_creation_input_tokens") or 0)
    prompt = int(data.get("input_tokens") or 0) + cache_read + cache_creation
    completion = int(data.get("output_tokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion, cached_prompt_tokens=cache_read,
                 cache_creation_prompt_tokens=cache_creation)


def _finish(stop_reason: Any, json_only: bool) -> FinishReason:
    if stop_reason == "tool_use" and json_only:
        return "stop"
    return _FINISH.get(str(stop_reason), "stop")


def decode_message(data: dict[str, Any], model: str) -> ChatCompletion:
    texts: list[str] = []
    calls: list[ToolCall] = []
    json_content: str | None = None
    for block in data["content"]:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            if block.get("name") == JSON_TOOL_NAME:
                json_content = arguments
            else:
                calls.append(ToolCall(str(block.get("id") or ""), str(block.get("name") or ""),
                                      arguments))
    content = json_content if json_content is not None else (
        "".join(texts) if texts or not calls else None)
    finish = _finish(data.get("stop_reason"), json_content is not None and not calls)
    return ChatCompletion(
        id=str(data.get("id") or ""),
        created=int(time.time()),
        model=str(data.get("model") or model),
        choices=[ChatChoice(0, Message(role="assistant", content=content,
                                       tool_calls=tuple(calls)), finish)],
        usage=decode_usage(data.get("usage")),
    )


class AnthropicStreamDecoder:
    """Named SSE events -> OpenAI-style chunks; one instance per stream.

    ``message_start`` is the role chunk, a ``tool_use`` block's start a tool-call delta with
    its id and name, ``message_delta`` the finish chunk, and ``message_stop`` sets ``done``
    with a usage-only chunk (always sent: the core drops it when the client did not ask).
    An ``error`` event raises :class:`UpstreamError`.
    """

    __slots__ = ("_blocks", "_created", "_id", "_json", "_model", "_provider", "_tools",
                 "_usage", "done")

    def __init__(self, provider: str, model: str):
        self._provider = provider
        self._model = model
        self._id = ""
        self._created = int(time.time())
        self._blocks: dict[int, int] = {}  # content block index -> tool index (-1: JSON mode)
        self._tools = 0
        self._json = False
        self._usage: dict[str, Any] = {}
        self.done = False

    def _chunk(self, delta: Delta | None, finish: FinishReason | None = None) -> ChatChunk:
        return ChatChunk(id=self._id, created=self._created, model=self._model,
                         choices=[ChunkChoice(0, delta or Delta(), finish)])

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        if not event.data.strip():
            return []
        data = orjson.loads(event.data)
        kind = data.get("type") or event.event
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id") or "")
            self._model = str(message.get("model") or self._model)
            self._usage.update(message.get("usage") or {})
            return [self._chunk(Delta(role="assistant", content=""))]
        if kind == "content_block_start":
            return self._block_start(int(data.get("index", 0)), data.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(int(data.get("index", 0)), data.get("delta") or {})
        if kind == "message_delta":
            self._usage.update({k: v for k, v in (data.get("usage") or {}).items()
                                if v is not None})
            reason = (data.get("delta") or {}).get("stop_reason")
            if reason is None:
                return []
            return [self._chunk(None, _finish(reason, self._json and not self._tools))]
        if kind == "message_stop":
            self.done = True
            return [ChatChunk(id=self._id, created=self._created, model=self._model,
                              choices=[], usage=decode_usage(self._usage))]
        if kind == "error":
            raise _stream_error(self._provider, data.get("error"))
        return []  # ping, content_block_stop, and event types added after this was written

    def _block_start(self, index: int, block: dict[str, Any]) -> list[ChatChunk]:
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk(Delta(content=str(block["text"])))]
        if block.get("type") != "tool_use":
            return []
        if block.get("name") == JSON_TOOL_NAME:
            self._blocks[index], self._json = -1, True
            return []
        self._blocks[index] = tool = self._tools
        self._tools += 1
        return [self._chunk(Delta(tool_calls=(ToolCallDelta(
            tool, id=str(block.get("id") or ""), name=str(block.get("name") or "")),)))]

    def _block_delta(self, index: int, delta: dict[str, Any]) -> list[ChatChunk]:
        if delta.get("type") == "text_delta":
            return [self._chunk(Delta(content=str(delta.get("text") or "")))]
        piece = str(delta.get("partial_json") or "")
        if delta.get("type") != "input_json_delta" or not piece or index not in self._blocks:
            return []  # thinking, signatures, citations: not part of OpenAI's answer
        tool = self._blocks[index]
        if tool < 0:
            return [self._chunk(Delta(content=piece))]
        return [self._chunk(Delta(tool_calls=(ToolCallDelta(tool, arguments=piece),)))]


class MessagesEventDecoder:
    """A passed-through stream's events as their JSON objects, unchanged and in order;
    ``done`` after ``message_stop``. An ``error`` event raises :class:`UpstreamError`."""

    __slots__ = ("_provider", "done")

    def __init__(self, provider: str):
        self._provider = provider
        self.done = False

    def decode(self, event: SseEvent) -> list[dict[str, Any]]:
        if not event.data.strip():
            return []
        data = orjson.loads(event.data)
        if not isinstance(data, dict):
            raise ValueError("an event that is not a JSON object")
        kind = data.get("type") or event.event
        if kind == "error":
            raise _stream_error(self._provider, data.get("error"))
        if kind == "message_stop":
            self.done = True
        return [data]


# --- errors --------------------------------------------------------------------------------

_RETRYABLE_TYPES = frozenset({"overloaded_error", "api_error", "rate_limit_error",
                              "timeout_error"})


def _stream_error(provider: str, error: Any) -> UpstreamError:
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type") or "unknown_error")
    detail = ("" if kind in ("authentication_error", "permission_error")
              else f": {str(error.get('message') or '')[:500]}")
    return UpstreamError(
        f"{provider} reported {kind} mid-stream{detail}", provider=provider,
        retryable=kind in _RETRYABLE_TYPES,
        error_type="overloaded" if kind == "overloaded_error" else "stream_error")


def _error_body(body: bytes) -> tuple[str, str]:
    try:
        error = orjson.loads(body).get("error")
    except Exception:
        return "", ""
    if not isinstance(error, dict):
        return "", ""
    return str(error.get("type") or ""), str(error.get("message") or "")[:1000]


def classify_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> GatewayError:
    """The meaning of an Anthropic error answer (``{"type": "error", "error": {type, message}}``).

    The caller's mistakes (400 invalid_request_error, 404 not_found_error, 413
    request_too_large) go back as 400 with Anthropic's message; our credentials or
    billing failing (401, 402, 403) is the gateway's problem and Anthropic's text is
    not repeated. 429 keeps ``retry-after``; 500 api_error and 529 overloaded_error
    are retryable. Other messages name Anthropic's ``request-id`` for support.
    """
    kind, message = _error_body(body)
    request_id = headers.get("request-id")
    ref = f" (request-id {request_id})" if request_id else ""
    if status in (401, 402, 403):
        return UpstreamError(
            f"{provider} refused the gateway's credentials or account ({status}){ref}",
            provider=provider, status=status, retryable=False,
            error_type="billing_error" if status == 402 else "auth_error")
    retry_after = parse_retry_after(headers)
    if status == 429:
        return UpstreamRateLimitedError(
            f"{provider} is rate limiting requests (429){ref}", provider=provider,
            status=status, retry_after=retry_after, error_type="rate_limited")
    if status in (400, 404, 413, 422) or (400 <= status < 500 and status != 408 and kind in (
            "invalid_request_error", "not_found_error", "request_too_large")):
        return UpstreamRejectedError(message or f"{provider} rejected the request ({status})",
                                     provider=provider, status=status)
    if status == 529 or kind == "overloaded_error":
        return UpstreamError(f"{provider} is overloaded ({status}){ref}", provider=provider,
                             status=status, retry_after=retry_after, error_type="overloaded")
    return UpstreamError(
        f"{provider} failed with status {status}{ref}", provider=provider, status=status,
        retryable=status == 408 or status >= 500, retry_after=retry_after,
        error_type="server_error" if status >= 500 else "http_error")
