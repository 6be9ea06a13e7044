"""The Ollama provider end to end: the openai SDK -> a gateway -> a fake Ollama."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

from tests.conftest import RunningGateway
from tests.fakes.ollama import PROMPT_EVAL_COUNT, FakeOllama, chat_line, ollama_error, stream_lines
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

WEATHER_TOOL: ChatCompletionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJ"
       "RU5ErkJggg==")


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake_ollama: FakeOllama) -> None:
    fake_ollama.reset()


@pytest.fixture(scope="module")
def gateway(fake_ollama: FakeOllama) -> Iterator[RunningGateway]:
    # One attempt and a breaker that never opens: each test sees exactly its own upstream call.
    config = f"""
logging: {{level: info, format: json}}
retry: {{attempts: 1}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  ollama: {{type: ollama, base_url: "{fake_ollama.base_url}"}}
  behind-proxy: {{type: ollama, base_url: "{fake_ollama.base_url}/", api_key: "proxy-token",
                 models: [llama3.2]}}
models:
  - name: local-llama
    targets: [{{provider: ollama, model: llama3.2}}]
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


def user(text: str = "hi") -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_non_stream(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    response = client.chat.completions.create(
        model="ollama/llama3.2",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        temperature=0.2, top_p=0.9, max_tokens=50, seed=7, stop=["\n\n"],
        presence_penalty=0.5, frequency_penalty=0.25,
        extra_body={"top_k": 20, "num_ctx": 4096, "keep_alive": "10m"})
    assert response.choices[0].message.content == "Hello from fake-ollama"
    assert response.choices[0].finish_reason == "stop"
    assert response.id.startswith("chatcmpl-") and response.model == "llama3.2"
    assert response.usage is not None
    assert (response.usage.prompt_tokens, response.usage.completion_tokens,
            response.usage.total_tokens) == (PROMPT_EVAL_COUNT, 3, PROMPT_EVAL_COUNT + 3)
    assert (response.model_extra or {})["x_gateway"]["provider"] == "ollama"
    sent = fake_ollama.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/api/chat")
    assert sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers
    assert sent.json == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "hi"}],
        "stream": False,
        "keep_alive": "10m",
        "options": {"temperature": 0.2, "top_p": 0.9, "seed": 7, "presence_penalty": 0.5,
                    "frequency_penalty": 0.25, "num_predict": 50, "stop": ["\n\n"],
                    "top_k": 20, "num_ctx": 4096},
    }


