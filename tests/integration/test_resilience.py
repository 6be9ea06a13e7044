"""Routing and resilience end to end: real gateways, fault-injecting fake
upstreams, and a real redis-server for the shared breaker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI, openai_error, stream_events
from tests.fakes.server import Reply
from tests.inprocess import InProcessGateway
from tests.servers import RedisServer

ADMIN = "adm-test-key-123"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
def fakes() -> Iterator[tuple[FakeOpenAI, FakeOpenAI]]:
    with FakeOpenAI() as a, FakeOpenAI() as b:
        yield a, b  # type: ignore[misc]


def two_upstreams(a: FakeOpenAI, b: FakeOpenAI, extra: str = "") -> str:
    key = FakeOpenAI.api_key
    return f"""
retry: {{attempts: 2, backoff: 10ms, max_backoff: 1s}}
circuit_breaker: {{consecutive_failures: 3, min_requests: 100, open_timeout: 1s,
                  half_open_requests: 1}}
providers:
  a: {{type: openai, base_url: "{a.base_url}/v1", api_key: "{key}", models: [m]}}
  b: {{type: openai, base_url: "{b.base_url}/v1", api_key: "{key}", models: [m]}}
models:
  - name: primary
    targets: [{{provider: a, model: m}}]
    fallbacks: [secondary]
  - name: secondary
    targets: [{{provider: b, model: m}}]
{extra}"""


def chat(gw: RunningGateway, model: str = "primary", **headers: str) -> httpx.Response:
    return httpx.post(gw.http_url + "/v1/chat/completions", headers=headers, timeout=20,
                      json={"model": model, "messages": HI})


def breakers(gw: RunningGateway) -> dict[str, dict[str, object]]:
    r = httpx.get(gw.http_url + "/admin/circuit-breakers",
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    return {b["provider"]: b for b in r.json()["circuit_breakers"]}


def test_weights_are_honoured(gateway_factory: Callable[..., InProcessGateway]) -> None:
    gw = gateway_factory("""
providers:
  heavy: {type: mock}
  light: {type: mock}
models:
  - name: split
    targets: [{provider: heavy, model: echo, weight: 3}, {provider: light, model: echo}]
""")
    with httpx.Client(base_url=gw.http_url) as c:
        seen = Counter(c.post("/v1/chat/completions", json={"model": "split", "messages": HI})
                       .json()["x_gateway"]["provider"] for _ in range(400))
    # 3:1 over 400 draws: 300 expected, sd ~8.7; 5 sd either side.
    assert 256 <= seen["heavy"] <= 344 and seen["heavy"] + seen["light"] == 400


def test_retries_then_falls_back_in_order(gateway_factory: Callable[..., InProcessGateway],
                                          fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b))
    a.enqueue(openai_error(500, "down", "server_error"), Reply(reset=True))
    r = chat(gw)
    assert r.status_code == 200
    assert r.json()["x_gateway"]["provider"] == "b"
    assert len(a.requests) == 2 and len(b.requests) == 1  # two tries at a, then b


def test_retry_after_is_honoured(gateway_factory: Callable[..., InProcessGateway],
                                 fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b))
    a.enqueue(openai_error(429, "slow down", "requests", headers={"retry-after-ms": "400"}))
    started = time.monotonic()
    r = chat(gw)
    assert r.status_code == 200 and r.json()["x_gateway"]["provider"] == "a"
    assert time.monotonic() - started >= 0.4
    assert len(a.requests) == 2 and not b.requests


def test_caller_errors_never_trip_the_breaker(gateway_factory: Callable[..., InProcessGateway],
                                              fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b), env={"GATEWAY_ADMIN_KEY": ADMIN})
    for _ in range(6):
        a.enqueue(openai_error(400, "bad request", "invalid_request_error"))
        assert chat(gw).status_code == 400
    assert len(a.requests) == 6 and not b.requests  # no retry, no fallback on a 400
    assert breakers(gw)["a"]["state"] == "CIRCUIT_BREAKER_STATE_CLOSED"
    assert chat(gw).json()["x_gateway"]["provider"] == "a"


def test_breaker_opens_fails_fast_then_probes_and_closes(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b), env={"GATEWAY_ADMIN_KEY": ADMIN})
    a.enqueue(*[openai_error(503, "overloaded", "server_error")] * 3)
    assert chat(gw).json()["x_gateway"]["provider"] == "b"  # 2 failures at a
    assert chat(gw).json()["x_gateway"]["provider"] == "b"  # the 3rd opens it
    state = breakers(gw)["a"]
    assert state["state"] == "CIRCUIT_BREAKER_STATE_OPEN" and state["opened_at"]
    hits = len(a.requests)
    r = chat(gw, "a/m")  # straight to the open deployment: fails fast, upstream untouched
    assert r.status_code == 503 and r.json()["error"]["code"] == "circuit_open"
    assert len(a.requests) == hits
    assert chat(gw).json()["x_gateway"]["provider"] == "b"  # the alias falls back at once
    time.sleep(1.1)  # open_timeout
    assert chat(gw).json()["x_gateway"]["provider"] == "a"  # the probe succeeds
    assert breakers(gw)["a"]["state"] == "CIRCUIT_BREAKER_STATE_CLOSED"


def test_admin_reset_and_admin_auth(gateway_factory: Callable[..., InProcessGateway],
                                    fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b), env={"GATEWAY_ADMIN_KEY": ADMIN})
    a.enqueue(*[openai_error(500, "x", "server_error")] * 3)
    for _ in range(3):
        chat(gw, "a/m")
    assert breakers(gw)["a"]["state"] == "CIRCUIT_BREAKER_STATE_OPEN"
    url = gw.http_url + "/admin/circuit-breakers/a/reset"
    assert httpx.post(url).status_code == 401
    assert httpx.post(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    r = httpx.post(url, headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200
    assert r.json()["circuit_breaker"]["state"] == "CIRCUIT_BREAKER_STATE_CLOSED"
    assert chat(gw, "a/m").status_code == 200
    missing = httpx.post(gw.http_url + "/admin/circuit-breakers/zzz/reset",
                         headers={"Authorization": f"Bearer {ADMIN}"})
    assert missing.status_code == 404


def test_stream_failing_before_its_first_byte_falls_back(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b))
    a.enqueue(openai_error(502, "bad gateway", "server_error"), Reply(reset=True))
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="primary", messages=HI,  # type: ignore[arg-type]
                                                     stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "Hello from fake-openai"
    assert len(a.requests) == 2 and len(b.requests) == 1


def test_a_stream_cut_after_its_first_byte_counts_against_the_breaker(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b), env={"GATEWAY_ADMIN_KEY": ADMIN})
    events = stream_events("m", ["one", " two"], include_usage=False)
    a.enqueue(*[Reply(events=events, cut_after=2)] * 3)
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0) as client:
        for _ in range(3):
            with pytest.raises(openai.APIError):
                list(client.chat.completions.create(model="a/m", messages=HI,  # type: ignore[arg-type]
                                                    stream=True))
    assert len(a.requests) == 3 and not b.requests  # committed streams are not retried
    assert breakers(gw)["a"]["state"] == "CIRCUIT_BREAKER_STATE_OPEN"


def test_the_client_timeout_bounds_the_whole_call(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI]
) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b))
    a.enqueue(Reply(delay=3, json={}))
    started = time.monotonic()
    r = chat(gw, "a/m", **{"X-Request-Timeout": "0.5"})
    assert r.status_code == 504
    assert time.monotonic() - started < 2.5
    assert chat(gw, "secondary").status_code == 200  # still serving


def test_x_provider_pins_the_deployment(gateway_factory: Callable[..., InProcessGateway],
                                        fakes: tuple[FakeOpenAI, FakeOpenAI]) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b, """
  - name: both
    targets: [{provider: a, model: m}, {provider: b, model: m}]
