"""The pure parts of the vertex provider: addressing by location and model, the Claude and
embedding bodies, both error shapes, and the token signer's caching (a fake token source
and clock: no thread pool timing, no network)."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import Any

import orjson
import pytest

from gateway.config import ConfigError, ProviderConfig, load_settings
from gateway.domain import ChatRequest, EmbeddingRequest, Message
from gateway.errors import (
    InvalidRequestError,
    UpstreamError,
    UpstreamRateLimitedError,
    UpstreamRejectedError,
)
from gateway.providers.base import AnthropicHeaders, UpstreamRequest
from gateway.providers.registry import build_provider
from gateway.providers.vertex import VertexCodec, base_url, classify_error, is_claude
from gateway.providers.vertex_auth import INSTALL_HINT, TokenSigner, token_signer

CONFIG = ProviderConfig(type="vertex", project="my-proj", location="us-east5",
                        headers={"anthropic-beta": "configured-beta"})
CODEC = VertexCodec("vertex", CONFIG)
ROOT = "https://us-east5-aiplatform.googleapis.com/v1/projects/my-proj/locations/us-east5"
HI = ChatRequest(model="m", messages=(Message(role="user", content="hi"),))
CLAUDE = "claude-sonnet-4-5@20250929"


@pytest.mark.parametrize(("location", "base", "expected"), [
    ("us-east5", "", "https://us-east5-aiplatform.googleapis.com"),
    ("global", "", "https://aiplatform.googleapis.com"),
    ("eu", "", "https://aiplatform.eu.rep.googleapis.com"),
    ("us-east5", "http://127.0.0.1:9/", "http://127.0.0.1:9"),
])
def test_base_url(location: str, base: str, expected: str) -> None:
    assert base_url(ProviderConfig(type="vertex", project="p", location=location,
                                   base_url=base)) == expected


def test_models_are_routed_by_name() -> None:
    assert is_claude(CLAUDE) and is_claude("publishers/anthropic/models/claude-haiku-4-5")
    assert not is_claude("gemini-2.5-pro") and not is_claude("text-embedding-005")


def test_gemini_chat_is_the_gemini_body_at_vertexs_address() -> None:
    wire = CODEC.chat_request(HI, "gemini-2.5-pro", stream=True, include_usage=True)
    assert wire.url == (
        f"{ROOT}/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse")
    assert orjson.loads(wire.body or b"") == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert not any(k.lower() in ("x-goog-api-key", "authorization") for k in wire.headers)


def test_claude_chat_is_the_messages_body_without_model() -> None:
    wire = CODEC.chat_request(HI, CLAUDE, stream=False, include_usage=False)
    assert wire.url == f"{ROOT}/publishers/anthropic/models/{CLAUDE}:rawPredict"
    body = orjson.loads(wire.body or b"")
    assert body == {"anthropic_version": "vertex-2023-10-16", "max_tokens": 4096,
                    "messages": [{"role": "user", "content": "hi"}]}
    assert wire.headers["anthropic-beta"] == "configured-beta"
    streamed = CODEC.chat_request(HI, CLAUDE, stream=True, include_usage=True)
    assert streamed.url.endswith(":streamRawPredict")
    assert orjson.loads(streamed.body or b"")["stream"] is True


def test_a_model_name_stays_one_path_segment() -> None:
    wire = CODEC.chat_request(HI, "claude-x/../../evil?q", stream=False, include_usage=False)
    assert wire.url == (
        f"{ROOT}/publishers/anthropic/models/claude-x%2F..%2F..%2Fevil%3Fq:rawPredict")


def test_messages_passthrough_and_count_tokens() -> None:
    client = {"model": "alias", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}
    headers = AnthropicHeaders(version="2023-06-01", betas=("b1", "configured-beta"))
    wire = CODEC.messages_request(client, CLAUDE, stream=False, headers=headers)
    assert orjson.loads(wire.body or b"") == {
        "max_tokens": 10, "messages": client["messages"], "anthropic_version": "vertex-2023-10-16"}
    assert wire.headers["anthropic-beta"] == "configured-beta,b1"
    assert "anthropic-version" not in wire.headers  # Vertex takes its version in the body
    count = CODEC.count_tokens_request(client, CLAUDE, headers=headers)
    assert count.url == f"{ROOT}/publishers/anthropic/models/count-tokens:rawPredict"
    assert orjson.loads(count.body or b"")["model"] == CLAUDE
    assert CODEC.count_tokens_response(b'{"input_tokens": 12}') == 12


def test_embeddings_through_predict() -> None:
    wire = CODEC.embed_request(EmbeddingRequest(model="e", inputs=("a", "b"), dimensions=8),
                               "text-embedding-005")
    assert wire.url == f"{ROOT}/publishers/google/models/text-embedding-005:predict"
    assert orjson.loads(wire.body or b"") == {
        "instances": [{"content": "a"}, {"content": "b"}],
        "parameters": {"outputDimensionality": 8}}
    answer = {"predictions": [{"embeddings": {"values": [1, 2], "statistics": {}}},
                              {"embeddings": {"values": [3, 4]}}]}
    result = CODEC.embed_response(orjson.dumps(answer), "text-embedding-005")
    assert result.vectors == [[1.0, 2.0], [3.0, 4.0]]
    with pytest.raises(InvalidRequestError):
        CODEC.embed_request(EmbeddingRequest(model="e", inputs=("a",)), CLAUDE)


def _google(code: int, status: str, message: str = "m") -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "status": status}})


def test_google_shaped_errors() -> None:
    limited = classify_error("vertex", 429, {}, _google(429, "RESOURCE_EXHAUSTED"))
    assert isinstance(limited, UpstreamRateLimitedError) and limited.retryable
    rejected = classify_error("vertex", 400, {}, _google(400, "INVALID_ARGUMENT", "bad field"))
    assert isinstance(rejected, UpstreamRejectedError) and "bad field" in rejected.message
    assert isinstance(classify_error("vertex", 404, {}, _google(404, "NOT_FOUND")),
                      UpstreamRejectedError)
    for status in (401, 403):
        auth = classify_error("vertex", status, {}, _google(status, "UNAUTHENTICATED",
                                                            "token ya29.secret"))
        assert isinstance(auth, UpstreamError) and not auth.retryable
        assert auth.error_type == "auth_error" and "vertex" in auth.message
        assert "ya29" not in auth.message
    server = classify_error("vertex", 503, {}, _google(503, "UNAVAILABLE"))
    assert server.retryable  # type: ignore[attr-defined]


def test_an_echoed_access_token_is_redacted() -> None:
    exc = CODEC.error(400, {}, _google(400, "INVALID_ARGUMENT", "bad token ya29.a0AfB_x-y.z"))
    assert exc.message == "bad token [redacted]" and "ya29" not in str(exc.args)


def test_anthropic_shaped_errors() -> None:
    body = orjson.dumps({"type": "error", "error": {"type": "overloaded_error",
                                                    "message": "Overloaded"}})
    overloaded = classify_error("vertex", 529, {}, body)
    assert isinstance(overloaded, UpstreamError) and overloaded.error_type == "overloaded"
    body = orjson.dumps({"type": "error", "error": {"type": "invalid_request_error",
                                                    "message": "max_tokens: required"}})
    rejected = classify_error("vertex", 400, {}, body)
    assert isinstance(rejected, UpstreamRejectedError) and "max_tokens" in rejected.message


# --- the token signer ---------------------------------------------------------------------


class FakeSource:
    """Tokens ``t1``, ``t2``, ... each valid ``lifetime`` seconds; ``gate`` holds a fetch."""

    def __init__(self, lifetime: float = 3600.0) -> None:
        self.lifetime = lifetime
        self.fetches = 0
        self.gate = threading.Event()
        self.gate.set()
        self.fail: Exception | None = None
        self.closed = False

    def fetch(self) -> tuple[str, float]:
        self.gate.wait(5)
        self.fetches += 1
        if self.fail is not None:
            raise self.fail
        return f"t{self.fetches}", self.lifetime

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


WIRE = UpstreamRequest("POST", "http://x", {"content-type": "application/json"})


async def test_concurrent_first_requests_share_one_fetch() -> None:
    source = FakeSource()
    source.gate.clear()
    signer = TokenSigner("vertex", source, Clock())
    pending = [asyncio.create_task(signer.sign(WIRE)) for _ in range(10)]
    await asyncio.sleep(0.05)
    source.gate.set()
    signed = await asyncio.gather(*pending)
    assert source.fetches == 1
    assert {s.headers["Authorization"] for s in signed} == {"Bearer t1"}
    assert signed[0].headers["content-type"] == "application/json"
    await signer.aclose()
    assert source.closed


async def test_a_token_is_renewed_in_the_background_before_it_expires() -> None:
    source, clock = FakeSource(lifetime=3600), Clock()
    signer = TokenSigner("vertex", source, clock)
    assert await signer.token() == "t1"
    clock.now += 3600 - 301  # fresh still: no fetch
    assert await signer.token() == "t1" and source.fetches == 1
    clock.now += 2  # within five minutes of expiry: served the old one, renewed meanwhile
    source.gate.clear()
    assert await signer.token() == "t1"
    source.gate.set()
    await asyncio.wait_for(_until(lambda: source.fetches == 2), 5)
    assert await signer.token() == "t2"
    clock.now += 3600  # long quiet: every token expired, the request waits for a new one
    assert await signer.token() == "t3"


async def test_a_short_lived_token_is_renewed_at_half_its_life() -> None:
    source, clock = FakeSource(lifetime=10), Clock()
    signer = TokenSigner("vertex", source, clock)
    await signer.token()
    clock.now += 4.9
    await signer.token()
    assert source.fetches == 1
    clock.now += 0.2
    await signer.token()
    await asyncio.wait_for(_until(lambda: source.fetches == 2), 5)


async def test_a_failed_fetch_raises_without_the_token_and_is_tried_again() -> None:
    source = FakeSource()
    source.fail = RuntimeError("token endpoint down")
    signer = TokenSigner("vertex", source, Clock())
    with pytest.raises(RuntimeError):
        await signer.sign(WIRE)
    source.fail = None
    assert (await signer.sign(WIRE)).headers["Authorization"] == "Bearer t2"


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.01)


def test_without_google_auth_the_provider_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if google-auth were not installed.
    monkeypatch.setitem(sys.modules, "google.oauth2", None)
    with pytest.raises(ValueError, match="vertex") as info:
        build_provider("vertex", CONFIG)
    assert INSTALL_HINT in str(info.value)


def test_an_unreadable_credentials_file_fails_at_start(tmp_path: Any) -> None:
    config = ProviderConfig(type="vertex", project="p", location="global",
                            credentials_file=str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"providers\.vertex: credentials_file"):
        token_signer("vertex", config)
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account"}')
    with pytest.raises(ValueError, match="credentials_file"):
        token_signer("vertex", ProviderConfig(type="vertex", project="p", location="global",
                                              credentials_file=str(broken)))


def test_the_config_needs_a_project_and_location(tmp_path: Any) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text("providers:\n  gcp: {type: vertex}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    assert info.value.problems == ["providers.gcp.project: required for type vertex",
                                   "providers.gcp.location: required for type vertex"]
    path.write_text("providers:\n  gcp: {type: vertex, project: p, location: global,"
                    " credentials_file: /etc/sa.json}\n")
    provider = load_settings(path, env={}).providers["gcp"]
    assert (provider.project, provider.location, provider.credentials_file) == (
        "p", "global", "/etc/sa.json")
