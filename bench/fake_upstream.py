"""A fast fake OpenAI-compatible and Anthropic upstream for benchmarks.

Serves ``POST /v1/chat/completions`` (JSON, or SSE with ``"stream": true``),
Anthropic's ``POST /v1/messages`` (a ``message`` object, or with ``"stream": true`` its
named SSE events, ``message_start`` to ``message_stop``) and ``GET /v1/models`` over
HTTP/1.1 keep-alive, pipelining included, on a raw asyncio Protocol: httptools parses when
it is installed, a small hand-written parser otherwise. Both APIs answer the same text in
the same number of text chunks (14 streamed words).

Example::

    python bench/fake_upstream.py --port 0 --chunk-delay-ms 5   # prints "LISTENING <port>"
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import itertools
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import orjson

try:
    httptools: Any = importlib.import_module("httptools")
except ImportError:
    httptools = None


# 14 content chunks; with the role chunk and the finish chunk a stream has 16.
WORDS = (
    "Hello",
    *(" " + w for w in "from the fake upstream: this is a benchmark answer".split()),
    " streamed",
    " word",
    " by",
    " word",
)
CONTENT = "".join(WORDS)
_ids = itertools.count(1)


def _completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"chatcmpl-bench{next(_ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": CONTENT, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25},
        }
    )


def _stream_events(model: str, include_usage: bool) -> list[bytes]:
    """The SSE events of one streamed completion, each already a complete ``data:`` line."""
    base = {
        "id": f"chatcmpl-bench{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_bench",
    }
    deltas: list[tuple[dict[str, Any], str | None]] = [({"role": "assistant", "content": ""}, None)]
    deltas += [({"content": w}, None) for w in WORDS]
    deltas.append(({}, "stop"))
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "logprobs": None, "finish_reason": f}]}
        for d, f in deltas
    ]
    if include_usage:
        usage = {"prompt_tokens": 9, "completion_tokens": 16, "total_tokens": 25}
        chunks.append({**base, "choices": [], "usage": usage})
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


# Anthropic's Messages API: the same answer, as a ``message`` object or its event sequence.
MESSAGES_USAGE = {
    "input_tokens": 9,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 0,
    "output_tokens": 16,
}


def _message(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": f"msg_bench{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": CONTENT}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": MESSAGES_USAGE,
        }
    )


def _named(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


# Everything after ``message_start`` is the same in every stream: encoded once. One text
# block whose ``content_block_delta`` events carry the chat stream's words (as many text
# chunks as the chat stream's content chunks), a ``ping`` as the API sends one early on.
_TAIL_EVENTS: list[dict[str, Any]] = [
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "ping"},
    *(
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}
        for w in WORDS
    ),
    {"type": "content_block_stop", "index": 0},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": None},
        "usage": {"output_tokens": MESSAGES_USAGE["output_tokens"]},
    },
    {"type": "message_stop"},
]
MESSAGE_EVENTS_TAIL = [_named(e) for e in _TAIL_EVENTS]


def _message_events(model: str) -> list[bytes]:
    """The named SSE events of one streamed message, each complete (``event:`` + ``data:``)."""
    start = {
        "type": "message_start",
        "message": {
            "id": f"msg_bench{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {**MESSAGES_USAGE, "output_tokens": 1},
        },
    }
    return [_named(start), *MESSAGE_EVENTS_TAIL]


MODELS = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "bench"}
            for m in ("gpt-4o-mini", "gpt-4o")
        ],
    }
)


def _error(message: str, code: str | None) -> bytes:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return orjson.dumps({"error": error})


NOT_FOUND = _error("not found", "not_found")
BAD_REQUEST = _error("invalid JSON body", None)
MESSAGES_BAD_REQUEST = orjson.dumps(
    {"type": "error", "error": {"type": "invalid_request_error", "message": "invalid JSON body"}}
)


def _response(status: bytes, body: bytes, keep_alive: bool) -> bytes:
    conn = b"keep-alive" if keep_alive else b"close"
    return (
        b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: %s\r\n\r\n%s" % (status, len(body), conn, body)
    )


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)


class _Request:
    __slots__ = ("method", "path", "body", "keep_alive")

    def __init__(self, method: bytes, path: bytes, body: bytes, keep_alive: bool) -> None:
        self.method, self.path, self.body, self.keep_alive = method, path, body, keep_alive


class _HandParser:
    """Minimal HTTP/1.1 request parser: Content-Length bodies only (what clients send)."""

    def __init__(self, sink: deque[_Request]) -> None:
        self.buf = bytearray()
        self.sink = sink

    def feed_data(self, data: bytes) -> None:
        self.buf += data
        buf = self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).lower()
            length = 0
            pos = head.find(b"\r\ncontent-length:")
            if pos >= 0:
                eol = head.find(b"\r\n", pos + 2)
                length = int(head[pos + 17 : eol if eol >= 0 else len(head)])
            if len(buf) < end + 4 + length:
                return
            line_end = head.find(b"\r\n")
            method, path, version = bytes(buf[: line_end if line_end >= 0 else end]).split(b" ", 2)
            keep_alive = b"\r\nconnection: close" not in head and (
                version != b"HTTP/1.0" or b"\r\nconnection: keep-alive" in head
            )
            self.sink.append(
                _Request(method, path, bytes(buf[end + 4 : end + 4 + length]), keep_alive)
            )
            del buf[: end + 4 + length]


class _HttptoolsSink:
    """httptools callbacks collecting complete requests."""

    def __init__(self, sink: deque[_Request]) -> None:
        self.sink = sink
        self.url = b""
        self.body: list[bytes] = []
        self.parser: Any = None

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        p = self.parser
        self.sink.append(
            _Request(p.get_method(), self.url, b"".join(self.body), p.should_keep_alive())
        )
        self.url, self.body = b"", []


class UpstreamProtocol(asyncio.Protocol):
    """One connection: parse requests, answer them in order."""

    chunk_delay = 0.0

    def __init__(self) -> None:
        self.pending: deque[_Request] = deque()
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a delayed stream is being written; later requests wait
        self.parser: Any
        if httptools is not None:
            cb = _HttptoolsSink(self.pending)
            self.parser = cb.parser = httptools.HttpRequestParser(cb)
        else:
            self.parser = _HandParser(self.pending)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except Exception:  # malformed request: answer 400 and close
            if self.transport is not None:
                self.transport.write(_response(b"400 Bad Request", BAD_REQUEST, False))
                self.transport.close()
            return
        if not self.busy:
            self._drain()

    def _drain(self) -> None:
        out: list[bytes] = []
        while self.pending and self.transport is not None:
            req = self.pending.popleft()
            events = self._handle(req, out)
            if events is not None and self.chunk_delay > 0:
                self.transport.writelines(out)
                self.busy = True
                asyncio.get_running_loop().create_task(self._slow_stream(events, req.keep_alive))
                return
            if events is not None:
                out.append(STREAM_HEAD + b"".join(_chunk(e) for e in events) + b"0\r\n\r\n")
            if not req.keep_alive:
                self.transport.writelines(out)
                self.transport.close()
                return
        if out and self.transport is not None:
            self.transport.writelines(out)

    def _handle(self, req: _Request, out: list[bytes]) -> list[bytes] | None:
        """Answers ``req`` into ``out``, or returns the SSE events when it asks to stream."""
        path = req.path.split(b"?", 1)[0]
        if req.method == b"POST" and path == b"/v1/chat/completions":
            try:
                body = orjson.loads(req.body)
                model = str(body.get("model") or "gpt-4o-mini")
            except (ValueError, AttributeError):
                out.append(_response(b"400 Bad Request", BAD_REQUEST, req.keep_alive))
                return None
            if body.get("stream"):
                opts = body.get("stream_options") or {}
                return _stream_events(model, bool(opts.get("include_usage")))
            out.append(_response(b"200 OK", _completion(model), req.keep_alive))
        elif req.method == b"POST" and path == b"/v1/messages":
            try:
                body = orjson.loads(req.body)
                model = str(body.get("model") or "claude-3-5-haiku-20241022")
            except (ValueError, AttributeError):
                out.append(_response(b"400 Bad Request", MESSAGES_BAD_REQUEST, req.keep_alive))
                return None
            if body.get("stream"):
                return _message_events(model)
            out.append(_response(b"200 OK", _message(model), req.keep_alive))
        elif req.method == b"GET" and path == b"/v1/models":
            out.append(_response(b"200 OK", MODELS, req.keep_alive))
        else:
            out.append(_response(b"404 Not Found", NOT_FOUND, req.keep_alive))
        return None

    async def _slow_stream(self, events: list[bytes], keep_alive: bool) -> None:
        try:
            for i, event in enumerate(events):
                if self.transport is None:
                    return
                head = STREAM_HEAD if i == 0 else b""
                self.transport.write(head + _chunk(event))
                await asyncio.sleep(self.chunk_delay)
            if self.transport is not None:
                self.transport.write(b"0\r\n\r\n")
                if not keep_alive:
                    self.transport.close()
        finally:
            self.busy = False
        if self.pending:
            self._drain()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(UpstreamProtocol, host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    async with server:
        await server.serve_forever()


def uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when it is installed, else None (the default loop)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=0.0,
        help="sleep between SSE chunks (default 0: the whole stream in one write)",
    )
    args = ap.parse_args()
    UpstreamProtocol.chunk_delay = args.chunk_delay_ms / 1000
    try:
        with asyncio.Runner(loop_factory=uvloop_factory()) as runner:
            runner.run(serve(args.host, args.port))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
