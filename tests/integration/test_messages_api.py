"""Anthropic's Messages API end to end: the official ``anthropic`` SDK (sync and async, its
stream helpers and final-message accumulator) -> a real gateway -> wire-faithful fakes of
Anthropic (passed through) and OpenAI (translated), and the in-process mock. Each test
checks what the upstream received as well as what the client got."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import RunningGateway
from tests.fakes.anthropic import FakeAnthropic, anthropic_error, message, text_events
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

KEY = "sk-gateway-messages-1"
UPSTREAM = "claude-sonnet-4-5-20250929"
WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake: FakeAnthropic, openai_fake: FakeOpenAI) -> None:
    fake.reset()
    openai_fake.reset()


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic, openai_fake: FakeOpenAI) -> Iterator[RunningGateway]:
    config = f"""
logging: {{level: info, format: json}}
server: {{stream_ping_interval: 100ms, max_request_body_size: 1000000}}
auth: {{api_keys: {{enabled: true, keys: [{KEY}]}}}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 1000, min_requests: 1000}}
providers:
  anthropic:
    type: anthropic
    base_url: "{fake.base_url}"
    api_key: "{FakeAnthropic.api_key}"
{openai_fake.provider("openai", "gpt-4o-mini")}
  mock: {{type: mock, chunk_delay: 250ms}}
models:
  - name: claude-sonnet-4-5
    targets: [{{provider: anthropic, model: {UPSTREAM}}}]
  - name: claude-or-gpt
    targets: [{{provider: anthropic, model: {UPSTREAM}}}]
    fallbacks: [gpt]
  - name: gpt
    targets: [{{provider: openai, model: gpt-4o-mini}}]
