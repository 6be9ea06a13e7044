import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from llmgateway.v1 import budgets_pb2 as _budgets_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProviderKeyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROVIDER_KEY_STATE_UNSPECIFIED: _ClassVar[ProviderKeyState]
    PROVIDER_KEY_STATE_READY: _ClassVar[ProviderKeyState]
    PROVIDER_KEY_STATE_RESTING: _ClassVar[ProviderKeyState]
    PROVIDER_KEY_STATE_OPEN: _ClassVar[ProviderKeyState]

class CircuitBreakerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CIRCUIT_BREAKER_STATE_UNSPECIFIED: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_CLOSED: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_OPEN: _ClassVar[CircuitBreakerState]
    CIRCUIT_BREAKER_STATE_HALF_OPEN: _ClassVar[CircuitBreakerState]

class UsageSeriesGroup(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    USAGE_SERIES_GROUP_UNSPECIFIED: _ClassVar[UsageSeriesGroup]
    USAGE_SERIES_GROUP_TENANT: _ClassVar[UsageSeriesGroup]
    USAGE_SERIES_GROUP_MODEL: _ClassVar[UsageSeriesGroup]
    USAGE_SERIES_GROUP_PROVIDER: _ClassVar[UsageSeriesGroup]
PROVIDER_KEY_STATE_UNSPECIFIED: ProviderKeyState
PROVIDER_KEY_STATE_READY: ProviderKeyState
PROVIDER_KEY_STATE_RESTING: ProviderKeyState
PROVIDER_KEY_STATE_OPEN: ProviderKeyState
CIRCUIT_BREAKER_STATE_UNSPECIFIED: CircuitBreakerState
CIRCUIT_BREAKER_STATE_CLOSED: CircuitBreakerState
CIRCUIT_BREAKER_STATE_OPEN: CircuitBreakerState
CIRCUIT_BREAKER_STATE_HALF_OPEN: CircuitBreakerState
USAGE_SERIES_GROUP_UNSPECIFIED: UsageSeriesGroup
USAGE_SERIES_GROUP_TENANT: UsageSeriesGroup
USAGE_SERIES_GROUP_MODEL: UsageSeriesGroup
USAGE_SERIES_GROUP_PROVIDER: UsageSeriesGroup

class TenantLimits(_message.Message):
    __slots__ = ("requests_per_second", "burst", "requests_per_minute", "tokens_per_minute", "concurrent_requests", "daily_token_quota")
    REQUESTS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    BURST_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENT_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    DAILY_TOKEN_QUOTA_FIELD_NUMBER: _ClassVar[int]
    requests_per_second: float
    burst: int
    requests_per_minute: int
    tokens_per_minute: int
    concurrent_requests: int
    daily_token_quota: int
    def __init__(self, requests_per_second: _Optional[float] = ..., burst: _Optional[int] = ..., requests_per_minute: _Optional[int] = ..., tokens_per_minute: _Optional[int] = ..., concurrent_requests: _Optional[int] = ..., daily_token_quota: _Optional[int] = ...) -> None: ...

class Tenant(_message.Message):
    __slots__ = ("id", "name", "allowed_models", "limits", "monthly_budget_usd", "default_provider", "fallback_providers", "provider_credentials", "disabled", "created_at", "updated_at", "model_budgets", "budget_period")
    class ModelBudgetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    MODEL_BUDGETS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    limits: TenantLimits
    monthly_budget_usd: float
    default_provider: str
    fallback_providers: _containers.RepeatedScalarFieldContainer[str]
    provider_credentials: _containers.RepeatedScalarFieldContainer[str]
    disabled: bool
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    model_budgets: _containers.ScalarMap[str, float]
    budget_period: _budgets_pb2.BudgetPeriod
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., allowed_models: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[TenantLimits, _Mapping]] = ..., monthly_budget_usd: _Optional[float] = ..., default_provider: _Optional[str] = ..., fallback_providers: _Optional[_Iterable[str]] = ..., provider_credentials: _Optional[_Iterable[str]] = ..., disabled: _Optional[bool] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_budgets: _Optional[_Mapping[str, float]] = ..., budget_period: _Optional[_Union[_budgets_pb2.BudgetPeriod, str]] = ...) -> None: ...

class TenantSpec(_message.Message):
    __slots__ = ("name", "allowed_models", "limits", "monthly_budget_usd", "default_provider", "fallback_providers", "provider_credentials", "disabled", "model_budgets", "budget_period")
    class ProviderCredentialsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ModelBudgetsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_MODELS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    MODEL_BUDGETS_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    name: str
    allowed_models: _containers.RepeatedScalarFieldContainer[str]
    limits: TenantLimits
    monthly_budget_usd: float
    default_provider: str
    fallback_providers: _containers.RepeatedScalarFieldContainer[str]
    provider_credentials: _containers.ScalarMap[str, str]
    disabled: bool
    model_budgets: _containers.ScalarMap[str, float]
    budget_period: _budgets_pb2.BudgetPeriod
    def __init__(self, name: _Optional[str] = ..., allowed_models: _Optional[_Iterable[str]] = ..., limits: _Optional[_Union[TenantLimits, _Mapping]] = ..., monthly_budget_usd: _Optional[float] = ..., default_provider: _Optional[str] = ..., fallback_providers: _Optional[_Iterable[str]] = ..., provider_credentials: _Optional[_Mapping[str, str]] = ..., disabled: _Optional[bool] = ..., model_budgets: _Optional[_Mapping[str, float]] = ..., budget_period: _Optional[_Union[_budgets_pb2.BudgetPeriod, str]] = ...) -> None: ...

