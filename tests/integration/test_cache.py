"""The response cache: identical deterministic non-stream requests answered from it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI
from tests.inprocess import InProcessGateway
from tests.servers import RedisServer

Factory = Callable[..., InProcessGateway]


def config(fake: FakeOpenAI, cache: str) -> str:
    return f"""
cache: {cache}
providers:
{fake.provider()}
"""


def ask(gw: RunningGateway, **extra: object) -> httpx.Response:
    headers = extra.pop("headers", {})
    return httpx.post(gw.http_url + "/v1/chat/completions", headers=headers,  # type: ignore[arg-type]
                      json={"model": "up/m", "messages": [{"role": "user", "content": "q"}],
                            **extra})


def cache_lookups(gw: RunningGateway) -> dict[str, float]:
    """``gateway_cache_requests_total`` by result. Every gateway of the test process counts
    into the same registry, so tests compare before and after."""
    text = httpx.get(gw.http_url + "/metrics").text
    return {s.labels["result"]: s.value for family in text_string_to_metric_families(text)
            for s in family.samples if s.name == "gateway_cache_requests_total"}


def check_cache(gw: RunningGateway, fake: FakeOpenAI) -> None:
    before = cache_lookups(gw)
    first = ask(gw, temperature=0)
    assert first.headers["X-Cache"] == "MISS" and not first.json()["x_gateway"]["cache_hit"]
    second = ask(gw, temperature=0)
    assert second.headers["X-Cache"] == "HIT"
    body = second.json()
    assert body["x_gateway"]["cache_hit"] and body["x_gateway"]["cost_usd"] == 0
    assert body["choices"] == first.json()["choices"]
    assert body["x_gateway"]["request_id"] != first.json()["x_gateway"]["request_id"]
    assert len(fake.requests) == 1  # the hit never reached the upstream
    assert ask(gw, temperature=0, headers={"X-Skip-Cache": "true"}).headers["X-Cache"] == "MISS"
    assert len(fake.requests) == 2
    assert ask(gw, seed=7).headers["X-Cache"] == "MISS"
    assert ask(gw, seed=7).headers["X-Cache"] == "HIT"
    # Not deterministic, or streamed: never cached.
    assert "X-Cache" not in ask(gw, temperature=0.7).headers
    assert "X-Cache" not in ask(gw, temperature=0.7).headers
    assert len(fake.requests) == 5
    after = cache_lookups(gw)
    assert after.get("hit", 0) - before.get("hit", 0) == 2
    assert after.get("miss", 0) - before.get("miss", 0) == 2


def test_memory_cache(gateway_factory: Factory, fake_openai: FakeOpenAI) -> None:
    check_cache(gateway_factory(config(fake_openai, "{enabled: true, store: memory, ttl: 5m}")),
                fake_openai)


def test_redis_cache_shared_and_outage_safe(gateway_factory: Factory, fake_openai: FakeOpenAI,
                                            redis_server: RedisServer) -> None:
    cfg = config(fake_openai, "{enabled: true, store: redis, ttl: 5m}")
    env = {"REDIS_URL": redis_server.url}
    one = gateway_factory(cfg, env=env)
    check_cache(one, fake_openai)
    two = gateway_factory(cfg, env=env)  # another replica sees the same cache
    assert ask(two, temperature=0).headers["X-Cache"] == "HIT"
    redis_server.stop()
    assert ask(two, temperature=0).status_code == 200  # a cache outage is only a miss
