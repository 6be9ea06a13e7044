from llmgateway.v1 import budgets_pb2 as _budgets_pb2
from llmgateway.v1 import chat_pb2 as _chat_pb2
from llmgateway.v1 import embeddings_pb2 as _embeddings_pb2
from llmgateway.v1 import messages_pb2 as _messages_pb2
from llmgateway.v1 import models_pb2 as _models_pb2
from llmgateway.v1 import responses_pb2 as _responses_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateChatCompletionRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: _chat_pb2.ChatRequest
    def __init__(self, request: _Optional[_Union[_chat_pb2.ChatRequest, _Mapping]] = ...) -> None: ...

class CreateChatCompletionResponse(_message.Message):
    __slots__ = ("completion",)
    COMPLETION_FIELD_NUMBER: _ClassVar[int]
    completion: _chat_pb2.ChatCompletion
    def __init__(self, completion: _Optional[_Union[_chat_pb2.ChatCompletion, _Mapping]] = ...) -> None: ...

class StreamChatCompletionRequest(_message.Message):
    __slots__ = ("request", "include_usage")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_USAGE_FIELD_NUMBER: _ClassVar[int]
    request: _chat_pb2.ChatRequest
    include_usage: bool
    def __init__(self, request: _Optional[_Union[_chat_pb2.ChatRequest, _Mapping]] = ..., include_usage: _Optional[bool] = ...) -> None: ...

class StreamChatCompletionResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _chat_pb2.ChatCompletionChunk
    def __init__(self, chunk: _Optional[_Union[_chat_pb2.ChatCompletionChunk, _Mapping]] = ...) -> None: ...

class CreateEmbeddingsRequest(_message.Message):
    __slots__ = ("model", "inputs", "dimensions", "user")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUTS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    model: str
    inputs: _containers.RepeatedScalarFieldContainer[str]
    dimensions: int
    user: str
    def __init__(self, model: _Optional[str] = ..., inputs: _Optional[_Iterable[str]] = ..., dimensions: _Optional[int] = ..., user: _Optional[str] = ...) -> None: ...

