import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CircuitBreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_BREAKER_STATE_UNSPECIFIED: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_CLOSED: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_OPEN: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_HALF_OPEN: _ClassVar[CircuitBreakerState]
CIRCUIT_BREAKER_STATE_UNSPECIFIED: CircuitBreakerState
CIRCUIT_BREAKER_STATE_CLOSED: CircuitBreakerState
CIRCUIT_BREAKER_STATE_OPEN: CircuitBreakerState
CIRCUIT_BREAKER_STATE_HALF_OPEN: CircuitBreakerState

class ProviderInfo(_message.Message):
    __slots__ = ("name", "type", "base_url", "models", "has_api_key")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    HAS_API_KEY_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    base_url: str
    models: _containers.RepeatedScalarFieldContainer[str]
    has_api_key: bool
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., base_url: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., has_api_key: _Optional[bool] = ...) -> None: ...

class ListProvidersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListProvidersResponse(_message.Message):
    __slots__ = ("providers",)
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    providers: _containers.RepeatedCompositeFieldContainer[ProviderInfo]
    def __init__(self, providers: _Optional[_Iterable[_Union[ProviderInfo, _Mapping]]] = ...) -> None: ...

class CircuitBreaker(_message.Message):
    __slots__ = ("provider", "state", "requests", "failures", "consecutive_failures", "opened_at", "distributed")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    OPENED_AT_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTED_FIELD_NUMBER: _ClassVar[int]
    provider: str
    state: CircuitBreakerState
    requests: int
    failures: int
    consecutive_failures: int
    opened_at: _timestamp_pb2.Timestamp
    distributed: bool
    def __init__(self, provider: _Optional[str] = ..., state: _Optional[_Union[CircuitBreakerState, str]] = ..., requests: _Optional[int] = ..., failures: _Optional[int] = ..., consecutive_failures: _Optional[int] = ..., opened_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., distributed: _Optional[bool] = ...) -> None: ...

class ListCircuitBreakersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCircuitBreakersResponse(_message.Message):
    __slots__ = ("circuit_breakers",)
    CIRCUIT_BREAKERS_FIELD_NUMBER: _ClassVar[int]
    circuit_breakers: _containers.RepeatedCompositeFieldContainer[CircuitBreaker]
    def __init__(self, circuit_breakers: _Optional[_Iterable[_Union[CircuitBreaker, _Mapping]]] = ...) -> None: ...

class ResetCircuitBreakerRequest(_message.Message):
    __slots__ = ("provider",)
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    provider: str
    def __init__(self, provider: _Optional[str] = ...) -> None: ...

class ResetCircuitBreakerResponse(_message.Message):
    __slots__ = ("circuit_breaker",)
    CIRCUIT_BREAKER_FIELD_NUMBER: _ClassVar[int]
    circuit_breaker: CircuitBreaker
    def __init__(self, circuit_breaker: _Optional[_Union[CircuitBreaker, _Mapping]] = ...) -> None: ...

class GetSystemInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSystemInfoResponse(_message.Message):
    __slots__ = ("version", "pod_name", "pod_namespace", "started_at", "providers", "model_aliases", "distributed_circuit_breakers", "redis_configured", "database_configured", "degraded")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POD_NAME_FIELD_NUMBER: _ClassVar[int]
    POD_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    MODEL_ALIASES_FIELD_NUMBER: _ClassVar[int]
    DISTRIBUTED_CIRCUIT_BREAKERS_FIELD_NUMBER: _ClassVar[int]
    REDIS_CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    DATABASE_CONFIGURED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    version: str
    pod_name: str
    pod_namespace: str
    started_at: _timestamp_pb2.Timestamp
    providers: _containers.RepeatedScalarFieldContainer[str]
    model_aliases: int
    distributed_circuit_breakers: bool
    redis_configured: bool
    database_configured: bool
    degraded: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., pod_name: _Optional[str] = ..., pod_namespace: _Optional[str] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., providers: _Optional[_Iterable[str]] = ..., model_aliases: _Optional[int] = ..., distributed_circuit_breakers: _Optional[bool] = ..., redis_configured: _Optional[bool] = ..., database_configured: _Optional[bool] = ..., degraded: _Optional[_Iterable[str]] = ...) -> None: ...
