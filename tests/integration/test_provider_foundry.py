"""Claude in Microsoft Foundry (``type: azure_anthropic``) end to end: the openai and
anthropic SDKs -> a real gateway -> a fake Foundry resource (the fake Anthropic API under
``/anthropic``). The fake is first checked against the anthropic SDK's own
``AnthropicFoundry`` client, so what the gateway must send is what Microsoft's and
Anthropic's client sends."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from tests.conftest import RunningGateway
from tests.fakes.anthropic import (
    FOUNDRY_KEY_HEADERS,
    FOUNDRY_PREFIX,
    FakeAnthropic,
    anthropic_error,
)
from tests.inprocess import start_in_process

UPSTREAM = "claude-sonnet-4-5"
KEY = FakeAnthropic.api_key


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(FOUNDRY_PREFIX, FOUNDRY_KEY_HEADERS) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake: FakeAnthropic) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic) -> Iterator[RunningGateway]:
    config = f"""
retry: {{attempts: 1}}
providers:
  foundry:
    type: azure_anthropic
    base_url: "{fake.base_url}"
    api_key: "${{FOUNDRY_KEY}}"
    models: [{UPSTREAM}]
models:
  - name: claude
    targets: [{{provider: foundry, model: {UPSTREAM}}}]
"""
    gw = start_in_process(config, env={"FOUNDRY_KEY": KEY})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def chat(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


@pytest.fixture
def messages(gateway: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="sk-client", max_retries=0,
                             timeout=20) as c:
        yield c


def _auth(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()
            if k.lower() in ("x-api-key", "api-key", "authorization")}


def test_the_fake_answers_the_sdks_foundry_client(fake: FakeAnthropic) -> None:
    """The SDK's AnthropicFoundry client, pointed at the fake, is served: so the fake's
    path and headers are Foundry's as the SDK knows them."""
    with anthropic.AnthropicFoundry(api_key=KEY, base_url=f"{fake.base_url}/anthropic/",
                                    max_retries=0) as sdk:
        reply = sdk.messages.create(model=UPSTREAM, max_tokens=16,
                                    messages=[{"role": "user", "content": "hi"}])
        assert reply.content[0].type == "text"
        with sdk.messages.stream(model=UPSTREAM, max_tokens=16,
                                 messages=[{"role": "user", "content": "hi"}]) as stream:
            assert "".join(stream.text_stream) == "Hello from fake-anthropic"
    sent = fake.requests[0]
    assert sent.path == "/anthropic/v1/messages"
    assert _auth(sent.headers) == {"x-api-key": KEY, "api-key": KEY}
    assert sent.headers["anthropic-version"]
    with anthropic.AnthropicFoundry(api_key="wrong-key-123", max_retries=0,
                                    base_url=f"{fake.base_url}/anthropic/") as sdk, \
            pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model=UPSTREAM, max_tokens=16,
                            messages=[{"role": "user", "content": "hi"}])


def test_chat_goes_to_the_resources_messages_api(chat: openai.OpenAI,
                                                 fake: FakeAnthropic) -> None:
    with anthropic.AnthropicFoundry(api_key=KEY, base_url=f"{fake.base_url}/anthropic/",
                                    max_retries=0) as sdk:
        sdk.messages.create(model=UPSTREAM, max_tokens=16,
                            messages=[{"role": "user", "content": "hi"}])
    by_sdk = fake.requests[-1]
    response = chat.chat.completions.create(
        model="claude", messages=[{"role": "system", "content": "be brief"},
                                  {"role": "user", "content": "hi"}], max_tokens=16)
    assert response.choices[0].message.content == "Hello from fake-anthropic"
    assert response.usage is not None and response.usage.completion_tokens == 7
    sent = fake.requests[-1]
    assert sent.path == by_sdk.path == "/anthropic/v1/messages"
    assert _auth(sent.headers) == _auth(by_sdk.headers) == {"x-api-key": KEY, "api-key": KEY}
    assert sent.headers["anthropic-version"] == "2023-06-01"  # the SDK may send a later one
    assert sent.json == {"model": UPSTREAM, "system": "be brief",
                         "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def test_chat_stream(chat: openai.OpenAI, fake: FakeAnthropic) -> None:
    chunks = list(chat.chat.completions.create(model="foundry/" + UPSTREAM, stream=True,
                                               messages=[{"role": "user", "content": "hi"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-anthropic")
    assert fake.requests[-1].json["stream"] is True
    assert fake.requests[-1].headers["Accept"] == "text/event-stream"


def test_messages_pass_through(messages: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    reply = messages.messages.create(
        model="claude", max_tokens=32, system="be brief", extra_body={"top_k": 3},
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi",
                                                "cache_control": {"type": "ephemeral"}}]}],
        extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert reply.content[0].type == "text" and reply.content[0].text == (
        "Hello from fake-anthropic")
    sent = fake.requests[-1]
    assert sent.path == "/anthropic/v1/messages"
    assert _auth(sent.headers) == {"x-api-key": KEY, "api-key": KEY}
    assert sent.headers["anthropic-beta"] == "context-1m-2025-08-07"
    assert sent.json == {"model": UPSTREAM, "max_tokens": 32, "system": "be brief", "top_k": 3,
                         "messages": [{"role": "user", "content": [
                             {"type": "text", "text": "hi",
                              "cache_control": {"type": "ephemeral"}}]}]}
    with messages.messages.stream(model="claude", max_tokens=32,
                                  messages=[{"role": "user", "content": "hi"}]) as stream:
        assert "".join(stream.text_stream) == "Hello from fake-anthropic"
    assert fake.requests[-1].json["stream"] is True


def test_count_tokens_pass_through(messages: anthropic.Anthropic, fake: FakeAnthropic) -> None:
    counted = messages.messages.count_tokens(model="claude",
                                             messages=[{"role": "user", "content": "hi"}])
    sent = fake.requests[-1]
    assert sent.path == "/anthropic/v1/messages/count_tokens"
    assert _auth(sent.headers) == {"x-api-key": KEY, "api-key": KEY}
    assert counted.input_tokens == len(sent.body) // 10


def test_errors_are_anthropics_and_the_key_is_redacted(messages: anthropic.Anthropic,
                                                        chat: openai.OpenAI,
                                                        fake: FakeAnthropic) -> None:
    fake.enqueue(anthropic_error(400, "invalid_request_error", f"bad key {KEY} in request"))
    with pytest.raises(anthropic.BadRequestError) as info:
        messages.messages.create(model="claude", max_tokens=8,
                                 messages=[{"role": "user", "content": "hi"}])
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)
    fake.enqueue(anthropic_error(429, "rate_limit_error", "slow down",
                                 headers={"retry-after": "7"}))
    with pytest.raises(openai.RateLimitError) as limited:
        chat.chat.completions.create(model="claude", messages=[{"role": "user", "content": "x"}])
    assert limited.value.response.headers.get("retry-after") == "7"
