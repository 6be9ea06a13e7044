"""Builds the configured providers: provider type -> constructor, in one table."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gateway.config import ProviderConfig
from gateway.providers.anthropic import AnthropicCodec
from gateway.providers.azure import AzureOpenAICodec
from gateway.providers.base import Provider
from gateway.providers.google import GoogleCodec
from gateway.providers.http import HttpProvider
from gateway.providers.mock import MockProvider
from gateway.providers.ollama import OllamaCodec
from gateway.providers.openai import OpenAICodec

__all__ = ["build_providers"]


def _openai(name: str, config: ProviderConfig) -> Provider:
    return HttpProvider(name, config.type, OpenAICodec(name, config),
                        max_connections=config.max_connections)


_FACTORIES: dict[str, Callable[[str, ProviderConfig], Provider]] = {
    "openai": _openai,
    "openai_compatible": _openai,
    "mock": MockProvider,
    "anthropic": lambda name, config: HttpProvider(
        name, config.type, AnthropicCodec(name, config), max_connections=config.max_connections),
    "ollama": lambda name, config: HttpProvider(
        name, config.type, OllamaCodec(name, config), max_connections=config.max_connections),
    "azure_openai": lambda name, config: HttpProvider(
        name, config.type, AzureOpenAICodec(name, config),
        max_connections=config.max_connections),
    "google": lambda name, config: HttpProvider(
        name, config.type, GoogleCodec(name, config), max_connections=config.max_connections),
}


def build_providers(configs: Mapping[str, ProviderConfig]) -> dict[str, Provider]:
    """One provider per configured name. A type without an adapter yet is an error."""
    providers: dict[str, Provider] = {}
    for name, config in configs.items():
        factory = _FACTORIES.get(config.type)
        if factory is None:
            raise ValueError(f"providers.{name}.type: '{config.type}' is not supported yet")
        providers[name] = factory(name, config)
    return providers
