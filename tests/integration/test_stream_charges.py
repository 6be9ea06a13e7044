"""Issue 19, item 2: a stream is charged whatever ends it. Streams cut after their content
but before the upstream's usage, and streams the client leaves, are charged their prompt and
what they delivered (estimated when the upstream never said): budgets, token limits and
usage see them. Prices are a dollar a token, so the tenant's cost in ``GET /v1/usage`` (kept
current at once; its token totals follow the store's refresh) counts the tokens charged."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import RunningGateway
from tests.fakes.anthropic import FakeAnthropic, text_events
from tests.fakes.openai import FakeOpenAI, stream_events
from tests.fakes.server import Reply

ADMIN = "adm-stream-charges"
Factory = Callable[..., RunningGateway]


def _gateway(factory: Factory, openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic
             ) -> RunningGateway:
    return factory(f"""
auth: {{api_keys: {{enabled: true}}}}
retry: {{attempts: 1}}
providers:
{openai_fake.provider("up", "gpt-4o-mini")}
  claude: {{type: anthropic, base_url: "{anthropic_fake.base_url}",
           api_key: "{anthropic_fake.api_key}"}}
  mock: {{type: mock, chunk_delay: 200ms}}
pricing:   # a dollar a token, so cost counts the tokens charged
  gpt-4o-mini: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
  echo: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
  claude-x: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
""", env={"GATEWAY_ADMIN_KEY": ADMIN})


def _tenant(gw: RunningGateway) -> str:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    tenant = httpx.post(gw.http_url + "/admin/tenants", headers=admin,
                        json={"name": f"t{time.monotonic_ns()}"}).json()["tenant"]["id"]
    return str(httpx.post(gw.http_url + f"/admin/tenants/{tenant}/keys", headers=admin,
                          json={"name": "k"}).json()["secret"])


def _cost(gw: RunningGateway, key: str, above: float = 0.0) -> float:
    """The tenant's cost this month, once it is above ``above`` (charges are counted after
    the stream's answer has gone out)."""
    deadline = time.monotonic() + 5
    while True:
        cost = float(httpx.get(gw.http_url + "/v1/usage",
                               headers={"Authorization": f"Bearer {key}"}).json()["cost_usd"])
        if cost > above or time.monotonic() > deadline:
            return cost
        time.sleep(0.05)


@pytest.fixture(scope="module")
def anthropic_fake() -> FakeAnthropic:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


def test_a_chat_stream_cut_before_its_usage_is_charged(
        gateway_factory: Factory, fake_openai: FakeOpenAI,
        anthropic_fake: FakeAnthropic) -> None:
    gw = _gateway(gateway_factory, fake_openai, anthropic_fake)
    key = _tenant(gw)
    words = ["one", " two", " three", " four"]
    # Content, the finish chunk, then the connection drops before the usage chunk.
    fake_openai.enqueue(Reply(events=stream_events("gpt-4o-mini", words, True), cut_after=6))
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key=key, max_retries=0) as client:
        stream = client.chat.completions.create(
            model="up/gpt-4o-mini", stream=True,
            messages=[{"role": "user", "content": "count to four, please"}])
        with pytest.raises(openai.APIError):
            for _ in stream:
                pass
    # "count to four, please": 6 tokens estimated; "one two three four": 5 delivered.
    assert _cost(gw, key) == pytest.approx(6 + 5)


def test_a_stream_the_client_leaves_is_charged(gateway_factory: Factory,
                                               fake_openai: FakeOpenAI,
                                               anthropic_fake: FakeAnthropic) -> None:
    gw = _gateway(gateway_factory, fake_openai, anthropic_fake)
    key = _tenant(gw)
    with httpx.stream("POST", gw.http_url + "/v1/chat/completions",
                      headers={"Authorization": f"Bearer {key}"}, json={
                          "model": "mock/echo", "stream": True, "messages": [
                              {"role": "user", "content": "a b c d e f g h i j"}]}) as r:
        for line in r.iter_lines():
            if '"content":"' in line and '"content":""' not in line:
                break  # one word in: leave
    assert _cost(gw, key) >= 5 + 1  # the prompt, and the word or two delivered


def test_responses_and_messages_streams_cut_early_are_charged(
        gateway_factory: Factory, fake_openai: FakeOpenAI,
        anthropic_fake: FakeAnthropic) -> None:
    gw = _gateway(gateway_factory, fake_openai, anthropic_fake)
    key = _tenant(gw)
    fake_openai.enqueue(Reply(events=stream_events("gpt-4o-mini", ["one", " two"], True),
                              cut_after=3))
    httpx.post(gw.http_url + "/v1/responses", headers={"Authorization": f"Bearer {key}"},
               json={"model": "up/gpt-4o-mini", "input": "count", "stream": True})
    after_responses = _cost(gw, key)
    assert after_responses == pytest.approx(2 + 2)  # "count"; "one two"

    # message_start carries the input (11, and 3 + 2 cached); cut before message_delta.
    anthropic_fake.enqueue(Reply(events=text_events("claude-x", ["alpha", " beta"]),
                                 cut_after=5))
    httpx.post(gw.http_url + "/v1/messages", headers={"x-api-key": key}, json={
        "model": "claude/claude-x", "max_tokens": 64, "stream": True,
        "messages": [{"role": "user", "content": "greek letters"}]})
    # Input as message_start said it (11, and 3 + 2 cached); "alpha beta" delivered: 3.
    assert _cost(gw, key, after_responses) - after_responses == pytest.approx(16 + 3)
