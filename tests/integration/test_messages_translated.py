"""The Messages API served by every non-Anthropic provider: the anthropic SDK -> the gateway ->
wire-faithful fakes of Gemini, Ollama and Azure OpenAI. Each provider answers a text turn, a
streamed turn (read with the SDK's accumulator) and a forced tool call, and each fake shows
the request in its own API's shape."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.conftest import RunningGateway
from tests.fakes.azure import FakeAzure, azure_completion
from tests.fakes.gemini import FakeGemini, candidate, response
from tests.fakes.ollama import FakeOllama
from tests.fakes.server import FakeServer, Reply
from tests.inprocess import start_in_process

WEATHER = {"name": "get_weather", "description": "Weather in a city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}},
                            "required": ["city"]}}
HI = [{"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(scope="module")
def fakes() -> Iterator[dict[str, FakeServer]]:
    with FakeGemini() as gemini, FakeOllama() as ollama, FakeAzure() as azure:
        yield {"gemini": gemini, "ollama": ollama, "azure": azure}  # type: ignore[dict-item]


@pytest.fixture(scope="module")
def gateway(fakes: dict[str, FakeServer]) -> Iterator[RunningGateway]:
    gw = start_in_process(f"""
retry: {{attempts: 1}}
providers:
  gemini: {{type: google, base_url: "{fakes['gemini'].base_url}",
           api_key: "{FakeGemini.api_key}"}}
  ollama: {{type: ollama, base_url: "{fakes['ollama'].base_url}"}}
  azure: {{type: azure_openai, base_url: "{fakes['azure'].base_url}",
          api_key: "{FakeAzure.api_key}", api_version: "2024-06-01"}}
models:
  - {{name: gemini, targets: [{{provider: gemini, model: gemini-2.0-flash}}]}}
  - {{name: llama, targets: [{{provider: ollama, model: llama3.2}}]}}
  - {{name: azure, targets: [{{provider: azure, model: my-gpt4o-deployment}}]}}
""")
    yield gw
    assert gw.stop() == 0, gw.logs()


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="unused", max_retries=0,
                             timeout=20) as c:
        yield c


@pytest.mark.parametrize(("model", "said"), [
    ("gemini", "Hello from fake-gemini"), ("llama", "Hello from fake-ollama"),
    ("azure", "Hello from fake-azure")])
def test_text_whole_and_streamed(client: anthropic.Anthropic, fakes: dict[str, FakeServer],
                                 model: str, said: str) -> None:
    whole = client.messages.create(model=model, max_tokens=64, system="Be brief.",
                                   messages=HI, stop_sequences=["END"])
    block = whole.content[0]
    assert block.type == "text" and block.text == said
    assert whole.stop_reason == "end_turn" and whole.id.startswith("msg_")
    assert whole.usage.input_tokens > 0 and whole.usage.output_tokens > 0
    with client.messages.stream(model=model, max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == said and final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_each_upstream_gets_its_own_shape(client: anthropic.Anthropic,
                                          fakes: dict[str, FakeServer]) -> None:
    client.messages.create(model="gemini", max_tokens=64, system="Be brief.", messages=HI,
                           stop_sequences=["END"])
    gemini = fakes["gemini"].requests[-1].json
    assert gemini["systemInstruction"]["parts"][0]["text"] == "Be brief."
    assert gemini["generationConfig"]["stopSequences"] == ["END"]
    assert gemini["generationConfig"]["maxOutputTokens"] == 64
    client.messages.create(model="llama", max_tokens=64, system="Be brief.", messages=HI)
    ollama = fakes["ollama"].requests[-1].json
    assert ollama["messages"][0] == {"role": "system", "content": "Be brief."}
    assert ollama["options"]["num_predict"] == 64
    client.messages.create(model="azure", max_tokens=64, messages=HI,
                           metadata={"user_id": "u-7"})
    azure = fakes["azure"].requests[-1]
    assert azure.path.endswith("/deployments/my-gpt4o-deployment/chat/completions")
    assert azure.json["user"] == "u-7" and azure.json["max_completion_tokens"] == 64


@pytest.mark.parametrize("model", ["gemini", "llama", "azure"])
def test_a_forced_tool_call(client: anthropic.Anthropic, model: str) -> None:
    if model == "llama":  # Ollama cannot force a call; with tools and a user turn it calls
        answer = client.messages.create(model=model, max_tokens=64, tools=[WEATHER],
                                        messages=HI)
    else:
        answer = client.messages.create(model=model, max_tokens=64, tools=[WEATHER],
                                        tool_choice={"type": "tool", "name": "get_weather"},
                                        messages=HI)
    call = answer.content[-1]
    assert call.type == "tool_use" and call.name == "get_weather"
    assert isinstance(call.input, dict) and call.id
    assert answer.stop_reason == "tool_use"


def test_thinking_asks_for_reasoning_and_gets_it_back(client: anthropic.Anthropic,
                                                      fakes: dict[str, FakeServer]) -> None:
    """Extended thinking becomes the provider's reasoning control, and the reasoning it
    returns becomes thinking blocks, whole and streamed (Gemini's thought summaries here)."""
    thought = {"text": "Paris in spring is mild.", "thought": True}
    fakes["gemini"].enqueue(Reply(json=response([candidate([thought, {"text": "Mild."}])])))
    whole = client.messages.create(model="gemini", max_tokens=2048, messages=HI,
                                   thinking={"type": "enabled", "budget_tokens": 2000})
    config = fakes["gemini"].requests[-1].json["generationConfig"]
    assert config["thinkingConfig"] == {"includeThoughts": True, "thinkingBudget": 1024}
    assert [b.type for b in whole.content] == ["thinking", "text"]
    assert whole.content[0].thinking == "Paris in spring is mild."  # type: ignore[union-attr]

    events = [response([candidate([thought], None)]),
              response([candidate([{"text": "Mild."}])])]
    fakes["gemini"].enqueue(Reply(events=events))
    with client.messages.stream(model="gemini", max_tokens=2048, messages=HI,
                                thinking={"type": "enabled", "budget_tokens": 2000}) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_message()
    assert "thinking" in kinds and "text" in kinds
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "Paris in spring is mild."  # type: ignore[union-attr]
    assert final.content[1].text == "Mild."  # type: ignore[union-attr]


def test_reasoning_content_of_compatible_servers(client: anthropic.Anthropic,
                                                 fakes: dict[str, FakeServer]) -> None:
    """vLLM and DeepSeek return ``reasoning_content`` beside the content."""
    body = azure_completion("Mild.")
    body["choices"][0]["message"]["reasoning_content"] = "Think about spring."
    fakes["azure"].enqueue(Reply(json=body))
    answer = client.messages.create(model="azure", max_tokens=2048, messages=HI,
                                    thinking={"type": "enabled", "budget_tokens": 20000})
    assert fakes["azure"].requests[-1].json["reasoning_effort"] == "high"
    assert [b.type for b in answer.content] == ["thinking", "text"]
    assert answer.content[0].thinking == "Think about spring."  # type: ignore[union-attr]
