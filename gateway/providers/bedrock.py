"""Amazon Bedrock Runtime: chat through ``Converse`` / ``ConverseStream``, Claude's Messages
API through ``InvokeModel`` / ``InvokeModelWithResponseStream`` (``/v1/messages`` passed
through), embeddings through ``InvokeModel`` (Titan Text Embeddings v2, Cohere Embed).

Pure transforms, field names as in botocore's ``bedrock-runtime`` service model; requests
are SigV4-signed by :mod:`gateway.providers.bedrock_auth`; streams are AWS eventstream
frames (``transport.EventStreamDecoder``). Model ids are AWS's, inference profiles too
(``us.anthropic.claude-sonnet-4-5-20250929-v1:0``), percent-encoded in the path as
botocore does (``:`` is ``%3A``) and sent as signed.

Example::

    hi = ChatRequest(model="nova", messages=(Message(role="user", content="hi"),))
    encode_converse(hi)
    # {"messages": [{"role": "user", "content": [{"text": "hi"}]}]}
"""

from __future__ import annotations

import base64
import dataclasses
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config import ProviderConfig
from gateway.domain import (
    CacheControl,
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
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.anthropic import MessagesEventDecoder
from gateway.providers.base import AnthropicHeaders, Framing, SseEvent, UpstreamRequest
from gateway.providers.http import HttpProvider, http_provider
from gateway.providers.openai import parse_retry_after
from gateway.providers.transport import EXCEPTION_EVENT

__all__ = ["BedrockCodec", "ConverseStreamDecoder", "bedrock_provider", "classify_error",
           "decode_converse", "encode_converse"]

ANTHROPIC_VERSION = "bedrock-2023-05-31"
EVENTSTREAM = "application/vnd.amazon.eventstream"
COHERE_MAX_TEXTS = 96  # Cohere Embed on Bedrock takes at most 96 texts per call
INSTALL_HINT = "pip install 'llm-gateway[bedrock]'"

_FINISH: dict[str, FinishReason] = {
    "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
    "max_tokens": "length", "model_context_window_exceeded": "length",
    "content_filtered": "content_filter", "guardrail_intervened": "content_filter",
}
_IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg",
                  "image/gif": "gif", "image/webp": "webp"}
_EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def bedrock_provider(name: str, config: ProviderConfig) -> HttpProvider:
    """The Bedrock provider: a codec, SigV4 signing (or a Bedrock API key in ``api_key``).

    botocore is an extra; without it a configured Bedrock provider stops the start with
    the command that installs it."""
    try:
        import botocore  # noqa: F401
    except ImportError:
        raise ValueError(f"providers.{name}: the bedrock provider needs botocore: "
                         f"{INSTALL_HINT}") from None
    from gateway.providers.bedrock_auth import SigV4Signer

    codec = BedrockCodec(name, config)
    config = dataclasses.replace(config, base_url=codec.endpoint)
    signer = None if config.api_key or config.api_keys else SigV4Signer(name, config)
    return http_provider(name, config, codec, signer, messages_for=is_claude)


def is_claude(model: str) -> bool:
    """Claude (``anthropic.claude...``, or under an inference profile ``us.anthropic...``)
    takes the Messages body through InvokeModel; other models are translated to Converse."""
    return "anthropic.claude" in model


