"""The model table the admin API shows (``ListModelRoutes``): aliases, then each provider's
own models; each target priced as charging prices it; never a credential."""

from __future__ import annotations

from gateway.config import (
    Duration,
    HedgeConfig,
    ModelConfig,
    PriceConfig,
    ProviderConfig,
    Settings,
    TargetConfig,
)
from gateway.service.model_table import model_routes


def test_the_model_table_shows_targets_weights_and_the_price_charging_finds() -> None:
    settings = Settings(
        providers={"a": ProviderConfig(type="mock", models=("m", "n")),
                   "b": ProviderConfig(type="mock", api_key="sk-secret-never-shown")},
        models=(ModelConfig("alias", (TargetConfig("a", "m", 2), TargetConfig("b", "x")),
                            fallbacks=("other",), strategy="cost",
                            hedge=HedgeConfig(Duration(0.5))),),
        pricing={"m": PriceConfig(1, 2), "b/x": PriceConfig(3, 4, cache_write_per_mtok=5),
                 "alias": PriceConfig(9, 9)})
    routes = model_routes(settings)
    assert [(r.name, r.alias) for r in routes] == [("alias", True), ("a/m", False),
                                                   ("a/n", False)]
    alias = routes[0]
    assert alias.strategy == "cost" and alias.hedge_after_seconds == 0.5
    assert list(alias.fallbacks) == ["other"]
    assert [(t.provider, t.model, t.weight, t.price.entry) for t in alias.targets] == [
        ("a", "m", 2.0, "m"), ("b", "x", 1.0, "b/x")]
    assert alias.targets[1].price.cache_write_per_mtok == 5
    assert not alias.targets[1].price.HasField("cached_input_per_mtok")
    assert not routes[2].targets[0].HasField("price")
    assert "sk-secret" not in str(routes)
