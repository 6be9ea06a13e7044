"""What the routing layer calls (:class:`Provider`) and what each HTTP provider
module implements (:class:`WireCodec`, pure transforms with no I/O).

A new HTTP provider is one module with a ``WireCodec`` and one line in
``registry.py``; :class:`gateway.providers.http.HttpProvider` does the I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import GatewayError

__all__ = ["AnthropicHeaders", "ChunkDecoder", "EventDecoder", "Framing", "MessagesWire",
           "Provider", "RequestSigner", "SseEvent", "UpstreamRequest", "WireCodec"]

# How a streamed answer is framed: server-sent events, NDJSON lines, or AWS eventstream.
Framing = Literal["sse", "ndjson", "eventstream"]

T = TypeVar("T")


class Provider(Protocol):
    """A deployment the router can send a chat request to.

    ``model`` is the upstream model name (the target's, not the client's alias);
    ``timeout`` bounds the whole call in seconds.
    """

    name: str
    type: str
    endpoint: str  # the upstream's base URL; empty for in-process providers

    async def chat(self, request: ChatRequest, model: str, *, timeout: float) -> ChatCompletion: ...

    def stream_chat(
        self, request: ChatRequest, model: str, *, timeout: float, include_usage: bool
    ) -> AsyncIterator[ChatChunk]: ...

    async def embed(
        self, request: EmbeddingRequest, model: str, *, timeout: float
    ) -> Embeddings: ...

    async def list_models(self, *, timeout: float) -> list[str]:
        """Model names the upstream itself reports (empty when it cannot say)."""
        ...

    async def aclose(self) -> None: ...


@dataclass(slots=True, frozen=True)
class UpstreamRequest:
    """An HTTP request to an upstream, built by a codec, sent by the transport."""

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(slots=True, frozen=True)
class SseEvent:
    """One server-sent event (``data`` lines joined by newlines), or one NDJSON line."""

    data: str
    event: str = ""


class EventDecoder(Protocol[T]):
    """Turns a stream's events into items; one instance per stream (it keeps state).

    ``done`` turns true on the provider's end-of-stream marker; a stream that
    ends before that was cut. An in-stream error event raises a GatewayError.
    """

    @property
    def done(self) -> bool: ...

    def decode(self, event: SseEvent) -> list[T]: ...


ChunkDecoder = EventDecoder[ChatChunk]


class WireCodec(Protocol):
    """The pure half of an HTTP provider: canonical <-> wire, and error meaning."""

    framing: Framing

    def auth_headers(self, api_key: str) -> dict[str, str]:
        """How a credential travels to this provider (a tenant's own key uses it)."""
        ...

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest: ...

    def chat_response(self, body: bytes, model: str) -> ChatCompletion: ...

    def stream_decoder(self, model: str) -> ChunkDecoder: ...

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        """Raise InvalidRequestError when the provider has no embeddings API."""
        ...

    def embed_response(self, body: bytes, model: str) -> Embeddings: ...

    def models_request(self) -> UpstreamRequest | None:
        """The upstream's model-list request, or None when it has none."""
        ...

    def models_response(self, body: bytes) -> list[str]: ...

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError: ...


@dataclass(slots=True, frozen=True)
class AnthropicHeaders:
    """The client's ``anthropic-version`` (empty: the provider's default) and
    ``anthropic-beta`` flags, for an upstream that speaks the Messages API."""

    version: str = ""
    betas: tuple[str, ...] = ()


@runtime_checkable
class MessagesWire(Protocol):
    """A codec whose upstream speaks Anthropic's Messages API: a Messages request passes
    through, its body unchanged but for the model id (and the envelope a cloud needs)."""

    def messages_request(self, body: Mapping[str, Any], model: str, *, stream: bool,
                         headers: AnthropicHeaders) -> UpstreamRequest: ...

    def count_tokens_request(self, body: Mapping[str, Any], model: str, *,
                             headers: AnthropicHeaders) -> UpstreamRequest: ...

    def message_response(self, body: bytes) -> dict[str, Any]:
        """The upstream's ``message`` object, as JSON."""
        ...

    def count_tokens_response(self, body: bytes) -> int: ...

    def messages_decoder(self) -> EventDecoder[dict[str, Any]]:
        """A stream's events as their JSON objects, in order; ``done`` after
        ``message_stop``."""
        ...


class RequestSigner(Protocol):
    """Authenticates each request just before it is sent, for upstreams whose credential is
    not a fixed header: a SigV4 signature (Bedrock), a short-lived OAuth2 token (Vertex).
    ``sign`` must not block the event loop (refreshes run ahead of expiry, off the loop)."""

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest: ...

    async def aclose(self) -> None: ...