class CreateTenantRequest(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: TenantSpec
    def __init__(self, tenant: _Optional[_Union[TenantSpec, _Mapping]] = ...) -> None: ...

class CreateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class GetTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class GetTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class ListTenantsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTenantsResponse(_message.Message):
    __slots__ = ("tenants",)
    TENANTS_FIELD_NUMBER: _ClassVar[int]
    tenants: _containers.RepeatedCompositeFieldContainer[Tenant]
    def __init__(self, tenants: _Optional[_Iterable[_Union[Tenant, _Mapping]]] = ...) -> None: ...

class UpdateTenantRequest(_message.Message):
    __slots__ = ("tenant_id", "tenant", "remove_provider_credentials")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    REMOVE_PROVIDER_CREDENTIALS_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    tenant: TenantSpec
    remove_provider_credentials: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, tenant_id: _Optional[str] = ..., tenant: _Optional[_Union[TenantSpec, _Mapping]] = ..., remove_provider_credentials: _Optional[_Iterable[str]] = ...) -> None: ...

class UpdateTenantResponse(_message.Message):
    __slots__ = ("tenant",)
    TENANT_FIELD_NUMBER: _ClassVar[int]
    tenant: Tenant
    def __init__(self, tenant: _Optional[_Union[Tenant, _Mapping]] = ...) -> None: ...

class DeleteTenantRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class DeleteTenantResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "tenant_id", "name", "prefix", "created_at", "revoked_at", "expires_at", "monthly_budget_usd", "budget_period")
    ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    id: str
    tenant_id: str
    name: str
    prefix: str
    created_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    monthly_budget_usd: float
    budget_period: _budgets_pb2.BudgetPeriod
    def __init__(self, id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., monthly_budget_usd: _Optional[float] = ..., budget_period: _Optional[_Union[_budgets_pb2.BudgetPeriod, str]] = ...) -> None: ...

class CreateApiKeyRequest(_message.Message):
    __slots__ = ("tenant_id", "name", "ttl_seconds", "monthly_budget_usd", "budget_period")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    BUDGET_PERIOD_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    name: str
    ttl_seconds: int
    monthly_budget_usd: float
    budget_period: _budgets_pb2.BudgetPeriod
    def __init__(self, tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., monthly_budget_usd: _Optional[float] = ..., budget_period: _Optional[_Union[_budgets_pb2.BudgetPeriod, str]] = ...) -> None: ...

class CreateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListApiKeysRequest(_message.Message):
    __slots__ = ("tenant_id",)
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    def __init__(self, tenant_id: _Optional[str] = ...) -> None: ...

class ListApiKeysResponse(_message.Message):
    __slots__ = ("api_keys",)
    API_KEYS_FIELD_NUMBER: _ClassVar[int]
    api_keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, api_keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeApiKeyRequest(_message.Message):
    __slots__ = ("key_id",)
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    def __init__(self, key_id: _Optional[str] = ...) -> None: ...

class RevokeApiKeyResponse(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

class RotateApiKeyRequest(_message.Message):
    __slots__ = ("tenant_id", "key_id", "name")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    key_id: str
    name: str
    def __init__(self, tenant_id: _Optional[str] = ..., key_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RotateApiKeyResponse(_message.Message):
    __slots__ = ("api_key", "secret", "revoked_key_ids")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    REVOKED_KEY_IDS_FIELD_NUMBER: _ClassVar[int]
    api_key: ApiKey
    secret: str
    revoked_key_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, api_key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ..., revoked_key_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ProviderInfo(_message.Message):
    __slots__ = ("name", "type", "base_url", "models", "has_api_key", "keys")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    HAS_API_KEY_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    base_url: str
    models: _containers.RepeatedScalarFieldContainer[str]
    has_api_key: bool
    keys: _containers.RepeatedCompositeFieldContainer[ProviderKey]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., base_url: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., has_api_key: _Optional[bool] = ..., keys: _Optional[_Iterable[_Union[ProviderKey, _Mapping]]] = ...) -> None: ...

class ProviderKey(_message.Message):
    __slots__ = ("name", "index", "state", "weight", "requests_per_minute", "tokens_per_minute", "seconds_left", "consecutive_failures")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TOKENS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    CONSECUTIVE_FAILURES_FIELD_NUMBER: _ClassVar[int]
    name: str
    index: int
    state: ProviderKeyState
    weight: float
    requests_per_minute: int
    tokens_per_minute: int
    seconds_left: float
    consecutive_failures: int
    def __init__(self, name: _Optional[str] = ..., index: _Optional[int] = ..., state: _Optional[_Union[ProviderKeyState, str]] = ..., weight: _Optional[float] = ..., requests_per_minute: _Optional[int] = ..., tokens_per_minute: _Optional[int] = ..., seconds_left: _Optional[float] = ..., consecutive_failures: _Optional[int] = ...) -> None: ...

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

class RequestLogEntry(_message.Message):
    __slots__ = ("time", "request_id", "method", "tenant_id", "model", "provider", "status", "latency_ms", "prompt_tokens", "completion_tokens", "cost_usd", "stream")
    TIME_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    request_id: str
    method: str
    tenant_id: str
    model: str
    provider: str
    status: str
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    stream: bool
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ..., tenant_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[str] = ..., latency_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ..., stream: _Optional[bool] = ...) -> None: ...

