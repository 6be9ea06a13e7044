"""The Responses API on the canonical chat path: a response runs as a chat completion.

Pure conversions (request, response, the stored record) and the stream's event machine,
so the servicer keeps only the I/O.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llmgateway.v1 import chat_pb2, gateway_service_pb2, responses_pb2

from gateway.domain import ChatChunk, ChatCompletion, FinishReason, Usage
from gateway.errors import InvalidRequestError

__all__ = ["EventStream", "build_response", "chat_request", "new_response", "stored"]

E = responses_pb2
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


def _check_metadata(metadata: Mapping[str, str]) -> None:
    """The API's bounds: the pairs are stored with the response and echoed in every
    answer and event about it."""
    if len(metadata) > MAX_METADATA_PAIRS:
        raise InvalidRequestError(f"'metadata' holds at most {MAX_METADATA_PAIRS} pairs",
                                  param="metadata")
    for key, value in metadata.items():
        if len(key) > MAX_METADATA_KEY or len(value) > MAX_METADATA_VALUE:
            raise InvalidRequestError(
                f"'metadata' keys hold at most {MAX_METADATA_KEY} characters and values "
                f"{MAX_METADATA_VALUE}", param="metadata")


def chat_request(req: gateway_service_pb2.ResponseRequest,
                 history: Sequence[chat_pb2.ChatMessage]) -> chat_pb2.ChatRequest:
    """The chat request a response runs as: the stored conversation
    (``previous_response_id``), then the new input, with ``instructions`` as a leading
    system message for this response only (validated later with every chat request)."""
    if not req.input and not history:
        raise InvalidRequestError("'input' is required", param="input")
    _check_metadata(req.metadata)
    chat = chat_pb2.ChatRequest(model=req.model, user=req.user, extra_json=req.extra_json)
    if req.instructions:
        chat.messages.add(role=chat_pb2.CHAT_ROLE_SYSTEM, content=req.instructions)
    chat.messages.extend(history)
    chat.messages.extend(req.input)
    chat.tools.extend(req.tools)
    if req.HasField("tool_choice"):
        chat.tool_choice.CopyFrom(req.tool_choice)
    if req.HasField("text_format"):
        chat.response_format.CopyFrom(req.text_format)
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if req.HasField(name):
            setattr(chat, name, getattr(req, name))
    if req.HasField("max_output_tokens"):
        chat.max_completion_tokens = req.max_output_tokens
    return chat


def new_response(req: gateway_service_pb2.ResponseRequest) -> responses_pb2.Response:
    """A response in progress, echoing the request's settings."""
    response = responses_pb2.Response(
        id=_id("resp"), created_at=int(time.time()), model=req.model,
        status=E.RESPONSE_STATUS_IN_PROGRESS, previous_response_id=req.previous_response_id,
        instructions=req.instructions, metadata=req.metadata,
        store=req.store if req.HasField("store") else True, tools=req.tools, user=req.user)
    if req.HasField("tool_choice"):
        response.tool_choice.CopyFrom(req.tool_choice)
    if req.HasField("text_format"):
        response.text_format.CopyFrom(req.text_format)
    for name in ("temperature", "top_p", "max_output_tokens", "parallel_tool_calls"):
        if req.HasField(name):
            setattr(response, name, getattr(req, name))
    return response


def _usage(usage: Usage | None, out: chat_pb2.Usage) -> None:
    if usage is not None:
        out.prompt_tokens = usage.prompt_tokens
        out.completion_tokens = usage.completion_tokens
        out.total_tokens = usage.total_tokens
        out.cached_prompt_tokens = usage.cached_prompt_tokens
        out.reasoning_tokens = usage.reasoning_tokens


def _finish(response: responses_pb2.Response, reason: FinishReason | None) -> None:
    incomplete = _INCOMPLETE.get(reason or "")
    if incomplete:
        response.status = E.RESPONSE_STATUS_INCOMPLETE
        response.incomplete_reason = incomplete
    else:
        response.status = E.RESPONSE_STATUS_COMPLETED


def build_response(response: responses_pb2.Response,
                   completion: ChatCompletion) -> responses_pb2.Response:
    """Fill ``response`` from a completion's first choice: output items ``msg_...`` /
    ``fc_...``, usage, status."""
    if completion.choices:
        choice = completion.choices[0]
        message = choice.message
        if message.content or message.refusal is not None or not message.tool_calls:
            item = response.output.add().message
            item.id = _id("msg")
            item.text = message.content or ""
            if message.refusal is not None:
                item.refusal = message.refusal
        for call in message.tool_calls:
            response.output.add().function_call.CopyFrom(responses_pb2.ResponseFunctionCall(
                id=_id("fc"), call_id=call.id or _id("call"), name=call.name,
                arguments=call.arguments))
        _finish(response, choice.finish_reason)
    else:
        response.status = E.RESPONSE_STATUS_COMPLETED
    _usage(completion.usage, response.usage)
    return response


def _assistant(output: Iterable[responses_pb2.ResponseOutputItem]) -> chat_pb2.ChatMessage:
    message = chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_ASSISTANT)
    texts = []
    for item in output:
        if item.HasField("message"):
            texts.append(item.message.text)
        else:
            call = item.function_call
            message.tool_calls.add(id=call.call_id, name=call.name, arguments=call.arguments)
    if texts or not message.tool_calls:
        message.content = "".join(texts)
    return message


def stored(response: responses_pb2.Response, ancestors: Sequence[str],
           new_input: Sequence[chat_pb2.ChatMessage], served_by: str = "") -> bytes:
    """What the conversation store keeps: the response, the ids of the stored responses
    it continues, its turn (its input and output; the turns before are theirs) and the
    deployment that answered it."""
    record = responses_pb2.StoredResponse(response=response, ancestors=ancestors,
                                          served_by=served_by)
    record.history.extend(new_input)
    record.history.append(_assistant(response.output))
    return bytes(record.SerializeToString())


