"""The model registry: aliases, ``provider/model``, default_provider, weighted order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.config import Duration, ModelConfig, ProviderConfig, TargetConfig
from gateway.errors import ModelNotFoundError
from gateway.providers.mock import MockProvider
from gateway.routing.registry import ModelRegistry, Target, weighted_order

PROVIDER_CONFIGS = {
    "openai": ProviderConfig(type="mock", models=("gpt-4o-mini", "gpt-4o")),
    "azure": ProviderConfig(type="mock", models=("my-deployment",)),
    "mock": ProviderConfig(type="mock", models=("echo",)),
}
PROVIDERS = {name: MockProvider(name, cfg) for name, cfg in PROVIDER_CONFIGS.items()}
MODELS = (
    ModelConfig(name="gpt-4o-mini",
                targets=(TargetConfig("openai", "gpt-4o-mini", 3),
                         TargetConfig("azure", "my-deployment", 1)),
                fallbacks=("mock-1",), timeout=Duration(60)),
    ModelConfig(name="mock-1", targets=(TargetConfig("mock", "echo"),)),
)


def registry(default_provider: str = "") -> ModelRegistry:
    return ModelRegistry(PROVIDERS, PROVIDER_CONFIGS, MODELS, default_provider)


def labels(targets: tuple[Target, ...] | list[Target]) -> list[str]:
    return [t.label for t in targets]


# --- resolve -------------------------------------------------------------------------------


def test_alias() -> None:
    route = registry().resolve("gpt-4o-mini")
    assert route.name == "gpt-4o-mini"
    assert labels(route.targets) == ["openai/gpt-4o-mini", "azure/my-deployment"]
    assert [t.weight for t in route.targets] == [3, 1]
    assert route.targets[0].provider is PROVIDERS["openai"]
    assert route.fallbacks == ("mock-1",)
    assert route.timeout == 60


def test_alias_without_timeout() -> None:
    route = registry().resolve("mock-1")
    assert labels(route.targets) == ["mock/echo"]
    assert route.timeout is None
    assert route.fallbacks == ()


def test_provider_slash_model_goes_straight_to_the_provider() -> None:
    route = registry().resolve("azure/some-deployment")
    assert route.name == "azure/some-deployment"
    assert labels(route.targets) == ["azure/some-deployment"]
    assert route.targets[0].provider is PROVIDERS["azure"]
    assert route.fallbacks == ()


def test_model_names_may_contain_slashes() -> None:
    route = registry().resolve("openai/org/model:tag")
    assert route.targets[0].provider is PROVIDERS["openai"]
    assert route.targets[0].model == "org/model:tag"


def test_direct_routes_are_stable() -> None:
    reg = registry()
    assert reg.resolve("mock/echo") is reg.resolve("mock/echo")


def test_bare_name_goes_to_default_provider() -> None:
    route = registry("mock").resolve("llama3")
    assert labels(route.targets) == ["mock/llama3"]
    assert route.targets[0].provider is PROVIDERS["mock"]


def test_alias_wins_over_default_provider() -> None:
    assert labels(registry("mock").resolve("gpt-4o-mini").targets)[0] == "openai/gpt-4o-mini"


@pytest.mark.parametrize("name", ["llama3", "nope/model", "openai/", "/model", "", "mock-2"])
def test_unknown_without_default(name: str) -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        registry().resolve(name)
    err = caught.value
    assert err.code == "model_not_found"
    assert err.param == "model"
    assert f"'{name}'" in err.message


@pytest.mark.parametrize("name", ["nope/model", "openai/"])
def test_unknown_provider_is_not_sent_to_default(name: str) -> None:
    with pytest.raises(ModelNotFoundError):
        registry("mock").resolve(name)


# --- weighted order ------------------------------------------------------------------------


def test_weighted_order_three_to_one() -> None:
    targets = registry().resolve("gpt-4o-mini").targets
    rng = random.Random(1234)
    draws = 4000
    firsts: Counter[str] = Counter()
    for _ in range(draws):
        order = weighted_order(targets, rng)
        assert sorted(labels(order)) == sorted(labels(targets))  # every target, once
        firsts[order[0].label] += 1
    share = firsts["openai/gpt-4o-mini"] / draws
    assert 0.70 <= share <= 0.80, share


def test_weighted_order_unseeded_is_also_within_bounds() -> None:
    targets = registry().resolve("gpt-4o-mini").targets
    rng = random.Random()
    share = sum(weighted_order(targets, rng)[0].model == "gpt-4o-mini"
                for _ in range(4000)) / 4000
    # 0.75 expected; the bound is more than seven standard deviations wide.
    assert 0.70 <= share <= 0.80, share


def test_weighted_order_three_targets() -> None:
    provider = PROVIDERS["mock"]
    targets = [Target(provider, "a", 6), Target(provider, "b", 3), Target(provider, "c", 1)]
    rng = random.Random(7)
    firsts: Counter[str] = Counter()
    seconds_after_a: Counter[str] = Counter()
    for _ in range(6000):
        order = weighted_order(targets, rng)
        assert sorted(t.model for t in order) == ["a", "b", "c"]
        firsts[order[0].model] += 1
        if order[0].model == "a":
            seconds_after_a[order[1].model] += 1
    assert 0.55 <= firsts["a"] / 6000 <= 0.65
    assert 0.25 <= firsts["b"] / 6000 <= 0.35
    assert 0.07 <= firsts["c"] / 6000 <= 0.13
    # Without replacement: after "a", b:c is 3:1.
    assert 0.70 <= seconds_after_a["b"] / sum(seconds_after_a.values()) <= 0.80


def test_weighted_order_single_target_and_tiny_weights() -> None:
    provider = PROVIDERS["mock"]
    only = [Target(provider, "x", 0.001)]
    assert weighted_order(only, random.Random(0)) == only
    targets = [Target(provider, "heavy", 1000), Target(provider, "light", 0.001)]
    rng = random.Random(3)
    assert all(weighted_order(targets, rng)[0].model == "heavy" for _ in range(200))


def test_weighted_order_does_not_change_its_input() -> None:
    targets = list(registry().resolve("gpt-4o-mini").targets)
    before = list(targets)
    weighted_order(targets, random.Random(0))
    assert targets == before


# --- list and get --------------------------------------------------------------------------


async def test_list_models() -> None:
    models = {m.id: m for m in await registry().list_models()}
    assert set(models) == {"gpt-4o-mini", "mock-1", "openai/gpt-4o-mini", "openai/gpt-4o",
                           "azure/my-deployment", "mock/echo"}
    alias = models["gpt-4o-mini"]
    assert alias.owned_by == "llm-gateway"
    assert alias.targets == ("openai/gpt-4o-mini", "azure/my-deployment")
    assert alias.fallbacks == ("mock-1",)
    direct = models["openai/gpt-4o"]
    assert direct.owned_by == "openai"
    assert direct.targets == () and direct.fallbacks == ()
    assert len({m.created for m in models.values()}) == 1
    assert alias.created > 0


async def test_list_models_keeps_config_order() -> None:
    assert [m.id for m in await registry().list_models()][:2] == ["gpt-4o-mini", "mock-1"]


async def test_get_model() -> None:
    reg = registry()
    assert (await reg.get_model("mock-1")).targets == ("mock/echo",)
    assert (await reg.get_model("openai/gpt-4o")).owned_by == "openai"
    routable = await reg.get_model("azure/unlisted")  # routable though not advertised
    assert (routable.id, routable.owned_by) == ("azure/unlisted", "azure")
    with pytest.raises(ModelNotFoundError):
        await reg.get_model("ghost")
    assert (await registry("mock").get_model("ghost")).owned_by == "mock"


class Discoverable(MockProvider):
    """A provider configured without a model list: the registry asks it, and caches."""

    def __init__(self, name: str, models: list[str] | None) -> None:
        super().__init__(name, ProviderConfig(type="mock"))
        self.models = models
        self.calls = 0

    async def list_models(self, *, timeout: float) -> list[str]:
        self.calls += 1
        if self.models is None:
            raise ConnectionError("upstream down")
        return list(self.models)


async def test_providers_without_a_list_are_discovered_and_cached() -> None:
    local = Discoverable("local", ["llama3", "qwen2"])
    down = Discoverable("down", None)
    configs = {"local": ProviderConfig(type="mock"), "down": ProviderConfig(type="mock"),
               "mock": ProviderConfig(type="mock", models=("echo",))}
    reg = ModelRegistry({"local": local, "down": down, "mock": PROVIDERS["mock"]}, configs,
                        (ModelConfig(name="mock-1", targets=(TargetConfig("mock", "echo"),)),))
    ids = [m.id for m in await reg.list_models()]
    assert ids == ["mock-1", "mock/echo", "local/llama3", "local/qwen2"]
    assert (await reg.get_model("local/qwen2")).owned_by == "local"
    await reg.list_models()
    assert (local.calls, down.calls) == (1, 1)  # cached, failures included
