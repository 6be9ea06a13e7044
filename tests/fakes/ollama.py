"""A fake Ollama server (``/api/chat``, ``/api/embed``, ``/api/tags``), faithful to the wire:
streams unless ``"stream": false``, one JSON object per line as ``application/x-ndjson``,
a final object with ``done: true``, ``done_reason`` and the eval counts, tool-call
arguments as objects, and ``{"error": "..."}`` bodies (404 for a model not pulled).

Unscripted chats answer ``"Hello from fake-ollama"``; with tools and a user message last
they call the first tool; ``format`` gets a JSON answer; ``options.num_predict`` cuts the
answer to that many words with ``done_reason: "length"``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.fakes.server import FakeServer, Reply

CREATED_AT = "2024-07-22T20:33:28.123648Z"
PROMPT_EVAL_COUNT = 26


def ollama_error(status: int, message: str) -> Reply:
    return Reply(status=status, json={"error": message})


def chat_line(model: str, content: str = "", *, tool_calls: list[dict[str, Any]] | None = None,
              done: bool = False, done_reason: str = "stop",
              eval_count: int = 0) -> dict[str, Any]:
    """One ``/api/chat`` object: a streamed piece, or (``done``) the last or only one."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    out: dict[str, Any] = {"model": model, "created_at": CREATED_AT, "message": message,
                           "done": done}
    if done:
        out.update({
            "done_reason": done_reason, "total_duration": 885095291, "load_duration": 3753500,
            "prompt_eval_count": PROMPT_EVAL_COUNT, "prompt_eval_duration": 328493000,
            "eval_count": eval_count, "eval_duration": 552222000,
        })
    return out


def stream_lines(model: str, words: list[str], done_reason: str = "stop") -> list[Any]:
    lines: list[Any] = [chat_line(model, w) for w in words]
    lines.append(chat_line(model, done=True, done_reason=done_reason, eval_count=len(words)))
    return lines


class FakeOllama(FakeServer):
    models = ("llama3.2:latest", "llava:latest", "nomic-embed-text:latest")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.root)
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/embed", self.embed)
        app.router.add_get("/api/tags", self.tags)

    def _known(self, model: str) -> bool:
        return model in self.models or f"{model}:latest" in self.models

    async def root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="Ollama is running")

    async def tags(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.json_response({"models": [
            {"name": m, "model": m, "modified_at": CREATED_AT, "size": 2019393189,
             "digest": "a80c4f17acd5" + str(i), "details": {
                 "parent_model": "", "format": "gguf", "family": "llama",
                 "families": ["llama"], "parameter_size": "3.2B",
                 "quantization_level": "Q4_K_M"}}
            for i, m in enumerate(self.models)]})

    async def embed(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        body = recorded.json
        if not self._known(body["model"]):
            return await self.play(request, ollama_error(
                404, f'model "{body["model"]}" not found, try pulling it first'))
        texts = [body["input"]] if isinstance(body["input"], str) else body["input"]
        size = body.get("dimensions") or 4
        return web.json_response({
            "model": body["model"],
            "embeddings": [[0.25 * (i + 1)] * size for i in range(len(texts))],
            "total_duration": 14143917, "load_duration": 1019500,
            "prompt_eval_count": 8,
        })

    async def chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        body = recorded.json
        model = body["model"]
        if not self._known(model):
            return await self.play(request, ollama_error(
                404, f'model "{model}" not found, try pulling it first'))
        stream = body.get("stream", True)
        messages = body.get("messages") or [{}]
        if body.get("tools") and messages[-1].get("role") == "user":
            call = {"function": {"name": body["tools"][0]["function"]["name"],
                                 "arguments": {"city": "Paris", "days": 2}}}
            if stream:
                lines = [chat_line(model, tool_calls=[call]),
                         chat_line(model, done=True, eval_count=12)]
                return await self.play(request, Reply(lines=lines))
            return await self.play(request, Reply(json=chat_line(
                model, tool_calls=[call], done=True, eval_count=12)))
        if body.get("format") is not None:
            words = ['{"answer":', " 42}"]
        elif any(m.get("images") for m in messages):
            words = ["I", " see", " an", " image"]
        elif messages[-1].get("role") == "tool":
            words = ["It", " is", " sunny"]
        else:
            words = ["Hello", " from", " fake-ollama"]
        done_reason = "stop"
        limit = (body.get("options") or {}).get("num_predict")
        if limit is not None and limit < len(words):
            words, done_reason = words[:limit], "length"
        if stream:
            return await self.play(request, Reply(lines=stream_lines(model, words, done_reason)))
        return await self.play(request, Reply(json=chat_line(
            model, "".join(words), done=True, done_reason=done_reason, eval_count=len(words))))