"""))
    for _ in range(5):
        assert chat(gw, "both", **{"X-Provider": "b"}).json()["x_gateway"]["provider"] == "b"
    assert not a.requests
    # A bare name the route lacks goes straight to the pinned provider.
    assert chat(gw, "m", **{"X-Provider": "a"}).json()["x_gateway"]["provider"] == "a"


def test_two_gateways_share_one_breaker_through_redis(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI],
    redis_server: RedisServer,
) -> None:
    a, b = fakes
    config = two_upstreams(a, b)
    env = {"REDIS_URL": redis_server.url, "USE_DISTRIBUTED_CB": "true",
           "GATEWAY_ADMIN_KEY": ADMIN}
    one, two = gateway_factory(config, env=env), gateway_factory(config, env=env)
    a.enqueue(*[openai_error(500, "x", "server_error")] * 3)
    for _ in range(2):  # two tries, then one more that opens the breaker
        assert chat(one, "a/m").status_code == 502  # only `one` sees the failures
    hits = len(a.requests)
    assert hits == 3
    r = chat(two, "a/m")
    assert r.status_code == 503 and r.json()["error"]["code"] == "circuit_open"
    assert len(a.requests) == hits  # `two` never called the upstream
    assert breakers(two)["a"]["distributed"] is True


def test_redis_dying_mid_run_never_fails_requests(
    gateway_factory: Callable[..., InProcessGateway], fakes: tuple[FakeOpenAI, FakeOpenAI],
    redis_server: RedisServer,
) -> None:
    a, b = fakes
    gw = gateway_factory(two_upstreams(a, b), env={
        "REDIS_URL": redis_server.url, "USE_DISTRIBUTED_CB": "true"})
    assert chat(gw).status_code == 200
    redis_server.stop()
    for _ in range(10):
        assert chat(gw).status_code == 200
    ready = httpx.get(gw.http_url + "/ready").json()
    assert any("circuit breakers are local" in d for d in ready["degraded"])
    assert "redis unreachable" in gw.logs()
    redis_server.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and "degraded" in httpx.get(gw.http_url + "/ready").json():
        assert chat(gw).status_code == 200
        time.sleep(0.3)
    assert "degraded" not in httpx.get(gw.http_url + "/ready").json()
