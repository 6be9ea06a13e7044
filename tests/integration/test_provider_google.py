"""The official openai SDK against a real gateway whose `google` provider is a wire-faithful
fake Gemini API: what the upstream receives, and what the client gets back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.conftest import RunningGateway
from tests.fakes.gemini import (
    FakeGemini,
    candidate,
    gemini_error,
    response,
    stream_events,
)
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

MODEL = "google/gemini-2.0-flash"
HI: Any = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def google_gateway(fake_gemini: FakeGemini) -> Iterator[RunningGateway]:
    config = f"""
logging: {{level: info, format: json}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  google: {{type: google, base_url: "{fake_gemini.base_url}", api_key: "${{FAKE_GEMINI_KEY}}"}}
  badkey: {{type: google, base_url: "{fake_gemini.base_url}", api_key: "AIza-wrong-key",
           models: [gemini-2.0-flash]}}
models:
  - name: gemini-flash
    targets: [{{provider: google, model: gemini-2.0-flash}}]
"""
    gw = start_in_process(config, env={"FAKE_GEMINI_KEY": FakeGemini.api_key})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture(autouse=True)
def _reset(fake_gemini: FakeGemini) -> None:
    fake_gemini.reset()


@pytest.fixture
def client(google_gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=google_gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def sent(fake: FakeGemini) -> Any:
    """The last request's JSON, after checking it carried the key the right way."""
    request = fake.requests[-1]
    assert request.headers["x-goog-api-key"] == FakeGemini.api_key
    assert "key" not in request.query
    return request.json


def test_non_stream(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    result = client.chat.completions.create(
        model="gemini-flash",
        messages=[{"role": "system", "content": "be brief"}, *HI],
        temperature=0.2, max_tokens=50, seed=7, stop=["\n\n"], n=1, user="u-1",
    )
    assert result.choices[0].message.content == "Hello from fake-gemini"
    assert result.choices[0].finish_reason == "stop"
    assert result.model == "gemini-2.0-flash"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens,
            result.usage.total_tokens) == (11, 7, 18)
    assert (result.model_extra or {})["x_gateway"]["provider"] == "google"
    assert fake_gemini.requests[-1].path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert sent(fake_gemini) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"temperature": 0.2, "maxOutputTokens": 50, "candidateCount": 1,
                             "seed": 7, "stopSequences": ["\n\n"]},
    }


def test_stream_with_usage(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HI, stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-gemini")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 18
    request = fake_gemini.requests[-1]
    assert request.path == "/v1beta/models/gemini-2.0-flash:streamGenerateContent"
    assert request.query == {"alt": "sse"}
    assert sent(fake_gemini)["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_stream_without_usage_asked_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    assert chunks and all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)


TOOLS: Any = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"], "additionalProperties": False}}}]


def test_tool_call_round_trip(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    first = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "weather in Paris?"}],
        tools=TOOLS, tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.id.startswith("call_")
    assert (call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "get_weather", '{"city":"Paris"}')
    body = sent(fake_gemini)
    assert body["tools"] == [{"functionDeclarations": [{
        "name": "get_weather", "description": "Weather in a city",
        "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}},
                       "required": ["city"]}}]}]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}

    history: Any = [
        {"role": "user", "content": "weather in Paris?"},
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
    ]
    second = client.chat.completions.create(model=MODEL, messages=history, tools=TOOLS,
                                            tool_choice="auto")
    assert second.choices[0].message.content == "Hello from fake-gemini"
    body = sent(fake_gemini)
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "weather in Paris?"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"functionResponse": {
            "name": "get_weather", "response": {"content": "sunny, 21C"}}}]},
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


def test_named_tool_choice_and_stream_tool_call(client: openai.OpenAI,
                                                fake_gemini: FakeGemini) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=HI, stream=True, tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    calls = [c.choices[0].delta.tool_calls for c in chunks
             if c.choices and c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and len(calls[0]) == 1  # a whole call arrives at once
    delta = calls[0][0]
    assert delta.index == 0 and (delta.id or "").startswith("call_")
    assert delta.function is not None
    assert (delta.function.name, delta.function.arguments) == (
        "get_weather", '{"city":"Paris"}')
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert sent(fake_gemini)["toolConfig"] == {"functionCallingConfig": {
        "mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


def test_image_input(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]}])
    assert sent(fake_gemini)["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
        {"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/cat.png"}},
    ]


