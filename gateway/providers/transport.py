"""The shared transport: one aiohttp session per upstream, and stream framing.

The decoders are pure (bytes in, events out) so they are tested without sockets;
``iter_events`` feeds them from a response body as bytes arrive, with no
buffering beyond one incomplete event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
import orjson

from gateway.providers.base import Framing, SseEvent

__all__ = ["EXCEPTION_EVENT", "EventStreamDecoder", "FrameDecoder", "NdjsonDecoder",
           "SseDecoder", "frame_decoder", "iter_events", "new_session"]

# The ``event`` of an AWS eventstream exception (or error) message: this prefix and the
# exception's type, e.g. ``exception:throttlingException``; its ``data`` is the JSON payload.
EXCEPTION_EVENT = "exception:"


def new_session(max_connections: int) -> aiohttp.ClientSession:
    """A pooled keep-alive session for one upstream; no timeout of its own (calls pass one).

    It keeps no cookies: one session carries every tenant's calls, so a cookie an upstream
    set on one tenant's call must not ride along on the next tenant's (and no jar is
    consulted on every call).
    """
    connector = aiohttp.TCPConnector(
        limit=max_connections,
        limit_per_host=max_connections,
        ttl_dns_cache=300,
        keepalive_timeout=30,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        headers={"User-Agent": "llm-gateway"},
    )


class SseDecoder:
    """Incremental ``text/event-stream`` parser (WHATWG framing, CRLF or LF).

    Example::

        SseDecoder().feed(b"data: {}\\n\\n")  # [SseEvent(data="{}")]
    """

    __slots__ = ("_buffer", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""
        self._skip_lf = False  # the last chunk ended in CR: a leading LF completes that CRLF

    def feed(self, data: bytes) -> list[SseEvent]:
        if self._skip_lf and data.startswith(b"\n"):
            data = data[1:]
        self._skip_lf = False
        if b"\r" in data:
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + data
        events: list[SseEvent] = []
        start = 0
        while (end := buffer.find(b"\n\n", start)) >= 0:
            event = _parse_block(buffer[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self._buffer = buffer[start:]
        return events

    def pending(self) -> bool:
        """True when an incomplete event is buffered (a cut stream, at the end)."""
        return bool(self._buffer.strip())


def _parse_block(block: bytes) -> SseEvent | None:
    data: list[str] = []
    event = ""
    for line in block.decode("utf-8", "replace").split("\n"):
        if not line or line.startswith(":"):
            continue  # blank, or a comment / keep-alive
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            data.append(value)
        elif name == "event":
            event = value
    if not data and not event:
        return None
    return SseEvent(data="\n".join(data), event=event)


class NdjsonDecoder:
    """Incremental newline-delimited JSON framing: one event per non-empty line."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[SseEvent]:
        buffer = self._buffer + data
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        return [SseEvent(data=line.decode("utf-8", "replace")) for line in lines if line.strip()]

    def pending(self) -> bool:
        return bool(self._buffer.strip())


class EventStreamDecoder:
    """AWS eventstream framing (``application/vnd.amazon.eventstream``, Bedrock's streams),
    parsed and CRC-checked by botocore's own ``EventStreamBuffer``.

    An ``event`` message becomes ``SseEvent(data=<payload text>, event=<:event-type>)``; an
    ``exception`` message ``SseEvent(data=<payload>, event="exception:<:exception-type>")``,
    and an ``error`` message the same with ``data`` ``{"message": <:error-message>}`` and its
    ``:error-code`` as the type. botocore is imported here, not at module load: only a
    configured Bedrock provider needs it.

    Example::

        EventStreamDecoder().feed(frame)  # [SseEvent(data='{"role":"assistant"}',
                                          #           event="messageStart")]
    """

    __slots__ = ("_buffer", "_corrupt", "_pending")

    def __init__(self) -> None:
        from botocore.eventstream import EventStreamBuffer, ParserError

        self._buffer = EventStreamBuffer()
        self._corrupt = ParserError
        self._pending = 0  # bytes fed that no whole message has consumed yet

    def feed(self, data: bytes) -> list[SseEvent]:
        self._buffer.add_data(data)
        self._pending += len(data)
        try:
            return self._messages()
        except self._corrupt:  # a bad CRC or length: the body was damaged on the way
            raise aiohttp.ClientPayloadError("a corrupt eventstream frame") from None

    def _messages(self) -> list[SseEvent]:
        events: list[SseEvent] = []
        for message in self._buffer:
            self._pending -= message.prelude.total_length
            headers = message.headers
            kind = headers.get(":message-type")
            payload = bytes(message.payload).decode("utf-8", "replace")
            if kind == "event":
                events.append(SseEvent(data=payload, event=str(headers.get(":event-type", ""))))
            elif kind == "exception":
                events.append(SseEvent(data=payload, event=EXCEPTION_EVENT + str(
                    headers.get(":exception-type", ""))))
            elif kind == "error":
                body = orjson.dumps({"message": str(headers.get(":error-message", ""))})
                events.append(SseEvent(data=body.decode(), event=EXCEPTION_EVENT + str(
                    headers.get(":error-code", ""))))
        return events

    def pending(self) -> bool:
        return self._pending > 0


class FrameDecoder(Protocol):
    """Bytes in as they arrive, whole events out; ``pending`` when bytes of an incomplete
    event are buffered."""

    def feed(self, data: bytes) -> list[SseEvent]: ...

    def pending(self) -> bool: ...


def frame_decoder(framing: Framing) -> FrameDecoder:
    if framing == "sse":
        return SseDecoder()
    if framing == "ndjson":
        return NdjsonDecoder()
    if framing == "eventstream":
        return EventStreamDecoder()
    raise ValueError(f"no decoder for {framing} framing")


async def iter_events(response: aiohttp.ClientResponse, framing: Framing
                      ) -> AsyncIterator[SseEvent]:
    """Yield events as they arrive; a trailing incomplete NDJSON line is yielded too."""
    decoder = frame_decoder(framing)
    async for data in response.content.iter_any():
        for event in decoder.feed(data):
            yield event
    if framing == "ndjson" and decoder.pending():
        for event in decoder.feed(b"\n"):
            yield event