class CreateEmbeddingsResponse(_message.Message):
    __slots__ = ("model", "embeddings", "usage", "gateway")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    model: str
    embeddings: _containers.RepeatedCompositeFieldContainer[_embeddings_pb2.Embedding]
    usage: _chat_pb2.Usage
    gateway: _chat_pb2.GatewayInfo
    def __init__(self, model: _Optional[str] = ..., embeddings: _Optional[_Iterable[_Union[_embeddings_pb2.Embedding, _Mapping]]] = ..., usage: _Optional[_Union[_chat_pb2.Usage, _Mapping]] = ..., gateway: _Optional[_Union[_chat_pb2.GatewayInfo, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_models_pb2.Model]
    def __init__(self, models: _Optional[_Iterable[_Union[_models_pb2.Model, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _models_pb2.Model
    def __init__(self, model: _Optional[_Union[_models_pb2.Model, _Mapping]] = ...) -> None: ...

class GetUsageRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetUsageResponse(_message.Message):
    __slots__ = ("tenant_id", "period_start", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "monthly_budget_usd", "budget_used_ratio", "budget_period", "budgets")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USED_RATIO_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    BUDGETS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    period_start: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    monthly_budget_usd: float
    budget_used_ratio: float
    budget_period: _budgets_pb2.BudgetPeriod
    budgets: _containers.RepeatedCompositeFieldContainer[_budgets_pb2.BudgetUsage]
    def __init__(self, tenant_id: _Optional[str] = ..., period_start: _Optional[int] = ..., requests: _Optional[int] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., monthly_budget_usd: _Optional[float] = ..., budget_used_ratio: _Optional[float] = ..., budget_period: _Optional[_Union[_budgets_pb2.BudgetPeriod, str]] = ..., budgets: _Optional[_Iterable[_Union[_budgets_pb2.BudgetUsage, _Mapping]]] = ...) -> None: ...

class ResponseRequest(_message.Message):
    __slots__ = ("model", "input", "instructions", "tools", "tool_choice", "temperature", "top_p", "max_output_tokens", "text_format", "store", "metadata", "previous_response_id", "parallel_tool_calls", "user", "extra_json")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    TOOLS_FIELD_NUMBER: _ClassVar[int]
    TOOL_CHOICE_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TOP_P_FIELD_NUMBER: _ClassVar[int]
    MAX_OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    TEXT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    PARALLEL_TOOL_CALLS_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    EXTRA_JSON_FIELD_NUMBER: _ClassVar[int]
    model: str
    input: _containers.RepeatedCompositeFieldContainer[_chat_pb2.ChatMessage]
    instructions: str
    tools: _containers.RepeatedCompositeFieldContainer[_chat_pb2.Tool]
    tool_choice: _chat_pb2.ToolChoice
    temperature: float
    top_p: float
    max_output_tokens: int
    text_format: _chat_pb2.ResponseFormat
    store: bool
    metadata: _containers.ScalarMap[str, str]
    previous_response_id: str
    parallel_tool_calls: bool
    user: str
    extra_json: str
    def __init__(self, model: _Optional[str] = ..., input: _Optional[_Iterable[_Union[_chat_pb2.ChatMessage, _Mapping]]] = ..., instructions: _Optional[str] = ..., tools: _Optional[_Iterable[_Union[_chat_pb2.Tool, _Mapping]]] = ..., tool_choice: _Optional[_Union[_chat_pb2.ToolChoice, _Mapping]] = ..., temperature: _Optional[float] = ..., top_p: _Optional[float] = ..., max_output_tokens: _Optional[int] = ..., text_format: _Optional[_Union[_chat_pb2.ResponseFormat, _Mapping]] = ..., store: _Optional[bool] = ..., metadata: _Optional[_Mapping[str, str]] = ..., previous_response_id: _Optional[str] = ..., parallel_tool_calls: _Optional[bool] = ..., user: _Optional[str] = ..., extra_json: _Optional[str] = ...) -> None: ...

class CreateResponseRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ResponseRequest
    def __init__(self, request: _Optional[_Union[ResponseRequest, _Mapping]] = ...) -> None: ...

class CreateResponseResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _responses_pb2.Response
    def __init__(self, response: _Optional[_Union[_responses_pb2.Response, _Mapping]] = ...) -> None: ...

class StreamResponseRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ResponseRequest
    def __init__(self, request: _Optional[_Union[ResponseRequest, _Mapping]] = ...) -> None: ...

class StreamResponseResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _responses_pb2.ResponseEvent
    def __init__(self, event: _Optional[_Union[_responses_pb2.ResponseEvent, _Mapping]] = ...) -> None: ...

class GetResponseRequest(_message.Message):
    __slots__ = ("response_id",)
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    def __init__(self, response_id: _Optional[str] = ...) -> None: ...

class GetResponseResponse(_message.Message):
    __slots__ = ("response",)
    RESPONSE_FIELD_NUMBER: _ClassVar[int]
    response: _responses_pb2.Response
    def __init__(self, response: _Optional[_Union[_responses_pb2.Response, _Mapping]] = ...) -> None: ...

class DeleteResponseRequest(_message.Message):
    __slots__ = ("response_id",)
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    def __init__(self, response_id: _Optional[str] = ...) -> None: ...

class DeleteResponseResponse(_message.Message):
    __slots__ = ("response_id", "deleted")
    RESPONSE_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    response_id: str
    deleted: bool
    def __init__(self, response_id: _Optional[str] = ..., deleted: _Optional[bool] = ...) -> None: ...

class CreateMessageRequest(_message.Message):
    __slots__ = ("request", "anthropic_version", "anthropic_beta")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_BETA_FIELD_NUMBER: _ClassVar[int]
    request: _messages_pb2.MessagesRequest
    anthropic_version: str
    anthropic_beta: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[_messages_pb2.MessagesRequest, _Mapping]] = ..., anthropic_version: _Optional[str] = ..., anthropic_beta: _Optional[_Iterable[str]] = ...) -> None: ...

class CreateMessageResponse(_message.Message):
    __slots__ = ("message", "gateway")
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    message: _messages_pb2.AssistantMessage
    gateway: _chat_pb2.GatewayInfo
    def __init__(self, message: _Optional[_Union[_messages_pb2.AssistantMessage, _Mapping]] = ..., gateway: _Optional[_Union[_chat_pb2.GatewayInfo, _Mapping]] = ...) -> None: ...

class StreamMessageRequest(_message.Message):
    __slots__ = ("request", "anthropic_version", "anthropic_beta")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_BETA_FIELD_NUMBER: _ClassVar[int]
    request: _messages_pb2.MessagesRequest
    anthropic_version: str
    anthropic_beta: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[_messages_pb2.MessagesRequest, _Mapping]] = ..., anthropic_version: _Optional[str] = ..., anthropic_beta: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamMessageResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _messages_pb2.MessageStreamEvent
    def __init__(self, event: _Optional[_Union[_messages_pb2.MessageStreamEvent, _Mapping]] = ...) -> None: ...

class CountMessageTokensRequest(_message.Message):
    __slots__ = ("request", "anthropic_version", "anthropic_beta")
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_VERSION_FIELD_NUMBER: _ClassVar[int]
    ANTHROPIC_BETA_FIELD_NUMBER: _ClassVar[int]
    request: _messages_pb2.MessagesRequest
    anthropic_version: str
    anthropic_beta: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, request: _Optional[_Union[_messages_pb2.MessagesRequest, _Mapping]] = ..., anthropic_version: _Optional[str] = ..., anthropic_beta: _Optional[_Iterable[str]] = ...) -> None: ...

class CountMessageTokensResponse(_message.Message):
    __slots__ = ("input_tokens", "estimated")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    estimated: bool
    def __init__(self, input_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ...) -> None: ...