"""
    gw = start_in_process(config)
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.http_url, api_key=KEY, max_retries=0,
                             timeout=20) as c:
        yield c


def _sse(raw: str) -> list[tuple[str, str]]:
    """``(event name, data)`` of each event of an SSE body."""
    out = []
    for block in raw.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        out.append((fields.get("event", ""), fields.get("data", "")))
    return out


# --- passed through to Anthropic ---------------------------------------------------------

def test_the_upstream_gets_the_clients_body_but_for_the_model(
        client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    params: dict[str, Any] = {
        "model": "claude-sonnet-4-5", "max_tokens": 1024,
        "system": [{"type": "text", "text": "You are terse." * 50,
                    "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this file?",
                 "cache_control": {"type": "ephemeral"}},
                {"type": "document", "title": "notes",
                 "source": {"type": "text", "media_type": "text/plain", "data": "hello"},
                 "citations": {"enabled": True}},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                             "data": "iVBORw0KGgo="}}]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "sig-abc=="},
                {"type": "redacted_thinking", "data": "ZW5jcnlwdGVk"},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                 "input": {"city": "Paris", "days": 12345678901234567890}}]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "is_error": False,
                 "content": [{"type": "text", "text": "sunny"}]}]},
        ],
        "tools": [{**WEATHER, "cache_control": {"type": "ephemeral"}},
                  {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "user-42"},
        "stop_sequences": ["END"],
    }
    # Sampling fields newer SDKs no longer take as arguments: sent as extra body fields.
    sampling = {"top_k": 5, "temperature": 0.5}
    response = client.messages.create(
        **params, extra_body={**sampling, "service_tier": "auto",
                              "future_field": {"a": [1, 2.5]}},
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31, output-128k-2025-02-19",
                       "anthropic-version": "2023-06-01"})
    assert response.id == "msg_fake123"
    assert response.content[0].type == "text"
    assert response.usage.cache_read_input_tokens == 3
    assert response.usage.cache_creation_input_tokens == 2
    sent = fake.requests[-1]
    assert sent.json == {**params, **sampling, "model": UPSTREAM, "service_tier": "auto",
                         "future_field": {"a": [1, 2.5]}}
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31,output-128k-2025-02-19"
    assert sent.headers["x-api-key"] == FakeAnthropic.api_key


def test_the_answer_comes_back_unchanged(client: anthropic.Anthropic,
                                         fake: FakeAnthropic) -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "c2ln"},
        {"type": "text", "text": "It is sunny.", "citations": [
            {"type": "char_location", "cited_text": "sunny", "document_index": 0,
             "document_title": "notes", "start_char_index": 0, "end_char_index": 5}]},
        {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
         "input": {"query": "paris weather"}},
        {"type": "tool_use", "id": "toolu_9", "name": "get_weather", "input": {"city": "Rome"}},
    ]
    body = message(UPSTREAM, content, "tool_use")
    body["usage"] = {**body["usage"], "service_tier": "standard",
                     "server_tool_use": {"web_search_requests": 1}}
    fake.enqueue(Reply(json=body))
    raw = client.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=100,
        messages=[{"role": "user", "content": "weather?"}])
    assert raw.http_response.json() == body
    assert raw.headers["request-id"]
    assert raw.parse().stop_reason == "tool_use"


def test_a_stream_passes_through_in_anthropics_order(client: anthropic.Anthropic,
                                                     fake: FakeAnthropic) -> None:
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello from fake-anthropic"
    assert final.content[0].type == "text" and final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7 and final.usage.cache_read_input_tokens == 3
    assert fake.requests[-1].json["stream"] is True


def test_the_raw_stream_is_the_upstreams(gateway: RunningGateway) -> None:
    response = httpx.post(gateway.http_url + "/v1/messages?beta=true", headers={
        "x-api-key": KEY, "anthropic-version": "2023-06-01"}, json={
        "model": "claude-sonnet-4-5", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    names = [name for name, _ in _sse(response.text)]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_delta", "content_block_stop",
                     "message_delta", "message_stop"]


def test_the_async_client(gateway: RunningGateway, fake: FakeAnthropic) -> None:
    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(base_url=gateway.http_url, api_key=KEY,
                                            max_retries=0, timeout=20) as c:
            whole = await c.messages.create(model="claude-sonnet-4-5", max_tokens=32,
                                            messages=[{"role": "user", "content": "hi"}])
            async with c.messages.stream(model="claude-sonnet-4-5", max_tokens=32,
                                         messages=[{"role": "user", "content": "hi"}]) as s:
                final = await s.get_final_message()
            block, streamed = whole.content[0], final.content[0]
            assert block.type == "text" and streamed.type == "text"
            return block.text, streamed.text

    assert asyncio.run(run()) == ("Hello from fake-anthropic",) * 2


def test_count_tokens_is_the_upstreams_own(client: anthropic.Anthropic,
                                            fake: FakeAnthropic) -> None:
    counted = client.messages.count_tokens(
        model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hello there"}],
        system="be brief")
    sent = fake.requests[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.json == {"model": UPSTREAM, "system": "be brief",
                         "messages": [{"role": "user", "content": "hello there"}]}
    assert counted.input_tokens == len(sent.body) // 10


# --- translated for other providers ------------------------------------------------------

def test_a_tool_round_trip_through_openai(client: anthropic.Anthropic,
                                          openai_fake: FakeOpenAI) -> None:
    first = client.messages.create(
        model="gpt", max_tokens=200, tools=[WEATHER], tool_choice={"type": "any"},
        system="You help.", messages=[{"role": "user", "content": "Weather in Paris?"}])
    assert first.stop_reason == "tool_use"
    call = first.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    sent = openai_fake.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "You help."}
    assert sent["tool_choice"] == "required"
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    second = client.messages.create(
        model="gpt", max_tokens=200, tools=[WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"},
                  {"role": "assistant", "content": [c.model_dump() for c in first.content]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                                "content": "sunny, 21C"}]}])
    assert second.content[0].type == "text"
    assert second.stop_reason == "end_turn"
    assert second.usage.input_tokens == 11 - 3 and second.usage.cache_read_input_tokens == 3
    turns = openai_fake.requests[-1].json["messages"]
    assert turns[-2]["tool_calls"][0]["id"] == call.id
    assert turns[-1] == {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"}


def test_a_translated_stream_has_anthropics_events(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model="gpt", max_tokens=64,
                                messages=[{"role": "user", "content": "hi"}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert final.content[0].type == "text" and final.content[0].text == "Hello from fake-openai"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 7


def test_the_mock_is_translated_and_pinged_while_silent(gateway: RunningGateway) -> None:
    response = httpx.post(gateway.http_url + "/v1/messages", headers={"x-api-key": KEY},
                          json={"model": "mock/echo", "max_tokens": 64, "stream": True,
                                "messages": [{"role": "user", "content": "one two"}]},
                          timeout=20)
    names = [name for name, _ in _sse(response.text)]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert "ping" in names  # the mock waits 250 ms per word; pings come every 100 ms
    assert names.count("content_block_start") == names.count("content_block_stop") == 1


def test_count_tokens_elsewhere_is_an_estimate(gateway: RunningGateway,
                                               openai_fake: FakeOpenAI) -> None:
    response = httpx.post(gateway.http_url + "/v1/messages/count_tokens",
                          headers={"x-api-key": KEY},
                          json={"model": "gpt", "messages": [{"role": "user",
                                                              "content": "x" * 400}]})
    assert response.status_code == 200
    assert response.headers["x-gateway-token-count"] == "estimated"
    assert response.json()["input_tokens"] >= 100
    assert openai_fake.requests == []


def test_an_overloaded_anthropic_falls_back_to_openai(client: anthropic.Anthropic,
                                                      fake: FakeAnthropic,
                                                      openai_fake: FakeOpenAI) -> None:
    overloaded = anthropic_error(529, "overloaded_error", "Overloaded")
    fake.enqueue(overloaded, overloaded)
    response = client.messages.create(model="claude-or-gpt", max_tokens=32,
                                      messages=[{"role": "user", "content": "hi"}])
    assert response.content[0].type == "text"
    assert response.content[0].text == "Hello from fake-openai"
    assert len(fake.requests) == 2 and len(openai_fake.requests) == 1


# --- errors in Anthropic's shape -----------------------------------------------------------

def test_errors_are_anthropic_shaped(gateway: RunningGateway, client: anthropic.Anthropic,
                                     fake: FakeAnthropic) -> None:
    url = gateway.http_url + "/v1/messages"
    huge = httpx.post(url, headers={"x-api-key": KEY}, json={
        "model": "claude-sonnet-4-5", "max_tokens": 8,
        "messages": [{"role": "user", "content": "x" * 1_500_000}]})
    assert huge.status_code == 413
    assert huge.json()["error"]["type"] == "request_too_large"
    bad = httpx.post(url, headers={"x-api-key": KEY}, content=b"{not json")
    assert bad.status_code == 400
    body = bad.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert body["request_id"] == bad.headers["request-id"]
    with pytest.raises(anthropic.BadRequestError) as missing:
        client.messages.create(model="claude-sonnet-4-5",
                               messages=[{"role": "user", "content": "hi"}],
                               max_tokens=None)  # type: ignore[arg-type]
    assert "max_tokens" in str(missing.value)
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="sk-wrong",
                             max_retries=0) as stranger, \
            pytest.raises(anthropic.AuthenticationError) as unauthenticated:
        stranger.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                                 messages=[{"role": "user", "content": "hi"}])
    assert unauthenticated.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
    with pytest.raises(anthropic.NotFoundError) as unknown:
        client.messages.create(model="no-such-model", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    fake.enqueue(*[anthropic_error(529, "overloaded_error", "Overloaded")] * 2)
    with pytest.raises(anthropic.APIStatusError) as overloaded:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_a_document_for_openai_is_refused_by_name(client: anthropic.Anthropic,
                                                  openai_fake: FakeOpenAI) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client.messages.create(model="gpt", max_tokens=8, messages=[{"role": "user", "content": [
            {"type": "text", "text": "read this"},
            {"type": "document", "source": {"type": "text", "media_type": "text/plain",
                                            "data": "hello"}}]}])
    assert "messages.0.content.1" in str(refused.value)
    assert openai_fake.requests == []


def test_a_failure_after_the_first_byte_is_an_error_event(gateway: RunningGateway,
                                                          fake: FakeAnthropic) -> None:
    fake.enqueue(Reply(events=text_events(UPSTREAM, ["a", "b", "c"]), cut_after=4))
    response = httpx.post(gateway.http_url + "/v1/messages", headers={"x-api-key": KEY},
                          json={"model": "claude-sonnet-4-5", "max_tokens": 64,
                                "stream": True,
                                "messages": [{"role": "user", "content": "hi"}]}, timeout=20)
    events = _sse(response.text)
    assert events[0][0] == "message_start"
    assert events[-1][0] == "error"
    assert '"type":"error"' in events[-1][1] and '"api_error"' in events[-1][1]


# --- every gateway capability applies ----------------------------------------------------

ADMIN = "adm-messages-test-key"


def _tenant(gw: RunningGateway, **spec: object) -> str:
    """A new tenant's API key."""
    admin = {"Authorization": f"Bearer {ADMIN}"}
    made = httpx.post(gw.http_url + "/admin/tenants", headers=admin,
                      json={"name": f"t-{len(spec)}-{id(spec)}", **spec})
    assert made.status_code == 201, made.text
    key = httpx.post(gw.http_url + f"/admin/tenants/{made.json()['tenant']['id']}/keys",
                     headers=admin, json={"name": "k"})
    assert key.status_code == 201, key.text
    return str(key.json()["secret"])


