"""Anthropic's Messages API on any provider: passed through to one that speaks it, translated
through the canonical chat request for every other.

A Messages request travels in the core as its JSON object (what the client sent, the model
id aside); an answer comes back as a ``message`` object, a stream as its event objects, in
Anthropic's order whichever provider answered. The translation itself is
:mod:`gateway.providers.messages_translation`.

Example::

    answer = await create_message(provider, body, "gpt-4o-mini", AnthropicHeaders(),
                                  timeout=30)
    answer["stop_reason"]  # "end_turn"
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.providers import messages_translation as translation
from gateway.providers.base import AnthropicHeaders, Provider
from gateway.providers.http import HttpProvider

__all__ = ["count_message_tokens", "create_message", "native", "stream_message"]


def native(provider: Provider, model: str) -> HttpProvider | None:
    """``provider`` when its upstream speaks the Messages API for ``model``, else None."""
    if isinstance(provider, HttpProvider) and provider.speaks_messages(model):
        return provider
    return None


async def create_message(provider: Provider, body: Mapping[str, Any], model: str,
                         headers: AnthropicHeaders, *, timeout: float) -> dict[str, Any]:
    """The ``message`` object answering ``body``, from ``model`` at ``provider``."""
    passthrough = native(provider, model)
    if passthrough is not None:
        return await passthrough.create_message(body, model, headers, timeout=timeout)
    completion = await provider.chat(translation.chat_request(dict(body)), model,
                                     timeout=timeout)
    return translation.completion_to_message(completion, model)


async def stream_message(provider: Provider, body: Mapping[str, Any], model: str,
                         headers: AnthropicHeaders, *, timeout: float
                         ) -> AsyncIterator[dict[str, Any]]:
    """The stream's event objects, ``message_start`` to ``message_stop``."""
    passthrough = native(provider, model)
    if passthrough is not None:
        async for event in passthrough.stream_message(body, model, headers, timeout=timeout):
            yield event
        return
    translator = translation.StreamTranslator(model)
    chunks = provider.stream_chat(translation.chat_request(dict(body)), model,
                                  timeout=timeout, include_usage=True)
    try:
        async for chunk in chunks:
            for event in translator.feed(chunk):
                yield event
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    for event in translator.finish():
        yield event


async def count_message_tokens(provider: Provider, body: Mapping[str, Any], model: str,
                               headers: AnthropicHeaders, *,
                               timeout: float) -> tuple[int, bool]:
    """``(input tokens, estimated)``: the upstream's own count when it speaks the Messages
    API, else the documented estimate (no upstream call)."""
    passthrough = native(provider, model)
    if passthrough is not None:
        count = await passthrough.count_message_tokens(body, model, headers, timeout=timeout)
        return count, False
    return translation.estimate_input_tokens(dict(body)), True
