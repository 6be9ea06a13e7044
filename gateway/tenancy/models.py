"""Tenancy's plain data and the store protocol.

A tenant owns API keys, allowed models, limits, budgets (its own, per model, and per
key, each monthly or daily) and, optionally, its own provider credentials (stored
encrypted). Usage rows record every request.

Example::

    tenant = Tenant(id=new_id("ten"), name="acme", limits=Limits(requests_per_minute=600))
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

__all__ = [
    "ApiKey",
    "BudgetPeriod",
    "Limits",
    "Tenant",
    "TenantStore",
    "UsageRow",
    "UsageTotals",
    "new_id",
]


# How often a budget starts again: the 1st of each month or each day, 00:00 UTC.
BudgetPeriod = Literal["monthly", "daily"]


def new_id(prefix: str) -> str:
    """``ten_3f9a...``: a random, URL-safe id with a type prefix."""
    return f"{prefix}_{secrets.token_hex(12)}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-tenant limits; None means no limit of that kind."""

    requests_per_second: float | None = None  # token bucket refill rate
    burst: int | None = None  # token bucket size (default: max(1, rps))
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    concurrent_requests: int | None = None
    daily_token_quota: int | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    id: str
    name: str
    allowed_models: tuple[str, ...] = ()  # empty: every model
    limits: Limits = Limits()
    monthly_budget_usd: float | None = None  # per budget_period, despite the name
    default_provider: str = ""
    fallback_providers: tuple[str, ...] = ()
    # provider name -> credential, encrypted (AES-256-GCM, base64); never in clear here
    provider_keys: Mapping[str, str] = field(default_factory=dict, repr=False)
    disabled: bool = False
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    # model asked for -> USD per budget_period, on top of monthly_budget_usd
    model_budgets: Mapping[str, float] = field(default_factory=dict)
    budget_period: BudgetPeriod = "monthly"  # of monthly_budget_usd and model_budgets


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's record. The secret itself is never stored: only its SHA-256."""

    id: str
    tenant_id: str
    hash: str = field(repr=False)  # hex SHA-256 of the secret
    prefix: str  # the first characters, for people to recognise it (sk-abcd)
    name: str = ""
    created_at: float = field(default_factory=time.time)
    revoked_at: float | None = None
    expires_at: float | None = None
    monthly_budget_usd: float | None = None  # the key's own, per budget_period
    budget_period: BudgetPeriod = "monthly"

    def usable(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One request's usage, written after the answer."""

    tenant_id: str
    model: str
    provider: str
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    latency_ms: float
    status: str
    request_id: str = ""
    created_at: float = field(default_factory=time.time)
    api_key_id: str = ""  # the tenant's API key that made the request, if one did


@dataclass(frozen=True, slots=True)
class UsageTotals:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class TenantStore(Protocol):
    """Tenants, keys and usage. Memory (one process) or PostgreSQL (shared, durable).

    Every method raises ``gateway.errors.UnavailableError`` when the backing store
    cannot be reached, so callers answer 503, never 500.
    """

    async def start(self) -> None:
        """Connect and apply migrations (idempotent)."""
        ...

    async def aclose(self) -> None: ...

    async def ping(self) -> None:
        """Raise UnavailableError unless the store answers (readiness)."""
        ...

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        """Raise ``gateway.errors.AlreadyExistsError`` when the name is taken."""
        ...

    async def get_tenant(self, tenant_id: str) -> Tenant | None: ...

    async def list_tenants(self) -> list[Tenant]: ...

    async def update_tenant(self, tenant: Tenant) -> Tenant | None:
        """Replace every field but ``id`` and ``created_at``; None when absent."""
        ...

    async def delete_tenant(self, tenant_id: str) -> bool:
        """Delete the tenant and its keys (usage rows stay); False when absent."""
        ...

    async def add_key(self, key: ApiKey) -> None: ...

    async def key_by_hash(self, key_hash: str) -> ApiKey | None: ...

    async def list_keys(self, tenant_id: str) -> list[ApiKey]: ...

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        """Mark it revoked (idempotent); None when no such key."""
        ...

    async def record_usage(self, rows: Sequence[UsageRow]) -> None: ...

    async def usage_since(self, tenant_id: str, since: float, *, api_key_id: str = "",
                          model: str = "") -> UsageTotals:
        """The tenant's totals from ``since`` on; only one key's or one model's when named
        (the model as the client asked for it)."""
        ...
