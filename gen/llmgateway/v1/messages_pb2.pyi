from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CacheControl(_message.Message):
    __slots__ = ("type", "ttl", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    ttl: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., ttl: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MediaSource(_message.Message):
    __slots__ = ("type", "media_type", "data", "url", "file_id", "content_json", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FILE_ID_FIELD_NUMBER: _ClassVar[int]
    CONTENT_JSON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    media_type: str
    data: str
    url: str
    file_id: str
    content_json: str
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., media_type: _Optional[str] = ..., data: _Optional[str] = ..., url: _Optional[str] = ..., file_id: _Optional[str] = ..., content_json: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class TextBlock(_message.Message):
    __slots__ = ("text",)
    TEXT_FIELD_NUMBER: _ClassVar[int]
    text: str
    def __init__(self, text: _Optional[str] = ...) -> None: ...

class ImageBlock(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: MediaSource
    def __init__(self, source: _Optional[_Union[MediaSource, _Mapping]] = ...) -> None: ...

class DocumentBlock(_message.Message):
    __slots__ = ("source",)
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    source: MediaSource
    def __init__(self, source: _Optional[_Union[MediaSource, _Mapping]] = ...) -> None: ...

class ToolUseBlock(_message.Message):
    __slots__ = ("id", "name", "input_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    input_json: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., input_json: _Optional[str] = ...) -> None: ...

class ToolResultBlock(_message.Message):
    __slots__ = ("tool_use_id", "text", "content", "is_error")
    TOOL_USE_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    IS_ERROR_FIELD_NUMBER: _ClassVar[int]
    tool_use_id: str
    text: str
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    is_error: bool
    def __init__(self, tool_use_id: _Optional[str] = ..., text: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., is_error: _Optional[bool] = ...) -> None: ...

class ThinkingBlock(_message.Message):
    __slots__ = ("thinking", "signature")
    THINKING_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    thinking: str
    signature: str
    def __init__(self, thinking: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class RedactedThinkingBlock(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: str
    def __init__(self, data: _Optional[str] = ...) -> None: ...

class ContentBlock(_message.Message):
    __slots__ = ("text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking", "other_json", "cache_control", "extra_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DOCUMENT_FIELD_NUMBER: _ClassVar[int]
    TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    TOOL_RESULT_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    REDACTED_THINKING_FIELD_NUMBER: _ClassVar[int]
    OTHER_JSON_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    text: TextBlock
    image: ImageBlock
    document: DocumentBlock
    tool_use: ToolUseBlock
    tool_result: ToolResultBlock
    thinking: ThinkingBlock
    redacted_thinking: RedactedThinkingBlock
    other_json: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, text: _Optional[_Union[TextBlock, _Mapping]] = ..., image: _Optional[_Union[ImageBlock, _Mapping]] = ..., document: _Optional[_Union[DocumentBlock, _Mapping]] = ..., tool_use: _Optional[_Union[ToolUseBlock, _Mapping]] = ..., tool_result: _Optional[_Union[ToolResultBlock, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingBlock, _Mapping]] = ..., redacted_thinking: _Optional[_Union[RedactedThinkingBlock, _Mapping]] = ..., other_json: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class InputMessage(_message.Message):
    __slots__ = ("role", "text", "content", "extra_json")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    role: str
    text: str
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    extra_json: str
    def __init__(self, role: _Optional[str] = ..., text: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageTool(_message.Message):
    __slots__ = ("name", "type", "description", "input_schema_json", "cache_control", "extra_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    INPUT_SCHEMA_JSON_FIELD_NUMBER: _ClassVar[int]
    CACHE_CONTROL_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    description: str
    input_schema_json: str
    cache_control: CacheControl
    extra_json: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., description: _Optional[str] = ..., input_schema_json: _Optional[str] = ..., cache_control: _Optional[_Union[CacheControl, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageToolChoice(_message.Message):
    __slots__ = ("type", "name", "disable_parallel_tool_use", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISABLE_PARALLEL_TOOL_USE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    name: str
    disable_parallel_tool_use: bool
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., name: _Optional[str] = ..., disable_parallel_tool_use: _Optional[bool] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ThinkingConfig(_message.Message):
    __slots__ = ("type", "budget_tokens", "extra_json")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    type: str
    budget_tokens: int
    extra_json: str
    def __init__(self, type: _Optional[str] = ..., budget_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageMetadata(_message.Message):
    __slots__ = ("user_id", "extra_json")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    extra_json: str
    def __init__(self, user_id: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessagesRequest(_message.Message):
    __slots__ = ("model", "max_tokens", "system_text", "system", "messages", "tools", "tool_choice", "stop_sequences", "temperature", "top_p", "top_k", "metadata", "thinking", "extra_json", "has_tools")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MAX_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_TEXT_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCES_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    HAS_TOOLS_FIELD_NUMBER: _ClassVar[int]
    model: str
    max_tokens: int
    system_text: str
    system: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    messages: _containers.RepeatedCompositeFieldContainer[InputMessage]
    tools: _containers.RepeatedCompositeFieldContainer[MessageTool]
    tool_choice: MessageToolChoice
    stop_sequences: _containers.RepeatedScalarFieldContainer[str]
    temperature: float
    top_p: float
    top_k: int
    metadata: MessageMetadata
    thinking: ThinkingConfig
    extra_json: str
    has_tools: bool
    def __init__(self, model: _Optional[str] = ..., max_tokens: _Optional[int] = ..., system_text: _Optional[str] = ..., system: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., messages: _Optional[_Iterable[_Union[InputMessage, _Mapping]]] = ..., tools: _Optional[_Iterable[_Union[MessageTool, _Mapping]]] = ..., tool_choice: _Optional[_Union[MessageToolChoice, _Mapping]] = ..., stop_sequences: _Optional[_Iterable[str]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., top_k: _Optional[int] = ..., metadata: _Optional[_Union[MessageMetadata, _Mapping]] = ..., thinking: _Optional[_Union[ThinkingConfig, _Mapping]] = ..., extra_json: _Optional[str] = ..., has_tools: _Optional[bool] = ...) -> None: ...

class MessageUsage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "extra_json")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_CREATION_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHE_READ_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    extra_json: str
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cache_creation_input_tokens: _Optional[int] = ..., cache_read_input_tokens: _Optional[int] = ..., extra_json: _Optional[str] = ...) -> None: ...

class AssistantMessage(_message.Message):
    __slots__ = ("id", "model", "role", "content", "stop_reason", "stop_sequence", "usage", "extra_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    model: str
    role: str
    content: _containers.RepeatedCompositeFieldContainer[ContentBlock]
    stop_reason: str
    stop_sequence: str
    usage: MessageUsage
    extra_json: str
    def __init__(self, id: _Optional[str] = ..., model: _Optional[str] = ..., role: _Optional[str] = ..., content: _Optional[_Iterable[_Union[ContentBlock, _Mapping]]] = ..., stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., usage: _Optional[_Union[MessageUsage, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockStart(_message.Message):
    __slots__ = ("index", "content_block")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_FIELD_NUMBER: _ClassVar[int]
    index: int
    content_block: ContentBlock
    def __init__(self, index: _Optional[int] = ..., content_block: _Optional[_Union[ContentBlock, _Mapping]] = ...) -> None: ...

class BlockDelta(_message.Message):
    __slots__ = ("text", "partial_json", "thinking", "signature", "other_json", "extra_json")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_JSON_FIELD_NUMBER: _ClassVar[int]
    THINKING_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    OTHER_JSON_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    text: str
    partial_json: str
    thinking: str
    signature: str
    other_json: str
    extra_json: str
    def __init__(self, text: _Optional[str] = ..., partial_json: _Optional[str] = ..., thinking: _Optional[str] = ..., signature: _Optional[str] = ..., other_json: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class ContentBlockDelta(_message.Message):
    __slots__ = ("index", "delta")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    index: int
    delta: BlockDelta
    def __init__(self, index: _Optional[int] = ..., delta: _Optional[_Union[BlockDelta, _Mapping]] = ...) -> None: ...

class ContentBlockStop(_message.Message):
    __slots__ = ("index",)
    INDEX_FIELD_NUMBER: _ClassVar[int]
    index: int
    def __init__(self, index: _Optional[int] = ...) -> None: ...

class MessageDelta(_message.Message):
    __slots__ = ("stop_reason", "stop_sequence", "usage", "extra_json")
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    STOP_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    stop_reason: str
    stop_sequence: str
    usage: MessageUsage
    extra_json: str
    def __init__(self, stop_reason: _Optional[str] = ..., stop_sequence: _Optional[str] = ..., usage: _Optional[_Union[MessageUsage, _Mapping]] = ..., extra_json: _Optional[str] = ...) -> None: ...

class MessageStop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Ping(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StreamError(_message.Message):
    __slots__ = ("type", "message")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class MessageStreamEvent(_message.Message):
    __slots__ = ("message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop", "ping", "error", "other_json")
    MESSAGE_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_START_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_DELTA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_BLOCK_STOP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_DELTA_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_STOP_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OTHER_JSON_FIELD_NUMBER: _ClassVar[int]
    message_start: AssistantMessage
    content_block_start: ContentBlockStart
    content_block_delta: ContentBlockDelta
    content_block_stop: ContentBlockStop
    message_delta: MessageDelta
    message_stop: MessageStop
    ping: Ping
    error: StreamError
    other_json: str
    def __init__(self, message_start: _Optional[_Union[AssistantMessage, _Mapping]] = ..., content_block_start: _Optional[_Union[ContentBlockStart, _Mapping]] = ..., content_block_delta: _Optional[_Union[ContentBlockDelta, _Mapping]] = ..., content_block_stop: _Optional[_Union[ContentBlockStop, _Mapping]] = ..., message_delta: _Optional[_Union[MessageDelta, _Mapping]] = ..., message_stop: _Optional[_Union[MessageStop, _Mapping]] = ..., ping: _Optional[_Union[Ping, _Mapping]] = ..., error: _Optional[_Union[StreamError, _Mapping]] = ..., other_json: _Optional[str] = ...) -> None: ...