def test_tenants_budgets_limits_cache_and_metrics(gateway_factory: Any,
                                                   fake: FakeAnthropic) -> None:
    gw = gateway_factory(f"""
auth: {{api_keys: {{enabled: true}}}}
cache: {{enabled: true}}
providers:
  anthropic: {{type: anthropic, base_url: "{fake.base_url}", api_key: "{fake.api_key}"}}
models:
  - name: claude
    targets: [{{provider: anthropic, model: {UPSTREAM}}}]
pricing:   # a dollar a token; cache reads a dime, cache writes $1.25
  {UPSTREAM}: {{input_per_mtok: 1000000, output_per_mtok: 1000000,
               cached_input_per_mtok: 100000, cache_write_per_mtok: 1250000}}
""", env={"GATEWAY_ADMIN_KEY": ADMIN})
    hi = {"model": "claude", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}

    def client(key: str, **kwargs: Any) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=gw.http_url, max_retries=0, **{
            "api_key": key, **kwargs})

    # Budget: 11 input + 7 output + 3 cache reads + 2 cache writes = $20.80 > $20.
    key = _tenant(gw, monthly_budget_usd=20)
    with client(key) as spender:
        spender.messages.create(**hi)
        usage = httpx.get(gw.http_url + "/v1/usage", headers={"x-api-key": key}).json()
        assert usage["cost_usd"] == pytest.approx(20.8)
        with pytest.raises(anthropic.APIStatusError) as broke:
            spender.messages.create(**hi)
    assert broke.value.status_code == 402
    assert broke.value.body["error"]["type"] == "billing_error"  # type: ignore[index]

    # Rate limit: 429 rate_limit_error with retry-after; Bearer works as well as x-api-key.
    with client("", api_key=None,
                auth_token=_tenant(gw, limits={"requests_per_minute": 1})) as bearer:
        bearer.messages.create(**hi)
        with pytest.raises(anthropic.RateLimitError) as refused:
            bearer.messages.create(**hi)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert int(refused.value.response.headers["retry-after"]) >= 1

    # A model outside the tenant's allowed list: 403 permission_error.
    with client(_tenant(gw, allowed_models=["another-model"])) as restricted, \
            pytest.raises(anthropic.PermissionDeniedError) as denied:
        restricted.messages.create(**hi)
    assert denied.value.body["error"]["type"] == "permission_error"  # type: ignore[index]

    # The response cache answers a deterministic request again without the upstream.
    fake.reset()
    with client(_tenant(gw)) as cached:
        first = cached.messages.with_raw_response.create(**hi, extra_body={"temperature": 0})
        again = cached.messages.with_raw_response.create(**hi, extra_body={"temperature": 0})
    assert (first.headers["x-cache"], again.headers["x-cache"]) == ("MISS", "HIT")
    assert again.parse().content == first.parse().content
    assert len(fake.requests) == 1

    metrics = httpx.get(gw.http_url + "/metrics").text
    assert ('gateway_requests_total{model="claude",provider="anthropic",status="OK"}'
            in metrics)
    assert 'gateway_tokens_total{model="claude",provider="anthropic",type="prompt"}' in metrics


def test_a_rate_limited_upstream_is_retried_after_its_retry_after(
        client: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    """Within retry.max_backoff (50 ms here) the gateway waits what the upstream asks and
    tries again; a longer wait goes back to the client as a 429 with its retry-after."""
    fake.enqueue(anthropic_error(429, "rate_limit_error", "slow down",
                                 headers={"retry-after": "0.04"}))
    started = time.monotonic()
    response = client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                                      messages=[{"role": "user", "content": "hi"}])
    assert response.content[0].type == "text"
    assert len(fake.requests) == 2
    assert time.monotonic() - started >= 0.04
    fake.enqueue(anthropic_error(429, "rate_limit_error", "slow down",
                                 headers={"retry-after": "7"}))
    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=8,
                               messages=[{"role": "user", "content": "hi"}])
    assert limited.value.response.headers["retry-after"] == "7"
    assert len(fake.requests) == 3
