"""Azure OpenAI end to end (the openai SDK -> a gateway -> a fake Azure resource),
and an OpenAI-compatible server getting its own parameters through unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from gateway.config import ProviderConfig
from gateway.domain import ChatRequest, Message
from gateway.providers.azure import AzureOpenAICodec
from tests.conftest import RunningGateway
from tests.fakes.azure import (
    UNDERLYING_MODEL,
    FakeAzure,
    azure_completion,
    azure_error,
    azure_stream_events,
    content_filter_error,
)
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

DEPLOYMENT = "my-gpt4o-deployment"
CHAT_PATH = f"/openai/deployments/{DEPLOYMENT}/chat/completions"
API_VERSION = "2024-06-01"
WEATHER_TOOL: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}


@pytest.fixture(scope="module")
def fake_azure() -> Iterator[FakeAzure]:
    with FakeAzure() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake_azure: FakeAzure) -> None:
    fake_azure.reset()


@pytest.fixture(scope="module")
def gateway(fake_azure: FakeAzure, fake_openai: FakeOpenAI) -> Iterator[RunningGateway]:
    # One attempt and a breaker that never opens: each test sees exactly its own upstream call.
    config = f"""
logging: {{level: info, format: json}}
retry: {{attempts: 1}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  azure:
    type: azure_openai
    base_url: "{fake_azure.base_url}"
    api_key: "${{AZURE_FAKE_KEY}}"
    api_version: "{API_VERSION}"
    models: [{DEPLOYMENT}]
  azure-default:  # no api_version: the default GA version; a default deployment
    type: azure_openai
    base_url: "{fake_azure.base_url}/"
    api_key: "${{AZURE_FAKE_KEY}}"
    deployment: {DEPLOYMENT}
  azure-badkey: {{type: azure_openai, base_url: "{fake_azure.base_url}", api_key: wrong-key,
                 models: [{DEPLOYMENT}]}}
  vllm:
    type: openai_compatible
    base_url: "{fake_openai.base_url}/v1"
    api_key: "{FakeOpenAI.api_key}"
    models: [meta-llama/Llama-3.1-8B-Instruct]
models:
  - name: gpt-4o
    targets: [{{provider: azure, model: {DEPLOYMENT}}}]
  - name: pinned
    targets: [{{provider: azure-default, model: ""}}]
"""
    gw = start_in_process(config, env={"AZURE_FAKE_KEY": FakeAzure.api_key})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def user(text: str = "hi") -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_non_stream_addressing(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    response = client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}", messages=user(), temperature=0.2, max_tokens=50)
    assert response.choices[0].message.content == "Hello from fake-azure"
    assert response.choices[0].finish_reason == "stop"
    assert response.model == UNDERLYING_MODEL
    assert response.usage is not None and response.usage.total_tokens == 18
    assert (response.model_extra or {})["x_gateway"]["provider"] == "azure"
    sent = fake_azure.requests[-1]
    assert (sent.method, sent.path, sent.query) == ("POST", CHAT_PATH,
                                                    {"api-version": API_VERSION})
    assert sent.headers["api-key"] == FakeAzure.api_key
    assert "Authorization" not in sent.headers
    assert sent.json == {"model": DEPLOYMENT, "messages": [{"role": "user", "content": "hi"}],
                         "temperature": 0.2, "max_tokens": 50}


def test_alias_and_default_deployment(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    client.chat.completions.create(model="gpt-4o", messages=user())
    assert fake_azure.requests[-1].path == CHAT_PATH
    client.chat.completions.create(model="pinned", messages=user())
    sent = fake_azure.requests[-1]
    assert (sent.path, sent.query) == (CHAT_PATH, {"api-version": "2024-10-21"})


def test_stream_with_usage_drops_the_prompt_filter_chunk(client: openai.OpenAI,
                                                         fake_azure: FakeAzure) -> None:
    chunks = list(client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}", messages=user(), stream=True,
        stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-azure")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 18
    assert sum(1 for c in chunks if not c.choices) == 1
    sent = fake_azure.requests[-1]
    assert sent.json["stream"] is True and sent.json["stream_options"] == {"include_usage": True}
    assert sent.headers["Accept"] == "text/event-stream"


def test_stream_without_usage(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    chunks = list(client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user(),
                                                 stream=True))
    assert chunks and all(c.choices for c in chunks)
    assert "stream_options" not in fake_azure.requests[-1].json


def test_tool_call_round_trip(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    first = client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}", messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL], tool_choice="required")
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert (call.id, call.function.name) == ("call_azure1", "get_weather")  # type: ignore[union-attr]
    client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}",
        messages=[*user("weather in Paris?"),
                  first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
                  {"role": "tool", "tool_call_id": call.id, "content": "sunny"}],
        tools=[WEATHER_TOOL])
    sent = fake_azure.requests[-1].json
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["messages"][1]["tool_calls"] == [{"id": "call_azure1", "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]
    assert sent["messages"][2] == {"role": "tool", "content": "sunny",
                                   "tool_call_id": "call_azure1"}


def test_stream_tool_call(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}", messages=user("weather?"), stream=True,
        tools=[WEATHER_TOOL], tool_choice="required"))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert [(tc.id, tc.function.arguments) for tc in calls] == [  # type: ignore[union-attr]
        ("call_azure1", '{"city": "Paris"}')]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_input_and_json_schema(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    client.chat.completions.create(
        model=f"azure/{DEPLOYMENT}",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                                "detail": "low"}}]}],
        response_format={"type": "json_schema",
                         "json_schema": {"name": "answer", "schema": schema, "strict": True}})
    sent = fake_azure.requests[-1].json
    assert sent["messages"][0]["content"][1] == {
        "type": "image_url", "image_url": {"url": "https://example.com/cat.png",
                                           "detail": "low"}}
    assert sent["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": schema, "strict": True}}
    client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user("json please"),
                                   response_format={"type": "json_object"})
    assert fake_azure.requests[-1].json["response_format"] == {"type": "json_object"}


def test_content_filter_finish_reason(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    fake_azure.enqueue(Reply(json=azure_completion("", finish_reason="content_filter")))
    response = client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user())
    assert response.choices[0].finish_reason == "content_filter"
    fake_azure.enqueue(Reply(events=azure_stream_events(["Once"], "content_filter")))
    chunks = list(client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user(),
                                                 stream=True))
    assert chunks[-1].choices[0].finish_reason == "content_filter"


def test_filtered_prompt_is_the_callers_400(client: openai.OpenAI,
                                            fake_azure: FakeAzure) -> None:
    fake_azure.enqueue(content_filter_error())
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user())
    assert "content management policy" in info.value.message
    assert info.value.param == "prompt"


def test_unknown_deployment_is_a_400(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="azure/no-such-deployment", messages=user())
    assert "deployment for this resource does not exist" in info.value.message
    assert fake_azure.requests[-1].path == "/openai/deployments/no-such-deployment/chat/completions"


@pytest.mark.parametrize("model", ["azure/..", "azure/a b", "azure/x?api-version=1"])
def test_unsafe_deployment_names_never_reach_azure(client: openai.OpenAI,
                                                   fake_azure: FakeAzure, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=model, messages=user())
    assert info.value.param == "model"
    assert fake_azure.requests == []


def test_bad_key_is_a_502_that_never_echoes_azure(client: openai.OpenAI,
                                                  fake_azure: FakeAzure) -> None:
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"azure-badkey/{DEPLOYMENT}", messages=user())
    assert info.value.status_code == 502
    assert "Access denied" not in info.value.message
    assert fake_azure.requests[-1].headers["api-key"] == "wrong-key"


def test_upstream_429_keeps_retry_after(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    fake_azure.enqueue(azure_error(
        429, "429", "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
        "version 2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing "
        "tier. Please retry after 7 seconds.",
        headers={"Retry-After": "7", "retry-after-ms": "7000"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user())
    assert info.value.response.headers["Retry-After"] == "7"


def test_upstream_500_is_a_502(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    fake_azure.enqueue(azure_error(500, "InternalServerError", "The server had an error."))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model=f"azure/{DEPLOYMENT}", messages=user())
    assert info.value.status_code == 502
    assert info.value.body["provider"] == "azure"  # type: ignore[index]


def test_cut_stream_ends_with_an_error(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    fake_azure.enqueue(Reply(events=azure_stream_events(["one", " two", " three"]),
                             cut_after=3))
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model=f"azure/{DEPLOYMENT}",
                                                    messages=user(), stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["", "one"]
    assert "azure" in info.value.message


def test_embeddings(client: openai.OpenAI, fake_azure: FakeAzure) -> None:
    result = client.embeddings.create(model="azure/my-embedding-deployment", input=["a", "b"],
                                      dimensions=2, encoding_format="float")
    assert [d.embedding for d in result.data] == [[1.0, 1.0], [2.0, 2.0]]
    assert result.usage.prompt_tokens == 4
    sent = fake_azure.requests[-1]
    assert (sent.path, sent.query) == ("/openai/deployments/my-embedding-deployment/embeddings",
                                       {"api-version": API_VERSION})
    assert sent.headers["api-key"] == FakeAzure.api_key
    assert sent.json == {"model": "my-embedding-deployment", "input": ["a", "b"],
                         "encoding_format": "float", "dimensions": 2}


def test_models_are_the_configured_deployments(gateway: RunningGateway,
                                               fake_azure: FakeAzure) -> None:
    ids = {m["id"] for m in httpx.get(gateway.http_url + "/v1/models").json()["data"]}
    assert {f"azure/{DEPLOYMENT}", "gpt-4o", "pinned"} <= ids
    assert not any(i.startswith("azure-default/") for i in ids)  # nothing to discover
    assert fake_azure.requests == []


def test_openai_compatible_forwards_unknown_fields(client: openai.OpenAI,
                                                   fake_openai: FakeOpenAI) -> None:
    extra = {"top_k": 20, "repetition_penalty": 1.05, "min_p": 0.05,
             "chat_template_kwargs": {"enable_thinking": False},
             "guided_json": {"type": "object"}}
    response = client.chat.completions.create(
        model="vllm/meta-llama/Llama-3.1-8B-Instruct", messages=user(), temperature=0.3,
        extra_body=extra)
    assert response.choices[0].message.content == "Hello from fake-openai"
    sent = fake_openai.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json == {"model": "meta-llama/Llama-3.1-8B-Instruct",
                         "messages": [{"role": "user", "content": "hi"}],
                         "temperature": 0.3, **extra}
    assert json.loads(sent.body)["chat_template_kwargs"] == {"enable_thinking": False}


def test_endpoint_pasted_with_its_openai_path() -> None:
    codec = AzureOpenAICodec("a", ProviderConfig(
        type="azure_openai", base_url="https://r.openai.azure.com/openai/", api_key="k"))
    wire = codec.chat_request(ChatRequest(model="x", messages=(Message(role="user"),)), "dep",
                              stream=False, include_usage=False)
    assert wire.url == ("https://r.openai.azure.com/openai/deployments/dep/chat/completions"
                        "?api-version=2024-10-21")
    assert wire.headers["api-key"] == "k" and "Authorization" not in wire.headers
