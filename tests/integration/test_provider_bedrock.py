"""The Bedrock provider end to end: the official openai and anthropic SDKs -> a real gateway ->
a fake Bedrock Runtime that verifies every SigV4 signature (and a fake STS for web
identity). The fakes themselves are first proven against botocore's own client."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import botocore.session
import openai
import pytest
from botocore.exceptions import ClientError
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.conftest import RunningGateway
from tests.fakes.bedrock import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    FakeBedrock,
    bedrock_error,
    converse_answer,
    event,
    exception,
    text_stream,
)
from tests.fakes.server import Reply
from tests.fakes.sts import FakeSts
from tests.inprocess import start_in_process

CLAUDE = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
NOVA = "amazon.nova-lite-v1:0"
USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
WEATHER: list[ChatCompletionToolParam] = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def _config(fake: FakeBedrock, secret: str = SECRET_KEY, extra: str = "") -> str:
    return f"""
logging: {{level: info, format: json}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 1000, min_requests: 1000}}
providers:
  bedrock:
    type: bedrock
    region: {REGION}
    endpoint_url: "{fake.base_url}"
{extra or f'''    access_key_id: "{ACCESS_KEY}"
    secret_access_key: "{secret}"'''}
models:
  - name: nova
    targets: [{{provider: bedrock, model: "{NOVA}"}}]
  - name: claude
    targets: [{{provider: bedrock, model: "{CLAUDE}"}}]
  - name: titan
    targets: [{{provider: bedrock, model: "amazon.titan-embed-text-v2:0"}}]
  - name: cohere
    targets: [{{provider: bedrock, model: "cohere.embed-english-v3"}}]
"""


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeBedrock]:
    with FakeBedrock() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake: FakeBedrock) -> None:
    fake.reset()


@pytest.fixture(scope="module")
def gateway(fake: FakeBedrock) -> Iterator[RunningGateway]:
    gw = start_in_process(_config(fake))
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


@contextlib.contextmanager
def _botocore_client(fake: FakeBedrock, secret: str = SECRET_KEY) -> Iterator[Any]:
    """botocore's own client at the fake; closed after (its pooled sockets too)."""
    client = botocore.session.get_session().create_client(
        "bedrock-runtime", endpoint_url=fake.base_url, region_name=REGION,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=secret)
    try:
        yield client
    finally:
        client.close()


# --- the fake, proven against botocore ----------------------------------------------------


def test_fake_answers_botocore_itself(fake: FakeBedrock) -> None:
    with _botocore_client(fake) as runtime:
        answer = runtime.converse(modelId=CLAUDE, messages=[{"role": "user",
                                                             "content": [{"text": "hi"}]}])
        assert answer["output"]["message"]["content"] == [{"text": "Hello from fake-bedrock"}]
        assert answer["usage"]["cacheReadInputTokens"] == 3
        assert fake.requests[-1].path == f"/model/{CLAUDE}/converse"
        events = list(runtime.converse_stream(modelId=NOVA, messages=[
            {"role": "user", "content": [{"text": "hi"}]}])["stream"])
        assert [next(iter(e)) for e in events] == [
            "messageStart", "contentBlockDelta", "contentBlockDelta", "contentBlockDelta",
            "contentBlockStop", "messageStop", "metadata"]
        embedded = runtime.invoke_model(modelId="amazon.titan-embed-text-v2:0",
                                        body=b'{"inputText": "x", "dimensions": 2}')
        assert b'"embedding":[0.5,0.5]' in embedded["body"].read()
        stream = runtime.invoke_model_with_response_stream(
            modelId=CLAUDE, body=b'{"anthropic_version": "bedrock-2023-05-31", "max_tokens": 5, '
                                 b'"messages": [{"role": "user", "content": "hi"}]}')
        kinds = [e["chunk"]["bytes"][:30] for e in stream["body"]]
        assert len(kinds) == 9 and b"message_start" in kinds[0]
        fake.enqueue(Reply(events=[event("messageStart", {"role": "assistant"}),
                                   exception("throttlingException", "slow down")]))
        cut = runtime.converse_stream(modelId=NOVA, messages=[
            {"role": "user", "content": [{"text": "hi"}]}])["stream"]
        with pytest.raises(Exception, match="slow down"):
            list(cut)
        cut.close()  # a stream left mid-way keeps its connection out of the pool


def test_fake_refuses_a_wrong_signature(fake: FakeBedrock) -> None:
    with _botocore_client(fake, secret="not-the-secret") as runtime, \
            pytest.raises(ClientError) as info:
        runtime.converse(modelId=NOVA,
                         messages=[{"role": "user", "content": [{"text": "hi"}]}])
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"


# --- chat through the gateway -------------------------------------------------------------


