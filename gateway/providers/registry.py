"""Builds the configured providers. A new HTTP provider is one module with a codec
and one line in ``_CODECS``; every codec is wrapped so that upstream text never carries the
provider's credentials back (``redact.py``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.config import ProviderConfig
from gateway.providers.anthropic import AnthropicCodec
from gateway.providers.azure import AzureOpenAICodec
from gateway.providers.base import Provider, WireCodec
from gateway.providers.google import GoogleCodec
from gateway.providers.http import HttpProvider
from gateway.providers.mock import MockProvider
from gateway.providers.ollama import OllamaCodec
from gateway.providers.openai import OpenAICodec
from gateway.providers.redact import RedactingCodec

__all__ = ["build_providers"]

_CODECS: dict[str, Callable[[str, ProviderConfig], WireCodec]] = {
    "openai": OpenAICodec,
    "openai_compatible": OpenAICodec,
    "azure_openai": AzureOpenAICodec,
    "anthropic": AnthropicCodec,
    "google": GoogleCodec,
    "ollama": OllamaCodec,
}


def build_provider(name: str, config: ProviderConfig) -> Provider:
    if config.type == "mock":
        return MockProvider(name, config)
    codec = _CODECS.get(config.type)
    if codec is None:
        raise ValueError(f"providers.{name}.type: '{config.type}' is not a known provider type")
    wrapped = RedactingCodec(name, config, codec(name, config))
    return HttpProvider(name, config, wrapped, wrapped.messages)


def build_providers(configs: Mapping[str, ProviderConfig]) -> dict[str, Provider]:
    """One provider per configured name."""
    return {name: build_provider(name, config) for name, config in configs.items()}
