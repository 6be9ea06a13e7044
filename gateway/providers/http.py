"""The I/O half of every HTTP provider: send what the codec built, read what came back.

Failures are turned into the error tree here, once for all providers:
connection problems and broken bodies are retryable :class:`UpstreamError`,
timeouts are :class:`UpstreamTimeoutError`, error statuses go to the codec.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import orjson

from gateway.config import ProviderConfig
from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway.observability.tracing import inject_headers
from gateway.providers import credentials
from gateway.providers.base import (
    AnthropicHeaders,
    EventDecoder,
    MessagesWire,
    RequestSigner,
    UpstreamRequest,
    WireCodec,
)
from gateway.providers.redact import RedactingCodec
from gateway.providers.transport import iter_events, new_session

__all__ = ["HttpProvider", "http_provider"]

T = TypeVar("T")


class HttpProvider:
    """A :class:`~gateway.providers.base.Provider` over HTTP, driven by a codec."""

    def __init__(self, name: str, config: ProviderConfig, codec: WireCodec,
                 messages: MessagesWire | None = None, signer: RequestSigner | None = None,
                 messages_for: Callable[[str], bool] | None = None):
        self.name = name
        self.type = config.type
        self.endpoint = config.base_url
        self.codec = codec
        # Set when the upstream speaks Anthropic's Messages API: such requests pass through.
        self.messages = messages
        # Which models the Messages API reaches natively (None: all of them), for an upstream
        # that serves it for some models only (Claude on Vertex, not Gemini).
        self._messages_for = messages_for
        self._signer = signer  # per-request credentials (SigV4, OAuth2 tokens)
        self._max_connections = config.max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        # Created lazily so it binds to the running loop (the composition root may
        # build providers before the loop serves).
        if self._session is None:
            self._session = new_session(self._max_connections)
        return self._session

    async def aclose(self) -> None:
        if self._signer is not None:
            await self._signer.aclose()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _send(self, wire: UpstreamRequest, timeout: float) -> aiohttp.client._RequestContextManager:
        headers = dict(wire.headers)
        own_key = credentials.current(self.name)
        if own_key is not None:  # the tenant brought its own key for this provider
            headers.update(self.codec.auth_headers(own_key))
        inject_headers(headers)  # traceparent of the attempt's span
        return self.session.request(
            wire.method,
            wire.url,
            data=wire.body,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout),
        )

    def _wire(self, build: Callable[[], UpstreamRequest]) -> UpstreamRequest:
        """The codec's request. JSON the caller sent (a tool's schema, extra fields, tool
        call arguments) is parsed up to 1024 levels deep but orjson writes only 254: such a
        request cannot be sent, which is the caller's to fix, not an internal error."""
        try:
            return build()
        except orjson.JSONEncodeError as exc:
            if "recursion" not in str(exc).lower():
                raise
            raise InvalidRequestError(f"the request nests JSON too deeply to send to "
                                      f"{self.name}") from None

    async def _signed(self, wire: UpstreamRequest) -> UpstreamRequest:
        if self._signer is None:
            return wire
        try:
            return await self._signer.sign(wire)
        except GatewayError:
            raise
        except Exception as exc:  # credentials that cannot be had: the provider's failure
            raise UpstreamError(f"{self.name}: the gateway could not obtain credentials "
                                f"({type(exc).__name__})", provider=self.name,
                                error_type="auth_error") from None

    async def _unary(self, wire: UpstreamRequest, timeout: float) -> bytes:
        wire = await self._signed(wire)
        try:
            async with self._send(wire, timeout) as response:
                body = await response.read()
                if response.status >= 400:
                    raise self.codec.error(response.status, response.headers, body)
                return body
        except GatewayError:
            raise
        except Exception as exc:
            raise self._transport_error(exc) from None

    async def chat(self, request: ChatRequest, model: str, *, timeout: float) -> ChatCompletion:
        wire = self._wire(lambda: self.codec.chat_request(request, model, stream=False,
                                                          include_usage=False))
        body = await self._unary(wire, timeout)
        return self._parse(self.codec.chat_response, body, model)

    async def embed(self, request: EmbeddingRequest, model: str, *, timeout: float) -> Embeddings:
        wire = self._wire(lambda: self.codec.embed_request(request, model))
        body = await self._unary(wire, timeout)
        return self._parse(self.codec.embed_response, body, model)

    async def list_models(self, *, timeout: float) -> list[str]:
        wire = self.codec.models_request()
        if wire is None:
            return []
        body = await self._unary(wire, timeout)
        return self._parse(lambda raw, _: self.codec.models_response(raw), body, "")

    def _parse(self, decode: Callable[[bytes, str], T], body: bytes, model: str) -> T:
        try:
            return decode(body, model)
        except GatewayError:
            raise
        except Exception:
            raise UpstreamError(
                f"{self.name} returned a response the gateway could not read",
                provider=self.name,
                error_type="bad_response",
            ) from None

    async def stream_chat(
        self, request: ChatRequest, model: str, *, timeout: float, include_usage: bool
    ) -> AsyncIterator[ChatChunk]:
        wire = self._wire(lambda: self.codec.chat_request(request, model, stream=True,
                                                          include_usage=include_usage))
        async for chunk in self._stream(wire, self.codec.stream_decoder(model), timeout):
            yield chunk

    # --- the Messages API, passed through (only when ``self.messages`` is set) ---

    def speaks_messages(self, model: str) -> bool:
        """Whether a Messages request for ``model`` passes through (else it is translated)."""
        return self.messages is not None and (
            self._messages_for is None or self._messages_for(model))

    def _messages_wire(self) -> MessagesWire:
        if self.messages is None:  # the router asks only providers that have one
            raise InvalidRequestError(f"{self.name} does not speak the Messages API")
        return self.messages

    async def create_message(self, body: Mapping[str, Any], model: str,
                             headers: AnthropicHeaders, *, timeout: float) -> dict[str, Any]:
        wire = self._messages_wire()
        request = self._wire(lambda: wire.messages_request(body, model, stream=False,
                                                           headers=headers))
        raw = await self._unary(request, timeout)
        return self._parse(lambda data, _: wire.message_response(data), raw, model)

    async def stream_message(self, body: Mapping[str, Any], model: str,
                             headers: AnthropicHeaders, *, timeout: float
                             ) -> AsyncIterator[dict[str, Any]]:
        wire = self._messages_wire()
        request = self._wire(lambda: wire.messages_request(body, model, stream=True,
                                                           headers=headers))
        async for event in self._stream(request, wire.messages_decoder(), timeout):
            yield event

    async def count_message_tokens(self, body: Mapping[str, Any], model: str,
                                   headers: AnthropicHeaders, *, timeout: float) -> int:
        wire = self._messages_wire()
        request = self._wire(lambda: wire.count_tokens_request(body, model, headers=headers))
        raw = await self._unary(request, timeout)
        return self._parse(lambda data, _: wire.count_tokens_response(data), raw, model)

    async def _stream(self, wire: UpstreamRequest, decoder: EventDecoder[T],
                      timeout: float) -> AsyncIterator[T]:
        """The decoded items of a streamed answer; a stream that ends before the decoder's
        end marker was cut (a retryable upstream error)."""
        wire = await self._signed(wire)
        try:
            async with self._send(wire, timeout) as response:
                if response.status >= 400:
                    raise self.codec.error(response.status, response.headers, await response.read())
                async for event in iter_events(response, self.codec.framing):
                    try:
                        items = decoder.decode(event)
                    except GatewayError:
                        raise
                    except Exception:
                        raise UpstreamError(
                            f"{self.name} sent a stream event the gateway could not read",
                            provider=self.name,
                            error_type="bad_response",
                        ) from None
                    for item in items:
                        yield item
                    if decoder.done:
                        return
        except GatewayError:
            raise
        except Exception as exc:
            raise self._transport_error(exc) from None
        raise UpstreamError(
            f"{self.name} ended the stream before it was complete",
            provider=self.name,
            error_type="stream_cut",
        )

    def _transport_error(self, exc: BaseException) -> GatewayError:
        if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
            return UpstreamTimeoutError(f"{self.name} did not answer in time", provider=self.name)
        if isinstance(exc, aiohttp.ClientConnectorError):
            kind, text = "connect_error", "could not connect to"
        elif isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
            kind, text = "stream_cut", "lost the connection mid-response from"
        elif isinstance(exc, aiohttp.ClientError):
            kind, text = "connection_error", "failed talking to"
        else:
            raise exc  # not a transport failure: a bug, let it surface
        return UpstreamError(f"the gateway {text} {self.name}", provider=self.name,
                             error_type=kind)


def http_provider(name: str, config: ProviderConfig, codec: WireCodec,
                  signer: RequestSigner | None = None, *,
                  messages_for: Callable[[str], bool] | None = None) -> HttpProvider:
    """An HTTP provider for ``codec``, its errors redacted of the provider's credentials,
    passing Messages requests through when the codec speaks that API (for the models
    ``messages_for`` accepts, when given)."""
    wrapped = RedactingCodec(name, config, codec)
    return HttpProvider(name, config, wrapped, wrapped.messages, signer, messages_for)