def test_non_stream_request_and_answer(client: openai.OpenAI, fake: FakeBedrock) -> None:
    response = client.chat.completions.create(
        model="nova", messages=[{"role": "system", "content": "be brief"},
                                {"role": "user", "content": "hi"}],
        temperature=0.2, top_p=0.9, max_tokens=50, stop=["\n\n"])
    assert response.choices[0].message.content == "Hello from fake-bedrock"
    assert response.choices[0].finish_reason == "stop"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens,
            response.usage.total_tokens) == (16, 7, 23)
    assert response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    sent = fake.requests[-1]
    assert sent.path == f"/model/{NOVA}/converse"
    assert fake.signed_with[-1] == ACCESS_KEY
    assert sent.json == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}],
        "system": [{"text": "be brief"}],
        "inferenceConfig": {"maxTokens": 50, "temperature": 0.2, "topP": 0.9,
                            "stopSequences": ["\n\n"]},
    }


def test_stream_with_usage(client: openai.OpenAI, fake: FakeBedrock) -> None:
    chunks = list(client.chat.completions.create(
        model="claude", messages=USER, stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-bedrock")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens == 16
    sent = fake.requests[-1]
    # The inference profile id, ":" percent-encoded as botocore does, and signed so.
    assert fake.raw_paths[-1] == (
        "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream")
    assert sent.headers["Accept"] == "application/vnd.amazon.eventstream"


def test_tool_call_round_trip(client: openai.OpenAI, fake: FakeBedrock) -> None:
    first = client.chat.completions.create(model="nova", messages=USER, tools=WEATHER,
                                           tool_choice="required")
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "tooluse_fake1", "get_weather", '{"city":"Paris"}')
    assert fake.requests[-1].json["toolConfig"] == {
        "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather in a city",
                                "inputSchema": {"json": WEATHER[0]["function"]["parameters"]}}}],
        "toolChoice": {"any": {}}}
    history: list[Any] = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None,
         "tool_calls": [first.choices[0].message.model_dump()["tool_calls"][0]]},
        {"role": "tool", "tool_call_id": "tooluse_fake1", "content": "sunny"},
    ]
    client.chat.completions.create(model="nova", messages=history, tools=WEATHER,
                                   tool_choice={"type": "function",
                                                "function": {"name": "get_weather"}})
    sent = fake.requests[-1].json
    assert sent["toolConfig"]["toolChoice"] == {"tool": {"name": "get_weather"}}
    assert sent["messages"] == [
        {"role": "user", "content": [{"text": "hi"}]},
        {"role": "assistant", "content": [{"toolUse": {
            "toolUseId": "tooluse_fake1", "name": "get_weather", "input": {"city": "Paris"}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "tooluse_fake1",
                                                     "content": [{"text": "sunny"}]}}]}]


