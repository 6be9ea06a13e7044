"""What a request is reserved at admission, and what a stream is charged, whatever ends it.

Admission reserves an :class:`~gateway.tenancy.admission.Estimate`: the prompt estimated
from its text and the answer's ``max_tokens`` (else ``DEFAULT_OUTPUT_RESERVATION``),
priced by :func:`cost_estimator` at the dearest deployment the model may be served by.

The upstream's usage arrives in a stream's last chunk (chat) or last events (messages). A
stream that ends before it (the client left, the upstream was cut, a deadline passed) is
still charged: its prompt and what it delivered, estimated at four characters a token
(``ESTIMATE_CHARS_PER_TOKEN``), the same rule as ``/v1/messages/count_tokens`` uses for
models without a counter. Usage the upstream did report always wins over the estimate.

Example::

    charge = StreamCharge(prompt_tokens=estimate_prompt_tokens(chat))
    for chunk in chunks:
        charge.chunk(chunk)
    usage = charge.usage()  # the upstream's, else the estimate
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.domain import ChatChunk, ChatRequest, EmbeddingRequest, Usage
from gateway.errors import GatewayError
from gateway.routing import Router
from gateway.tenancy.admission import DEFAULT_OUTPUT_RESERVATION, CostEstimator, Estimate
from gateway.tenancy.pricing import Pricing

__all__ = ["ESTIMATE_CHARS_PER_TOKEN", "StreamCharge", "chat_estimate", "cost_estimator",
           "embeddings_estimate", "estimate_prompt_tokens", "messages_estimate"]

ESTIMATE_CHARS_PER_TOKEN = 4


def _tokens(chars: int) -> int:
    return -(-chars // ESTIMATE_CHARS_PER_TOKEN)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """The prompt's tokens, estimated from its text, tool calls and tool definitions."""
    chars = 0
    for message in request.messages:
        chars += len(message.text())
        chars += sum(len(c.name) + len(c.arguments) for c in message.tool_calls)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(str(tool.parameters or ""))
    return max(1, _tokens(chars))


def chat_estimate(request: ChatRequest) -> Estimate:
    return Estimate(estimate_prompt_tokens(request), request.output_limit)


def embeddings_estimate(request: EmbeddingRequest) -> Estimate:
    return Estimate(max(1, _tokens(sum(len(text) for text in request.inputs))), 0)


def messages_estimate(input_tokens: int, body: Mapping[str, Any]) -> Estimate:
    """``input_tokens`` from ``estimate_input_tokens``; ``max_tokens`` is required there."""
    limit = body.get("max_tokens")
    return Estimate(input_tokens, limit if isinstance(limit, int) and limit > 0 else None)


def cost_estimator(router: Router, pricing: Pricing) -> CostEstimator:
    """Prices an estimate at the dearest of the model's deployments (its targets and
    fallbacks' targets, each looked up as the answer's cost would be, then by the name
    asked for): a reservation must not be short whichever deployment answers."""

    def cost(model: str, prompt_tokens: int, output_tokens: int | None) -> float:
        names: list[tuple[str, ...]] = [(model,)]
        try:
            route = router.registry.resolve(model)
            routes = [route, *(router.registry.resolve(f) for f in route.fallbacks)]
        except GatewayError:
            routes = []
        for target in (t for r in routes for t in r.targets):
            names.append((target.model, f"{target.provider.name}/{target.model}", model))

        def worst(found: tuple[str, ...]) -> float:
            output = output_tokens
            if output is None:
                price = pricing.price(found)
                output = (price.max_output_tokens if price is not None
                          and price.max_output_tokens else DEFAULT_OUTPUT_RESERVATION)
            return pricing.cost(found, prompt_tokens, output)

        return max(worst(n) for n in names)

    return cost


class StreamCharge:
    """The usage of one stream: reported, or estimated from what was delivered."""

    __slots__ = ("_output_chars", "_prompt", "_reported")

    def __init__(self, prompt_tokens: int) -> None:
        self._prompt = prompt_tokens
        self._output_chars = 0
        self._reported: Usage | None = None

    def chunk(self, chunk: ChatChunk) -> None:
        if chunk.usage is not None:
            self._reported = chunk.usage
        for choice in chunk.choices:
            delta = choice.delta
            self._output_chars += len(delta.content or "") + len(delta.refusal or "") + len(
                delta.reasoning or "")
            for call in delta.tool_calls:
                self._output_chars += len(call.name) + len(call.arguments)

    def event(self, data: dict[str, Any]) -> None:
        """One Messages stream event (its JSON object): what a delta delivered."""
        if data.get("type") == "content_block_delta":
            delta = data.get("delta") or {}
            for key in ("text", "partial_json", "thinking"):
                value = delta.get(key)
                if isinstance(value, str):
                    self._output_chars += len(value)

    @property
    def prompt_tokens(self) -> int:
        return self._prompt

    @property
    def output_tokens(self) -> int:
        """The estimate of what was delivered."""
        return _tokens(self._output_chars)

    @property
    def reported(self) -> bool:
        """Whether the upstream's own usage came."""
        return self._reported is not None

    def usage(self) -> Usage:
        """The upstream's usage, else the estimate."""
        if self._reported is not None:
            return self._reported
        completion = self.output_tokens
        return Usage(prompt_tokens=self._prompt, completion_tokens=completion,
                     total_tokens=self._prompt + completion)