class BedrockCodec:
    """Pure transforms for Bedrock Runtime under ``endpoint_url`` or the regional endpoint."""

    framing: Framing = "eventstream"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        self.endpoint = (config.endpoint_url
                         or f"https://bedrock-runtime.{config.region}.amazonaws.com").rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   **config.headers}
        if config.api_key:  # a Bedrock API key instead of SigV4
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "Accept": EVENTSTREAM}
        self._betas = tuple(b.strip() for b in headers.get("anthropic-beta", "").split(",")
                            if b.strip())

    def _url(self, model: str, operation: str) -> str:
        # As botocore encodes the label: one path segment, ":" as %3A.
        return f"{self.endpoint}/model/{quote(model, safe='')}/{operation}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}  # a Bedrock API key

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        body = orjson.dumps(encode_converse(request))
        if stream:
            return UpstreamRequest("POST", self._url(model, "converse-stream"),
                                   self._stream_headers, body)
        return UpstreamRequest("POST", self._url(model, "converse"), self._headers, body)

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_converse(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> ConverseStreamDecoder:
        return ConverseStreamDecoder(self.name, model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        body: dict[str, Any]
        if _is_cohere(model):
            if len(request.inputs) > COHERE_MAX_TEXTS:
                raise InvalidRequestError(f"{model} embeds at most {COHERE_MAX_TEXTS} texts "
                                          f"per request", param="input")
            body = {"texts": list(request.inputs), "input_type": "search_document"}
        elif "amazon.titan-embed" in model:
            if len(request.inputs) != 1:
                raise InvalidRequestError(f"{model} embeds one text per request; send "
                                          f"'input' as one string", param="input")
            body = {"inputText": request.inputs[0], "normalize": True}
            if request.dimensions is not None:
                body["dimensions"] = request.dimensions
        else:
            raise InvalidRequestError(f"bedrock embeddings take Titan Text Embeddings "
                                      f"(amazon.titan-embed-*) or Cohere Embed (cohere.embed-*) "
                                      f"models, not '{model}'", param="model")
        return UpstreamRequest("POST", self._url(model, "invoke"), self._headers,
                               orjson.dumps(body))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        data = orjson.loads(body)
        if _is_cohere(model):
            vectors = data["embeddings"]
            if isinstance(vectors, dict):  # embeddings_by_type
                vectors = vectors["float"]
            return Embeddings(model=model, vectors=[[float(v) for v in item]
                                                    for item in vectors])
        tokens = int(data.get("inputTextTokenCount") or 0)
        return Embeddings(model=model, vectors=[[float(v) for v in data["embedding"]]],
                          usage=Usage(prompt_tokens=tokens, total_tokens=tokens))

    def models_request(self) -> None:
        return None  # the model list is the control plane's (another service and policy)

    def models_response(self, body: bytes) -> list[str]:
        return []

    # --- Claude's Messages API passed through (MessagesWire) ---

    def _invoke_body(self, body: Mapping[str, Any], headers: AnthropicHeaders) -> dict[str, Any]:
        """The client's Messages body as InvokeModel takes it: no ``model`` (it is in the
        path) nor ``stream`` (the operation says), Bedrock's ``anthropic_version``, and
        the beta flags as the ``anthropic_beta`` list."""
        out = {k: v for k, v in body.items() if k not in ("model", "stream")}
        out["anthropic_version"] = ANTHROPIC_VERSION
        betas = self._betas + tuple(b for b in headers.betas if b not in self._betas)
        if betas:
            out["anthropic_beta"] = list(betas)
        return out

    def messages_request(self, body: Mapping[str, Any], model: str, *, stream: bool,
                         headers: AnthropicHeaders) -> UpstreamRequest:
        data = orjson.dumps(self._invoke_body(body, headers))
        if stream:
            return UpstreamRequest("POST", self._url(model, "invoke-with-response-stream"),
                                   self._stream_headers, data)
        return UpstreamRequest("POST", self._url(model, "invoke"), self._headers, data)

    def count_tokens_request(self, body: Mapping[str, Any], model: str, *,
                             headers: AnthropicHeaders) -> UpstreamRequest:
        """Bedrock's ``CountTokens`` with the InvokeModel body it would count (which, for
        Claude, must carry ``max_tokens``: a count request has none, so 1 is sent)."""
        invoke = {"max_tokens": 1, **self._invoke_body(body, headers)}
        payload = {"input": {"invokeModel": {
            "body": base64.b64encode(orjson.dumps(invoke)).decode()}}}
        return UpstreamRequest("POST", self._url(model, "count-tokens"), self._headers,
                               orjson.dumps(payload))

    def message_response(self, body: bytes) -> dict[str, Any]:
        data = orjson.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("content"), list):
            raise ValueError("not a message object")
        return data

    def count_tokens_response(self, body: bytes) -> int:
        count = orjson.loads(body)["inputTokens"]
        if not isinstance(count, int) or isinstance(count, bool):
            raise ValueError("inputTokens is not an integer")
        return count

    def messages_decoder(self) -> BedrockMessagesDecoder:
        return BedrockMessagesDecoder(self.name)

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return classify_error(self.name, status, headers, body)


def _is_cohere(model: str) -> bool:
    return "cohere.embed" in model  # also under an inference profile's prefix (us.cohere...)


# --- request -------------------------------------------------------------------------------


def encode_converse(request: ChatRequest) -> dict[str, Any]:
    """The ``Converse`` JSON body (the model id travels in the path).

    System and developer messages become ``system`` blocks; consecutive same-role turns
    merge (Converse wants them alternating), tool results join the user turn as
    ``toolResult`` blocks. ``tool_choice`` ``none`` has no Converse form: the tools are
    sent without a choice.
    """
    if request.n is not None and request.n > 1:
        raise InvalidRequestError("bedrock returns one choice; 'n' must be 1", param="n")
    body: dict[str, Any] = {"messages": _encode_turns(request.messages)}
    system = [block for m in request.messages if m.role in ("system", "developer")
              for block in _system_blocks(m)]
    if system:
        body["system"] = system
    if request.tools:
        tools = []
        for tool in request.tools:
            spec: dict[str, Any] = {"name": tool.name}
            if tool.description:
                spec["description"] = tool.description
            schema = {"type": "object", **tool.parameters} if tool.parameters else _EMPTY_SCHEMA
            spec["inputSchema"] = {"json": schema}
            tools.append({"toolSpec": spec})
            tools.extend(_cache_point(tool.cache_control))
        config: dict[str, Any] = {"tools": tools}
        choice = request.tool_choice
        if choice is not None and choice.mode != "none":
            config["toolChoice"] = ({"tool": {"name": choice.function_name}}
                                    if choice.mode == "function"
                                    else {"any" if choice.mode == "required" else "auto": {}})
        body["toolConfig"] = config
    inference: dict[str, Any] = {}
    for key, value in (("maxTokens", request.output_limit),
                       ("temperature", request.temperature), ("topP", request.top_p)):
        if value is not None:
            inference[key] = value
    if request.stop:
        inference["stopSequences"] = list(request.stop)
    if inference:
        body["inferenceConfig"] = inference
    fmt = request.response_format
    if fmt is not None and fmt.type == "json_object":
        raise InvalidRequestError("bedrock Converse has no JSON mode: send response_format "
                                  "json_schema with a schema", param="response_format")
    if fmt is not None and fmt.json_schema is not None and fmt.json_schema.schema is not None:
        schema_format: dict[str, Any] = {"schema": orjson.dumps(fmt.json_schema.schema).decode(),
                                         "name": fmt.json_schema.name}
        if fmt.json_schema.description:
            schema_format["description"] = fmt.json_schema.description
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {
            "jsonSchema": schema_format}}}
    return body


