"""Builds the configured providers. A new HTTP provider is one module with a codec (and, for
credentials that are not a fixed header, a :class:`~gateway.providers.base.RequestSigner`)
and one line in ``_FACTORIES``; every codec is wrapped so that upstream text never carries
the provider's credentials back (``redact.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.config import ProviderConfig
from gateway.providers.anthropic import AnthropicCodec
from gateway.providers.azure import AzureOpenAICodec
from gateway.providers.base import Provider, WireCodec
from gateway.providers.bedrock import bedrock_provider
from gateway.providers.foundry import FoundryCodec
from gateway.providers.google import GoogleCodec
from gateway.providers.http import http_provider
from gateway.providers.mock import MockProvider
from gateway.providers.ollama import OllamaCodec
from gateway.providers.openai import OpenAICodec
from gateway.providers.vertex import vertex_provider

__all__ = ["build_providers"]

Factory = Callable[[str, ProviderConfig], Provider]


def _http(codec: Callable[[str, ProviderConfig], WireCodec]) -> Factory:
    return lambda name, config: http_provider(name, config, codec(name, config))


# One line per provider type.
_FACTORIES: dict[str, Factory] = {
    "mock": MockProvider,
    "openai": _http(OpenAICodec),
    "openai_compatible": _http(OpenAICodec),
    "azure_openai": _http(AzureOpenAICodec),
    "anthropic": _http(AnthropicCodec),
    "azure_anthropic": _http(FoundryCodec),
    "google": _http(GoogleCodec),
    "ollama": _http(OllamaCodec),
    "bedrock": bedrock_provider,
    "vertex": vertex_provider,
}


def build_provider(name: str, config: ProviderConfig) -> Provider:
    factory = _FACTORIES.get(config.type)
    if factory is None:
        raise ValueError(f"providers.{name}.type: '{config.type}' is not a known provider type")
    return factory(name, config)


def build_providers(configs: Mapping[str, ProviderConfig]) -> dict[str, Provider]:
    """One provider per configured name."""
    return {name: build_provider(name, config) for name, config in configs.items()}
