"""The tenant store of one process: dicts, nothing durable, never unavailable.

Usage is not kept row by row, which would grow with traffic, but summed per UTC day for
each tenant, each of its API keys and each model it asked for, and forgotten after
``retention_days``. :meth:`MemoryTenantStore.usage_since`
is therefore exact when ``since`` falls on a UTC midnight (day quotas, month-to-date
budgets); any other ``since`` counts its whole day.

Example::

    async with MemoryTenantStore() as store:
        await store.create_tenant(Tenant(id=new_id("ten"), name="acme"))
"""

from __future__ import annotations

import dataclasses
import math
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Self

from gateway.errors import AlreadyExistsError, NotFoundError
from gateway.tenancy.models import ApiKey, Tenant, UsageRow, UsageTotals

__all__ = ["MemoryTenantStore"]

_DAY = 86400


@dataclass(slots=True)
class _DayUsage:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class MemoryTenantStore:
    """:class:`~gateway.tenancy.models.TenantStore` in dicts; see the module docstring."""

    def __init__(self, *, retention_days: int = 62):
        self.retention_days = retention_days
        self._tenants: dict[str, Tenant] = {}
        self._names: dict[str, str] = {}  # name -> id
        self._keys: dict[str, ApiKey] = {}
        self._hashes: dict[str, str] = {}  # hash -> key id
        # (tenant id, key id or "", model or "") -> UTC day -> sums
        self._usage: dict[tuple[str, str, str], dict[int, _DayUsage]] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        if tenant.id in self._tenants:
            raise AlreadyExistsError(f"a tenant with id '{tenant.id}' already exists")
        if tenant.name in self._names:
            raise AlreadyExistsError(f"a tenant named '{tenant.name}' already exists")
        stored = _frozen(tenant)
        self._tenants[tenant.id] = stored
        self._names[tenant.name] = tenant.id
        return stored

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        return self._tenants.get(tenant_id)

    async def list_tenants(self) -> list[Tenant]:
        return sorted(self._tenants.values(), key=lambda t: (t.created_at, t.id))

    async def update_tenant(self, tenant: Tenant) -> Tenant | None:
        current = self._tenants.get(tenant.id)
        if current is None:
            return None
        owner = self._names.get(tenant.name)
        if owner is not None and owner != tenant.id:
            raise AlreadyExistsError(f"a tenant named '{tenant.name}' already exists")
        stored = _frozen(dataclasses.replace(
            tenant, created_at=current.created_at, updated_at=time.time()))
        del self._names[current.name]
        self._names[stored.name] = stored.id
        self._tenants[stored.id] = stored
        return stored

    async def delete_tenant(self, tenant_id: str) -> bool:
        tenant = self._tenants.pop(tenant_id, None)
        if tenant is None:
            return False
        del self._names[tenant.name]
        for key in [k for k in self._keys.values() if k.tenant_id == tenant_id]:
            del self._keys[key.id]
            del self._hashes[key.hash]
        return True

    async def add_key(self, key: ApiKey) -> None:
        if key.tenant_id not in self._tenants:
            raise NotFoundError(f"no tenant '{key.tenant_id}'")
        if key.id in self._keys or key.hash in self._hashes:
            raise AlreadyExistsError("this API key already exists")
        self._keys[key.id] = key
        self._hashes[key.hash] = key.id

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        key_id = self._hashes.get(key_hash)
        return None if key_id is None else self._keys[key_id]

    async def list_keys(self, tenant_id: str) -> list[ApiKey]:
        keys = [k for k in self._keys.values() if k.tenant_id == tenant_id]
        return sorted(keys, key=lambda k: (k.created_at, k.id))

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            return key
        key = dataclasses.replace(key, revoked_at=time.time())
        self._keys[key_id] = key
        return key

    async def record_usage(self, rows: Sequence[UsageRow]) -> None:
        touched: set[tuple[str, str, str]] = set()
        for row in rows:
            accounts = [(row.tenant_id, "", ""), (row.tenant_id, "", row.model)]
            if row.api_key_id:
                accounts.append((row.tenant_id, row.api_key_id, ""))
            for account in accounts:
                days = self._usage.setdefault(account, {})
                day = days.setdefault(int(row.created_at // _DAY), _DayUsage())
                day.requests += 1
                day.prompt_tokens += row.prompt_tokens
                day.completion_tokens += row.completion_tokens
                day.cost_usd += row.cost_usd
                touched.add(account)
        for account in touched:
            self._forget_old(self._usage[account])

    async def usage_since(self, tenant_id: str, since: float, *, api_key_id: str = "",
                          model: str = "") -> UsageTotals:
        if api_key_id and model:  # not kept per key and model: no budget asks for it
            raise ValueError("usage per key and model together is not kept")
        first = math.floor(since / _DAY)
        totals = _DayUsage()
        for day, usage in self._usage.get((tenant_id, api_key_id, model), {}).items():
            if day >= first:
                totals.requests += usage.requests
                totals.prompt_tokens += usage.prompt_tokens
                totals.completion_tokens += usage.completion_tokens
                totals.cost_usd += usage.cost_usd
        return UsageTotals(totals.requests, totals.prompt_tokens, totals.completion_tokens,
                           totals.cost_usd)

    def _forget_old(self, days: dict[int, _DayUsage]) -> None:
        if len(days) <= self.retention_days + 1:
            return
        oldest = int(time.time() // _DAY) - self.retention_days
        for day in [d for d in days if d < oldest]:
            del days[day]


def _frozen(tenant: Tenant) -> Tenant:
    """A copy the caller cannot change through the mapping it passed in."""
    return dataclasses.replace(
        tenant, provider_keys=types.MappingProxyType(dict(tenant.provider_keys)),
        model_budgets=types.MappingProxyType(dict(tenant.model_budgets)))
