from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BudgetPeriod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_PERIOD_UNSPECIFIED: _ClassVar[BudgetPeriod]
    BUDGET_PERIOD_MONTHLY: _ClassVar[BudgetPeriod]
    BUDGET_PERIOD_DAILY: _ClassVar[BudgetPeriod]

class BudgetScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUDGET_SCOPE_UNSPECIFIED: _ClassVar[BudgetScope]
    BUDGET_SCOPE_TENANT: _ClassVar[BudgetScope]
    BUDGET_SCOPE_API_KEY: _ClassVar[BudgetScope]
    BUDGET_SCOPE_MODEL: _ClassVar[BudgetScope]
BUDGET_PERIOD_UNSPECIFIED: BudgetPeriod
BUDGET_PERIOD_MONTHLY: BudgetPeriod
BUDGET_PERIOD_DAILY: BudgetPeriod
BUDGET_SCOPE_UNSPECIFIED: BudgetScope
BUDGET_SCOPE_TENANT: BudgetScope
BUDGET_SCOPE_API_KEY: BudgetScope
BUDGET_SCOPE_MODEL: BudgetScope

class BudgetUsage(_message.Message):
    __slots__ = ("scope", "api_key_id", "model", "period", "period_start", "budget_usd", "cost_usd", "requests", "used_ratio")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    API_KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    PERIOD_START_FIELD_NUMBER: _ClassVar[int]
    BUDGET_USD_FIELD_NUMBER: _ClassVar[int]
    COST_USD_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    USED_RATIO_FIELD_NUMBER: _ClassVar[int]
    scope: BudgetScope
    api_key_id: str
    model: str
    period: BudgetPeriod
    period_start: int
    budget_usd: float
    cost_usd: float
    requests: int
    used_ratio: float
    def __init__(self, scope: _Optional[_Union[BudgetScope, str]] = ..., api_key_id: _Optional[str] = ..., model: _Optional[str] = ..., period: _Optional[_Union[BudgetPeriod, str]] = ..., period_start: _Optional[int] = ..., budget_usd: _Optional[float] = ..., cost_usd: _Optional[float] = ..., requests: _Optional[int] = ..., used_ratio: _Optional[float] = ...) -> None: ...
