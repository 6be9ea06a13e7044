from llmgateway.v1 import chat_pb2 as _chat_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ResponseStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_STATUS_UNSPECIFIED: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_IN_PROGRESS: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_COMPLETED: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_INCOMPLETE: _ClassVar[ResponseStatus]
    RESPONSE_STATUS_FAILED: _ClassVar[ResponseStatus]

class ResponseEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESPONSE_EVENT_TYPE_UNSPECIFIED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_CREATED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_IN_PROGRESS: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_CONTENT_PART_ADDED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DELTA: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DONE: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_CONTENT_PART_DONE: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DELTA: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DONE: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_COMPLETED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_INCOMPLETE: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_FAILED: _ClassVar[ResponseEventType]
    RESPONSE_EVENT_TYPE_ERROR: _ClassVar[ResponseEventType]
RESPONSE_STATUS_UNSPECIFIED: ResponseStatus
RESPONSE_STATUS_IN_PROGRESS: ResponseStatus
RESPONSE_STATUS_COMPLETED: ResponseStatus
RESPONSE_STATUS_INCOMPLETE: ResponseStatus
RESPONSE_STATUS_FAILED: ResponseStatus
RESPONSE_EVENT_TYPE_UNSPECIFIED: ResponseEventType
RESPONSE_EVENT_TYPE_CREATED: ResponseEventType
RESPONSE_EVENT_TYPE_IN_PROGRESS: ResponseEventType
RESPONSE_EVENT_TYPE_OUTPUT_ITEM_ADDED: ResponseEventType
RESPONSE_EVENT_TYPE_CONTENT_PART_ADDED: ResponseEventType
RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DELTA: ResponseEventType
RESPONSE_EVENT_TYPE_OUTPUT_TEXT_DONE: ResponseEventType
RESPONSE_EVENT_TYPE_CONTENT_PART_DONE: ResponseEventType
RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DELTA: ResponseEventType
RESPONSE_EVENT_TYPE_FUNCTION_CALL_ARGUMENTS_DONE: ResponseEventType
RESPONSE_EVENT_TYPE_OUTPUT_ITEM_DONE: ResponseEventType
RESPONSE_EVENT_TYPE_COMPLETED: ResponseEventType
RESPONSE_EVENT_TYPE_INCOMPLETE: ResponseEventType
RESPONSE_EVENT_TYPE_FAILED: ResponseEventType
RESPONSE_EVENT_TYPE_ERROR: ResponseEventType

class ResponseMessage(_message.Message):
    __slots__ = ("id", "text", "refusal")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    REFUSAL_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    refusal: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., refusal: _Optional[str] = ...) -> None: ...

class ResponseFunctionCall(_message.Message):
    __slots__ = ("id", "call_id", "name", "arguments")
    ID_FIELD_NUMBER: _ClassVar[int]
    CALL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    call_id: str
    name: str
    arguments: str
    def __init__(self, id: _Optional[str] = ..., call_id: _Optional[str] = ..., name: _Optional[str] = ..., arguments: _Optional[str] = ...) -> None: ...

class ResponseOutputItem(_message.Message):
    __slots__ = ("message", "function_call")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_CALL_FIELD_NUMBER: _ClassVar[int]
    message: ResponseMessage
    function_call: ResponseFunctionCall
    def __init__(self, message: _Optional[_Union[ResponseMessage, _Mapping]] = ..., function_call: _Optional[_Union[ResponseFunctionCall, _Mapping]] = ...) -> None: ...

class ResponseError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class Response(_message.Message):
    __slots__ = ("id", "created_at", "model", "status", "output", "usage", "previous_response_id", "instructions", "metadata", "store", "error", "incomplete_reason", "tools", "tool_choice", "text_format", "temperature", "top_p", "max_output_tokens", "parallel_tool_calls", "user", "gateway")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    INCOMPLETE_REASON_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    id: str
    created_at: int
    model: str
    status: ResponseStatus
    output: _containers.RepeatedCompositeFieldContainer[ResponseOutputItem]
    usage: _chat_pb2.Usage
    previous_response_id: str
    instructions: str
    metadata: _containers.ScalarMap[str, str]
    store: bool
    error: ResponseError
    incomplete_reason: str
    tools: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Tool]
    tool_choice: _chat_pb2.ToolChoice
    text_format: _chat_pb2.ResponseFormat
    temperature: float
    top_p: float
    max_output_tokens: int
    parallel_tool_calls: bool
    user: str
    gateway: _chat_pb2.GatewayInfo
    def __init__(self, id: _Optional[str] = ..., created_at: _Optional[int] = ..., model: _Optional[str] = ..., status: _Optional[_Union[ResponseStatus, str]] = ..., output: _Optional[_Iterable[_Union[ResponseOutputItem, _Mapping]]] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., previous_response_id: _Optional[str] = ..., instructions: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., store: _Optional[bool] = ..., error: _Optional[_Union[ResponseError, _Mapping]] = ..., incomplete_reason: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[_chat_pb2.Tool, _Mapping]]] = ..., tool_choice: _Optional[_Union[_chat_pb2.ToolChoice, _Mapping]] = ..., text_format: _Optional[_Union[_chat_pb2.ResponseFormat, _Mapping]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_output_tokens: _Optional[int] = ..., parallel_tool_calls: _Optional[bool] = ..., user: _Optional[str] = ..., gateway: _Optional[_Union[_chat_pb2.GatewayInfo, _Mapping]] = ...) -> None: ...

class ResponseEvent(_message.Message):
    __slots__ = ("type", "sequence_number", "response", "output_index", "content_index", "item_id", "item", "delta", "text", "arguments", "error")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_NUMBER_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_INDEX_FIELD_NUMBER: _ClassVar[int]
    ITEM_ID_FIELD_NUMBER: _ClassVar[int]
    ITEM_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    ARGUMENTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    type: ResponseEventType
    sequence_number: int
    response: Response
    output_index: int
    content_index: int
    item_id: str
    item: ResponseOutputItem
    delta: str
    text: str
    arguments: str
    error: ResponseError
    def __init__(self, type: _Optional[_Union[ResponseEventType, str]] = ..., sequence_number: _Optional[int] = ..., response: _Optional[_Union[Response, _Mapping]] = ..., output_index: _Optional[int] = ..., content_index: _Optional[int] = ..., item_id: _Optional[str] = ..., item: _Optional[_Union[ResponseOutputItem, _Mapping]] = ..., delta: _Optional[str] = ..., text: _Optional[str] = ..., arguments: _Optional[str] = ..., error: _Optional[_Union[ResponseError, _Mapping]] = ...) -> None: ...

class StoredResponse(_message.Message):
    __slots__ = ("response", "history", "ancestors", "served_by")
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    ANCESTORS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    response: Response
    history: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    ancestors: _containers.RepeatedScalarFieldContainer[str]
    served_by: str
    def __init__(self, response: _Optional[_Union[Response, _Mapping]] = ..., history: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., ancestors: _Optional[_Iterable[str]] = ..., served_by: _Optional[str] = ...) -> None: ...
