"""Keep the gateway's own credentials out of what an upstream says back.

Some upstream text reaches the caller by design: a 400's message (the caller's mistake,
worth reading), an error event in the middle of a stream. An upstream may echo the key it
was sent in such text (a proxy saying "invalid key sk-..."), and then it would go to the
caller, into the gRPC status, the span's exception event and the log. :class:`RedactingCodec`
wraps a provider's codec and replaces, in every :class:`GatewayError` made from upstream
bytes, each credential this provider sends -- the configured ``api_key``, every key of its
``api_keys`` pool, the values of its configured ``headers`` (an Entra ID token) and the
tenant's own key for the request being served -- as is or URL-encoded, with ``[redacted]``.

Example::

    codec = RedactingCodec("openai", config, OpenAICodec("openai", config))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import quote

from gateway.config import ProviderConfig
from gateway.domain import ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import GatewayError
from gateway.providers import credentials
from gateway.providers.base import (
    AnthropicHeaders,
    ChunkDecoder,
    EventDecoder,
    Framing,
    MessagesWire,
    SseEvent,
    UpstreamRequest,
    WireCodec,
)

__all__ = ["REDACTED", "RedactingCodec", "redact"]

T = TypeVar("T")
REDACTED = "[redacted]"
MIN_SECRET = 8  # shorter values are not keys, and replacing them would mangle plain words


def _forms(values: Iterable[str]) -> list[str]:
    """Each credential, its token without an auth scheme (``Bearer x`` -> ``x``), and their
    URL-encoded forms; longest first, so a longer one is replaced before a part of it."""
    found: set[str] = set()
    for value in values:
        value = value.strip()
        scheme, _, token = value.partition(" ")
        for form in (value, token.strip()):
            if len(form) >= MIN_SECRET:
                found.update((form, quote(form, safe="")))
    return sorted(found, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` (and its obvious forms) replaced."""
    for form in _forms(secrets):
        if form in text:
            text = text.replace(form, REDACTED)
    return text


class RedactingCodec:
    """A :class:`WireCodec` that delegates everything to ``codec`` and redacts the errors it
    makes from upstream answers (error statuses, error events, unreadable bodies)."""

    def __init__(self, name: str, config: ProviderConfig, codec: WireCodec):
        self._name = name
        self._codec = codec
        self._configured = tuple(v for v in (
            config.api_key, *(k.key for k in config.api_keys), config.secret_access_key,
            config.session_token, config.access_key_id, *config.headers.values()) if v)
        self.framing: Framing = codec.framing
        # The Messages API passed through, when the upstream speaks it.
        self.messages: MessagesWire | None = (
            _RedactingMessages(codec, self) if isinstance(codec, MessagesWire) else None)

    def clean(self, exc: GatewayError) -> GatewayError:
        """``exc`` itself, its message redacted (its args too: tracebacks print them)."""
        own = credentials.current(self._name)
        secrets = (*self._configured, own) if own else self._configured
        message = redact(exc.message, secrets)
        if message != exc.message:
            exc.message = message
            exc.args = (message, *exc.args[1:])
        return exc

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return self._codec.auth_headers(api_key)

    def chat_request(self, request: ChatRequest, model: str, *, stream: bool,
                     include_usage: bool) -> UpstreamRequest:
        return self._codec.chat_request(request, model, stream=stream,
                                        include_usage=include_usage)

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        try:
            return self._codec.chat_response(body, model)
        except GatewayError as exc:
            self.clean(exc)
            raise

    def stream_decoder(self, model: str) -> ChunkDecoder:
        return _RedactingDecoder(self._codec.stream_decoder(model), self)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        return self._codec.embed_request(request, model)

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        try:
            return self._codec.embed_response(body, model)
        except GatewayError as exc:
            self.clean(exc)
            raise

    def models_request(self) -> UpstreamRequest | None:
        return self._codec.models_request()

    def models_response(self, body: bytes) -> list[str]:
        try:
            return self._codec.models_response(body)
        except GatewayError as exc:
            self.clean(exc)
            raise

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return self.clean(self._codec.error(status, headers, body))


class _RedactingMessages:
    """The Messages API half of a codec, its error events redacted."""

    __slots__ = ("_codec", "_wire")

    def __init__(self, wire: MessagesWire, codec: RedactingCodec):
        self._wire = wire
        self._codec = codec

    def messages_request(self, body: Mapping[str, Any], model: str, *, stream: bool,
                         headers: AnthropicHeaders) -> UpstreamRequest:
        return self._wire.messages_request(body, model, stream=stream, headers=headers)

    def count_tokens_request(self, body: Mapping[str, Any], model: str, *,
                             headers: AnthropicHeaders) -> UpstreamRequest:
        return self._wire.count_tokens_request(body, model, headers=headers)

    def message_response(self, body: bytes) -> dict[str, Any]:
        return self._wire.message_response(body)

    def count_tokens_response(self, body: bytes) -> int:
        return self._wire.count_tokens_response(body)

    def messages_decoder(self) -> EventDecoder[dict[str, Any]]:
        return _RedactingDecoder(self._wire.messages_decoder(), self._codec)


class _RedactingDecoder(Generic[T]):
    """A stream's decoder whose error events are redacted."""

    __slots__ = ("_codec", "_decoder")

    def __init__(self, decoder: EventDecoder[T], codec: RedactingCodec):
        self._decoder = decoder
        self._codec = codec

    @property
    def done(self) -> bool:
        return self._decoder.done

    def decode(self, event: SseEvent) -> list[T]:
        try:
            return self._decoder.decode(event)
        except GatewayError as exc:
            self._codec.clean(exc)
            raise
