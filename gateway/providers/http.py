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
from yarl import URL

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    EmbeddingRequest,
    Embeddings,
    Usage,
)
from gateway.errors import (
    GatewayError,
    InvalidRequestError,
    UpstreamError,
    UpstreamTimeoutError,
)
from gateway.observability import metrics
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
from gateway.providers.keypool import KeyPool, Lease, report_key_rest, report_key_state
from gateway.providers.redact import RedactingCodec
from gateway.providers.transport import iter_events, new_session

__all__ = ["HttpProvider", "http_provider"]

T = TypeVar("T")


class HttpProvider:
    """A :class:`~gateway.providers.base.Provider` over HTTP, driven by a codec."""

    def __init__(self, name: str, config: ProviderConfig, codec: WireCodec,
                 messages: MessagesWire | None = None, signer: RequestSigner | None = None,
                 keys: KeyPool | None = None,
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
        # Several configured keys: each request takes one (a tenant's own key bypasses it).
        self.keys = keys
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

    def _send(self, wire: UpstreamRequest, timeout: float,
              lease: Lease | None = None) -> aiohttp.client._RequestContextManager:
        headers = dict(wire.headers)
        own_key = credentials.current(self.name)
        if own_key is not None:  # the tenant brought its own key for this provider
            headers.update(self.codec.auth_headers(own_key))
        elif lease is not None:  # a key of the configured pool
            headers.update(self.codec.auth_headers(lease.key.value))
        inject_headers(headers)  # traceparent of the attempt's span
        # A signed request goes out byte for byte as signed: yarl would otherwise decode
        # escapes such as %3A in the path, and the signature would no longer match.
        url = URL(wire.url, encoded=True) if self._signer is not None else wire.url
        return self.session.request(
            wire.method,
            url,
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

    def _pool(self) -> KeyPool | None:
        """The pool this request draws from: none when the tenant brought its own key."""
        if self.keys is None or credentials.current(self.name) is not None:
            return None
        return self.keys

    def _settle(self, pool: KeyPool, lease: Lease, status: int, error: GatewayError | None,
                tries: int) -> bool:
        """Tell the pool what ``lease``'s key got; whether to try another key: the failure
        was the key's (401/403/429), another key can serve now, and fewer keys than the
        pool holds were tried (a 429 with ``Retry-After: 0`` must not loop)."""
        if isinstance(error, UpstreamError) and error.error_type == "auth_error":
            status = 401  # a refused key, whatever the status says (Gemini's 400)
        retry_after = error.retry_after if isinstance(error, UpstreamError) else None
        fault = pool.release(lease, status=status, retry_after=retry_after)
        return fault and tries < len(pool.keys) and pool.can_serve()

    async def _unary(self, wire: UpstreamRequest, timeout: float,
                     decode: Callable[[bytes], T], count: Callable[[T], int] | None = None) -> T:
        """``decode`` of the answer's body; with a key pool, a key's own failure (429, 401,
        403) is tried again at once with another key that can serve."""
        wire = await self._signed(wire)
        pool = self._pool()
        tries = 0
        while True:
            lease = pool.acquire() if pool is not None else None
            tries += 1
            settled = False
            try:
                async with self._send(wire, timeout, lease) as response:
                    body = await response.read()
                    error = (self.codec.error(response.status, response.headers, body)
                             if response.status >= 400 else None)
                    if pool is not None and lease is not None:
                        settled = True
                        if self._settle(pool, lease, response.status, error, tries):
                            continue
                    if error is not None:
                        raise error
            except GatewayError:
                raise
            except Exception as exc:
                raise self._transport_error(exc) from None
            finally:
                if pool is not None and lease is not None and not settled:
                    pool.release(lease, status=None)  # no answer: not the key's doing
            result = self._parse(decode, body)
            if pool is not None and lease is not None and count is not None:
                pool.charge(lease, count(result))
            return result

    async def chat(self, request: ChatRequest, model: str, *, timeout: float) -> ChatCompletion:
        wire = self._wire(lambda: self.codec.chat_request(request, model, stream=False,
                                                          include_usage=False))
        return await self._unary(wire, timeout, lambda raw: self.codec.chat_response(raw, model),
                                 _usage_tokens)

    async def embed(self, request: EmbeddingRequest, model: str, *, timeout: float) -> Embeddings:
        wire = self._wire(lambda: self.codec.embed_request(request, model))
        return await self._unary(wire, timeout, lambda raw: self.codec.embed_response(raw, model),
                                 _usage_tokens)

    async def list_models(self, *, timeout: float) -> list[str]:
        wire = self.codec.models_request()
        if wire is None:
            return []
        return await self._unary(wire, timeout, self.codec.models_response)

    def _parse(self, decode: Callable[[bytes], T], body: bytes) -> T:
        try:
            return decode(body)
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
        return await self._unary(request, timeout, wire.message_response, _message_tokens)

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
        return await self._unary(request, timeout, wire.count_tokens_response)

    async def _stream(self, wire: UpstreamRequest, decoder: EventDecoder[T],
                      timeout: float) -> AsyncIterator[T]:
        """The decoded items of a streamed answer; a stream that ends before the decoder's
        end marker was cut (a retryable upstream error). With a key pool, an error status
        that is the key's is tried again with another key (nothing was sent on yet)."""
        wire = await self._signed(wire)
        pool = self._pool()
        tries = 0
        while True:
            lease = pool.acquire() if pool is not None else None
            tries += 1
            settled, tokens = False, 0
            try:
                async with self._send(wire, timeout, lease) as response:
                    error = (self.codec.error(response.status, response.headers,
                                              await response.read())
                             if response.status >= 400 else None)
                    if pool is not None and lease is not None:
                        settled = True
                        if self._settle(pool, lease, response.status, error, tries):
                            continue
                    if error is not None:
                        raise error
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
                            if lease is not None:
                                tokens += _item_tokens(item)
                            yield item
                        if decoder.done:
                            return
            except GatewayError:
                raise
            except Exception as exc:
                raise self._transport_error(exc) from None
            finally:
                if pool is not None and lease is not None:
                    if not settled:
                        pool.release(lease, status=None)
                    pool.charge(lease, tokens)
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


def _usage_tokens(result: ChatCompletion | Embeddings) -> int:
    return result.usage.total_tokens if result.usage is not None else 0


def _message_tokens(message: Mapping[str, Any]) -> int:
    """Input and output tokens of a Messages API ``message`` (or ``message_delta``)."""
    usage = message.get("usage")
    if not isinstance(usage, dict):
        return 0
    return sum(n for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                           "cache_creation_input_tokens")
               if isinstance(n := usage.get(k), int))


def _item_tokens(item: object) -> int:
    """Tokens a streamed item reports: a chunk's usage, a Messages event's usage (input at
    ``message_start``, output at ``message_delta``)."""
    if isinstance(item, ChatChunk):
        usage: Usage | None = item.usage
        return usage.total_tokens if usage is not None else 0
    if isinstance(item, dict):
        kind = item.get("type")
        if kind == "message_start" and isinstance(item.get("message"), dict):
            usage_in = item["message"].get("usage")
            return usage_in.get("input_tokens", 0) if isinstance(usage_in, dict) else 0
        if kind == "message_delta":
            usage_out = item.get("usage")
            return usage_out.get("output_tokens", 0) if isinstance(usage_out, dict) else 0
    return 0


def http_provider(name: str, config: ProviderConfig, codec: WireCodec,
                  signer: RequestSigner | None = None, *,
                  messages_for: Callable[[str], bool] | None = None) -> HttpProvider:
    """An HTTP provider for ``codec``, its errors redacted of the provider's credentials,
    passing Messages requests through when the codec speaks that API (for the models
    ``messages_for`` accepts, when given), drawing on a key pool when the config lists
    ``api_keys``."""
    wrapped = RedactingCodec(name, config, codec)
    keys = None
    if config.api_keys:
        keys = KeyPool(name, config.api_keys, on_state=report_key_state,
                       on_rest=report_key_rest)
        for key in keys.keys:
            metrics.key_state(name, key.label, 0)
    return HttpProvider(name, config, wrapped, wrapped.messages, signer, keys, messages_for)
