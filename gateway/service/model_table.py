"""The model table as the admin API shows it (``ListModelRoutes``): each alias of
``models:`` with its targets, weights, strategy, hedge and fallbacks, then each provider's
own ``provider/model`` names, every target with the price the gateway charges for it.

Prices are found as the gateway finds them when it charges a request: by the upstream
model, then ``provider/model``, then the name the client asked for. Nothing here reads a
provider's credentials.

Example::

    routes = model_routes(settings)
    routes[0].name, routes[0].targets[0].provider  # ("mock-1", "mock")
"""

from __future__ import annotations

from llmgateway.v1 import admin_service_pb2 as pb

from gateway.config import PriceConfig, Settings
from gateway.tenancy.pricing import Pricing

__all__ = ["model_routes"]


def model_routes(settings: Settings) -> list[pb.ModelRoute]:
    """Aliases by name, then every configured ``provider/model`` by name."""
    pricing = Pricing(settings.pricing)
    routes = []
    for model in sorted(settings.models, key=lambda m: m.name):
        targets = [_target(pricing, t.provider, t.model, t.weight, model.name)
                   for t in model.targets]
        routes.append(pb.ModelRoute(
            name=model.name, alias=True, targets=targets, fallbacks=model.fallbacks,
            strategy=model.strategy,
            hedge_after_seconds=float(model.hedge.after) if model.hedge else 0.0,
            timeout_seconds=float(model.timeout) if model.timeout is not None else 0.0))
    direct = sorted((f"{provider}/{upstream}", provider, upstream)
                    for provider, cfg in settings.providers.items() for upstream in cfg.models)
    for name, provider, upstream in direct:
        routes.append(pb.ModelRoute(name=name, targets=[
            _target(pricing, provider, upstream, 1.0, name)]))
    return routes


def _target(pricing: Pricing, provider: str, model: str, weight: float,
            asked: str) -> pb.ModelRouteTarget:
    target = pb.ModelRouteTarget(provider=provider, model=model, weight=weight)
    for entry in (model, f"{provider}/{model}", asked):  # the order charging uses
        found = pricing.price((entry,))
        if found is not None:
            target.price.CopyFrom(_price(entry, found))
            break
    return target


def _price(entry: str, price: PriceConfig) -> pb.ModelPrice:
    message = pb.ModelPrice(entry=entry, input_per_mtok=price.input_per_mtok,
                            output_per_mtok=price.output_per_mtok)
    if price.cached_input_per_mtok is not None:
        message.cached_input_per_mtok = price.cached_input_per_mtok
    if price.cache_write_per_mtok is not None:
        message.cache_write_per_mtok = price.cache_write_per_mtok
    return message