def _encode_turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        if message.role in ("system", "developer"):
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message, i)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return turns


def _cache_point(cache: CacheControl | None) -> list[dict[str, Any]]:
    """A prompt-cache breakpoint: Converse's ``cachePoint`` block after the cached content
    (a ``ttl`` of ``5m`` or ``1h`` passes on; Bedrock refuses other values)."""
    if cache is None:
        return []
    point: dict[str, Any] = {"type": "default"}
    if cache.ttl:
        point["ttl"] = cache.ttl
    return [{"cachePoint": point}]


def _system_blocks(message: Message) -> list[dict[str, Any]]:
    if not message.parts:
        if not message.content:
            return []
        return [{"text": message.content}, *_cache_point(message.cache_control)]
    return [block for part in message.parts if part.type == "text" and part.text
            for block in ({"text": part.text}, *_cache_point(part.cache_control))]


def _blocks(message: Message, index: int) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [{"toolResult": {"toolUseId": message.tool_call_id,
                                "content": [{"text": message.text() or " "}]}},
                *_cache_point(message.cache_control)]
    blocks: list[dict[str, Any]] = []
    if not message.parts and message.content:
        blocks.append({"text": message.content})
        blocks.extend(_cache_point(message.cache_control))
    for j, part in enumerate(message.parts):
        if part.type == "text":
            if part.text:
                blocks.append({"text": part.text})
                blocks.extend(_cache_point(part.cache_control))
        elif part.type == "image_url":
            blocks.append({"image": _image(part, f"messages[{index}].content[{j}].image_url.url")})
            blocks.extend(_cache_point(part.cache_control))
        else:
            raise InvalidRequestError("bedrock Converse does not take audio input here",
                                      param=f"messages[{index}].content[{j}]")
    for call in message.tool_calls:
        blocks.append({"toolUse": {"toolUseId": call.id, "name": call.name,
                                   "input": _arguments(call.arguments)}})
    return blocks


def _image(part: ContentPart, param: str) -> dict[str, Any]:
    """Converse takes image bytes (base64 in JSON), not URLs it would fetch."""
    if not part.url.startswith("data:"):
        raise InvalidRequestError("bedrock takes images as base64 data: URLs", param=param)
    header, _, data = part.url[5:].partition(",")
    media_type, *params = header.split(";")
    image_format = _IMAGE_FORMATS.get(media_type.lower())
    if "base64" not in params or image_format is None:
        raise InvalidRequestError("bedrock takes base64 data: URLs of png, jpeg, gif or webp "
                                  "images", param=param)
    return {"format": image_format, "source": {"bytes": data}}