class ListRequestsRequest(_message.Message):
    __slots__ = ("tenant_id", "model", "provider", "status", "request_id", "since", "until", "page_size", "page_token")
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tenant_id: str
    model: str
    provider: str
    status: str
    request_id: str
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    page_size: int
    page_token: str
    def __init__(self, tenant_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., status: _Optional[str] = ..., request_id: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests", "next_page_token")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RequestLogEntry]
    next_page_token: str
    def __init__(self, requests: _Optional[_Iterable[_Union[RequestLogEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetUsageSeriesRequest(_message.Message):
    __slots__ = ("since", "until", "step_seconds", "group_by", "tenant_id", "model")
    SINCE_FIELD_NUMBER: _ClassVar[int]
    UNTIL_FIELD_NUMBER: _ClassVar[int]
    STEP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    since: _timestamp_pb2.Timestamp
    until: _timestamp_pb2.Timestamp
    step_seconds: int
    group_by: UsageSeriesGroup
    tenant_id: str
    model: str
    def __init__(self, since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., step_seconds: _Optional[int] = ..., group_by: _Optional[_Union[UsageSeriesGroup, str]] = ..., tenant_id: _Optional[str] = ..., model: _Optional[str] = ...) -> None: ...

class UsagePoint(_message.Message):
    __slots__ = ("time", "key", "requests", "errors", "latency_p50_ms", "latency_p95_ms", "prompt_tokens", "completion_tokens", "cost_usd")
    TIME_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P50_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_P95_MS_FIELD_NUMBER: _ClassVar[int]
    PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    key: str
    requests: int
    errors: int
    latency_p50_ms: float
    latency_p95_ms: float
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., key: _Optional[str] = ..., requests: _Optional[int] = ..., errors: _Optional[int] = ..., latency_p50_ms: _Optional[float] = ..., latency_p95_ms: _Optional[float] = ..., prompt_tokens: _Optional[int] = ..., completion_tokens: _Optional[int] = ..., cost_usd: _Optional[float] = ...) -> None: ...

class GetUsageSeriesResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[UsagePoint]
    def __init__(self, points: _Optional[_Iterable[_Union[UsagePoint, _Mapping]]] = ...) -> None: ...

class ModelPrice(_message.Message):
    __slots__ = ("entry", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok")
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    INPUT_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_PER_MTOK_FIELD_NUMBER: _ClassVar[int]
    entry: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    cache_write_per_mtok: float
    def __init__(self, entry: _Optional[str] = ..., input_per_mtok: _Optional[float] = ..., output_per_mtok: _Optional[float] = ..., cached_input_per_mtok: _Optional[float] = ..., cache_write_per_mtok: _Optional[float] = ...) -> None: ...

class ModelRouteTarget(_message.Message):
    __slots__ = ("provider", "model", "weight", "price")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    provider: str
    model: str
    weight: float
    price: ModelPrice
    def __init__(self, provider: _Optional[str] = ..., model: _Optional[str] = ..., weight: _Optional[float] = ..., price: _Optional[_Union[ModelPrice, _Mapping]] = ...) -> None: ...

class ModelRoute(_message.Message):
    __slots__ = ("name", "alias", "targets", "fallbacks", "strategy", "hedge_after_seconds", "timeout_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIAS_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    FALLBACKS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    HEDGE_AFTER_SECONDS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    alias: bool
    targets: _containers.RepeatedCompositeFieldContainer[ModelRouteTarget]
    fallbacks: _containers.RepeatedScalarFieldContainer[str]
    strategy: str
    hedge_after_seconds: float
    timeout_seconds: float
    def __init__(self, name: _Optional[str] = ..., alias: _Optional[bool] = ..., targets: _Optional[_Iterable[_Union[ModelRouteTarget, _Mapping]]] = ..., fallbacks: _Optional[_Iterable[str]] = ..., strategy: _Optional[str] = ..., hedge_after_seconds: _Optional[float] = ..., timeout_seconds: _Optional[float] = ...) -> None: ...

class ListModelRoutesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelRoutesResponse(_message.Message):
    __slots__ = ("routes", "default_provider")
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_PROVIDER_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[ModelRoute]
    default_provider: str
    def __init__(self, routes: _Optional[_Iterable[_Union[ModelRoute, _Mapping]]] = ..., default_provider: _Optional[str] = ...) -> None: ...