def test_alias_routes_to_ollama(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    response = client.chat.completions.create(model="local-llama", messages=user())
    assert response.choices[0].message.content == "Hello from fake-ollama"
    assert fake_ollama.requests[-1].json["model"] == "llama3.2"


def test_stream_with_usage(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    chunks = list(client.chat.completions.create(
        model="ollama/llama3.2", messages=user(), stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-ollama")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        PROMPT_EVAL_COUNT, 3)
    assert len({c.id for c in chunks}) == 1
    sent = fake_ollama.requests[-1]
    assert sent.json["stream"] is True and "stream_options" not in sent.json
    assert sent.headers["Accept"] == "application/x-ndjson"


def test_stream_without_usage_has_no_usage_chunk(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="ollama/llama3.2", messages=user(), stream=True))
    assert all(c.choices for c in chunks)
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


def test_length_finish_reason(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    response = client.chat.completions.create(model="ollama/llama3.2", messages=user(),
                                              max_completion_tokens=2)
    assert response.choices[0].message.content == "Hello from"
    assert response.choices[0].finish_reason == "length"
    assert fake_ollama.requests[-1].json["options"] == {"num_predict": 2}
    chunks = list(client.chat.completions.create(model="ollama/llama3.2", messages=user(),
                                                 max_tokens=1, stream=True))
    assert [c.choices[0].finish_reason for c in chunks][-1] == "length"


def test_tool_call_round_trip(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    first = client.chat.completions.create(
        model="ollama/llama3.2", messages=user("weather in Paris?"),
        tools=[WEATHER_TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 2}  # type: ignore[union-attr]
    assert fake_ollama.requests[-1].json["tools"] == [WEATHER_TOOL]

    second = client.chat.completions.create(
        model="ollama/llama3.2",
        messages=[
            *user("weather in Paris?"),
            first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
        tools=[WEATHER_TOOL])
    assert second.choices[0].message.content == "It is sunny"
    assert second.choices[0].finish_reason == "stop"
    messages = fake_ollama.requests[-1].json["messages"]
    assert messages[1] == {"role": "assistant", "content": "", "tool_calls": [
        {"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]}
    assert messages[2] == {"role": "tool", "content": "sunny, 21C", "tool_name": "get_weather"}


def test_stream_tool_call(client: openai.OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model="ollama/llama3.2", messages=user("weather?"), stream=True,
        tools=[WEATHER_TOOL]))
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert len(calls) == 1 and calls[0].index == 0 and calls[0].id.startswith("call_")  # type: ignore[union-attr]
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(calls[0].function.arguments or "") == {"city": "Paris", "days": 2}  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_image_input(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    response = client.chat.completions.create(model="ollama/llava", messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]}])
    assert response.choices[0].message.content == "I see an image"
    assert fake_ollama.requests[-1].json["messages"] == [
        {"role": "user", "content": "what is this?", "images": [PNG]}]


def test_remote_image_url_is_a_400_naming_the_param(client: openai.OpenAI,
                                                    fake_ollama: FakeOllama) -> None:
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="ollama/llava", stream=stream, messages=[
                {"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/c.png"}}]}])
        assert info.value.param == "messages[0].content[1].image_url.url"
        assert "data: URL" in info.value.message
    assert fake_ollama.requests == []


def test_json_mode_and_schema(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    response = client.chat.completions.create(
        model="ollama/llama3.2", messages=user("answer in JSON"),
        response_format={"type": "json_object"})
    assert json.loads(response.choices[0].message.content or "") == {"answer": 42}
    assert fake_ollama.requests[-1].json["format"] == "json"
    schema: dict[str, object] = {"type": "object", "required": ["answer"],
                                 "properties": {"answer": {"type": "integer"}}}
    client.chat.completions.create(
        model="ollama/llama3.2", messages=user("answer in JSON"),
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}})
    assert fake_ollama.requests[-1].json["format"] == schema


def test_n_above_one_is_a_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="ollama/llama3.2", messages=user(), n=2)
    assert info.value.param == "n"


def test_upstream_400_keeps_ollamas_message(client: openai.OpenAI,
                                            fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(ollama_error(400, "invalid input type"))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="ollama/llama3.2", messages=user())
    assert info.value.body["message"] == "invalid input type"  # type: ignore[index]


def test_model_not_pulled_is_a_clear_400(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="ollama/llama9", messages=user())
    assert "ollama does not have the requested model" in info.value.message
    assert 'model "llama9" not found' in info.value.message
    assert info.value.param == "model"


def test_proxy_auth_failure_is_a_502(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(ollama_error(401, "unauthorized"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="behind-proxy/llama3.2", messages=user())
    assert info.value.status_code == 502
    assert fake_ollama.requests[-1].headers["Authorization"] == "Bearer proxy-token"
    assert fake_ollama.requests[-1].path == "/api/chat"


def test_upstream_429_keeps_retry_after(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(Reply(status=429, json={"error": "server busy, please try again"},
                              headers={"Retry-After": "7"}))
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="ollama/llama3.2", messages=user())
    assert info.value.response.headers["Retry-After"] == "7"


def test_upstream_500_is_a_502_naming_the_provider(client: openai.OpenAI,
                                                   fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(ollama_error(500, "llama runner process has terminated"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="ollama/llama3.2", messages=user())
    assert info.value.status_code == 502
    assert info.value.body["provider"] == "ollama"  # type: ignore[index]


def test_cut_stream_ends_with_an_error(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(Reply(lines=stream_lines("llama3.2", ["one", " two", " three"]),
                              cut_after=2))
    received = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client.chat.completions.create(model="ollama/llama3.2", messages=user(),
                                                    stream=True):
            received.append(chunk.choices[0].delta.content)
    assert received == ["one", " two"]
    assert "ollama" in info.value.message


def test_stream_ending_without_done_is_cut(client: openai.OpenAI,
                                           fake_ollama: FakeOllama) -> None:
    fake_ollama.enqueue(Reply(lines=[chat_line("llama3.2", "one")]))  # clean EOF, no done
    with pytest.raises(openai.APIError) as info:
        list(client.chat.completions.create(model="ollama/llama3.2", messages=user(),
                                            stream=True))
    assert "before it was complete" in info.value.message


def test_error_line_mid_stream(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    error = {"error": "an error was encountered while running the model"}
    fake_ollama.enqueue(Reply(lines=[chat_line("llama3.2", "one"), error]))
    with pytest.raises(openai.APIError) as info:
        list(client.chat.completions.create(model="ollama/llama3.2", messages=user(),
                                            stream=True))
    assert "an error was encountered while running the model" in info.value.message


def test_embeddings(client: openai.OpenAI, fake_ollama: FakeOllama) -> None:
    result = client.embeddings.create(model="ollama/nomic-embed-text", input=["a", "b"],
                                      dimensions=2, encoding_format="float")
    assert [d.embedding for d in result.data] == [[0.25, 0.25], [0.5, 0.5]]
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.prompt_tokens == 8
    sent = fake_ollama.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/api/embed")
    assert sent.json == {"model": "nomic-embed-text", "input": ["a", "b"], "dimensions": 2}
    # The SDK asks for base64 by default and decodes it itself.
    result = client.embeddings.create(model="ollama/nomic-embed-text", input="a")
    assert result.data[0].embedding == [0.25] * 4


def test_models_are_discovered_from_api_tags(gateway: RunningGateway,
                                             fake_ollama: FakeOllama) -> None:
    ids = {m["id"] for m in httpx.get(gateway.http_url + "/v1/models").json()["data"]}
    assert {"ollama/llama3.2:latest", "ollama/llava:latest", "behind-proxy/llama3.2",
            "local-llama"} <= ids
    assert [(r.method, r.path) for r in fake_ollama.requests] == [("GET", "/api/tags")]