def _arguments(text: str) -> dict[str, Any]:
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


# --- response ------------------------------------------------------------------------------


def decode_usage(data: Any) -> Usage | None:
    """Converse's ``inputTokens`` excludes cache reads and writes; OpenAI's
    ``prompt_tokens`` counts them (as for Anthropic)."""
    if not isinstance(data, dict):
        return None
    read = int(data.get("cacheReadInputTokens") or 0)
    write = int(data.get("cacheWriteInputTokens") or 0)
    prompt = int(data.get("inputTokens") or 0) + read + write
    completion = int(data.get("outputTokens") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion,
                 total_tokens=prompt + completion, cached_prompt_tokens=read,
                 cache_creation_prompt_tokens=write)


def _finish(reason: Any) -> FinishReason:
    return _FINISH.get(str(reason), "stop")


def _new_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"  # Converse answers carry no id


def decode_converse(data: dict[str, Any], model: str) -> ChatCompletion:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    for block in ((data.get("output") or {}).get("message") or {}).get("content") or ():
        if "text" in block:
            texts.append(str(block["text"]))
        elif "toolUse" in block:
            use = block["toolUse"]
            calls.append(ToolCall(str(use.get("toolUseId") or ""), str(use.get("name") or ""),
                                  orjson.dumps(use.get("input") or {}).decode()))
        elif "reasoningContent" in block:
            thoughts.append(str(((block["reasoningContent"] or {}).get("reasoningText") or {})
                                .get("text") or ""))
    content = "".join(texts) if texts or not calls else None
    return ChatCompletion(
        id=_new_id(), created=int(time.time()), model=model,
        choices=[ChatChoice(0, Message(role="assistant", content=content,
                                       tool_calls=tuple(calls),
                                       reasoning="".join(thoughts) or None),
                            _finish(data.get("stopReason")))],
        usage=decode_usage(data.get("usage")))


class ConverseStreamDecoder:
    """``ConverseStream`` events -> OpenAI-style chunks; one instance per stream.

    ``messageStart`` is the role chunk, a ``toolUse`` block's start a tool-call delta with
    its id and name, ``messageStop`` the finish chunk, and ``metadata`` (always last) sets
    ``done`` with a usage-only chunk. An exception message raises the matching error.
    """

    __slots__ = ("_blocks", "_created", "_id", "_model", "_provider", "_tools", "done")

    def __init__(self, provider: str, model: str):
        self._provider = provider
        self._model = model
        self._id = _new_id()
        self._created = int(time.time())
        self._blocks: dict[int, int] = {}  # content block index -> tool index
        self._tools = 0
        self.done = False

    def _chunk(self, delta: Delta | None, finish: FinishReason | None = None) -> ChatChunk:
        return ChatChunk(id=self._id, created=self._created, model=self._model,
                         choices=[ChunkChoice(0, delta or Delta(), finish)])

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        if event.event.startswith(EXCEPTION_EVENT):
            raise stream_error(self._provider, event)
        data = orjson.loads(event.data) if event.data.strip() else {}
        kind = event.event
        if kind == "messageStart":
            return [self._chunk(Delta(role="assistant", content=""))]
        if kind == "contentBlockStart":
            use = (data.get("start") or {}).get("toolUse")
            if not isinstance(use, dict):
                return []
            self._blocks[int(data.get("contentBlockIndex", 0))] = tool = self._tools
            self._tools += 1
            return [self._chunk(Delta(tool_calls=(ToolCallDelta(
                tool, id=str(use.get("toolUseId") or ""), name=str(use.get("name") or "")),)))]
        if kind == "contentBlockDelta":
            delta = data.get("delta") or {}
            if "text" in delta:
                return [self._chunk(Delta(content=str(delta["text"])))]
            index = int(data.get("contentBlockIndex", 0))
            if "toolUse" in delta and index in self._blocks:
                piece = str((delta["toolUse"] or {}).get("input") or "")
                return [self._chunk(Delta(tool_calls=(ToolCallDelta(
                    self._blocks[index], arguments=piece),)))]
            reasoning = (delta.get("reasoningContent") or {}).get("text")
            if reasoning:
                return [self._chunk(Delta(reasoning=str(reasoning)))]
            return []
        if kind == "messageStop":
            return [self._chunk(None, _finish(data.get("stopReason")))]
        if kind == "metadata":
            self.done = True
            return [ChatChunk(id=self._id, created=self._created, model=self._model,
                              choices=[], usage=decode_usage(data.get("usage")) or Usage())]
        return []  # contentBlockStop, and event types added after this was written


