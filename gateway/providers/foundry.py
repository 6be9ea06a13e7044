"""Claude in Microsoft Foundry: Anthropic's Messages API under an Azure resource.

Calls go to ``{base_url}/anthropic/v1/messages`` (and ``.../count_tokens``), where
``base_url`` is the resource's endpoint, ``https://<resource>.services.ai.azure.com``; a
``base_url`` already ending in ``/anthropic`` is taken as is. The key travels in
``x-api-key`` and, as the ``anthropic`` SDK's ``AnthropicFoundry`` client also sends it,
``api-key``; an Entra ID token can go in the provider's ``headers`` instead
(``Authorization: Bearer ...``). Bodies, streams and errors are Anthropic's, so everything
else is :class:`~gateway.providers.anthropic.AnthropicCodec`'s. Foundry has no model list:
name the deployments in the provider's ``models``.

Example::

    codec = FoundryCodec("foundry", ProviderConfig(
        type="azure_anthropic", base_url="https://res.services.ai.azure.com", api_key=key))
"""

from __future__ import annotations

from gateway.config import ProviderConfig
from gateway.providers.anthropic import AnthropicCodec
from gateway.providers.base import UpstreamRequest

__all__ = ["FoundryCodec"]


class FoundryCodec(AnthropicCodec):
    """:class:`AnthropicCodec` at a Foundry resource's ``/anthropic`` path, with its key
    headers."""

    def _base_url(self, config: ProviderConfig) -> str:
        return config.base_url.rstrip("/").removesuffix("/anthropic") + "/anthropic"

    def auth_headers(self, api_key: str) -> dict[str, str]:
        return {"x-api-key": api_key, "api-key": api_key}

    def models_request(self) -> UpstreamRequest | None:  # type: ignore[override]
        return None  # Foundry serves no /v1/models
