"""Google Vertex AI: Gemini and Claude under one project and location, chosen by model.

Gemini (every model not named ``claude-*``) goes to
``{base}/v1/projects/{project}/locations/{location}/publishers/google/models/{model}``
``:generateContent`` / ``:streamGenerateContent?alt=sse`` with the Gemini API's bodies
(:mod:`gateway.providers.google`), embeddings to ``:predict``. Claude goes to
``publishers/anthropic/models/{model}:rawPredict`` / ``:streamRawPredict`` with the Messages
body (:mod:`gateway.providers.anthropic`) less ``model``, plus ``anthropic_version``; token
counts to ``publishers/anthropic/models/count-tokens:rawPredict`` (the model in the body, as
Anthropic's Vertex client sends it). The credential is an OAuth2 access token that
:mod:`gateway.providers.vertex_auth` adds to each request.

Example::

    codec = VertexCodec("vertex", ProviderConfig(type="vertex", project="p", location="global"))
    codec.chat_request(hi, "claude-sonnet-4-5@20250929", stream=False, include_usage=False).url
    # "https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/anthropic/
    #  models/claude-sonnet-4-5@20250929:rawPredict"
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config import ProviderConfig
from gateway.domain import ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import GatewayError, InvalidRequestError
from gateway.providers import anthropic, google
from gateway.providers.base import (
    AnthropicHeaders,
    ChunkDecoder,
    EventDecoder,
    Framing,
    UpstreamRequest,
)
from gateway.providers.http import HttpProvider, http_provider
from gateway.providers.vertex_auth import token_signer

__all__ = ["ANTHROPIC_VERSION", "VertexCodec", "base_url", "classify_error", "is_claude",
           "vertex_provider"]

ANTHROPIC_VERSION = "vertex-2023-10-16"  # what Vertex wants in the body, not the header
# Google's OAuth2 access tokens: the signer's are not in the config, so the redacting codec
# cannot know them; an upstream message that echoes one loses it here.
_ACCESS_TOKEN = re.compile(r"ya29\.[A-Za-z0-9._~+/=-]+")


def is_claude(model: str) -> bool:
    """Whether ``model`` is one of Anthropic's on Vertex (the rest are Google's)."""
    return model.removeprefix("publishers/anthropic/models/").startswith("claude")


def base_url(config: ProviderConfig) -> str:
    """The configured ``base_url``, else the location's endpoint: ``global`` is served from
    the unprefixed host, the ``us`` and ``eu`` multi-regions from their own."""
    if config.base_url:
        return config.base_url.rstrip("/")
    if config.location == "global":
        return "https://aiplatform.googleapis.com"
    if config.location in ("us", "eu"):
        return f"https://aiplatform.{config.location}.rep.googleapis.com"
    return f"https://{config.location}-aiplatform.googleapis.com"


def _segment(value: str) -> str:
    # Names come from the config or the client: quoted, each stays one path segment
    # (``@`` stays, it separates a Claude model from its version).
    return quote(value, safe="-._~@")


class _GeminiOnVertex(google.GoogleCodec):
    """The Gemini API codec under Vertex's addressing; embeddings through ``:predict``."""

    def __init__(self, name: str, config: ProviderConfig, root: str):
        super().__init__(name, dataclasses.replace(config, api_key=""))
        self._root = f"{root}/publishers/google"  # GoogleCodec adds /models/{model}:{method}

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        body: dict[str, Any] = {"instances": [{"content": text} for text in request.inputs]}
        if request.dimensions is not None:
            body["parameters"] = {"outputDimensionality": request.dimensions}
        return UpstreamRequest("POST", self._url(model, "predict"), self._headers,
                               orjson.dumps(body))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        predictions = orjson.loads(body)["predictions"]
        return Embeddings(model=model, vectors=[
            [float(v) for v in item["embeddings"]["values"]] for item in predictions])


