"""Anthropic's Messages API: ``POST /v1/messages`` and ``/v1/messages/count_tokens``, one
handler each over the core's ``CreateMessage``, ``StreamMessage`` and
``CountMessageTokens``, with errors in Anthropic's shape.

The JSON is read into the typed request once (:mod:`gateway.messages_json`, which keeps
every field it does not model) and written back once; the ``anthropic-version`` and
``anthropic-beta`` headers travel in the request for Anthropic-family upstreams. A
``?beta=true`` query (the SDKs' beta namespace) changes nothing.

Example::

    api = AnthropicHandlers(core)
    Route("POST", "/v1/messages", api.messages, lean=True, errors=anthropic_error)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from llmgateway.v1 import gateway_service_pb2, models_pb2

from gateway import messages_json
from gateway.facade.calls import Core
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Answer, Request, StreamAnswer
from gateway.facade.translate import parse_json_body

__all__ = ["AnthropicHandlers", "anthropic_error", "error_type", "models_json", "wants_anthropic"]

# HTTP status -> Anthropic's error type; another 4xx is invalid_request_error, as the API's
# own documentation says of the 4xx it does not list.
_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
          403: "permission_error", 404: "not_found_error", 413: "request_too_large",
          429: "rate_limit_error", 503: "overloaded_error", 504: "timeout_error",
          529: "overloaded_error"}


def error_type(error: ApiError) -> tuple[int, str]:
    """The status and Anthropic error type of one of the facade's errors. An overloaded
    upstream is 529 ``overloaded_error``, as Anthropic answers; a draining or unavailable
    gateway 503 ``overloaded_error``; other upstream failures 502 ``api_error``."""
    status = error.status
    if error.code == "overloaded":
        status = 529
    kind = _TYPES.get(status)
    if kind is None:
        kind = "invalid_request_error" if 400 <= status < 500 else "api_error"
    return status, kind


def _error_json(error: ApiError, kind: str) -> dict[str, Any]:
    """Anthropic's error object has no ``param``: the field leads the message, as in the
    API's own (``messages.0.content.1: ...``)."""
    message = error.message
    if error.param and not message.startswith(error.param):
        message = f"{error.param}: {message}"
    return {"type": "error", "error": {"type": kind, "message": message}}


def anthropic_error(error: ApiError, request_id: str) -> Answer:
    """Anthropic's shape: ``{"type": "error", "error": {"type", "message"}, "request_id"}``,
    with ``retry-after`` and the limit headers the error carries, and the request id in
    ``request-id`` (Anthropic's header) and ``X-Request-ID``."""
    status, kind = error_type(error)
    headers = error.headers()
    headers["request-id"] = headers["X-Request-ID"] = request_id
    body = _error_json(error, kind)
    body["request_id"] = request_id
    return Answer(status, orjson.dumps(body), headers)


def wants_anthropic(request: Request) -> bool:
    """Whether the client speaks Anthropic's API (its SDKs and Claude Code always send
    ``anthropic-version``): ``GET /v1/models`` then answers in Anthropic's shape."""
    return "anthropic-version" in request.headers


def models_json(models: Any) -> dict[str, Any]:
    """Anthropic's model list (``type``, ``id``, ``display_name``, ``created_at``), one
    page with everything, as Claude Code's model discovery reads it."""
    data = [_model_json(m) for m in models]
    return {"data": data, "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}


def _model_json(model: models_pb2.Model) -> dict[str, Any]:
    created = datetime.fromtimestamp(model.created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "model", "id": model.id, "display_name": model.id, "created_at": created}


class _MessageFrames:
    """Stream events as named SSE events (``event: <type>``); a failure after the first
    ends the stream with Anthropic's ``error`` event."""

    __slots__ = ()

    def event(self, message: Any) -> bytes:
        name, data = messages_json.event_to_json(message.event)
        return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def end(self) -> bytes:
        return b""

    def error(self, error: ApiError) -> bytes:
        return b"event: error\ndata: " + orjson.dumps(
            _error_json(error, error_type(error)[1])) + b"\n\n"


_FRAMES = _MessageFrames()


def _betas(request: Request) -> list[str]:
    raw = request.headers.get("anthropic-beta", "")
    return [flag.strip() for flag in raw.split(",") if flag.strip()]


def _read(request: Request, *, count_tokens: bool = False) -> tuple[Any, bool]:
    try:
        return messages_json.request_from_json(parse_json_body(request.body),
                                               count_tokens=count_tokens)
    except messages_json.MessagesJsonError as exc:
        raise ApiError(400, exc.message, param=exc.param) from None


class AnthropicHandlers:
    """The Messages API's operations, over the core's ``GatewayService``."""

    def __init__(self, core: Core) -> None:
        self._core = core
        self._stub = core.gateway

    async def messages(self, request: Request) -> Answer | StreamAnswer:
        """``POST /v1/messages``: a ``message``, or its events as named SSE events."""
        req, stream = _read(request)
        version = request.headers.get("anthropic-version", "")
        betas = _betas(request)
        if stream:
            answer = await self._core.stream(
                self._stub.StreamMessage, gateway_service_pb2.StreamMessageRequest(
                    request=req, anthropic_version=version, anthropic_beta=betas),
                request, _FRAMES, timed=True)
            answer.headers["request-id"] = request.request_id
            return answer
        response, headers = await self._core.call(
            self._stub.CreateMessage, gateway_service_pb2.CreateMessageRequest(
                request=req, anthropic_version=version, anthropic_beta=betas),
            request, timed=True)
        headers["request-id"] = request.request_id
        return Answer(200, orjson.dumps(messages_json.message_to_json(response.message)),
                      headers)

    async def count_tokens(self, request: Request) -> Answer:
        """``POST /v1/messages/count_tokens``: ``{"input_tokens": N}``."""
        req, _ = _read(request, count_tokens=True)
        response, headers = await self._core.call(
            self._stub.CountMessageTokens, gateway_service_pb2.CountMessageTokensRequest(
                request=req, anthropic_version=request.headers.get("anthropic-version", ""),
                anthropic_beta=_betas(request)),
            request, timed=True)
        headers["request-id"] = request.request_id
        if response.estimated:
            headers["x-gateway-token-count"] = "estimated"
        return Answer(200, orjson.dumps({"input_tokens": response.input_tokens}), headers)
