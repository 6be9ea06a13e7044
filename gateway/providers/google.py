"""Google Gemini: the Generative Language API ``v1beta`` (``generateContent``,
``streamGenerateContent?alt=sse``, ``embedContent`` / ``batchEmbedContents``, ``models``).

Pure transforms between the canonical requests and Gemini's; the field mapping, finish
reasons and error meanings are tabled in docs/providers.md. The key goes in
``x-goog-api-key``, never in the query, so it never lands in access logs.

Example::

    hi = ChatRequest(model="gemini", messages=(Message(role="user", content="hi"),))
    encode_request(hi, "gemini-2.5-flash")
    # {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, unquote_to_bytes

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
    FinishReason,
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
from gateway.providers.openai import parse_retry_after

__all__ = ["GoogleCodec", "GoogleStreamDecoder", "classify_error", "encode_request"]

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"
SKIP_SIGNATURE = "skip_thought_signature_validator"

_FILTERED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII",
                       "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION"})
_SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "enum",
                          "default", "example", "items", "minItems", "maxItems", "properties",
                          "required", "minProperties", "maxProperties", "propertyOrdering",
                          "minLength", "maxLength", "pattern", "minimum", "maximum", "anyOf"})
_FORMATS = frozenset({"enum", "date-time", "int32", "int64", "float", "double"})
_MIME_BY_EXT = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png",
                "webp": "image/webp", "gif": "image/gif", "heic": "image/heic",
                "heif": "image/heif", "pdf": "application/pdf"}
_MAJOR = re.compile(r"gemini-(\d+)")


class GoogleCodec:
    """Pure transforms for the Gemini API under ``{base_url}/v1beta``."""

    framing: Framing = "sse"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        self._root = f"{(config.base_url or DEFAULT_BASE_URL).rstrip('/')}/{API_VERSION}"
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}

    def _url(self, model: str, method: str) -> str:
        # The model name comes from the client: quoted, it stays one path segment.
        return f"{self._root}/models/{quote(model.removeprefix('models/'), safe='-._~')}:{method}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-goog-api-key": api_key}

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        body = orjson.dumps(encode_request(request, model))
        if stream:
            url = self._url(model, "streamGenerateContent") + "?alt=sse"
            return UpstreamRequest("POST", url, self._stream_headers, body)
        return UpstreamRequest("POST", self._url(model, "generateContent"), self._headers, body)

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_completion(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> GoogleStreamDecoder:
        return GoogleStreamDecoder(self.name, model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        def one(text: str) -> dict[str, Any]:
            item: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
            if request.dimensions is not None:
                item["outputDimensionality"] = request.dimensions
            return item

        if len(request.inputs) == 1:
            return UpstreamRequest("POST", self._url(model, "embedContent"), self._headers,
                                   orjson.dumps(one(request.inputs[0])))
        name = f"models/{model.removeprefix('models/')}"
        body = {"requests": [{"model": name, **one(text)} for text in request.inputs]}
        return UpstreamRequest("POST", self._url(model, "batchEmbedContents"), self._headers,
                               orjson.dumps(body))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        data = orjson.loads(body)
        items = [data["embedding"]] if "embedding" in data else data["embeddings"]
        return Embeddings(model=model, vectors=[[float(v) for v in item["values"]]
                                                for item in items])

    def models_request(self) -> UpstreamRequest:
        return UpstreamRequest("GET", f"{self._root}/models?pageSize=1000", self._headers)

    def models_response(self, body: bytes) -> list[str]:
        return [str(m["name"]).removeprefix("models/")
                for m in orjson.loads(body).get("models") or ()]

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return classify_error(self.name, status, headers, body)


# --- request -------------------------------------------------------------------------------


def encode_request(request: ChatRequest, model: str) -> dict[str, Any]:
    """The ``generateContent`` JSON body for a canonical request.

    Consecutive tool results make one ``user`` turn of ``functionResponse`` parts. Gemini 3+
    rejects a replayed function call without a thought signature, which OpenAI clients
    cannot carry: the first call of a replayed turn gets Google's documented
    :data:`SKIP_SIGNATURE`.
    """
    match = _MAJOR.match(model.removeprefix("models/"))
    needs_signature = match is not None and int(match.group(1)) >= 3
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    responses: list[dict[str, Any]] | None = None  # the open turn of tool results
    for message in request.messages:
        if message.role in ("system", "developer"):
            system.append({"text": message.text()})
            continue
        if message.role == "tool":
            name = call_names.get(message.tool_call_id) or message.name or message.tool_call_id
            part: dict[str, Any] = {"functionResponse": {
                "name": name, "response": {"content": _json_or_text(message.text())}}}
            if responses is None:
                responses = []
                contents.append({"role": "user", "parts": responses})
            responses.append(part)
            continue
        responses = None
        if message.role == "assistant":
            parts: list[dict[str, Any]] = [{"text": t} for t in (message.text(),) if t]
            for i, call in enumerate(message.tool_calls):
                call_names[call.id] = call.name
                args = _json_or_text(call.arguments or "{}")
                parts.append({"functionCall": {  # args is a Struct: an object or nothing
                    "name": call.name, "args": args if isinstance(args, dict) else {}}})
                if needs_signature and i == 0:
                    parts[-1]["thoughtSignature"] = SKIP_SIGNATURE
            if parts:
                contents.append({"role": "model", "parts": parts})
        elif message.parts:
            contents.append({"role": "user", "parts": [_encode_part(p) for p in message.parts]})
        else:
            contents.append({"role": "user", "parts": [{"text": message.content or ""}]})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if request.tools:
        declarations = []
        for tool in request.tools:
            declaration: dict[str, Any] = {"name": tool.name}
            if tool.description:
                declaration["description"] = tool.description
            if tool.parameters and tool.parameters.get("properties"):
                declaration["parameters"] = gemini_schema(tool.parameters)
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if (choice := request.tool_choice) is not None:
        config: dict[str, Any] = {"mode": {"auto": "AUTO", "none": "NONE"}.get(choice.mode, "ANY")}
        if choice.mode == "function":
            config["allowedFunctionNames"] = [choice.function_name]
        body["toolConfig"] = {"functionCallingConfig": config}
    if generation := _generation_config(request):
        body["generationConfig"] = generation
    return body


# OpenAI's reasoning_effort as a Gemini thinking budget (tokens).
_THINKING_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _generation_config(request: ChatRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in (("temperature", request.temperature), ("topP", request.top_p),
                       ("topK", request.extra.get("top_k")),
                       ("maxOutputTokens", request.output_limit),
                       ("candidateCount", request.n), ("seed", request.seed),
                       ("presencePenalty", request.presence_penalty),
                       ("frequencyPenalty", request.frequency_penalty)):
        if value is not None:
            out[key] = value
    if request.stop:
        out["stopSequences"] = list(request.stop)
    effort = request.extra.get("reasoning_effort")
    if effort in _THINKING_BUDGETS:  # asked for reasoning: with its summaries in the answer
        out["thinkingConfig"] = {"includeThoughts": True,
                                 "thinkingBudget": _THINKING_BUDGETS[effort]}
    if (fmt := request.response_format) is not None and fmt.type != "text":
        out["responseMimeType"] = "application/json"
        if fmt.json_schema is not None and fmt.json_schema.schema is not None:
            # Standard JSON Schema; the older responseSchema takes the OpenAPI subset and
            # rejects additionalProperties.
            schema = dict(fmt.json_schema.schema)
            schema.pop("$schema", None)
            out["responseJsonSchema"] = schema
    return out


def _json_or_text(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def _encode_part(part: ContentPart) -> dict[str, Any]:
    if part.type == "text":
        return {"text": part.text}
    if part.type == "input_audio":
        return {"inlineData": {"mimeType": f"audio/{part.format or 'wav'}", "data": part.data}}
    if part.url.startswith("data:"):  # an image_url part
        header, _, payload = part.url[5:].partition(",")
        mime, _, encoding = header.partition(";")
        if encoding != "base64":  # a URL-encoded data URL: Gemini takes base64 only
            payload = base64.b64encode(unquote_to_bytes(payload)).decode()
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": payload}}
    path = part.url.split("?", 1)[0].split("#", 1)[0]
    extension = path.rsplit(".", 1)[-1].lower() if "." in path.rsplit("/", 1)[-1] else ""
    return {"fileData": {"mimeType": _MIME_BY_EXT.get(extension, "image/jpeg"),
                         "fileUri": part.url}}


def gemini_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema rewritten into the OpenAPI subset ``functionDeclarations`` accept:
    ``$ref`` inlined, null unions as ``nullable``, other keys and unsupported formats dropped."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _schema(schema, defs, 0)


def _schema(node: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if depth > 32:  # a recursive $ref: Gemini cannot express it, stop unrolling
        return {"type": "OBJECT"}
    ref = node.get("$ref")
    if isinstance(ref, str) and isinstance(defs.get(ref.rsplit("/", 1)[-1]), dict):
        node = {**defs[ref.rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    out: dict[str, Any] = {}
    nullable = False
    kind = node.get("type")
    if isinstance(kind, list):
        nullable = "null" in kind
        kind = next((k for k in kind if k != "null"), None)
    if isinstance(kind, str):
        out["type"] = kind.upper()
    branches = [b for b in node.get("anyOf") or node.get("oneOf") or () if isinstance(b, dict)]
    if branches:
        rest = [b for b in branches if b.get("type") != "null"]
        nullable = nullable or len(rest) < len(branches)
        if len(rest) == 1:
            out.update(_schema(rest[0], defs, depth + 1))
        elif rest:
            out["anyOf"] = [_schema(b, defs, depth + 1) for b in rest]
    for key, value in node.items():
        if key not in _SCHEMA_KEYS or key in ("type", "anyOf"):
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _schema(v, defs, depth + 1) for k, v in value.items()
                        if isinstance(v, dict)}
        elif key == "items" and isinstance(value, dict):
            out[key] = _schema(value, defs, depth + 1)
        elif key == "format" and value not in _FORMATS:
            continue
        else:
            out[key] = value
    if nullable:
        out["nullable"] = True
    if "properties" in out and "type" not in out:
        out["type"] = "OBJECT"
    return out


# --- response ------------------------------------------------------------------------------


def decode_usage(data: Any) -> Usage | None:
    """Completion tokens include the thoughts, where OpenAI counts reasoning."""
    if not isinstance(data, dict):
        return None
    prompt = int(data.get("promptTokenCount") or 0)
    thoughts = int(data.get("thoughtsTokenCount") or 0)
    completion = int(data.get("candidatesTokenCount") or 0) + thoughts
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=int(data.get("totalTokenCount") or prompt + completion),
                 cached_prompt_tokens=int(data.get("cachedContentTokenCount") or 0),
                 reasoning_tokens=thoughts)


def finish_reason(reason: str, called: bool) -> FinishReason:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called else "stop"


def _read_parts(candidate: dict[str, Any]) -> tuple[str, list[ToolCall], str]:
    """The answer's text, its function calls, and its thought summaries (parts marked
    ``thought``, sent when ``includeThoughts`` is on)."""
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            call = part["functionCall"]
            calls.append(ToolCall(id=f"call_{secrets.token_hex(12)}",
                                  name=str(call.get("name") or ""),
                                  arguments=orjson.dumps(call.get("args") or {}).decode()))
        elif "text" in part:
            (thoughts if part.get("thought") else texts).append(str(part["text"]))
    return "".join(texts), calls, "".join(thoughts)


def _response_id(data: dict[str, Any]) -> str:
    return f"chatcmpl-{data.get('responseId') or secrets.token_hex(12)}"


def decode_completion(data: dict[str, Any], model: str) -> ChatCompletion:
    choices = []
    for i, candidate in enumerate(data.get("candidates") or ()):
        text, calls, thoughts = _read_parts(candidate)
        reason = str(candidate.get("finishReason") or "")
        choices.append(ChatChoice(
            index=int(candidate.get("index", i)),
            message=Message(role="assistant", content=None if calls and not text else text,
                            tool_calls=tuple(calls), reasoning=thoughts or None),
            finish_reason=finish_reason(reason, bool(calls)),
        ))
    if not choices:  # the prompt itself was blocked, or nothing came back
        blocked = bool((data.get("promptFeedback") or {}).get("blockReason"))
        choices.append(ChatChoice(index=0, message=Message(role="assistant", content=""),
                                  finish_reason="content_filter" if blocked else "stop"))
    return ChatCompletion(
        id=_response_id(data),
        created=int(time.time()),
        model=str(data.get("modelVersion") or model),
        choices=choices,
        usage=decode_usage(data.get("usageMetadata")),
    )


class GoogleStreamDecoder:
    """Each event is a whole ``GenerateContentResponse`` carrying the next piece.

    There is no ``[DONE]``: the stream is complete once every candidate has a finishReason,
    and usage then goes out as a last chunk with no choices (the core drops it unless the
    client asked).
    """

    __slots__ = ("_created", "_finished", "_id", "_model", "_provider", "_tools", "_usage",
                 "done")

    def __init__(self, provider: str, model: str):
        self._provider = provider
        self._model = model
        self._id = ""
        self._created = int(time.time())
        self._tools: dict[int, int] = {}  # candidate index -> tool calls so far
        self._finished: dict[int, bool] = {}  # candidate index -> finished
        self._usage: Usage | None = None
        self.done = False

    def _chunk(self, choices: list[ChunkChoice], usage: Usage | None = None) -> ChatChunk:
        return ChatChunk(id=self._id, created=self._created, model=self._model,
                         choices=choices, usage=usage)

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        data = orjson.loads(event.data)
        if "error" in data and "candidates" not in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            raise UpstreamError(
                f"{self._provider} reported an error mid-stream: "
                f"{str(error.get('message', 'unknown error'))[:500]}",
                provider=self._provider, error_type="stream_error",
            )
        self._id = self._id or _response_id(data)
        self._model = str(data.get("modelVersion") or self._model)
        self._usage = decode_usage(data.get("usageMetadata")) or self._usage
        chunks: list[ChatChunk] = []
        candidates = data.get("candidates") or ()
        if not candidates and (data.get("promptFeedback") or {}).get("blockReason"):
            candidates = [{"index": 0, "finishReason": "SAFETY"}]
        for candidate in candidates:
            index = int(candidate.get("index", 0))
            if index not in self._finished:
                self._finished[index] = False
                chunks.append(self._chunk([ChunkChoice(index, Delta(role="assistant",
                                                                    content=""))]))
            text, calls, thoughts = _read_parts(candidate)
            if thoughts:
                chunks.append(self._chunk([ChunkChoice(index, Delta(reasoning=thoughts))]))
            if text:
                chunks.append(self._chunk([ChunkChoice(index, Delta(content=text))]))
            if calls:
                first = self._tools.get(index, 0)
                self._tools[index] = first + len(calls)
                deltas = tuple(ToolCallDelta(first + i, c.id, c.name, c.arguments)
                               for i, c in enumerate(calls))
                chunks.append(self._chunk([ChunkChoice(index, Delta(tool_calls=deltas))]))
            if reason := candidate.get("finishReason"):
                self._finished[index] = True
                finish = finish_reason(str(reason), index in self._tools)
                chunks.append(self._chunk([ChunkChoice(index, Delta(), finish_reason=finish)]))
        if self._finished and all(self._finished.values()):
            self.done = True
            if self._usage is not None:
                chunks.append(self._chunk([], self._usage))
        return chunks


# --- errors --------------------------------------------------------------------------------


def _error_body(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    if isinstance(data, list) and data:  # ?alt=json streams wrap the error in a list
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (a Duration such as ``"7s"``)."""
    delay = next((str(d["retryDelay"]) for d in details if "retryDelay" in d), "")
    try:
        return max(0.0, float(delay.removesuffix("s"))) if delay.endswith("s") else None
    except ValueError:
        return None


