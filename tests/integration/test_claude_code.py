"""Claude Code's traffic against the gateway, reproduced from its documented shape
(code.claude.com, "LLM gateway" and "gateway protocol" pages): ``ANTHROPIC_BASE_URL`` at the
gateway and a gateway key in ``x-api-key`` (``ANTHROPIC_API_KEY``) or ``Authorization:
Bearer`` (``ANTHROPIC_AUTH_TOKEN``); model discovery with ``GET /v1/models``; ``?beta=true``
on every call with its ``anthropic-beta`` flags and ``anthropic-version``; token counting;
always-streamed turns with a large cached system prompt, cached tools, extended thinking and
``context_management``; thinking blocks with signatures sent back with tool results; a small
unstreamed Haiku call for the session title. The upstream is the wire-faithful Anthropic fake,
which records what reached it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import RunningGateway
from tests.fakes.anthropic import FakeAnthropic, message
from tests.fakes.server import Reply
from tests.inprocess import start_in_process

KEY = "sk-gateway-claude-code"
SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5-20251001"
BETAS = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27"
SYSTEM = [
    {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.0; cc_entrypoint=cli"},
    {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude."},
    {"type": "text", "text": "# Tone and style\n" + "Be concise and direct. " * 2000,
     "cache_control": {"type": "ephemeral"}},
]
TOOLS = [
    {"name": "Bash", "description": "Run a shell command.", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"},
                                         "timeout": {"type": "number"}},
        "required": ["command"], "additionalProperties": False,
        "$schema": "http://json-schema.org/draft-07/schema#"}},
    {"name": "Read", "description": "Read a file.", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}},
        "required": ["file_path"]}, "cache_control": {"type": "ephemeral"}},
]


def _headers(**extra: str) -> dict[str, str]:
    return {"x-api-key": KEY, "anthropic-version": "2023-06-01", "anthropic-beta": BETAS,
            "anthropic-dangerous-direct-browser-access": "true", "x-app": "cli",
            "user-agent": "claude-cli/2.1.0 (external, cli)",
            "x-claude-code-session-id": "5f0c2a3e-1b7d-4c1e-9a55-0d8a6c3b2f10",
            "content-type": "application/json", **extra}


def _turn(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": "claude-sonnet-4-5", "max_tokens": 32000, "stream": True,
            "temperature": 1, "system": SYSTEM, "tools": TOOLS, "messages": messages,
            "thinking": {"type": "enabled", "budget_tokens": 31999},
            "context_management": {"edits": [{"type": "clear_thinking_20251015",
                                              "keep": "all"}]},
            "metadata": {"user_id": "user_abc_account__session_5f0c2a3e"}}


def _thinking_then_tool(model: str) -> list[dict[str, Any]]:
    """A streamed turn as Anthropic sends it: thinking (deltas, then its signature), a
    tool_use whose input arrives in pieces, usage with cache reads."""
    usage = {"input_tokens": 12, "cache_creation_input_tokens": 0,
             "cache_read_input_tokens": 11800, "output_tokens": 1}
    return [
        {"type": "message_start", "message": {
            "id": "msg_cc1", "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": None, "stop_sequence": None, "usage": usage}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "I should list the files."}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "signature_delta", "signature": "EqQBCkYIBxgCKkA="}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_cc1", "name": "Bash", "input": {}}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '{"command": '}},
        {"type": "content_block_delta", "index": 1,
         "delta": {"type": "input_json_delta", "partial_json": '"ls -la"}'}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 42}, "context_management": {"applied_edits": []}},
        {"type": "message_stop"},
    ]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def gateway(fake: FakeAnthropic) -> Iterator[RunningGateway]:
    gw = start_in_process(f"""
auth: {{api_keys: {{enabled: true, keys: [{KEY}]}}}}
providers:
  anthropic: {{type: anthropic, base_url: "{fake.base_url}", api_key: "{fake.api_key}"}}
