"""The first-message-or-error rule, written once for every stream (gateway/facade/calls.py
``Core.stream``): a failure before the first message is an ordinary HTTP error (a stream
that ends empty is a 502); after it, the stream ends with an error event in the API's shape
(chat's ``data: {"error": ...}``, the Responses API's numbered ``error`` event); a bug ends
it with a bare 500 event; the core's call is cancelled when the answer is done."""

from __future__ import annotations

from typing import Any

import grpc
import orjson
import pytest
from grpc import aio
from llmgateway.v1 import gateway_service_pb2, responses_pb2

from gateway.clientip import TrustedProxies
from gateway.facade import handlers
from gateway.facade.calls import Core
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Request, StreamAnswer


def failure(code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE) -> aio.AioRpcError:
    return aio.AioRpcError(code, initial_metadata=aio.Metadata(),
                           trailing_metadata=aio.Metadata(), details="it broke")


class Call:
    """A server-streaming call that yields ``items`` (messages, or errors to raise)."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.cancelled = False

    async def read(self) -> Any:
        if not self.items:
            return aio.EOF
        item = self.items.pop(0)
        if isinstance(item, BaseException):
            raise item
        return item

    async def initial_metadata(self) -> aio.Metadata:
        return aio.Metadata(("x-ratelimit-remaining", "9"))

    def cancel(self) -> bool:
        self.cancelled = True
        return True


class Channel:
    def unary_unary(self, *_: Any, **__: Any) -> None:
        return None

    def unary_stream(self, *_: Any, **__: Any) -> None:
        return None


def chunk(text: str) -> gateway_service_pb2.StreamChatCompletionResponse:
    message = gateway_service_pb2.StreamChatCompletionResponse()
    message.chunk.id = "c1"
    message.chunk.choices.add().delta.content = text
    return message


def event(sequence: int) -> gateway_service_pb2.StreamResponseResponse:
    message = gateway_service_pb2.StreamResponseResponse()
    message.event.type = responses_pb2.RESPONSE_EVENT_TYPE_IN_PROGRESS
    message.event.sequence_number = sequence
    message.event.response.id = "resp_1"
    return message


async def answer(items: list[Any], framer: Any) -> tuple[StreamAnswer, Call]:
    call = Call(items)
    core = Core(Channel(), TrustedProxies(()))  # type: ignore[arg-type]
    request = Request("POST", {"x-request-id": "req-1"})
    return await core.stream(lambda *_, **__: call, None, request, framer), call


async def body(stream: StreamAnswer) -> bytes:
    events = stream.events
    try:
        return b"".join([part async for part in events]) + (events.tail or b"")
    finally:
        events.close()


CHAT = handlers._CHAT_FRAMES[False]


async def test_a_failure_before_the_first_message_is_an_http_error() -> None:
    with pytest.raises(ApiError) as caught:
        await answer([failure()], CHAT)
    assert caught.value.status == 503
    with pytest.raises(ApiError) as caught:
        await answer([], CHAT)
    assert (caught.value.status, caught.value.code) == (502, "empty_stream")


async def test_a_chat_stream_ends_done_or_with_an_error_event() -> None:
    stream, call = await answer([chunk("a"), chunk("b")], CHAT)
    assert stream.headers == {"X-Request-ID": "req-1", "x-ratelimit-remaining": "9"}
    sent = await body(stream)
    assert sent.count(b"data: {") == 2 and sent.endswith(b"data: [DONE]\n\n")
    assert call.cancelled
    stream, call = await answer([chunk("a"), failure(grpc.StatusCode.DEADLINE_EXCEEDED)], CHAT)
    last = (await body(stream)).split(b"\n\n")[-2]
    assert orjson.loads(last.removeprefix(b"data: "))["error"]["type"] == "timeout_error"
    assert call.cancelled


async def test_a_responses_stream_ends_with_a_numbered_error_event() -> None:
    stream, _ = await answer([event(0), event(1), failure()], handlers._ResponseFrames())
    name, data = (await body(stream)).split(b"\n\n")[-2].split(b"\n")
    assert name == b"event: error"
    assert orjson.loads(data.removeprefix(b"data: "))["sequence_number"] == 2


async def test_a_bug_mid_stream_ends_it_with_a_bare_500(caplog: pytest.LogCaptureFixture
                                                        ) -> None:
    stream, _ = await answer([chunk("a"), "not a message"], CHAT)
    last = (await body(stream)).split(b"\n\n")[-2]
    assert orjson.loads(last.removeprefix(b"data: "))["error"] == {
        "message": "internal error", "type": "server_error", "param": None, "code": None}
    assert "unhandled error in a stream" in caplog.text


async def test_an_answer_never_read_still_stops_the_call() -> None:
    stream, call = await answer([chunk("a")], CHAT)
    stream.events.close()
    assert call.cancelled
