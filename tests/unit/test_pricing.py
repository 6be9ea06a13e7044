"""Cost from the price table: prompt-cache reads and writes at their own prices when the
entry sets them, else at the input price (prompt tokens include both)."""

from __future__ import annotations

import pytest

from gateway.config import PriceConfig
from gateway.tenancy.pricing import Pricing

TABLE = Pricing({
    "claude": PriceConfig(input_per_mtok=3, output_per_mtok=15, cached_input_per_mtok=0.3,
                          cache_write_per_mtok=3.75),
    "plain": PriceConfig(input_per_mtok=3, output_per_mtok=15),
})


def test_cache_reads_and_writes_at_their_own_prices() -> None:
    # 1M prompt tokens of which 600k read from the cache and 100k written to it.
    cost = TABLE.cost(("claude",), 1_000_000, 0, cache_read_tokens=600_000,
                      cache_write_tokens=100_000)
    assert cost == pytest.approx(0.3 * 3 + 0.6 * 0.3 + 0.1 * 3.75)


def test_without_cache_prices_every_prompt_token_is_input() -> None:
    assert TABLE.cost(("plain",), 1_000_000, 1_000_000, cache_read_tokens=600_000) == (
        pytest.approx(18.0))
    assert TABLE.cost(("unknown", "plain"), 1_000_000, 0) == pytest.approx(3.0)
    assert TABLE.cost(("unknown",), 1_000_000, 0) == 0.0
