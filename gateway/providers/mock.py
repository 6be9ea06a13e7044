"""The built-in ``mock`` provider: deterministic, offline, for demos, load tests and CI.

It answers with text containing the last user message, reports non-zero usage,
streams word by word, and honours ``latency`` (before answering) and
``chunk_delay`` (between streamed words). With a JSON response format it answers
a JSON object; with ``n`` it returns that many identical choices.

Example::

    mock/echo  "hello there"  ->  "Echo: hello there"
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import struct
import time
from collections.abc import AsyncIterator

import orjson

from gateway.config import ProviderConfig
from gateway.domain import (
    ChatChoice,
    ChatChunk,
    ChatCompletion,
    ChatRequest,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    Embeddings,
    FinishReason,
    Message,
    Usage,
)
from gateway.errors import UpstreamRejectedError

__all__ = ["MockProvider"]

_ids = itertools.count(1)
_EMBEDDING_DIMENSIONS = 16
# Vectors are made here, in the event loop: past this many values in one request the mock
# refuses, as a real upstream bounds its work (2048 inputs of 65536 dimensions would take
# gigabytes and block the loop for minutes).
MAX_EMBEDDING_VALUES = 1 << 20


def _count_words(text: str) -> int:
    return len(text.split())


class MockProvider:
    type = "mock"
    endpoint = ""

    def __init__(self, name: str, config: ProviderConfig):
        self.name = name
        self._latency = float(config.latency)
        self._chunk_delay = float(config.chunk_delay)

    async def aclose(self) -> None:
        return None

    async def list_models(self, *, timeout: float) -> list[str]:
        return ["echo"]

    def _reply(self, request: ChatRequest) -> str:
        last = next((m.text() for m in reversed(request.messages) if m.role == "user"), "")
        fmt = request.response_format
        if fmt is not None and fmt.type in ("json_object", "json_schema"):
            return orjson.dumps({"echo": last}).decode()
        reply = f"Echo: {last}" if last else "Echo:"
        limit = request.output_limit
        if limit is not None:
            reply = " ".join(reply.split()[: max(limit, 1)])
        return reply

    def _usage(self, request: ChatRequest, reply: str, n: int) -> Usage:
        prompt = max(1, sum(_count_words(m.text()) for m in request.messages))
        completion = max(1, _count_words(reply)) * n
        return Usage(prompt_tokens=prompt, completion_tokens=completion,
                     total_tokens=prompt + completion)

    def _finish(self, request: ChatRequest, reply: str) -> FinishReason:
        limit = request.output_limit
        return "length" if limit is not None and _count_words(reply) >= limit else "stop"

    async def chat(self, request: ChatRequest, model: str, *, timeout: float) -> ChatCompletion:
        if self._latency:
            await asyncio.sleep(self._latency)
        reply = self._reply(request)
        n = request.n or 1
        finish = self._finish(request, reply)
        return ChatCompletion(
            id=f"chatcmpl-mock-{next(_ids)}",
            created=int(time.time()),
            model=model,
            choices=[
                ChatChoice(index=i, message=Message(role="assistant", content=reply),
                           finish_reason=finish)
                for i in range(n)
            ],
            usage=self._usage(request, reply, n),
        )

    async def embed(self, request: EmbeddingRequest, model: str, *, timeout: float) -> Embeddings:
        """Deterministic unit vectors derived from a hash of each text."""
        if self._latency:
            await asyncio.sleep(self._latency)
        size = request.dimensions or _EMBEDDING_DIMENSIONS
        if size * len(request.inputs) > MAX_EMBEDDING_VALUES:
            raise UpstreamRejectedError(
                f"the mock provider makes at most {MAX_EMBEDDING_VALUES} embedding values "
                "a request (inputs x dimensions)", provider=self.name, status=400,
                param="dimensions")
        vectors = []
        for text in request.inputs:
            seed = hashlib.sha256(text.encode()).digest()
            raw = b"".join(hashlib.sha256(seed + struct.pack("<I", i)).digest()
                           for i in range((size * 4 + 31) // 32))
            values = [v / 2**31 for v in struct.unpack(f"<{size}i", raw[: size * 4])]
            norm = math.sqrt(sum(v * v for v in values)) or 1.0
            vectors.append([v / norm for v in values])
        tokens = max(1, sum(_count_words(t) for t in request.inputs))
        return Embeddings(model=model, vectors=vectors,
                          usage=Usage(prompt_tokens=tokens, total_tokens=tokens))

    async def stream_chat(
        self, request: ChatRequest, model: str, *, timeout: float, include_usage: bool
    ) -> AsyncIterator[ChatChunk]:
        if self._latency:
            await asyncio.sleep(self._latency)
        reply = self._reply(request)
        n = request.n or 1
        chunk_id, created = f"chatcmpl-mock-{next(_ids)}", int(time.time())

        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatChunk:
            return ChatChunk(id=chunk_id, created=created, model=model, choices=choices,
                             usage=usage)

        yield chunk([ChunkChoice(i, Delta(role="assistant", content="")) for i in range(n)])
        words = reply.split(" ")
        for position, word in enumerate(words):
            if self._chunk_delay:
                await asyncio.sleep(self._chunk_delay)
            text = word if position == 0 else " " + word
            yield chunk([ChunkChoice(i, Delta(content=text)) for i in range(n)])
        finish = self._finish(request, reply)
        yield chunk([ChunkChoice(i, Delta(), finish_reason=finish) for i in range(n)])
        # Always sent, as the HTTP providers do: the core charges it and drops it when
        # the client did not ask for usage.
        yield chunk([], self._usage(request, reply, n))