def classify_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> GatewayError:
    """The meaning of a Google ``{"error": {"code", "message", "status", "details"}}`` answer.

    A bad key comes back as 400 INVALID_ARGUMENT with reason ``API_KEY_INVALID``: that and
    401/403 are the gateway's credentials failing, and Google's text is not repeated.
    """
    error = _error_body(body)
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reasons = {str(d.get("reason")) for d in details if "reason" in d}
    message = str(error.get("message") or "")[:1000]
    if status in (401, 403) or "API_KEY_INVALID" in reasons:
        return UpstreamError(
            f"{provider} refused the gateway's credentials ({status})",
            provider=provider, status=status, retryable=False, error_type="auth_error",
        )
    if status in (400, 404, 409, 413, 422):
        return UpstreamRejectedError(
            message or f"{provider} rejected the request ({status})",
            provider=provider, status=status,
        )
    if status == 429:
        return UpstreamRateLimitedError(
            f"{provider} is rate limiting requests (429)",
            provider=provider, status=status, error_type="rate_limited",
            retry_after=parse_retry_after(headers) or _retry_delay(details),
        )
    overloaded = status == 503 or error.get("status") == "UNAVAILABLE"
    return UpstreamError(
        f"{provider} is overloaded ({status})" if overloaded
        else f"{provider} failed with status {status}",
        provider=provider, status=status,
        retryable=status == 408 or status >= 500,
        retry_after=parse_retry_after(headers),
        error_type="overloaded" if overloaded else (
            "server_error" if status >= 500 else "http_error"),
    )
