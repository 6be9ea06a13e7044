"""The OpenAI API's operations, one handler each: chat, embeddings, models, responses, usage.

A handler reads the request's JSON through the translators (:mod:`gateway.facade.translate`,
:mod:`gateway.facade.responses`), makes one call on the core (:class:`Core`), and writes
the answer; it never sees Quart or ASGI. Streams are framed here, as the API frames them.

Example::

    api = OpenAIHandlers(core)
    answer = await api.list_models(Request("GET", {"authorization": "Bearer sk-..."}))
"""

from __future__ import annotations

from typing import Any

import orjson
from llmgateway.v1 import gateway_service_pb2

from gateway.facade import responses, translate
from gateway.facade.anthropic import models_json, wants_anthropic
from gateway.facade.calls import Core
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Answer, Request, StreamAnswer

__all__ = ["OpenAIHandlers"]


class _ChatFrames:
    """Chat chunks as ``data: {chunk}`` events, ending ``data: [DONE]``; a failure after
    the first chunk ends the stream with ``data: {"error": ...}``."""

    __slots__ = ("include_usage",)

    def __init__(self, include_usage: bool) -> None:
        self.include_usage = include_usage

    def event(self, message: Any) -> bytes:
        return b"data: " + orjson.dumps(translate.chunk_to_json(message.chunk,
                                                                self.include_usage)) + b"\n\n"

    def end(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, error: ApiError) -> bytes:
        return b"data: " + error.body() + b"\n\n"


_CHAT_FRAMES = {False: _ChatFrames(False), True: _ChatFrames(True)}  # stateless: shared


def _named(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _ResponseFrames:
    """Responses events as named SSE events; a failure after the first ends the stream
    with the API's ``error`` event, numbered after the last event sent."""

    __slots__ = ("sequence",)

    def __init__(self) -> None:
        self.sequence = 0

    def event(self, message: Any) -> bytes:
        self.sequence = message.event.sequence_number
        return _named(*responses.event_json(message.event))

    def end(self) -> bytes:
        return b""

    def error(self, error: ApiError) -> bytes:
        return _named("error", {"type": "error", "sequence_number": self.sequence + 1,
                                "code": error.code or error.type, "message": error.message,
                                "param": error.param})


def _json(body: Any, headers: dict[str, str]) -> Answer:
    return Answer(200, orjson.dumps(body), headers)


class OpenAIHandlers:
    """The ``/v1`` operations of the OpenAI API, over the core's ``GatewayService``."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._stub = core.gateway

    async def chat(self, request: Request) -> Answer | StreamAnswer:
        """``POST /v1/chat/completions``: a completion, or its chunks as SSE."""
        chat, stream, include_usage = translate.chat_request_to_proto(
            translate.parse_json_body(request.body))
        if stream:
            return await self._core.stream(
                self._stub.StreamChatCompletion, gateway_service_pb2.StreamChatCompletionRequest(
                    request=chat, include_usage=include_usage),
                request, _CHAT_FRAMES[include_usage], timed=True)
        response, headers = await self._core.call(
            self._stub.CreateChatCompletion,
            gateway_service_pb2.CreateChatCompletionRequest(request=chat), request, timed=True)
        return Answer(200, orjson.dumps(translate.completion_to_json(response.completion)),
                      headers)

    async def embeddings(self, request: Request) -> Answer:
        """``POST /v1/embeddings``."""
        embed, encoding = translate.embeddings_request_to_proto(
            translate.parse_json_body(request.body))
        response, headers = await self._core.call(self._stub.CreateEmbeddings, embed, request,
                                                  timed=True)
        return _json(translate.embeddings_to_json(response, encoding), headers)

    async def list_models(self, request: Request) -> Answer:
        """``GET /v1/models``: OpenAI's list, or Anthropic's for a client that sends
        ``anthropic-version``."""
        response, headers = await self._core.call(
            self._stub.ListModels, gateway_service_pb2.ListModelsRequest(), request)
        if wants_anthropic(request):
            return _json(models_json(response.models), headers)
        return _json({"object": "list",
                      "data": [translate.model_to_json(m) for m in response.models]}, headers)

    async def get_model(self, request: Request) -> Answer:
        """``GET /v1/models/{model_id}``."""
        response, headers = await self._core.call(
            self._stub.GetModel,
            gateway_service_pb2.GetModelRequest(model_id=request.params["model_id"]), request)
        return _json(translate.model_to_json(response.model), headers)

    async def create_response(self, request: Request) -> Answer | StreamAnswer:
        """``POST /v1/responses``: a response, or its events as named SSE events."""
        req, stream = responses.request_to_proto(translate.parse_json_body(request.body))
        if stream:
            return await self._core.stream(
                self._stub.StreamResponse, gateway_service_pb2.StreamResponseRequest(
                    request=req), request, _ResponseFrames(), timed=True)
        answer, headers = await self._core.call(
            self._stub.CreateResponse, gateway_service_pb2.CreateResponseRequest(request=req),
            request, timed=True)
        return _json(responses.response_json(answer.response), headers)

    async def get_response(self, request: Request) -> Answer:
        """``GET /v1/responses/{response_id}``."""
        answer, headers = await self._core.call(
            self._stub.GetResponse, gateway_service_pb2.GetResponseRequest(
                response_id=request.params["response_id"]), request)
        return _json(responses.response_json(answer.response), headers)

    async def delete_response(self, request: Request) -> Answer:
        """``DELETE /v1/responses/{response_id}``."""
        answer, headers = await self._core.call(
            self._stub.DeleteResponse, gateway_service_pb2.DeleteResponseRequest(
                response_id=request.params["response_id"]), request)
        return _json({"id": answer.response_id, "object": "response",
                      "deleted": answer.deleted}, headers)

    async def usage(self, request: Request) -> Answer:
        """``GET /v1/usage``: the caller's usage this month, against its budget."""
        response, headers = await self._core.call(
            self._stub.GetUsage, gateway_service_pb2.GetUsageRequest(), request)
        return _json(translate.usage_to_json(response), headers)
