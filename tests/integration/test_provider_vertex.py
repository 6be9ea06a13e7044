"""The official openai and anthropic SDKs against a real gateway whose `vertex` provider
talks to a wire-faithful fake Vertex AI and its OAuth2 token endpoint: the service
account's signed JWT grant (made by google-auth itself), bearer tokens on every call,
Gemini and Claude by model, embeddings, the Messages API passed through to Claude, errors,
and tokens refreshed before they expire. Nothing here reaches Google."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import jwt
import openai
import pytest
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import Request
from google.oauth2 import service_account

from tests.conftest import RunningGateway
from tests.fakes.anthropic import anthropic_error
from tests.fakes.gemini import gemini_error
from tests.fakes.vertex import AUDIENCE, SCOPE, FakeVertex, ServiceAccount
from tests.inprocess import start_in_process

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
ROOT = "/v1/projects/test-project/locations/us-east5/publishers"
HI: Any = [{"role": "user", "content": "hi"}]
TOOLS: Any = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]


def _config(fake: FakeVertex, credentials: Path) -> str:
    return f"""
logging: {{level: info, format: json}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  vertex:
    type: vertex
    project: test-project
    location: us-east5
    base_url: "{fake.base_url}"
    credentials_file: "{credentials}"
models:
  - name: gemini-flash
    targets: [{{provider: vertex, model: {GEMINI}}}]
  - name: claude-sonnet
    targets: [{{provider: vertex, model: "{CLAUDE}"}}]
"""


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount.generate()


@pytest.fixture(scope="module")
def fake(account: ServiceAccount) -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        server.trust(account)
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def credentials(account: ServiceAccount, fake: FakeVertex,
                tmp_path_factory: pytest.TempPathFactory) -> Path:
    return account.write(tmp_path_factory.mktemp("vertex"), fake.token_uri)


@pytest.fixture(scope="module")
def gateway(fake: FakeVertex, credentials: Path) -> Iterator[RunningGateway]:
    gw = start_in_process(_config(fake, credentials))
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


@pytest.fixture(autouse=True)
def _reset(fake: FakeVertex) -> None:
    fake.reset()


@pytest.fixture
def client(gateway: RunningGateway) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.http_url + "/v1", api_key="sk-client",
                       max_retries=0, timeout=20) as c:
        yield c


def last(fake: FakeVertex, path: str) -> Any:
    """The last call's JSON, after checking where it went and that it carried a token the
    fake issued (and no API key)."""
    request = fake.requests[-1]
    assert request.path == f"{ROOT}/{path}"
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Bearer" and token in fake.tokens
    assert "x-goog-api-key" not in request.headers and "x-api-key" not in request.headers
    return request.json


# --- the fake itself, proved against google-auth ---------------------------------------


def test_google_auth_gets_a_token_from_the_fake(fake: FakeVertex, credentials: Path,
                                                account: ServiceAccount) -> None:
    creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(credentials), scopes=[SCOPE])
    creds.refresh(Request())
    assert creds.token in fake.tokens
    claims = fake.grants[-1]
    assert (claims["iss"], claims["aud"], claims["scope"]) == (
        account.client_email, AUDIENCE, SCOPE)
    assert claims["exp"] > time.time()


def test_the_fake_refuses_a_tampered_or_foreign_assertion(
        fake: FakeVertex, account: ServiceAccount, tmp_path: Path) -> None:
    now = int(time.time())
    claims = {"iss": account.client_email, "aud": AUDIENCE, "scope": SCOPE,
              "iat": now, "exp": now + 3600}
    assertion = jwt.encode(claims, account.key, algorithm="RS256")

    def grant(value: str) -> httpx.Response:
        return httpx.post(fake.token_uri, data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": value})

    assert grant(assertion).status_code == 200
    header, payload, signature = assertion.split(".")
    tampered = f"{header}.{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
    answer = grant(f"{tampered}.{signature}")
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"
    expired = jwt.encode({**claims, "iat": now - 7200, "exp": now - 3600}, account.key,
                         algorithm="RS256")
    assert grant(expired).status_code == 400
    # A key the fake does not trust, through google-auth: refused.
    stranger = ServiceAccount.generate("stranger@test-project.iam.gserviceaccount.com")
    creds = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
        str(stranger.write(tmp_path, fake.token_uri)), scopes=[SCOPE])
    with pytest.raises(google_exceptions.RefreshError, match="invalid_grant"):
        creds.refresh(Request())


def test_the_fake_refuses_calls_without_a_valid_token(fake: FakeVertex) -> None:
    url = f"{fake.base_url}{ROOT}/google/models/{GEMINI}:generateContent"
    for headers in ({}, {"Authorization": "Bearer ya29.made-up"}):
        answer = httpx.post(url, json={"contents": []}, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


# --- Gemini -------------------------------------------------------------------------------


def test_gemini_chat(client: openai.OpenAI, fake: FakeVertex) -> None:
    result = client.chat.completions.create(
        model="gemini-flash", messages=[{"role": "system", "content": "be brief"}, *HI],
        max_tokens=50)
    assert result.choices[0].message.content == "Hello from fake-vertex"
    assert result.usage is not None and result.usage.total_tokens == 18
    assert last(fake, f"google/models/{GEMINI}:generateContent") == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "generationConfig": {"maxOutputTokens": 50}}


def test_gemini_stream(client: openai.OpenAI, fake: FakeVertex) -> None:
    chunks = list(client.chat.completions.create(
        model=f"vertex/{GEMINI}", messages=HI, stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from fake-vertex")
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 18
    last(fake, f"google/models/{GEMINI}:streamGenerateContent")
    assert fake.requests[-1].query == {"alt": "sse"}


def test_gemini_tools(client: openai.OpenAI, fake: FakeVertex) -> None:
    result = client.chat.completions.create(model="gemini-flash", messages=HI, tools=TOOLS,
                                            tool_choice="required")
    call = result.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert result.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, call.function.arguments) == (  # type: ignore[union-attr]
        "get_weather", '{"city":"Paris"}')
    body = last(fake, f"google/models/{GEMINI}:generateContent")
    assert body["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "ANY"}}


def test_embeddings(client: openai.OpenAI, fake: FakeVertex) -> None:
    result = client.embeddings.create(model="vertex/text-embedding-005", input=["a", "b"],
                                      dimensions=4, encoding_format="float")
    assert [d.embedding for d in result.data] == [[1.0] * 4, [2.0] * 4]
    assert last(fake, "google/models/text-embedding-005:predict") == {
        "instances": [{"content": "a"}, {"content": "b"}],
        "parameters": {"outputDimensionality": 4}}


# --- Claude -------------------------------------------------------------------------------


def test_claude_chat(client: openai.OpenAI, fake: FakeVertex) -> None:
    result = client.chat.completions.create(model="claude-sonnet", messages=HI, max_tokens=64)
    assert result.choices[0].message.content == "Hello from claude-on-vertex"
    assert result.choices[0].finish_reason == "stop"
    assert last(fake, f"anthropic/models/{CLAUDE}:rawPredict") == {
        "anthropic_version": "vertex-2023-10-16", "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}]}


def test_claude_stream(client: openai.OpenAI, fake: FakeVertex) -> None:
    chunks = list(client.chat.completions.create(
        model="claude-sonnet", messages=HI, stream=True,
        stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "Hello from claude-on-vertex")
    assert chunks[-1].usage is not None and chunks[-1].usage.prompt_tokens > 0
    body = last(fake, f"anthropic/models/{CLAUDE}:streamRawPredict")
    assert body["stream"] is True and "model" not in body


def test_claude_tools_streamed(client: openai.OpenAI, fake: FakeVertex) -> None:
    chunks = list(client.chat.completions.create(
        model="claude-sonnet", messages=HI, tools=TOOLS, tool_choice="required", stream=True))
    calls = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert "".join(t.function.arguments or "" for t in calls  # type: ignore[union-attr]
                   ) == '{"city": "Paris"}'
    body = last(fake, f"anthropic/models/{CLAUDE}:streamRawPredict")
    assert body["tools"][0]["name"] == "get_weather"
    assert body["tool_choice"] == {"type": "any"}


# --- the Messages API, passed through to Claude ---------------------------------------------


@pytest.fixture
def claude(gateway: RunningGateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.http_url, api_key="sk-client", max_retries=0,
                             timeout=20) as c:
        yield c


def test_messages_pass_through_to_claude(claude: anthropic.Anthropic,
                                         fake: FakeVertex) -> None:
    sent: Any = {"max_tokens": 100, "system": "be brief", "stop_sequences": ["END"],
                 "messages": [{"role": "user", "content": "hi"}],
                 "metadata": {"user_id": "u-1"}}
    answer = claude.messages.create(model="claude-sonnet", **sent,
                                    extra_headers={"anthropic-beta": "context-1m-2025-08-07"})
    assert answer.content[0].text == "Hello from claude-on-vertex"  # type: ignore[union-attr]
    assert last(fake, f"anthropic/models/{CLAUDE}:rawPredict") == {
        **sent, "anthropic_version": "vertex-2023-10-16"}
    assert fake.requests[-1].headers["anthropic-beta"] == "context-1m-2025-08-07"

    with claude.messages.stream(model="claude-sonnet", **sent) as stream:
        text = "".join(stream.text_stream)
    assert text == "Hello from claude-on-vertex"
    assert last(fake, f"anthropic/models/{CLAUDE}:streamRawPredict") == {
        **sent, "anthropic_version": "vertex-2023-10-16", "stream": True}


def test_count_tokens_goes_to_vertex(claude: anthropic.Anthropic, fake: FakeVertex) -> None:
    count = claude.messages.count_tokens(model="claude-sonnet", messages=HI)
    body = last(fake, "anthropic/models/count-tokens:rawPredict")
    assert body == {"model": CLAUDE, "messages": HI, "anthropic_version": "vertex-2023-10-16"}
    assert count.input_tokens == len(fake.requests[-1].body) // 10  # the fake's own count


def test_messages_for_gemini_are_translated(claude: anthropic.Anthropic,
                                            fake: FakeVertex) -> None:
    answer = claude.messages.create(model="gemini-flash", max_tokens=50, messages=HI)
    assert answer.content[0].text == "Hello from fake-vertex"  # type: ignore[union-attr]
    last(fake, f"google/models/{GEMINI}:generateContent")


# --- errors -------------------------------------------------------------------------------


def test_resource_exhausted_is_retried_then_a_429(client: openai.OpenAI,
                                                  fake: FakeVertex) -> None:
    quota = gemini_error(429, "Resource exhausted. Please try again later.",
                         "RESOURCE_EXHAUSTED")
    fake.enqueue(quota)
    result = client.chat.completions.create(model="gemini-flash", messages=HI)
    assert result.choices[0].message.content == "Hello from fake-vertex"
    assert len(fake.requests) == 2
    fake.enqueue(*[quota] * 3)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="claude-sonnet", messages=HI)
    assert info.value.status_code == 429


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_provider_not_the_token(
        client: openai.OpenAI, fake: FakeVertex, status: int) -> None:
    fake.enqueue(gemini_error(status, "Permission 'aiplatform.endpoints.predict' denied",
                              "PERMISSION_DENIED"))
    with pytest.raises(openai.InternalServerError) as info:
        client.chat.completions.create(model="gemini-flash", messages=HI)
    assert info.value.status_code == 502 and info.value.code == "auth_error"
    assert "vertex" in info.value.message and "ya29" not in str(info.value.body)


def test_google_and_anthropic_error_shapes(client: openai.OpenAI, fake: FakeVertex) -> None:
    fake.enqueue(gemini_error(400, "Invalid JSON payload received.", "INVALID_ARGUMENT"))
    with pytest.raises(openai.BadRequestError, match="Invalid JSON payload"):
        client.chat.completions.create(model="gemini-flash", messages=HI)
    fake.enqueue(gemini_error(404, f"Publisher Model {CLAUDE} was not found", "NOT_FOUND"))
    with pytest.raises(openai.BadRequestError, match="was not found"):
        client.chat.completions.create(model="claude-sonnet", messages=HI)
    fake.enqueue(anthropic_error(400, "invalid_request_error", "messages: too short"))
    with pytest.raises(openai.BadRequestError, match="too short"):
        client.chat.completions.create(model="claude-sonnet", messages=HI)
    fake.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))  # retried
    result = client.chat.completions.create(model="claude-sonnet", messages=HI)
    assert result.choices[0].message.content == "Hello from claude-on-vertex"


# --- tokens over time -----------------------------------------------------------------------


def test_tokens_are_refreshed_before_they_expire(account: ServiceAccount,
                                                 tmp_path: Path) -> None:
    with FakeVertex(token_lifetime=2) as short:
        short.trust(account)
        gw = start_in_process(_config(short, account.write(tmp_path, short.token_uri)))
        try:
            with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client",
                               max_retries=0, timeout=20) as client:
                client.chat.completions.create(model="gemini-flash", messages=HI)
                assert len(short.grants) == 1
                first = short.requests[-1].headers["Authorization"]
                time.sleep(1.1)  # past half the lifetime: renewed in the background
                client.chat.completions.create(model="claude-sonnet", messages=HI)
                deadline = time.monotonic() + 5
                while len(short.grants) < 2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                assert len(short.grants) >= 2
                while short.requests[-1].headers["Authorization"] == first:
                    assert time.monotonic() < deadline, "the renewed token is never used"
                    time.sleep(0.02)  # the grant is answered: the gateway takes it up soon
                    client.chat.completions.create(model="gemini-flash", messages=HI)
                time.sleep(2.1)  # every token expired: the next request waits for one
                grants = len(short.grants)
                client.chat.completions.create(model="gemini-flash", messages=HI)
                assert len(short.grants) == grants + 1
                assert all(r.headers["Authorization"].removeprefix("Bearer ") in short.tokens
                           for r in short.requests)
        finally:
            assert gw.stop() == 0


def test_no_token_to_be_had_is_an_error_naming_the_provider(account: ServiceAccount,
                                                            fake: FakeVertex,
                                                            tmp_path: Path) -> None:
    down = account.write(tmp_path, "http://127.0.0.1:1/token")  # nothing listens there
    gw = start_in_process(_config(fake, down))
    try:
        with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client",
                           max_retries=0, timeout=60) as client:
            with pytest.raises(openai.APIStatusError) as info:
                client.chat.completions.create(model="gemini-flash", messages=HI)
        assert info.value.status_code >= 500
        assert "vertex" in info.value.message and "credentials" in info.value.message
        assert fake.requests == []  # nothing was sent without a token
    finally:
        assert gw.stop() == 0
