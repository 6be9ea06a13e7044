"""A fake OpenAI API (``/v1/chat/completions``, ``/v1/models``), faithful to the wire:
``chat.completion`` and ``chat.completion.chunk`` objects, SSE ending ``data: [DONE]``,
``stream_options.include_usage``, tool calls, and OpenAI's error body shape.

Unscripted requests get a default answer: ``"Hello from fake-openai"`` (or a call
of the first tool when ``tool_choice`` requires one).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, Reply


def openai_error(status: int, message: str, type_: str, code: str | None = None,
                 param: str | None = None, headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, headers=headers or {},
                 json={"error": {"message": message, "type": type_, "param": param,
                                 "code": code}})


def completion(model: str, content: str | None = "Hello from fake-openai",
               tool_calls: list[dict[str, Any]] | None = None,
               finish_reason: str = "stop") -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-fake123", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "message": message, "logprobs": None,
                     "finish_reason": finish_reason}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18,
                  "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
                  "completion_tokens_details": {"reasoning_tokens": 0}},
    }


def chunk(model: str, delta: dict[str, Any], finish_reason: str | None = None,
          usage: dict[str, Any] | None = None, include_usage: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": "chatcmpl-fake123", "object": "chat.completion.chunk",
        "created": int(time.time()), "model": model, "system_fingerprint": "fp_fake",
        "choices": [{"index": 0, "delta": delta, "logprobs": None,
                     "finish_reason": finish_reason}] if usage is None else [],
    }
    if include_usage:
        out["usage"] = usage
    return out


def stream_events(model: str, words: list[str], include_usage: bool) -> list[Any]:
    events: list[Any] = [chunk(model, {"role": "assistant", "content": ""},
                               include_usage=include_usage)]
    events += [chunk(model, {"content": w}, include_usage=include_usage) for w in words]
    events.append(chunk(model, {}, "stop", include_usage=include_usage))
    if include_usage:
        events.append(chunk(model, {}, usage={"prompt_tokens": 11, "completion_tokens": 7,
                                              "total_tokens": 18}, include_usage=True))
    events.append("[DONE]")
    return events


class FakeOpenAI(FakeServer):
    """``keys``: the keys it accepts (default: :attr:`api_key`); a key put in
    :attr:`revoked` is answered 401. :meth:`enqueue_for` scripts the answers to one key,
    ahead of the shared :attr:`replies`."""

    api_key = "sk-fake-upstream-key"

    def __init__(self, keys: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.keys = keys
        self.revoked: set[str] = set()
        self.by_key: dict[str, deque[Reply]] = {}
        self.delay = 0.0  # seconds every chat answer waits before it starts
        self.abandoned = 0  # delayed requests whose client had closed the connection

    def accepts(self, key: str) -> bool:
        return key not in self.revoked and (key in self.keys if self.keys
                                            else key == self.api_key)

    def enqueue_for(self, key: str, *replies: Reply) -> None:
        self.by_key.setdefault(key, deque()).extend(replies)

    def reset(self) -> None:
        super().reset()
        self.by_key.clear()

    def _scripted(self, request: web.Request) -> Reply | None:
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if self.by_key.get(key):
            return self.by_key[key].popleft()
        return self.replies.popleft() if self.replies else None

    def provider(self, name: str = "up", models: str = "m") -> str:
        """The config's line for an ``openai`` provider at this fake (under ``providers:``)."""
        return (f'  {name}: {{type: openai, base_url: "{self.base_url}/v1", '
                f'api_key: "{self.api_key}", models: [{models}]}}')

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        app.router.add_post("/v1/embeddings", self.embeddings)

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        body = recorded.json
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        size = body.get("dimensions", 3)
        # Out of order on purpose: clients must sort by index.
        data = [{"object": "embedding", "index": i, "embedding": [float(i + 1)] * size}
                for i in reversed(range(len(texts)))]
        return web.json_response({"object": "list", "data": data, "model": body["model"],
                                  "usage": {"prompt_tokens": 4, "total_tokens": 4}})

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.json_response({"object": "list", "data": [
            {"id": "gpt-4o-mini", "object": "model", "created": 1, "owned_by": "openai"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not self.accepts(key):
            return await self.play(request, openai_error(
                401, "Incorrect API key provided: sk-***. You can find your API key at ...",
                "invalid_request_error", "invalid_api_key"))
        if self.delay:
            await asyncio.sleep(self.delay)
            if request.transport is None or request.transport.is_closing():
                self.abandoned += 1  # the client gave up (and closed its connection)
                return web.Response()
        if (scripted := self._scripted(request)) is not None:
            return await self.play(request, scripted)
        body = recorded.json
        model = body.get("model", "gpt-4o-mini")
        choice = body.get("tool_choice")
        if body.get("tools") and (choice == "required" or isinstance(choice, dict)):
            name = (choice["function"]["name"] if isinstance(choice, dict)
                    else body["tools"][0]["function"]["name"])
            call = {"id": "call_fake1", "type": "function",
                    "function": {"name": name, "arguments": '{"city": "Paris"}'}}
            if body.get("stream"):
                events = [
                    chunk(model, {"role": "assistant", "content": None, "tool_calls": [
                        {"index": 0, "id": "call_fake1", "type": "function",
                         "function": {"name": name, "arguments": ""}}]}),
                    *(chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": a}}]})
                      for a in ('{"city"', ': "Paris"}')),
                    chunk(model, {}, "tool_calls"), "[DONE]",
                ]
                return await self.play(request, Reply(events=events))
            return await self.play(request, Reply(json=completion(
                model, None, tool_calls=[call], finish_reason="tool_calls")))
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return await self.play(request, Reply(events=stream_events(
                model, ["Hello", " from", " fake-openai"], include_usage)))
        return await self.play(request, Reply(json=completion(model)))