class BedrockMessagesDecoder:
    """``InvokeModelWithResponseStream`` ``chunk`` events, each ``{"bytes": base64}`` of one
    Anthropic event JSON, as those event objects; ``done`` after ``message_stop``."""

    __slots__ = ("_events", "_provider")

    def __init__(self, provider: str):
        self._provider = provider
        self._events = MessagesEventDecoder(provider)

    @property
    def done(self) -> bool:
        return self._events.done

    def decode(self, event: SseEvent) -> list[dict[str, Any]]:
        if event.event.startswith(EXCEPTION_EVENT):
            raise stream_error(self._provider, event)
        if event.event != "chunk":
            return []
        payload = base64.b64decode(orjson.loads(event.data)["bytes"])
        return self._events.decode(SseEvent(data=payload.decode()))


# --- errors --------------------------------------------------------------------------------

_AUTH = frozenset({"accessdeniedexception", "unrecognizedclientexception",
                   "invalidsignatureexception", "expiredtokenexception",
                   "incompletesignatureexception", "missingauthenticationtokenexception"})
_THROTTLED = frozenset({"throttlingexception", "modelnotreadyexception",
                        "servicequotaexceededexception", "toomanyrequestsexception"})
_REJECTED = frozenset({"validationexception", "resourcenotfoundexception"})
_STATUS = {"throttlingexception": 429, "modelnotreadyexception": 429,
           "servicequotaexceededexception": 429, "validationexception": 400,
           "resourcenotfoundexception": 404, "modeltimeoutexception": 408,
           "serviceunavailableexception": 503, "internalserverexception": 500,
           "modelstreamerrorexception": 424, "modelerrorexception": 424}


def _message(body: bytes | str) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    if not isinstance(data, dict):
        return ""
    return str(data.get("message") or data.get("Message") or "")[:1000]


def classify(provider: str, kind: str, status: int, message: str,
             retry_after: float | None = None) -> GatewayError:
    """The meaning of a Bedrock error of type ``kind`` (``ThrottlingException``, or the
    stream's ``throttlingException``): our credentials failing is not retried and AWS's
    text is not repeated; the caller's mistakes go back as 400 with AWS's message;
    throttling is a 429; timeouts, model and service failures are retryable."""
    key = kind.lower()
    status = status or _STATUS.get(key, 500)
    if key in _AUTH or status in (401, 403):
        return UpstreamError(f"{provider} refused the gateway's AWS credentials ({kind or status})",
                             provider=provider, status=status, retryable=False,
                             error_type="auth_error")
    if key in _THROTTLED or status == 429:
        return UpstreamRateLimitedError(
            f"{provider} is throttling requests ({kind or status})", provider=provider,
            status=429, retry_after=retry_after, error_type="rate_limited")
    if key in _REJECTED or (400 <= status < 500 and status not in (408, 424)):
        return UpstreamRejectedError(message or f"{provider} rejected the request ({status})",
                                     provider=provider, status=status)
    return UpstreamError(
        f"{provider} failed with {kind or f'status {status}'}", provider=provider,
        status=status, retry_after=retry_after,
        error_type="timeout" if status == 408 else (
            "overloaded" if key == "serviceunavailableexception" else "server_error"))


def classify_error(provider: str, status: int, headers: Mapping[str, str],
                   body: bytes) -> GatewayError:
    """An error answer: its type is the ``x-amzn-ErrorType`` header (``Type:namespace``),
    its text the body's ``message``."""
    kind = (headers.get("x-amzn-ErrorType") or "").split(":", 1)[0]
    return classify(provider, kind, status, _message(body), parse_retry_after(headers))


def stream_error(provider: str, event: SseEvent) -> GatewayError:
    """An exception message in the middle of an eventstream."""
    kind = event.event.removeprefix(EXCEPTION_EVENT)
    error = classify(provider, kind, 0, _message(event.data))
    if isinstance(error, UpstreamError) and not isinstance(error, UpstreamRateLimitedError):
        error.message = f"{provider} reported {kind} mid-stream"
        if error.retryable and (detail := _message(event.data)):
            error.message += f": {detail[:500]}"
        error.args = (error.message,)
    return error
