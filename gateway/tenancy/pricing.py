"""Cost of a request from the configurable price table (USD per million tokens).

Prices are looked up by the upstream model that answered, then by
``provider/model``, then by the name the client asked for; no entry costs 0.

Example::

    pricing = Pricing({"gpt-4o-mini": PriceConfig(0.15, 0.60)})
    pricing.cost(("gpt-4o-mini",), prompt_tokens=1000, completion_tokens=500)  # 0.00045
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from gateway.config import PriceConfig

__all__ = ["Pricing"]


class Pricing:
    def __init__(self, table: Mapping[str, PriceConfig]):
        self._table = dict(table)

    def price(self, names: Iterable[str]) -> PriceConfig | None:
        for name in names:
            price = self._table.get(name)
            if price is not None:
                return price
        return None

    def cost(self, names: Iterable[str], prompt_tokens: int, completion_tokens: int) -> float:
        price = self.price(names)
        if price is None:
            return 0.0
        return (prompt_tokens * price.input_per_mtok
                + completion_tokens * price.output_per_mtok) / 1_000_000
