"""Azure OpenAI: OpenAI's wire format under Azure's addressing.

Calls go to ``{base_url}/openai/deployments/{deployment}/chat/completions?api-version=...``
(and ``.../embeddings``) with the key in ``api-key``; an Entra ID token can go in the
provider's ``headers`` instead. The deployment is the target's model name
(``azure/my-deployment``), else ``ProviderConfig.deployment``. Bodies, streams and errors
are OpenAI's, Azure's content-filter annotations ignored. A data-plane key cannot list
deployments: list them in the provider's ``models`` to advertise them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import orjson

from gateway.config import ProviderConfig
from gateway.domain import ChatChunk, ChatCompletion, ChatRequest, EmbeddingRequest, Embeddings
from gateway.errors import GatewayError, InvalidRequestError
from gateway.providers.base import Framing, SseEvent, UpstreamRequest
from gateway.providers.openai import (
    OpenAIStreamDecoder,
    classify_error,
    decode_completion,
    decode_embeddings,
    encode_embedding_request,
    encode_request,
)

__all__ = ["DEFAULT_API_VERSION", "AzureOpenAICodec"]

DEFAULT_API_VERSION = "2024-10-21"  # latest GA of the data-plane inference API

# Azure deployment names: letters, digits, '-', '_' and '.'; checked because the name comes
# from the client and lands in the URL path.
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class AzureOpenAICodec:
    """Pure transforms for an Azure OpenAI resource (``base_url`` is its endpoint)."""

    framing: Framing = "sse"

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        base = config.base_url.rstrip("/")
        base = base.removesuffix("/openai")  # the endpoint, whether or not the path was pasted
        self._base = f"{base}/openai/deployments"
        self._query = "?api-version=" + quote(config.api_version or DEFAULT_API_VERSION, safe="")
        self._default_deployment = config.deployment
        headers = {"Content-Type": "application/json", **config.headers}
        if config.api_key:
            headers.update(self.auth_headers(config.api_key))
        self._headers = headers
        self._stream_headers = {**headers, "Accept": "text/event-stream"}

    def _url(self, model: str, operation: str) -> str:
        deployment = model or self._default_deployment
        if not deployment:
            raise InvalidRequestError(
                f"No Azure deployment named: use '{self.name}/<deployment>' as the model.",
                param="model",
            )
        if not _DEPLOYMENT.fullmatch(deployment):
            raise InvalidRequestError(f"'{deployment}' is not a valid Azure deployment name.",
                                      param="model")
        return f"{self._base}/{deployment}/{operation}{self._query}"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"api-key": api_key}

    def chat_request(
        self, request: ChatRequest, model: str, *, stream: bool, include_usage: bool
    ) -> UpstreamRequest:
        url = self._url(model, "chat/completions")
        # ``model`` stays in the body, as the official SDK sends it; Azure ignores it.
        body: dict[str, Any] = encode_request(request, model or self._default_deployment)
        if stream:
            body["stream"] = True
            if include_usage:
                body["stream_options"] = {"include_usage": True}
        headers = self._stream_headers if stream else self._headers
        return UpstreamRequest("POST", url, headers, orjson.dumps(body))

    def chat_response(self, body: bytes, model: str) -> ChatCompletion:
        return decode_completion(orjson.loads(body), model)

    def stream_decoder(self, model: str) -> AzureStreamDecoder:
        return AzureStreamDecoder(self.name, model)

    def embed_request(self, request: EmbeddingRequest, model: str) -> UpstreamRequest:
        body = encode_embedding_request(request, model or self._default_deployment)
        return UpstreamRequest("POST", self._url(model, "embeddings"), self._headers,
                               orjson.dumps(body))

    def embed_response(self, body: bytes, model: str) -> Embeddings:
        return decode_embeddings(orjson.loads(body), model)

    def models_request(self) -> None:
        return None

    def models_response(self, body: bytes) -> list[str]:
        return []

    def error(self, status: int, headers: Mapping[str, str], body: bytes) -> GatewayError:
        return classify_error(self.name, status, headers, body)


class AzureStreamDecoder(OpenAIStreamDecoder):
    """OpenAI's stream, minus Azure's leading chunk that carries only prompt filter results
    (no choices, no usage)."""

    __slots__ = ()

    def decode(self, event: SseEvent) -> list[ChatChunk]:
        return [c for c in super().decode(event) if c.choices or c.usage is not None]