@dataclass(slots=True)
class _Item:
    index: int
    kind: str  # "message" | "function_call"
    id: str
    text: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""


class EventStream:
    """Chat chunks in, Responses API events out (with ``sequence_number``); one instance
    per stream.

    The sequence: created, in_progress, output_item.added, content_part.added,
    output_text.delta ..., output_text.done, content_part.done, output_item.done,
    function-call argument deltas, and completed (or incomplete / failed).
    """

    def __init__(self, response: responses_pb2.Response):
        self.response = response
        self._sequence = 0
        self._items: list[_Item] = []
        self._text: _Item | None = None
        self._calls: dict[int, _Item] = {}  # chat tool-call index -> item
        self._finish: FinishReason | None = None
        self._usage: Usage | None = None

    def _event(self, kind: int, **fields: object) -> gateway_service_pb2.StreamResponseResponse:
        event = responses_pb2.ResponseEvent(type=kind, sequence_number=self._sequence,  # type: ignore[arg-type]
                                            **fields)  # type: ignore[arg-type]
        self._sequence += 1
        return gateway_service_pb2.StreamResponseResponse(event=event)

    def start(self) -> list[gateway_service_pb2.StreamResponseResponse]:
        return [self._event(E.RESPONSE_EVENT_TYPE_CREATED, response=self.response),
                self._event(E.RESPONSE_EVENT_TYPE_IN_PROGRESS, response=self.response)]

    def _item_proto(self, item: _Item, done: bool) -> responses_pb2.ResponseOutputItem:
        out = responses_pb2.ResponseOutputItem()
        if item.kind == "message":
            out.message.id = item.id
            out.message.text = "".join(item.text) if done else ""
        else:
            out.function_call.CopyFrom(responses_pb2.ResponseFunctionCall(
                id=item.id, call_id=item.call_id, name=item.name,
                arguments="".join(item.text) if done else ""))
        return out

    def feed(self, chunk: ChatChunk) -> list[gateway_service_pb2.StreamResponseResponse]:
        out: list[gateway_service_pb2.StreamResponseResponse] = []
        if chunk.usage is not None:
            self._usage = chunk.usage
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # a response has one output: the first choice
            delta = choice.delta
            if delta.content:
                if self._text is None:
                    self._text = _Item(len(self._items), "message", _id("msg"))
                    self._items.append(self._text)
                    out.append(self._event(E.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED,
                                           output_index=self._text.index,
                                           item=self._item_proto(self._text, False)))
                    out.append(self._event(E.RESPONSE_EVENT_TYPE_CONTENT_PART_ADDED,
                                           output_index=self._text.index, content_index=0,
                                           item_id=self._text.id))
                self._text.text.append(delta.content)
                out.append(self._event(E.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DELTA,
                                       output_index=self._text.index, content_index=0,
                                       item_id=self._text.id, delta=delta.content))
            for call in delta.tool_calls:
                item = self._calls.get(call.index)
                if item is None:
                    item = _Item(len(self._items), "function_call", _id("fc"),
                                 call_id=call.id or _id("call"), name=call.name)
                    self._calls[call.index] = item
                    self._items.append(item)
                    out.append(self._event(E.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED,
                                           output_index=item.index,
                                           item=self._item_proto(item, False)))
                elif call.name and not item.name:
                    item.name = call.name
                if call.arguments:
                    item.text.append(call.arguments)
                    out.append(self._event(E.RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DELTA,
                                           output_index=item.index, item_id=item.id,
                                           delta=call.arguments))
            if choice.finish_reason:
                self._finish = choice.finish_reason
        return out

    def finish(self) -> list[gateway_service_pb2.StreamResponseResponse]:
        """Close every item and complete the response (status from the finish reason)."""
        out: list[gateway_service_pb2.StreamResponseResponse] = []
        response = self.response
        for item in self._items:
            text = "".join(item.text)
            if item.kind == "message":
                out.append(self._event(E.RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DONE,
                                       output_index=item.index, content_index=0,
                                       item_id=item.id, text=text))
                out.append(self._event(E.RESPONSE_EVENT_TYPE_CONTENT_PART_DONE,
                                       output_index=item.index, content_index=0,
                                       item_id=item.id, text=text))
            else:
                out.append(self._event(E.RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DONE,
                                       output_index=item.index, item_id=item.id,
                                       arguments=text))
            done = self._item_proto(item, True)
            response.output.append(done)
            out.append(self._event(E.RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE,
                                   output_index=item.index, item=done))
        _finish(response, self._finish)
        _usage(self._usage, response.usage)
        kind = (E.RESPONSE_EVENT_TYPE_INCOMPLETE
                if response.status == E.RESPONSE_STATUS_INCOMPLETE
                else E.RESPONSE_EVENT_TYPE_COMPLETED)
        out.append(self._event(kind, response=response))
        return out

    def fail(self, code: str, message: str) -> list[gateway_service_pb2.StreamResponseResponse]:
        """The stream broke after it began: an error event, then response.failed."""
        response = self.response
        response.status = E.RESPONSE_STATUS_FAILED
        response.error.CopyFrom(responses_pb2.ResponseError(code=code, message=message))
        for item in self._items:
            response.output.append(self._item_proto(item, True))
        return [self._event(E.RESPONSE_EVENT_TYPE_ERROR, error=response.error),
                self._event(E.RESPONSE_EVENT_TYPE_FAILED, response=response)]