def test_stream_tool_call_deltas(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model="nova", messages=USER, stream=True,
                                                 tools=WEATHER, tool_choice="required"))
    calls = [c.choices[0].delta.tool_calls[0]
             for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert (calls[0].id, calls[0].function.name) == (  # type: ignore[union-attr]
        "tooluse_fake1", "get_weather")
    assert "".join(c.function.arguments or "" for c in calls) == (  # type: ignore[union-attr]
        '{"city": "Paris"}')
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_images_are_bytes(client: openai.OpenAI, fake: FakeBedrock) -> None:
    client.chat.completions.create(model="nova", messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}])
    assert fake.requests[-1].json["messages"][0]["content"] == [
        {"text": "what is this?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="nova", messages=[{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}])
    assert "data: URLs" in info.value.message


@pytest.mark.parametrize(("stop_reason", "finish"), [
    ("max_tokens", "length"), ("content_filtered", "content_filter"),
    ("guardrail_intervened", "content_filter"), ("stop_sequence", "stop")])
def test_finish_reasons(client: openai.OpenAI, fake: FakeBedrock, stop_reason: str,
                        finish: str) -> None:
    fake.enqueue(Reply(json=converse_answer([{"text": "x"}], stop_reason)),
                 Reply(events=text_stream(["x"], stop_reason)))
    assert client.chat.completions.create(
        model="nova", messages=USER).choices[0].finish_reason == finish
    chunks = list(client.chat.completions.create(model="nova", messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason == finish


def test_embeddings(client: openai.OpenAI, fake: FakeBedrock) -> None:
    titan = client.embeddings.create(model="titan", input="hello", dimensions=3)
    assert titan.data[0].embedding == [0.5, 0.5, 0.5]
    assert fake.requests[-1].json == {"inputText": "hello", "normalize": True, "dimensions": 3}
    cohere = client.embeddings.create(model="cohere", input=["a", "b"])
    assert [d.embedding for d in cohere.data] == [[0.0, 0.25], [1.0, 0.25]]
    assert fake.requests[-1].json == {"texts": ["a", "b"], "input_type": "search_document"}
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model="titan", input=["a", "b"])
    assert "one text per request" in info.value.message


# --- errors -------------------------------------------------------------------------------


def test_throttling_is_retried_then_a_429(client: openai.OpenAI, fake: FakeBedrock) -> None:
    fake.enqueue(bedrock_error(429, "ThrottlingException", "Too many requests"))
    assert client.chat.completions.create(model="nova", messages=USER).choices
    assert len(fake.requests) == 2
    fake.reset()
    fake.enqueue(bedrock_error(429, "ThrottlingException", "Too many requests"),
                 bedrock_error(429, "ThrottlingException", "Too many requests"))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="nova", messages=USER)


def test_validation_error_is_the_callers_400(client: openai.OpenAI, fake: FakeBedrock) -> None:
    fake.enqueue(bedrock_error(400, "ValidationException", "maxTokens exceeds the limit"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="nova", messages=USER)
    assert "maxTokens exceeds the limit" in info.value.message
    assert len(fake.requests) == 1


def test_exception_mid_stream(client: openai.OpenAI, fake: FakeBedrock) -> None:
    frames = text_stream(["one", " two"])
    fake.enqueue(Reply(events=[*frames[:2], exception("modelStreamErrorException", "boom")]))
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="nova", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]
    assert "modelStreamErrorException" in info.value.message


# --- Claude's Messages API passed through ---------------------------------------------------


def test_messages_passthrough(gateway: RunningGateway, fake: FakeBedrock) -> None:
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="sk-client",
                             max_retries=0) as claude:
        answer = claude.messages.create(
            model="claude", max_tokens=20, messages=[{"role": "user", "content": "hi"}],
            extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
        assert answer.content[0].text == "Hello from bedrock-claude"  # type: ignore[union-attr]
        sent = fake.requests[-1]
        assert sent.path == f"/model/{CLAUDE}/invoke"
        assert sent.json == {"max_tokens": 20, "messages": [{"role": "user", "content": "hi"}],
                             "anthropic_version": "bedrock-2023-05-31",
                             "anthropic_beta": ["context-1m-2025-08-07"]}
        with claude.messages.stream(model="claude", max_tokens=20,
                                    messages=[{"role": "user", "content": "hi"}]) as stream:
            text = "".join(stream.text_stream)
        assert text == "Hello from bedrock-claude"
        assert fake.requests[-1].path == f"/model/{CLAUDE}/invoke-with-response-stream"
        assert "stream" not in fake.requests[-1].json
        count = claude.messages.count_tokens(model="claude",
                                             messages=[{"role": "user", "content": "hi"}])
        assert count.input_tokens > 0
        assert fake.requests[-1].path == f"/model/{CLAUDE}/count-tokens"


def test_messages_to_a_model_that_is_not_claude_are_translated_to_converse(
        gateway: RunningGateway, fake: FakeBedrock) -> None:
    """Only Claude takes the Messages body; a /v1/messages request to Nova goes through
    Converse, and the answer and its cached usage come back in Messages form."""
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="sk-client",
                             max_retries=0) as claude:
        answer = claude.messages.create(
            model="nova", max_tokens=20, system=[
                {"type": "text", "text": "A long manual.", "cache_control": {"type": "ephemeral"}}],
            messages=[{"role": "user", "content": "hi"}])
    assert answer.content[0].text == "Hello from fake-bedrock"  # type: ignore[union-attr]
    assert answer.usage.cache_read_input_tokens == 3
    sent = fake.requests[-1]
    assert sent.path == f"/model/{NOVA}/converse"
    assert sent.json["system"] == [{"text": "A long manual."},
                                   {"cachePoint": {"type": "default"}}]


def test_cache_control_becomes_cache_points(client: openai.OpenAI, fake: FakeBedrock) -> None:
    """Prompt caching end to end: ``cache_control`` on OpenAI-style parts, messages and
    tools becomes a Converse ``cachePoint`` after the matching block; cached tokens come
    back in ``prompt_tokens_details``."""
    ephemeral = {"type": "ephemeral"}
    response = client.chat.completions.create(
        model="claude",
        messages=[
            {"role": "system", "content": [  # type: ignore[list-item]
                {"type": "text", "text": "A long manual. " * 200,
                 "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
            {"role": "user", "content": "first question", "cache_control": ephemeral},
        ],
        tools=[{**WEATHER[0], "cache_control": ephemeral}],  # type: ignore[list-item]
    )
    assert response.usage is not None and response.usage.prompt_tokens_details is not None
    assert response.usage.prompt_tokens_details.cached_tokens == 3
    sent = fake.requests[-1]
    assert sent.path == f"/model/{CLAUDE}/converse"
    assert sent.json["system"] == [{"text": "A long manual. " * 200},
                                   {"cachePoint": {"type": "default", "ttl": "1h"}}]
    assert sent.json["messages"] == [{"role": "user", "content": [
        {"text": "first question"}, {"cachePoint": {"type": "default"}}]}]
    assert sent.json["toolConfig"]["tools"][1] == {"cachePoint": {"type": "default"}}


# --- credentials ----------------------------------------------------------------------------


def test_wrong_secret_names_the_provider_not_the_key(fake: FakeBedrock) -> None:
    gw = start_in_process(_config(fake, secret="wrong/secret/value/0123456789"))
    try:
        with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client",
                           max_retries=0, timeout=20) as c:
            with pytest.raises(openai.InternalServerError) as info:
                c.chat.completions.create(model="nova", messages=USER)
        text = f"{info.value.message} {info.value.body}"
        assert "bedrock" in text and "InvalidSignatureException" in text
        assert "wrong/secret" not in text and ACCESS_KEY not in text
        assert len(fake.requests) == 1  # not retried
    finally:
        assert gw.stop() == 0


def test_fake_takes_bedrock_api_keys_as_botocore_sends_them(
        fake: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    """botocore sends ``AWS_BEARER_TOKEN_BEDROCK`` as ``Authorization: Bearer``, unsigned
    (and only over https, so its request is caught before sending and replayed here)."""

    class Caught(Exception):
        pass

    sent: list[Any] = []

    def catch(request: Any, **_: Any) -> None:
        sent.append(request)
        raise Caught

    def replay(token: str) -> int:
        monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", token)
        client = botocore.session.get_session().create_client(
            "bedrock-runtime", region_name=REGION)
        client.meta.events.register("before-send.bedrock-runtime.Converse", catch)
        with pytest.raises(Caught):
            client.converse(modelId=NOVA,
                            messages=[{"role": "user", "content": [{"text": "hi"}]}])
        client.close()
        request = sent[-1]
        assert request.headers["Authorization"] == f"Bearer {token}".encode()
        assert "X-Amz-Date" not in request.headers
        path = request.url.split("amazonaws.com", 1)[1]
        replayed = urllib.request.Request(
            fake.base_url + path, data=request.body, method="POST",
            headers={k: v.decode() if isinstance(v, bytes) else v
                     for k, v in request.headers.items()})
        try:
            with urllib.request.urlopen(replayed, timeout=10) as answer:
                return int(answer.status)
        except urllib.error.HTTPError as error:
            return error.code

    fake.api_keys = {"ABSKbedrock-key-1"}
    try:
        assert replay("ABSKbedrock-key-1") == 200
        assert fake.signed_with[-1] == "Bearer ABSKbedrock-key-1"
        assert replay("ABSKnot-a-key") == 403
    finally:
        fake.api_keys = set()


def test_a_pool_of_bedrock_api_keys(fake: FakeBedrock) -> None:
    """``api_keys`` on a bedrock provider: Bedrock API keys as bearer tokens, spread over
    the pool, no SigV4; a key Bedrock refuses is set aside and the others serve."""
    fake.api_keys = {"ABSKkey-one", "ABSKkey-two"}
    pool = '    api_keys: ["ABSKkey-one", "ABSKkey-two", {key: "ABSKrevoked", name: old}]'
    gw = start_in_process(_config(fake, extra=pool))
    try:
        with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client",
                           max_retries=0, timeout=20) as c:
            for _ in range(6):
                answer = c.chat.completions.create(model="nova", messages=USER)
                assert answer.choices[0].message.content == "Hello from fake-bedrock"
        assert set(fake.signed_with) == {"Bearer ABSKkey-one", "Bearer ABSKkey-two"}
        assert all(not r.headers.get("X-Amz-Date") for r in fake.requests)
        refused = [r for r in fake.requests if r.headers["Authorization"] == "Bearer ABSKrevoked"]
        assert len(refused) == 1  # tried once, refused, set aside; its request served by another
        assert "ABSKrevoked" not in gw.logs()
    finally:
        assert gw.stop() == 0
        fake.api_keys = set()


def test_web_identity_credentials_are_refreshed(fake: FakeBedrock, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    token = tmp_path / "token"
    token.write_text("eks-web-identity-token")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_PROFILE", "AWS_DEFAULT_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/gateway")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    # Credentials that expire in 2 minutes: inside botocore's refresh window from the start.
    with FakeSts(fake, token="eks-web-identity-token", ttl=120) as sts:
        gw = start_in_process(_config(fake, extra=f'    sts_endpoint_url: "{sts.base_url}"'))
        try:
            with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client",
                               max_retries=0, timeout=20) as c:
                for _ in range(4):
                    assert c.chat.completions.create(model="nova", messages=USER).choices
            assert len(sts.issued) >= 2  # fetched, then refreshed ahead of expiry
            assert set(fake.signed_with) <= set(sts.issued)
            assert len(fake.signed_with) == 4
        finally:
            assert gw.stop() == 0
