"""Tenant and key administration behind AdminService: proto <-> tenancy records.

Provider credentials arrive in clear in a request and are encrypted (AES-256-GCM,
bound to the tenant and provider) before they reach the store; they are never
returned, only the names of the providers that have one. Key secrets are made
here, returned once, and only their SHA-256 is stored.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence

from google.protobuf import timestamp_pb2
from llmgateway.v1 import admin_service_pb2, budgets_pb2

from gateway.errors import InvalidRequestError, NotFoundError, PermissionDeniedError
from gateway.tenancy.auth import Authenticator
from gateway.tenancy.crypto import CredentialCipher
from gateway.tenancy.keys import new_secret
from gateway.tenancy.models import ApiKey, BudgetPeriod, Limits, Tenant, TenantStore, new_id

__all__ = ["TenantAdmin"]

_LIMIT_FIELDS = ("requests_per_second", "burst", "requests_per_minute", "tokens_per_minute",
                 "concurrent_requests", "daily_token_quota")


_PERIODS: dict[BudgetPeriod, budgets_pb2.BudgetPeriod] = {
    "monthly": budgets_pb2.BUDGET_PERIOD_MONTHLY, "daily": budgets_pb2.BUDGET_PERIOD_DAILY}


def budget_period(value: budgets_pb2.BudgetPeriod, param: str) -> BudgetPeriod:
    """The period a request names (unspecified: monthly)."""
    if value == budgets_pb2.BUDGET_PERIOD_DAILY:
        return "daily"
    if value in (budgets_pb2.BUDGET_PERIOD_UNSPECIFIED, budgets_pb2.BUDGET_PERIOD_MONTHLY):
        return "monthly"
    raise InvalidRequestError(f"'{param}' must be BUDGET_PERIOD_MONTHLY or BUDGET_PERIOD_DAILY",
                              param=param)


def budget_usd(value: float, param: str) -> float:
    if not 0 <= value < math.inf:
        raise InvalidRequestError(f"'{param}' must be a finite amount, not negative",
                                  param=param)
    return value


def _ts(unix: float | None) -> timestamp_pb2.Timestamp | None:
    if unix is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(int(unix * 1e9))
    return ts


def _limits(spec: admin_service_pb2.TenantLimits) -> Limits:
    values = {}
    for name in _LIMIT_FIELDS:
        if spec.HasField(name):
            value = getattr(spec, name)
            if not math.isfinite(value) or value < 0 or (
                    name != "requests_per_second" and value == 0):
                raise InvalidRequestError(f"'limits.{name}' must be positive",
                                          param=f"limits.{name}")
            values[name] = value
    return Limits(**values)


def tenant_to_proto(tenant: Tenant) -> admin_service_pb2.Tenant:
    out = admin_service_pb2.Tenant(
        id=tenant.id, name=tenant.name, allowed_models=tenant.allowed_models,
        default_provider=tenant.default_provider, fallback_providers=tenant.fallback_providers,
        provider_credentials=sorted(tenant.provider_keys), disabled=tenant.disabled,
        created_at=_ts(tenant.created_at), updated_at=_ts(tenant.updated_at))
    for name in _LIMIT_FIELDS:
        value = getattr(tenant.limits, name)
        if value is not None:
            setattr(out.limits, name, value)
    if tenant.monthly_budget_usd is not None:
        out.monthly_budget_usd = tenant.monthly_budget_usd
    out.model_budgets.update(tenant.model_budgets)
    out.budget_period = _PERIODS[tenant.budget_period]
    return out


def key_to_proto(key: ApiKey) -> admin_service_pb2.ApiKey:
    out = admin_service_pb2.ApiKey(
        id=key.id, tenant_id=key.tenant_id, name=key.name, prefix=key.prefix,
        created_at=_ts(key.created_at), revoked_at=_ts(key.revoked_at),
        expires_at=_ts(key.expires_at), budget_period=_PERIODS[key.budget_period])
    if key.monthly_budget_usd is not None:
        out.monthly_budget_usd = key.monthly_budget_usd
    return out


class TenantAdmin:
    def __init__(self, store: TenantStore, cipher: CredentialCipher | None,
                 authenticator: Authenticator, providers: Sequence[str]):
        self._store = store
        self._cipher = cipher
        self._auth = authenticator
        self._providers = set(providers)

    def _credentials(self, tenant_id: str, given: dict[str, str],
                     current: dict[str, str]) -> dict[str, str]:
        if not given:
            return current
        if self._cipher is None:
            raise PermissionDeniedError(
                "provider credentials need ENCRYPTION_KEY to be set on the gateway")
        out = dict(current)
        for provider, secret in given.items():
            if provider not in self._providers:
                raise InvalidRequestError(f"no provider named '{provider}'",
                                          param="provider_credentials")
            if not secret:
                raise InvalidRequestError(f"the credential for '{provider}' is empty",
                                          param="provider_credentials")
            out[provider] = self._cipher.encrypt(secret, context=f"{tenant_id}/{provider}")
        return out

    def _from_spec(self, spec: admin_service_pb2.TenantSpec, base: Tenant) -> Tenant:
        name = spec.name.strip()
        if not name:
            raise InvalidRequestError("'name' is required", param="name")
        if spec.HasField("monthly_budget_usd"):
            budget_usd(spec.monthly_budget_usd, "monthly_budget_usd")
        for model, usd in spec.model_budgets.items():
            if not model.strip():
                raise InvalidRequestError("'model_budgets' names a model with an empty name",
                                          param="model_budgets")
            budget_usd(usd, f"model_budgets.{model}")
        for provider in (spec.default_provider, *spec.fallback_providers):
            if provider and provider not in self._providers:
                raise InvalidRequestError(f"no provider named '{provider}'",
                                          param="default_provider")
        return dataclasses.replace(
            base, name=name, allowed_models=tuple(spec.allowed_models),
            limits=_limits(spec.limits),
            monthly_budget_usd=(spec.monthly_budget_usd if spec.HasField("monthly_budget_usd")
                                else None),
            default_provider=spec.default_provider,
            fallback_providers=tuple(spec.fallback_providers),
            provider_keys=self._credentials(base.id, dict(spec.provider_credentials),
                                            dict(base.provider_keys)),
            disabled=spec.disabled, updated_at=time.time(),
            model_budgets=dict(spec.model_budgets),
            budget_period=budget_period(spec.budget_period, "budget_period"))

    async def _tenant(self, tenant_id: str) -> Tenant:
        tenant = await self._store.get_tenant(tenant_id) if tenant_id else None
        if tenant is None:
            raise NotFoundError(f"no tenant '{tenant_id}'", param="tenant_id")
        return tenant

    async def create(self, spec: admin_service_pb2.TenantSpec) -> admin_service_pb2.Tenant:
        tenant = self._from_spec(spec, Tenant(id=new_id("ten"), name="-"))
        return tenant_to_proto(await self._store.create_tenant(tenant))

    async def get(self, tenant_id: str) -> admin_service_pb2.Tenant:
        return tenant_to_proto(await self._tenant(tenant_id))

    async def all(self) -> list[admin_service_pb2.Tenant]:
        return [tenant_to_proto(t) for t in await self._store.list_tenants()]

    async def update(self, tenant_id: str, spec: admin_service_pb2.TenantSpec,
                     remove: Sequence[str]) -> admin_service_pb2.Tenant:
        current = await self._tenant(tenant_id)
        kept = {p: v for p, v in current.provider_keys.items() if p not in set(remove)}
        tenant = self._from_spec(spec, dataclasses.replace(current, provider_keys=kept))
        updated = await self._store.update_tenant(tenant)
        if updated is None:
            raise NotFoundError(f"no tenant '{tenant_id}'", param="tenant_id")
        self._auth.forget()
        return tenant_to_proto(updated)

    async def delete(self, tenant_id: str) -> None:
        if not await self._store.delete_tenant(tenant_id):
            raise NotFoundError(f"no tenant '{tenant_id}'", param="tenant_id")
        self._auth.forget()

    async def create_key(self, tenant_id: str, name: str, ttl: int, *,
                         budget: float | None = None,
                         period: BudgetPeriod = "monthly"
                         ) -> tuple[admin_service_pb2.ApiKey, str]:
        """A new key; ``budget`` (USD per ``period``) is its own, on top of its tenant's."""
        await self._tenant(tenant_id)
        secret, key_hash, prefix = new_secret()
        now = time.time()
        key = ApiKey(id=new_id("key"), tenant_id=tenant_id, hash=key_hash, prefix=prefix,
                     name=name, created_at=now, expires_at=now + ttl if ttl else None,
                     monthly_budget_usd=budget, budget_period=period)
        await self._store.add_key(key)
        return key_to_proto(key), secret

    async def list_keys(self, tenant_id: str) -> list[admin_service_pb2.ApiKey]:
        await self._tenant(tenant_id)
        return [key_to_proto(k) for k in await self._store.list_keys(tenant_id)]

    async def revoke_key(self, key_id: str) -> admin_service_pb2.ApiKey:
        key = await self._store.revoke_key(key_id) if key_id else None
        if key is None:
            raise NotFoundError(f"no API key '{key_id}'", param="key_id")
        self._auth.forget()
        return key_to_proto(key)

    async def rotate_key(self, tenant_id: str, key_id: str,
                         name: str) -> tuple[admin_service_pb2.ApiKey, str, list[str]]:
        now = time.time()
        active = [k for k in await self._store.list_keys(tenant_id) if k.usable(now)]
        if key_id:
            active = [k for k in active if k.id == key_id]
            if not active:
                raise NotFoundError(f"no active API key '{key_id}' for this tenant",
                                    param="key_id")
        # One key replaced: its successor keeps its name, unless one is given, and its
        # budget (a new period of spend, as a new key's usage is its own).
        kept = active[0] if key_id else None
        new_key, secret = await self.create_key(
            tenant_id, name or (kept.name if kept and kept.name else "rotated"), 0,
            budget=kept.monthly_budget_usd if kept else None,
            period=kept.budget_period if kept else "monthly")
        for key in active:
            await self._store.revoke_key(key.id)
        self._auth.forget()
        return new_key, secret, [k.id for k in active]