class VertexCodec:
    """Pure transforms for Vertex AI, Gemini or Claude by the model's name; speaks the
    Messages API for Claude (the provider passes only Claude models through)."""

    framing: Framing = "sse"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        root = (f"{base_url(config)}/v1/projects/{_segment(config.project)}"
                f"/locations/{_segment(config.location)}")
        self._gemini = _GeminiOnVertex(name, config, root)
        # Only its answer readers are used: Vertex answers with Anthropic's own shapes.
        self._anthropic = anthropic.AnthropicCodec(name, dataclasses.replace(config, api_key=""))
        self._claude = f"{root}/publishers/anthropic/models"
        self._version = config.api_version or ANTHROPIC_VERSION
        headers = {"content-type": "application/json", **config.headers}
        self._headers = headers
        self._stream_headers = {**headers, "accept": "text/event-stream"}
        self._betas = tuple(b.strip() for b in headers.get("anthropic-beta", "").split(",")
                            if b.strip())

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {api_key}"}

    def _claude_request(self, body: Mapping[str, Any], model: str, stream: bool,
                        headers: Mapping[str, str]) -> UpstreamRequest:
        out = {k: v for k, v in body.items() if k != "model"}
        out["anthropic_version"] = self._version
        if stream:
            out["stream"] = True
        method = "streamRawPredict" if stream else "rawPredict"
        return UpstreamRequest("POST", f"{self._claude}/{_segment(model)}:{method}", headers,
                               orjson.dumps(out))

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        if not is_claude(model):
            return self._gemini.chat_request(request, model, stream=stream,
                                             include_usage=include_usage)
        headers = self._stream_headers if stream else self._headers
        if self._betas:
            headers = {**headers, "anthropic-beta": ",".join(self._betas)}
        return self._claude_request(anthropic.encode_request(request, model), model, stream,
                                    headers)

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        if is_claude(model):
            return anthropic.decode_message(orjson.loads(body), model)
        return self._gemini.chat_response(body, model)

    def stream_decoder(self, model: str) -> ChunkDecoder:
        if is_claude(model):
            return anthropic.AnthropicStreamDecoder(self.name, model)
        return self._gemini.stream_decoder(model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        if is_claude(model):
            raise InvalidRequestError(f"Claude does not embed text; '{request.model}' cannot "
                                      f"embed on {self.name}", param="model")
        return self._gemini.embed_request(request, model)

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        return self._gemini.embed_response(body, model)

    def models_request(self) -> None:
        return None  # Vertex lists publisher models elsewhere; the config's models stand

    def models_response(self, body: bytes) -> list[str]:
        return []

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        exc = classify_error(self.name, status, headers, body)
        message = _ACCESS_TOKEN.sub("[redacted]", exc.message)
        if message != exc.message:
            exc.message = message
            exc.args = (message, *exc.args[1:])
        return exc

    # --- the Messages API passed through to Claude (MessagesWire) ---

    def _passthrough_headers(self, stream: bool, client: AnthropicHeaders) -> dict[str, str]:
        """The configured headers and the configured and client's beta flags. The client's
        ``anthropic-version`` stays behind: Vertex takes its own, in the body."""
        headers = dict(self._stream_headers if stream else self._headers)
        betas = self._betas + tuple(b for b in client.betas if b not in self._betas)
        if betas:
            headers["anthropic-beta"] = ",".join(betas)
        return headers

    def messages_request(self, body: Mapping[str, Any], model: str, *, stream: bool,
                         headers: AnthropicHeaders) -> UpstreamRequest:
        return self._claude_request(body, model, stream,
                                    self._passthrough_headers(stream, headers))

    def count_tokens_request(self, body: Mapping[str, Any], model: str, *,
                             headers: AnthropicHeaders) -> UpstreamRequest:
        out = {**body, "model": model, "anthropic_version": self._version}
        return UpstreamRequest("POST", f"{self._claude}/count-tokens:rawPredict",
                               self._passthrough_headers(False, headers), orjson.dumps(out))

    def message_response(self, body: bytes) -> dict[str, Any]:
        return self._anthropic.message_response(body)

    def count_tokens_response(self, body: bytes) -> int:
        return self._anthropic.count_tokens_response(body)

    def messages_decoder(self) -> EventDecoder[dict[str, Any]]:
        return self._anthropic.messages_decoder()


def classify_error(
    provider: str, status: int, headers: Mapping[str, str], body: bytes
) -> GatewayError:
    """The meaning of a Vertex error answer: Google's ``{"error": {"code", "message",
    "status"}}`` (429 RESOURCE_EXHAUSTED, 401 UNAUTHENTICATED, ...), or, from a Claude
    model, Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(data, dict) and (data.get("type") == "error" or (
            isinstance(error, dict) and isinstance(error.get("type"), str))):
        return anthropic.classify_error(provider, status, headers, body)
    return google.classify_error(provider, status, headers, body)


def vertex_provider(name: str, config: ProviderConfig) -> HttpProvider:
    """The ``vertex`` provider: the codec, an access-token signer, and the Messages API
    passed through for Claude models only (Gemini's are translated)."""
    return http_provider(name, config, VertexCodec(name, config), token_signer(name, config),
                         messages_for=is_claude)
