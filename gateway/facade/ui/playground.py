"""The playground: a chat with any model, as the signed-in admin (its requests are the
``admin`` account's in the request log and the usage charts).

The page's form posts to ``/ui/playground``, which answers the page with the whole reply
(no script needed). ``ui.js`` sends the same form to ``/ui/playground/stream`` instead,
which calls the core's ``StreamChatCompletion`` and relays the answer as it arrives, as
server-sent events of JSON: ``{"text": ...}`` per piece, then ``{"done": true, "usage":
...}`` or ``{"error": ...}``. A refusal is an ``error`` event in a 200 (the script shows
it in the page; a 4xx would be an error in the browser's console).

Example::

    data: {"text":"Echo:"}

    data: {"done":true,"usage":{"prompt_tokens":1,"completion_tokens":2}}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson
from llmgateway.v1 import chat_pb2
from llmgateway.v1 import gateway_service_pb2 as gw
from quart import Response

from gateway.facade.errors import ApiError
from gateway.facade.exchange import SSE, SSE_HEADERS, EventSource, event_bytes
from gateway.facade.ui.client import explain
from gateway.facade.ui.visit import Visit

__all__ = ["MAX_MESSAGE", "playground", "playground_stream"]

MAX_MESSAGE = 32_000  # characters of one message
_MAX_MODEL = 256


async def playground(visit: Visit) -> Response:
    """The page; a POST (no script) gets the whole answer on it."""
    models = await _models(visit)
    values = {"model": visit.form.get("model", "") or (models[0] if models else ""),
              "message": visit.form.get("message", "")}
    answer, problem, request_id = "", "", ""
    if visit.form:
        try:
            request = _chat(visit.form)
            reply = await visit.api.call(visit.api.gateway.CreateChatCompletion,
                                         gw.CreateChatCompletionRequest(request=request))
        except ApiError as exc:
            if exc.status == 401:
                raise
            problem = explain(exc)
        else:
            choices = reply.completion.choices
            answer = choices[0].message.content if choices else ""
            request_id = reply.completion.gateway.request_id
    return await visit.render("playground.html", title="Playground", models=models,
                              values=values, answer=answer, problem=problem,
                              request_id=request_id, max_message=MAX_MESSAGE)


async def playground_stream(visit: Visit) -> Response:
    """The answer as it arrives (server-sent events), for ``ui.js``."""
    headers: dict[str, str] = {}
    events: EventSource
    try:
        answer = await visit.api.stream(
            visit.api.gateway.StreamChatCompletion,
            gw.StreamChatCompletionRequest(request=_chat(visit.form), include_usage=True),
            _Framer())
    except ApiError as exc:
        if exc.status == 401:  # the key no longer opens the admin API: the guard signs out
            raise
        events = _Failed(_Framer().error(exc))
    else:
        events, headers = answer.events, answer.headers
    response = Response(event_bytes(events), content_type=SSE, headers={**SSE_HEADERS, **headers})
    response.timeout = None
    return response


def _chat(form: Mapping[str, str]) -> chat_pb2.ChatRequest:
    model = form.get("model", "").strip()
    message = form.get("message", "")
    if not model or len(model) > _MAX_MODEL:
        raise ApiError(400, "Pick a model.", param="model")
    if not message.strip():
        raise ApiError(400, "Type a message to send.", param="message")
    if len(message) > MAX_MESSAGE:
        raise ApiError(400, f"The message is longer than {MAX_MESSAGE:,} characters.",
                       param="message")
    return chat_pb2.ChatRequest(model=model, messages=[chat_pb2.ChatMessage(
        role=chat_pb2.CHAT_ROLE_USER, content=message)])


async def _models(visit: Visit) -> list[str]:
    """Every routable model, aliases first (the gateway's model list)."""
    try:
        answer = await visit.api.call(visit.api.gateway.ListModels, gw.ListModelsRequest())
    except ApiError:
        return []
    return sorted((m.id for m in answer.models), key=lambda name: ("/" in name, name))


def _event(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class _Framer:
    """The core's chunks as the playground's events (the
    :class:`~gateway.facade.calls.Framer` of this page)."""

    def __init__(self) -> None:
        self._usage: dict[str, int] = {}
        self._request_id = ""

    def event(self, message: gw.StreamChatCompletionResponse) -> bytes:
        chunk = message.chunk
        if chunk.HasField("usage"):
            self._usage = {"prompt_tokens": chunk.usage.prompt_tokens,
                           "completion_tokens": chunk.usage.completion_tokens}
        text = "".join(c.delta.content for c in chunk.choices if c.index == 0)
        return _event({"text": text}) if text else b""

    def end(self) -> bytes:
        return _event({"done": True, "usage": self._usage})

    def error(self, error: ApiError) -> bytes:
        return _event({"error": explain(error)})


class _Failed:
    """A stream refused before it began: only its error event."""

    def __init__(self, tail: bytes) -> None:
        self.tail: bytes | None = tail

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._none()

    async def _none(self) -> AsyncIterator[bytes]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    def close(self) -> None:
        return None


