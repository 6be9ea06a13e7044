"""Cost of a request from the configurable price table (USD per million tokens).

Prices are looked up by the upstream model that answered, then by
``provider/model``, then by the name the client asked for; no entry costs 0.

Example::

    pricing = Pricing({"gpt-4o-mini": PriceConfig(0.15, 0.60)})
    pricing.cost(("gpt-4o-mini",), prompt_tokens=1000, completion_tokens=500)  # 0.00045

Prompt-cache reads and writes cost ``cached_input_per_mtok`` / ``cache_write_per_mtok`` when
an entry sets them (Anthropic: 0.1x and 1.25x the input price), else the input price.
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

    def cost(self, names: Iterable[str], prompt_tokens: int, completion_tokens: int, *,
             cache_read_tokens: int = 0, cache_write_tokens: int = 0) -> float:
        """``prompt_tokens`` include the cache's reads and writes, which are charged at
        their own prices when the entry has them (else as input)."""
        price = self.price(names)
        if price is None:
            return 0.0
        read = price.cached_input_per_mtok
        write = price.cache_write_per_mtok
        cost = prompt_tokens * price.input_per_mtok + completion_tokens * price.output_per_mtok
        if read is not None:
            cost += cache_read_tokens * (read - price.input_per_mtok)
        if write is not None:
            cost += cache_write_tokens * (write - price.input_per_mtok)
        return cost / 1_000_000
