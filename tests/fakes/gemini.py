"""A fake Gemini API (``/v1beta/models...``), faithful to the wire: ``GenerateContentResponse``
objects, ``streamGenerateContent?alt=sse`` as ``data: {...}\\r\\n\\r\\n`` events with no
terminator (the last event carries ``finishReason``), ``embedContent`` /
``batchEmbedContents``, the model list, and Google's error body
``{"error": {"code", "message", "status", "details"}}``.

A wrong ``x-goog-api-key`` gets what Google sends: 400 INVALID_ARGUMENT with reason
``API_KEY_INVALID``. Unscripted requests get a default answer: ``"Hello from
fake-gemini"`` (or a call of a declared function when ``toolConfig`` mode is ANY).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.fakes.server import FakeServer, Reply

MODELS = ["gemini-2.0-flash", "gemini-2.5-pro", "text-embedding-004"]
USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 7, "totalTokenCount": 18,
         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}]}


def gemini_error(code: int, message: str, status: str, details: list[Any] | None = None,
                 headers: dict[str, str] | None = None) -> Reply:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return Reply(status=code, json={"error": error}, headers=headers or {})


def key_invalid() -> Reply:
    return gemini_error(400, "API key not valid. Please pass a valid API key.",
                        "INVALID_ARGUMENT", [
                            {"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                             "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                             "metadata": {"service": "generativelanguage.googleapis.com"}},
                            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                             "locale": "en-US",
                             "message": "API key not valid. Please pass a valid API key."}])


def candidate(parts: list[dict[str, Any]] | None, finish: str | None = "STOP",
              index: int = 0) -> dict[str, Any]:
    out: dict[str, Any] = {"index": index}
    if parts is not None:
        out["content"] = {"parts": parts, "role": "model"}
    if finish is not None:
        out["finishReason"] = finish
    return out


def response(candidates: list[dict[str, Any]], usage: dict[str, Any] | None = None,
             model: str = "gemini-2.0-flash", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"candidates": candidates, "usageMetadata": usage or USAGE,
                           "modelVersion": model, "responseId": "fakeResponse123", **extra}
    if not candidates:
        del out["candidates"]
    return out


def stream_events(words: list[str], finish: str = "STOP",
                  model: str = "gemini-2.0-flash") -> list[Any]:
    """One event per word; usage grows as Google's does; the last carries finishReason."""
    events = []
    for i, word in enumerate(words):
        last = i == len(words) - 1
        usage = {"promptTokenCount": 11, "candidatesTokenCount": i + 1,
                 "totalTokenCount": 12 + i} if not last else USAGE
        events.append(response([candidate([{"text": word}], finish if last else None)],
                               usage, model))
    return events


class FakeGemini(FakeServer):
    api_key = "AIza-fake-gemini-key"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1beta/models", self.models)
        app.router.add_post("/v1beta/models/{call}", self.call)

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.events is None:
            return await super().play(request, reply)
        # Google frames SSE with CRLF line ends and sends no end marker.
        response_ = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "text/event-stream", **reply.headers})
        await response_.prepare(request)
        for i, item in enumerate(reply.events):
            if reply.cut_after is not None and i >= reply.cut_after:
                await self.cut(request)
                return response_
            data = item if isinstance(item, str) else orjson.dumps(item).decode()
            await response_.write(f"data: {data}\r\n\r\n".encode())
        await response_.write_eof()
        return response_

    async def models(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        if request.headers.get("x-goog-api-key") != self.api_key:
            return await self.play(request, key_invalid())
        return web.json_response({"models": [
            {"name": f"models/{m}", "version": "001", "displayName": m,
             "supportedGenerationMethods": (["embedContent"] if "embedding" in m
                                            else ["generateContent", "countTokens"])}
            for m in MODELS]})

    async def call(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if request.headers.get("x-goog-api-key") != self.api_key:
            return await self.play(request, key_invalid())
        if self.replies:
            return await self.play(request, self.replies.popleft())
        model, _, method = request.match_info["call"].partition(":")
        body = recorded.json
        if method == "embedContent":
            size = body.get("outputDimensionality", 3)
            return web.json_response({"embedding": {"values": [0.5] * size}})
        if method == "batchEmbedContents":
            return web.json_response({"embeddings": [
                {"values": [float(i + 1)] * r.get("outputDimensionality", 3)}
                for i, r in enumerate(body["requests"])]})
        if method not in ("generateContent", "streamGenerateContent"):
            return await self.play(request, gemini_error(
                400, f"Unknown method {method}", "INVALID_ARGUMENT"))
        stream = method == "streamGenerateContent"
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        if body.get("tools") and config.get("mode") == "ANY":
            names = config.get("allowedFunctionNames") or [
                body["tools"][0]["functionDeclarations"][0]["name"]]
            call = {"functionCall": {"name": names[0], "args": {"city": "Paris"}}}
            answer = response([candidate([call])], model=model)
            return await self.play(request, Reply(events=[answer]) if stream
                                   else Reply(json=answer))
        if stream:
            return await self.play(request, Reply(events=stream_events(
                ["Hello", " from", " fake-gemini"], model=model)))
        return await self.play(request, Reply(json=response(
            [candidate([{"text": "Hello from fake-gemini"}])], model=model)))
