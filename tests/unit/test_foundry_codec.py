"""The Foundry codec: Anthropic's transforms at a Foundry resource's addresses."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, ProviderConfig, load_settings
from gateway.domain import ChatRequest, Message
from gateway.providers.base import AnthropicHeaders
from gateway.providers.foundry import FoundryCodec

HI = ChatRequest(model="claude", messages=(Message(role="user", content="hi"),))


@pytest.mark.parametrize("base", ["https://res.services.ai.azure.com",
                                  "https://res.services.ai.azure.com/",
                                  "https://res.services.ai.azure.com/anthropic",
                                  "https://res.services.ai.azure.com/anthropic/"])
def test_urls_under_anthropic_whatever_form_the_endpoint_is_pasted_in(base: str) -> None:
    codec = FoundryCodec("f", ProviderConfig(type="azure_anthropic", base_url=base,
                                             api_key="k" * 10))
    wire = codec.chat_request(HI, "claude-x", stream=False, include_usage=False)
    assert wire.url == "https://res.services.ai.azure.com/anthropic/v1/messages"
    assert wire.headers["x-api-key"] == wire.headers["api-key"] == "k" * 10
    assert wire.headers["anthropic-version"] == "2023-06-01"
    count = codec.count_tokens_request({"messages": []}, "claude-x", headers=AnthropicHeaders())
    assert count.url == "https://res.services.ai.azure.com/anthropic/v1/messages/count_tokens"
    assert codec.models_request() is None


def test_entra_token_in_headers_and_no_key() -> None:
    codec = FoundryCodec("f", ProviderConfig(
        type="azure_anthropic", base_url="https://res.services.ai.azure.com",
        headers={"Authorization": "Bearer entra-token"}))
    wire = codec.chat_request(HI, "claude-x", stream=True, include_usage=False)
    assert wire.headers["Authorization"] == "Bearer entra-token"
    assert "x-api-key" not in wire.headers and "api-key" not in wire.headers
    assert codec.auth_headers("own") == {"x-api-key": "own", "api-key": "own"}


def test_config_needs_a_base_url(tmp_path: object) -> None:
    import pathlib
    path = pathlib.Path(str(tmp_path)) / "c.yaml"
    path.write_text("providers:\n  f: {type: azure_anthropic, api_key: x}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert "providers.f.base_url: required for type azure_anthropic" in info.value.problems