models:
  - name: claude-sonnet-4-5
    targets: [{{provider: anthropic, model: {SONNET}}}]
  - name: claude-haiku-4-5
    targets: [{{provider: anthropic, model: {HAIKU}}}]
""")
    yield gw
    assert gw.stop() == 0, gw.logs()


def _events(body: str) -> list[dict[str, Any]]:
    """The data objects of an SSE body, each checked against its ``event:`` name."""
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        data = orjson.loads(lines["data"])
        assert lines["event"] == data["type"]
        out.append(data)
    return out


def test_a_claude_code_session(gateway: RunningGateway, fake: FakeAnthropic) -> None:
    url = gateway.http_url

    # Model discovery: Anthropic's list shape, the gateway's names.
    models = httpx.get(url + "/v1/models?beta=true", headers=_headers())
    assert models.status_code == 200
    listed = models.json()
    assert {"claude-sonnet-4-5", "claude-haiku-4-5"} <= {m["id"] for m in listed["data"]}
    assert {m["type"] for m in listed["data"]} == {"model"} and listed["has_more"] is False

    # Token counting before the turn: the upstream's own count.
    count_body = {"model": "claude-sonnet-4-5", "system": SYSTEM, "tools": TOOLS,
                  "messages": [{"role": "user", "content": "list the files"}]}
    counted = httpx.post(url + "/v1/messages/count_tokens?beta=true",
                         headers=_headers(**{"anthropic-beta": BETAS + ",token-counting"}),
                         json=count_body)
    assert counted.status_code == 200, counted.text
    sent = fake.requests[-1]
    assert counted.json() == {"input_tokens": len(sent.body) // 10}
    assert sent.json == {**count_body, "model": SONNET}
    assert sent.headers["anthropic-beta"] == BETAS + ",token-counting"

    # Turn one, streamed: thinking with its signature, then a tool call.
    fake.enqueue(Reply(events=_thinking_then_tool(SONNET)))
    first = _turn([{"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>context</system-reminder>"},
        {"type": "text", "text": "list the files", "cache_control": {"type": "ephemeral"}}]}])
    answer = httpx.post(url + "/v1/messages?beta=true", headers=_headers(), json=first,
                        timeout=20)
    assert answer.status_code == 200, answer.text
    assert _events(answer.text) == _thinking_then_tool(SONNET)
    sent = fake.requests[-1]
    assert sent.json == {**first, "model": SONNET}
    assert (sent.path, sent.query) == ("/v1/messages", {})  # the beta query stays here
    assert sent.headers["anthropic-beta"] == BETAS
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["x-api-key"] == fake.api_key

    # Turn two: the thinking block and its signature go back with the tool result.
    second = _turn([*first["messages"],
                    {"role": "assistant", "content": [
                        {"type": "thinking", "thinking": "I should list the files.",
                         "signature": "EqQBCkYIBxgCKkA="},
                        {"type": "tool_use", "id": "toolu_cc1", "name": "Bash",
                         "input": {"command": "ls -la"}}]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "toolu_cc1",
                         "content": "README.md\nsrc\n", "is_error": False}]}])
    answer = httpx.post(url + "/v1/messages?beta=true",
                        headers=_headers(**{"x-api-key": "", "authorization": f"Bearer {KEY}"}),
                        json=second, timeout=20)
    assert answer.status_code == 200, answer.text
    events = _events(answer.text)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert fake.requests[-1].json == {**second, "model": SONNET}

    # The session title: a small unstreamed Haiku call.
    fake.enqueue(Reply(json=message(HAIKU, [{"type": "text", "text": "List files"}])))
    title = httpx.post(url + "/v1/messages?beta=true", headers=_headers(), json={
        "model": "claude-haiku-4-5", "max_tokens": 512, "temperature": 0,
        "system": [{"type": "text", "text": "Summarize this coding conversation."}],
        "messages": [{"role": "user", "content": "list the files"}]}, timeout=20)
    assert title.status_code == 200, title.text
    assert title.json()["content"] == [{"type": "text", "text": "List files"}]
    assert fake.requests[-1].json["model"] == HAIKU
