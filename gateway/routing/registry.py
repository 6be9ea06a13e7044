"""The model registry: what a client's model name means.

* a name in ``models:`` is an alias with weighted targets and fallbacks;
* ``provider/model`` goes straight to that provider;
* any other bare name goes to ``default_provider`` when one is set.

Example::

    registry.resolve("mock-1").targets[0].model   # "echo"
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gateway.config import ModelConfig, ProviderConfig, RoutingStrategy
from gateway.domain import ModelInfo
from gateway.errors import ModelNotFoundError
from gateway.providers.base import Provider

__all__ = ["ModelRegistry", "Route", "Target", "weighted_order"]

log = logging.getLogger("gateway.routing")

DISCOVERY_TTL = 300.0
DISCOVERY_TIMEOUT = 5.0


@dataclass(slots=True, frozen=True)
class Target:
    """One deployment: a provider and the upstream model name to ask it for."""

    provider: Provider
    model: str
    weight: float = 1.0

    @property
    def label(self) -> str:
        return f"{self.provider.name}/{self.model}"


@dataclass(slots=True, frozen=True)
class Route:
    """What a model name resolves to."""

    name: str
    targets: tuple[Target, ...]
    fallbacks: tuple[str, ...] = ()
    timeout: float | None = None
    configured: bool = False  # a name from the config (`models:` or a provider's `models`)
    strategy: RoutingStrategy = "weighted"
    hedge_after: float | None = None  # seconds without an answer before the next target too


def weighted_order(targets: Sequence[Target], rng: random.Random) -> list[Target]:
    """All targets, ordered by weighted random sampling without replacement."""
    if len(targets) == 1:
        return [targets[0]]
    pool = list(targets)
    order: list[Target] = []
    while pool:
        pick = rng.uniform(0, sum(t.weight for t in pool))
        for i, target in enumerate(pool):
            pick -= target.weight
            if pick <= 0 or i == len(pool) - 1:
                order.append(pool.pop(i))
                break
    return order


class ModelRegistry:
    def __init__(
        self,
        providers: Mapping[str, Provider],
        provider_configs: Mapping[str, ProviderConfig],
        models: Sequence[ModelConfig],
        default_provider: str = "",
    ):
        self._providers = dict(providers)
        self._default = default_provider
        self._created = int(time.time())
        self._aliases: dict[str, Route] = {
            m.name: Route(
                name=m.name,
                targets=tuple(Target(self._providers[t.provider], t.model, t.weight)
                              for t in m.targets),
                fallbacks=m.fallbacks,
                timeout=m.timeout,
                configured=True,
                strategy=m.strategy,
                hedge_after=float(m.hedge.after) if m.hedge is not None else None,
            )
            for m in models
        }
        self._direct: dict[str, Route] = {}
        # Models a provider advertises (its config's `models`) are listed as provider/model;
        # a provider configured without a list is asked for its own (cached).
        self._advertised = [
            f"{name}/{model}" for name, cfg in provider_configs.items() for model in cfg.models
        ]
        self._listed = frozenset(self._advertised)
        self._discover = [name for name, cfg in provider_configs.items() if not cfg.models]
        self._discovered: dict[str, tuple[float, list[str]]] = {}
        self._discovery_lock = asyncio.Lock()

    @property
    def providers(self) -> Mapping[str, Provider]:
        return self._providers

    def resolve(self, name: str) -> Route:
        """The route for a client's model name; :class:`ModelNotFoundError` if none."""
        route = self._aliases.get(name) or self._direct.get(name)
        if route is not None:
            return route
        provider_name, slash, model = name.partition("/")
        if slash and model and provider_name in self._providers:
            route = Route(name=name, targets=(Target(self._providers[provider_name], model),),
                          configured=name in self._listed)
        elif not slash and self._default:
            route = Route(name=name, targets=(Target(self._providers[self._default], name),))
        else:
            raise ModelNotFoundError(name)
        if len(self._direct) < 10_000:  # bounded: names come from clients
            self._direct[name] = route
        return route

    async def _discovered_models(self) -> list[str]:
        """``provider/model`` names the upstreams report, refreshed every few minutes."""
        names: list[str] = []
        async with self._discovery_lock:
            now = time.monotonic()
            for provider_name in self._discover:
                expires, models = self._discovered.get(provider_name, (0.0, []))
                if expires < now:
                    try:
                        models = await self._providers[provider_name].list_models(
                            timeout=DISCOVERY_TIMEOUT)
                    except Exception as exc:  # an unreachable upstream lists nothing
                        log.warning("model discovery failed", extra={"fields": {
                            "provider": provider_name, "error": type(exc).__name__}})
                        models = []
                    self._discovered[provider_name] = (now + DISCOVERY_TTL, models)
                names.extend(f"{provider_name}/{m}" for m in models)
        return names

    async def list_models(self) -> list[ModelInfo]:
        infos = [
            ModelInfo(
                id=route.name,
                owned_by="llm-gateway",
                created=self._created,
                targets=tuple(t.label for t in route.targets),
                fallbacks=route.fallbacks,
            )
            for route in self._aliases.values()
        ]
        listed = dict.fromkeys((*self._advertised, *await self._discovered_models()))
        infos.extend(
            ModelInfo(id=model_id, owned_by=model_id.partition("/")[0], created=self._created)
            for model_id in listed
            if model_id not in self._aliases
        )
        return infos

    async def get_model(self, model_id: str) -> ModelInfo:
        for info in await self.list_models():
            if info.id == model_id:
                return info
        route = self.resolve(model_id)  # routable though not advertised
        return ModelInfo(id=model_id, owned_by=route.targets[0].provider.name,
                         created=self._created)
