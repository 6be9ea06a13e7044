"""A fake Anthropic API (``POST /v1/messages``, ``POST /v1/messages/count_tokens``,
``GET /v1/models``), faithful to the wire:
``message`` objects, SSE with named events (``event: message_start`` ... ``event:
message_stop``, a ``ping`` among them), ``tool_use`` blocks streamed as
``input_json_delta`` pieces, a ``request-id`` header on every answer, and Anthropic's
error body ``{"type": "error", "error": {"type", "message"}, "request_id"}``.

It checks what the real API checks first: ``x-api-key`` (401), ``anthropic-version``
and ``max_tokens`` (400), and message roles (only user / assistant).

Unscripted requests get a default answer: ``"Hello from fake-anthropic"``, or a call of
the forced tool (``tool_choice`` any / tool) with input ``{"city": "Paris"}``. A
scripted :class:`Reply` with ``events`` sends each dict as ``event: <its type>`` plus
``data:``; a str is written raw.

Example::

    fake.enqueue(anthropic_error(529, "overloaded_error", "Overloaded"))
    foundry = FakeAnthropic(FOUNDRY_PREFIX, FOUNDRY_KEY_HEADERS)  # Claude in Microsoft Foundry
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import FakeServer, Reply

USAGE = {"input_tokens": 11, "cache_creation_input_tokens": 2, "cache_read_input_tokens": 3,
         "output_tokens": 7}
_ids = itertools.count(1)
# Claude in Microsoft Foundry: the API under /anthropic, the key in either header (the
# anthropic SDK's AnthropicFoundry client sends both).
FOUNDRY_PREFIX = "/anthropic"
FOUNDRY_KEY_HEADERS = ("x-api-key", "api-key")


def anthropic_error(status: int, type_: str, message: str,
                    headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers=headers or {}, json={
        "type": "error", "error": {"type": type_, "message": message},
        "request_id": "req_fake_error"})


def message(model: str, content: list[dict[str, Any]], stop_reason: str = "end_turn",
            usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": None,
            "usage": usage or USAGE}


def text_events(model: str, words: list[str], stop_reason: str = "end_turn",
                usage: dict[str, Any] | None = None) -> list[Any]:
    """The event sequence of a streamed text answer."""
    usage = usage or USAGE
    events: list[Any] = [
        _message_start(model, usage),
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                      "text": ""}},
        {"type": "ping"},
    ]
    events += [{"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": w}} for w in words]
    events += [{"type": "content_block_stop", "index": 0}, *_message_end(stop_reason, usage)]
    return events


def tool_events(model: str, name: str, pieces: list[str], tool_id: str = "toolu_fake1",
                stop_reason: str = "tool_use") -> list[Any]:
    """The event sequence of a streamed tool call whose input arrives in ``pieces``."""
    events: list[Any] = [
        _message_start(model, USAGE),
        {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": tool_id, "name": name, "input": {}}},
    ]
    events += [{"type": "content_block_delta", "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": p}} for p in pieces]
    events += [{"type": "content_block_stop", "index": 0}, *_message_end(stop_reason, USAGE)]
    return events


def _message_start(model: str, usage: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_fake123", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1}}}


def _message_end(stop_reason: str, usage: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason,
                                                "stop_sequence": None},
             "usage": {"output_tokens": usage["output_tokens"]}},
            {"type": "message_stop"}]


class FakeAnthropic(FakeServer):
    """``prefix`` puts the API under a path (Foundry's ``/anthropic``); a request is
    authenticated when any of ``key_headers`` holds :attr:`api_key`."""

    api_key = "sk-ant-fake-upstream-key"

    def __init__(self, prefix: str = "", key_headers: tuple[str, ...] = ("x-api-key",)) -> None:
        super().__init__()
        self.prefix = prefix
        self.key_headers = key_headers

    def routes(self, app: web.Application) -> None:
        app.router.add_post(f"{self.prefix}/v1/messages", self.messages)
        app.router.add_post(f"{self.prefix}/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get(f"{self.prefix}/v1/models", self.models)

    def _authorized(self, request: web.Request) -> bool:
        return any(request.headers.get(h) == self.api_key for h in self.key_headers)

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        reply = replace(reply, headers={"request-id": f"req_fake{next(_ids):06d}",
                                        **reply.headers})
        if reply.events is None or reply.reset:
            return await super().play(request, reply)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        response = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
            **reply.headers})
        await response.prepare(request)
        for i, item in enumerate(reply.events):
            if reply.cut_after is not None and i >= reply.cut_after:
                await self.cut(request)  # no message_stop
                return response
            frame = item if isinstance(item, str) else (
                f"event: {item['type']}\ndata: {orjson.dumps(item).decode()}\n\n")
            await response.write(frame.encode())
        await response.write_eof()
        return response

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if not self._authorized(request):
            return await self.play(request, anthropic_error(
                401, "authentication_error", "invalid x-api-key"))
        return await self.play(request, Reply(json={
            "data": [{"type": "model", "id": "claude-3-5-haiku-20241022",
                      "display_name": "Claude Haiku 3.5", "created_at": "2024-10-22T00:00:00Z"}],
            "has_more": False, "first_id": "claude-3-5-haiku-20241022",
            "last_id": "claude-3-5-haiku-20241022"}))

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        """``{"input_tokens": N}``; N is the body's length over 10 (what a test can predict),
        and the real API's refusal of ``max_tokens`` and ``stream`` in this request."""
        recorded = await self.record(request)
        if not self._authorized(request):
            return await self.play(request, anthropic_error(
                401, "authentication_error", "invalid x-api-key"))
        body = recorded.json
        for key in ("max_tokens", "stream"):
            if key in body:
                return await self.play(request, anthropic_error(
                    400, "invalid_request_error", f"{key}: Extra inputs are not permitted"))
        if self.replies:
            return await self.play(request, self.replies.popleft())
        return await self.play(request, Reply(json={"input_tokens": len(recorded.body) // 10}))

    async def messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if not self._authorized(request):
            return await self.play(request, anthropic_error(
                401, "authentication_error", "invalid x-api-key"))
        if not request.headers.get("anthropic-version"):
            return await self.play(request, anthropic_error(
                400, "invalid_request_error", "anthropic-version: header is required"))
        body = recorded.json
        if "max_tokens" not in body:
            return await self.play(request, anthropic_error(
                400, "invalid_request_error", "max_tokens: Field required"))
        for i, turn in enumerate(body.get("messages") or ()):
            if turn.get("role") not in ("user", "assistant"):
                return await self.play(request, anthropic_error(
                    400, "invalid_request_error",
                    f"messages.{i}.role: Input should be 'user' or 'assistant'"))
        if self.replies:
            return await self.play(request, self.replies.popleft())
        model = body["model"]
        choice = body.get("tool_choice") or {}
        if body.get("tools") and choice.get("type") in ("any", "tool"):
            name = choice.get("name") or body["tools"][0]["name"]
            if body.get("stream"):
                return await self.play(request, Reply(events=tool_events(
                    model, name, ["", '{"city"', ': "Paris"}'])))
            return await self.play(request, Reply(json=message(model, [
                {"type": "tool_use", "id": "toolu_fake1", "name": name,
                 "input": {"city": "Paris"}}], "tool_use")))
        if body.get("stream"):
            return await self.play(request, Reply(events=text_events(
                model, ["Hello", " from", " fake-anthropic"])))
        return await self.play(request, Reply(json=message(model, [
            {"type": "text", "text": "Hello from fake-anthropic"}])))