def test_json_modes(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}},
              "required": ["n"], "additionalProperties": False}
    fake_gemini.enqueue(Reply(json=response([candidate([{"text": '{"n": 2}'}])])))
    result = client.chat.completions.create(
        model=MODEL, messages=HI,
        response_format={"type": "json_schema",
                         "json_schema": {"name": "answer", "schema": schema, "strict": True}})
    assert result.choices[0].message.content == '{"n": 2}'
    assert sent(fake_gemini)["generationConfig"] == {
        "responseMimeType": "application/json", "responseJsonSchema": schema}
    client.chat.completions.create(model=MODEL, messages=HI,
                                   response_format={"type": "json_object"})
    assert sent(fake_gemini)["generationConfig"] == {"responseMimeType": "application/json"}


def test_usage_details(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    usage = {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 30,
             "cachedContentTokenCount": 64, "totalTokenCount": 150}
    fake_gemini.enqueue(Reply(json=response([candidate([{"text": "ok"}])], usage,
                                            model="gemini-2.5-pro-001")))
    result = client.chat.completions.create(model="google/gemini-2.5-pro", messages=HI)
    assert result.model == "gemini-2.5-pro-001"
    assert result.usage is not None
    assert (result.usage.prompt_tokens, result.usage.completion_tokens,
            result.usage.total_tokens) == (100, 50, 150)
    assert result.usage.prompt_tokens_details is not None
    assert result.usage.prompt_tokens_details.cached_tokens == 64
    assert result.usage.completion_tokens_details is not None
    assert result.usage.completion_tokens_details.reasoning_tokens == 30


@pytest.mark.parametrize(("reason", "expected"), [
    ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("OTHER", "stop"),
])
def test_finish_reasons(client: openai.OpenAI, fake_gemini: FakeGemini, reason: str,
                        expected: str) -> None:
    fake_gemini.enqueue(Reply(json=response([candidate([{"text": "partial"}], reason)])))
    result = client.chat.completions.create(model=MODEL, messages=HI)
    assert result.choices[0].finish_reason == expected
    fake_gemini.enqueue(Reply(events=stream_events(["par", "tial"], finish=reason)))
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == expected


def test_blocked_prompt(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    blocked = response([], {"promptTokenCount": 5, "totalTokenCount": 5},
                       promptFeedback={"blockReason": "SAFETY"})
    fake_gemini.enqueue(Reply(json=blocked))
    result = client.chat.completions.create(model=MODEL, messages=HI)
    assert result.choices[0].finish_reason == "content_filter"
    assert result.choices[0].message.content == ""
    fake_gemini.enqueue(Reply(events=[blocked]))
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices] == [None, "content_filter"]


def test_upstream_400_is_the_callers_400(client: openai.OpenAI,
                                          fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(gemini_error(
        400, "* GenerateContentRequest.contents: contents is not specified", "INVALID_ARGUMENT"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert "contents is not specified" in info.value.message


def test_unknown_model_is_a_400_with_googles_message(client: openai.OpenAI,
                                                      fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(gemini_error(
        404, "models/gemini-9 is not found for API version v1beta", "NOT_FOUND"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="google/gemini-9", messages=HI)
    assert "is not found" in info.value.message


@pytest.mark.parametrize("status", [401, 403])
def test_upstream_auth_failure_never_echoes_upstream_text(
        client: openai.OpenAI, fake_gemini: FakeGemini, status: int) -> None:
    fake_gemini.enqueue(gemini_error(status, "Permission denied for key AIza-fake-123",
                                     "PERMISSION_DENIED"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.status_code == 502
    assert "AIza" not in info.value.message and "AIza" not in str(info.value.body)


def test_wrong_key_is_the_gateways_problem(client: openai.OpenAI,
                                           fake_gemini: FakeGemini) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="badkey/gemini-2.0-flash", messages=HI)
    assert info.value.status_code == 502 and info.value.code == "auth_error"
    assert "API key not valid" not in info.value.message
    assert fake_gemini.requests[-1].headers["x-goog-api-key"] == "AIza-wrong-key"


def test_upstream_429_keeps_retry_delay(client: openai.OpenAI,
                                        fake_gemini: FakeGemini) -> None:
    quota = gemini_error(429, "You exceeded your current quota.", "RESOURCE_EXHAUSTED", [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}])
    fake_gemini.enqueue(*[quota] * 3)  # enough for any retries the core makes
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.response.headers["Retry-After"] == "7"


@pytest.mark.parametrize(("status", "reply_status", "code"), [
    (500, "INTERNAL", "server_error"), (503, "UNAVAILABLE", "overloaded"),
])
def test_upstream_5xx_is_a_502_naming_the_provider(
        client: openai.OpenAI, fake_gemini: FakeGemini, status: int, reply_status: str,
        code: str) -> None:
    fake_gemini.enqueue(*[gemini_error(status, "The model is overloaded.", reply_status)] * 3)
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=MODEL, messages=HI)
    assert info.value.status_code == 502 and info.value.code == code
    assert info.value.body["provider"] == "google"  # type: ignore[index]


def test_overloaded_is_retried(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(gemini_error(503, "The model is overloaded.", "UNAVAILABLE"))
    result = client.chat.completions.create(model=MODEL, messages=HI)
    assert result.choices[0].message.content == "Hello from fake-gemini"
    assert len(fake_gemini.requests) == 2


def test_cut_stream_ends_with_an_error_event(client: openai.OpenAI,
                                             fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(Reply(events=stream_events(["one", " two", " three"]), cut_after=2))
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model=MODEL, messages=HI, stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one", " two"]
    assert "google" in info.value.message and "mid-response" in info.value.message


def test_stream_ending_without_finish_reason_is_cut(client: openai.OpenAI,
                                                    fake_gemini: FakeGemini) -> None:
    unfinished = stream_events(["one", " two", " three"])[:2]  # a clean end, but no finish
    fake_gemini.enqueue(Reply(events=unfinished))
    with pytest.raises(openai.APIError) as info:
        list(client.chat.completions.create(model=MODEL, messages=HI, stream=True))
    assert "before it was complete" in info.value.message


def test_stream_error_before_first_chunk_is_an_http_error(client: openai.OpenAI,
                                                          fake_gemini: FakeGemini) -> None:
    fake_gemini.enqueue(gemini_error(400, "Request contains an invalid argument.",
                                     "INVALID_ARGUMENT"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model=MODEL, messages=HI, stream=True)


def test_embeddings_single_and_batch(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    result = client.embeddings.create(model="google/text-embedding-004", input="a",
                                      dimensions=2, encoding_format="float")
    assert [d.embedding for d in result.data] == [[0.5, 0.5]]
    assert fake_gemini.requests[-1].path == (
        "/v1beta/models/text-embedding-004:embedContent")
    assert sent(fake_gemini) == {"content": {"parts": [{"text": "a"}]},
                                 "outputDimensionality": 2}
    result = client.embeddings.create(model="google/text-embedding-004", input=["a", "b"],
                                      dimensions=2)  # base64 by default: the SDK decodes it
    assert [d.embedding for d in result.data] == [[1.0, 1.0], [2.0, 2.0]]
    assert fake_gemini.requests[-1].path == (
        "/v1beta/models/text-embedding-004:batchEmbedContents")
    assert sent(fake_gemini) == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]},
         "outputDimensionality": 2} for t in ("a", "b")]}


def test_models_are_discovered(client: openai.OpenAI, fake_gemini: FakeGemini) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gemini-flash", "google/gemini-2.0-flash", "google/text-embedding-004",
            "badkey/gemini-2.0-flash"} <= ids
    listing = [r for r in fake_gemini.requests if r.method == "GET"]
    if listing:  # cached by the gateway after the first listing
        assert listing[-1].path == "/v1beta/models"
        assert listing[-1].headers["x-goog-api-key"] == FakeGemini.api_key
