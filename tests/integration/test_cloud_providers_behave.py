"""The cloud providers behave like every other provider (issue 21, item 5): one gateway with
Bedrock, Vertex AI and Microsoft Foundry behind wire-faithful fakes, through the Responses
route, an alias that falls back across clouds when one throttles, usage and cost at cache
prices, the response cache, and metrics by provider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RunningGateway
from tests.fakes.anthropic import FOUNDRY_KEY_HEADERS, FOUNDRY_PREFIX, FakeAnthropic
from tests.fakes.bedrock import ACCESS_KEY, REGION, SECRET_KEY, USAGE, FakeBedrock, bedrock_error
from tests.fakes.vertex import FakeVertex, ServiceAccount
from tests.inprocess import start_in_process

BEDROCK_CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
VERTEX_CLAUDE = "claude-sonnet-4-5@20250929"
GEMINI = "gemini-2.5-flash"
FOUNDRY_CLAUDE = "claude-sonnet-4-5"
HI: Any = [{"role": "user", "content": "hi"}]
# USD per million tokens; Bedrock's fake reports 11 input, 7 output, 3 cache-read and 2
# cache-write tokens per answer.
PRICES = {"input": 3.0, "output": 15.0, "cached": 0.30, "write": 3.75}


@pytest.fixture(scope="module")
def bedrock() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def vertex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FakeVertex, Path]]:
    account = ServiceAccount.generate()
    with FakeVertex() as server:
        server.trust(account)
        yield server, account.write(tmp_path_factory.mktemp("vertex"), server.token_uri)


@pytest.fixture(scope="module")
def foundry() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(FOUNDRY_PREFIX, FOUNDRY_KEY_HEADERS) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(bedrock: FakeBedrock, vertex: tuple[FakeVertex, Path],
           foundry: FakeAnthropic) -> None:
    bedrock.reset()
    vertex[0].reset()
    foundry.reset()


@pytest.fixture(scope="module")
def gateway(bedrock: FakeBedrock, vertex: tuple[FakeVertex, Path],
            foundry: FakeAnthropic) -> Iterator[RunningGateway]:
    fake_vertex, credentials = vertex
    config = f"""
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
cache: {{enabled: true, store: memory, ttl: 5m}}
pricing:
  "{BEDROCK_CLAUDE}": {{input_per_mtok: {PRICES["input"]}, output_per_mtok: {PRICES["output"]},
                       cached_input_per_mtok: {PRICES["cached"]},
                       cache_write_per_mtok: {PRICES["write"]}}}
providers:
  bedrock:
    type: bedrock
    region: {REGION}
    endpoint_url: "{bedrock.base_url}"
    access_key_id: "{ACCESS_KEY}"
    secret_access_key: "{SECRET_KEY}"
  vertex:
    type: vertex
    project: test-project
    location: us-east5
    base_url: "{fake_vertex.base_url}"
    credentials_file: "{credentials}"
  foundry:
    type: azure_anthropic
    base_url: "{foundry.base_url}"
    api_key: "{FakeAnthropic.api_key}"
models:
  - name: bedrock-claude
    targets: [{{provider: bedrock, model: "{BEDROCK_CLAUDE}"}}]
  - name: nova
    targets: [{{provider: bedrock, model: "{NOVA}"}}]
  - name: gemini
    targets: [{{provider: vertex, model: {GEMINI}}}]
  - name: vertex-claude
    targets: [{{provider: vertex, model: "{VERTEX_CLAUDE}"}}]
  - name: foundry-claude
    targets: [{{provider: foundry, model: {FOUNDRY_CLAUDE}}}]
  - name: claude-anywhere
    targets: [{{provider: bedrock, model: "{BEDROCK_CLAUDE}"}}]
    fallbacks: [vertex-claude, foundry-claude]
"""
    gw = start_in_process(config)
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def chat(gateway: RunningGateway, model: str, **extra: Any) -> httpx.Response:
    return httpx.post(gateway.http_url + "/v1/chat/completions", timeout=20,
                      json={"model": model, "messages": HI, **extra})


@pytest.mark.parametrize("model", ["bedrock-claude", "nova", "gemini", "vertex-claude",
                                   "foundry-claude"])
def test_the_responses_route(client: openai.OpenAI, model: str) -> None:
    answer = client.responses.create(model=model, input="hi")
    assert answer.output_text.startswith("Hello from")
    assert answer.usage is not None and answer.usage.output_tokens > 0
    streamed = client.responses.create(model=model, input="hi", stream=True)
    kinds = [event.type for event in streamed]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"


def test_a_throttled_cloud_falls_back_to_another(gateway: RunningGateway, bedrock: FakeBedrock,
                                                 vertex: tuple[FakeVertex, Path]) -> None:
    throttled = bedrock_error(429, "ThrottlingException", "Too many requests, please wait")
    bedrock.enqueue(throttled, throttled)
    answer = chat(gateway, "claude-anywhere")
    assert answer.status_code == 200, answer.text
    assert answer.json()["x_gateway"]["provider"] == "vertex"
    assert len(bedrock.requests) == 2  # retried once, then the fallback
    assert vertex[0].requests[-1].path.endswith(f"/anthropic/models/{VERTEX_CLAUDE}:rawPredict")


def test_cost_counts_cache_reads_and_writes_at_their_prices(gateway: RunningGateway) -> None:
    body = chat(gateway, "bedrock-claude").json()
    usage = body["usage"]
    cached, written = USAGE["cacheReadInputTokens"], USAGE["cacheWriteInputTokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == cached
    assert usage["prompt_tokens"] == USAGE["inputTokens"] + cached + written
    expected = (USAGE["inputTokens"] * PRICES["input"] + cached * PRICES["cached"]
                + written * PRICES["write"] + USAGE["outputTokens"] * PRICES["output"]) / 1e6
    assert body["x_gateway"]["cost_usd"] == pytest.approx(expected)


@pytest.mark.parametrize("model", ["nova", "gemini", "foundry-claude"])
def test_deterministic_answers_are_cached(gateway: RunningGateway, model: str,
                                          bedrock: FakeBedrock, vertex: tuple[FakeVertex, Path],
                                          foundry: FakeAnthropic) -> None:
    fakes = {"nova": bedrock, "gemini": vertex[0], "foundry-claude": foundry}
    first = chat(gateway, model, temperature=0, seed=7)
    second = chat(gateway, model, temperature=0, seed=7)
    assert first.headers["X-Cache"] == "MISS" and second.headers["X-Cache"] == "HIT"
    assert second.json()["choices"] == first.json()["choices"]
    assert len(fakes[model].requests) == 1


def test_metrics_name_each_cloud_provider(gateway: RunningGateway) -> None:
    for model in ("nova", "gemini", "foundry-claude"):
        assert chat(gateway, model).status_code == 200
    text = httpx.get(gateway.http_url + "/metrics").text
    served = {(s.labels["provider"], s.labels["model"]) for family in
              text_string_to_metric_families(text) for s in family.samples
              if s.name == "gateway_requests_total" and s.labels.get("status") == "OK"}
    assert {("bedrock", "nova"), ("vertex", "gemini"), ("foundry", "foundry-claude")} <= served
