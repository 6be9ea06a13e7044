"""The tenant store shared by every replica: PostgreSQL through an asyncpg pool.

:meth:`PostgresTenantStore.start` applies the numbered migrations below, each once, in
one transaction under an advisory lock, so replicas starting together neither race nor
apply one twice; ``schema_migrations`` records ``(component, version)`` so other stores
can keep their own migrations in the same database. Every failure to reach the server
(refused, dropped, timed out, shutting down) is
:class:`~gateway.errors.UnavailableError` with a fixed message: the DSN holds a password
and never appears in an error or a log line.

Tables: ``tenants`` (provider keys as stored ciphertexts in ``provider_keys`` jsonb),
``api_keys`` (cascading with their tenant), ``usage`` (kept when its tenant goes).

Example::

    async with PostgresTenantStore(settings.database.url) as store:
        totals = await store.usage_since(tenant.id, month_start)
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Self

import asyncpg  # type: ignore[import-untyped]

from gateway.backends.postgres import Migration, PostgresPool, pg_text
from gateway.errors import AlreadyExistsError, NotFoundError
from gateway.tenancy.models import ApiKey, Limits, Tenant, UsageRow, UsageTotals

__all__ = ["MIGRATIONS", "PostgresTenantStore"]

log = logging.getLogger("gateway.tenancy")

COMPONENT = "tenancy"

# (version, description, SQL). Append only: a released migration never changes.
MIGRATIONS: tuple[Migration, ...] = (
    (1, "tenants, api keys, usage", """
CREATE TABLE tenants (
    id                  text PRIMARY KEY,
    name                text NOT NULL UNIQUE,
    allowed_models      text[] NOT NULL DEFAULT '{}',
    limits              jsonb NOT NULL DEFAULT '{}',
    monthly_budget_usd  double precision,
    default_provider    text NOT NULL DEFAULT '',
    fallback_providers  text[] NOT NULL DEFAULT '{}',
    provider_keys       jsonb NOT NULL DEFAULT '{}',
    disabled            boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE api_keys (
    id          text PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hash        text NOT NULL UNIQUE,
    prefix      text NOT NULL,
    name        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    expires_at  timestamptz
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);
CREATE TABLE usage (
    id                 bigserial PRIMARY KEY,
    tenant_id          text NOT NULL,
    model              text NOT NULL,
    provider           text NOT NULL,
    prompt_tokens      integer NOT NULL,
    completion_tokens  integer NOT NULL,
    cost_usd           double precision NOT NULL,
    latency_ms         double precision NOT NULL,
    status             text NOT NULL,
    request_id         text NOT NULL DEFAULT '',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_tenant_id_created_at_idx ON usage (tenant_id, created_at);
"""),
    (2, "budgets per key and per model, daily or monthly", """
ALTER TABLE tenants
    ADD COLUMN model_budgets  jsonb NOT NULL DEFAULT '{}',
    ADD COLUMN budget_period  text NOT NULL DEFAULT 'monthly';
ALTER TABLE api_keys
    ADD COLUMN monthly_budget_usd  double precision,
    ADD COLUMN budget_period       text NOT NULL DEFAULT 'monthly';
ALTER TABLE usage ADD COLUMN api_key_id text NOT NULL DEFAULT '';
CREATE INDEX usage_api_key_id_created_at_idx ON usage (api_key_id, created_at)
    WHERE api_key_id <> '';
"""),
)

_USAGE_COLUMNS = ("tenant_id", "model", "provider", "prompt_tokens", "completion_tokens",
                  "cost_usd", "latency_ms", "status", "request_id", "created_at", "api_key_id")
_TENANT_VALUES = """allowed_models = $3, limits = $4::jsonb, monthly_budget_usd = $5,
    default_provider = $6, fallback_providers = $7, provider_keys = $8::jsonb, disabled = $9,
    model_budgets = $10::jsonb, budget_period = $11"""
# Expected failures of the link or the server; anything else is a bug and propagates.
class PostgresTenantStore:
    """:class:`~gateway.tenancy.models.TenantStore` on PostgreSQL; see the module docstring.

    ``dsn`` is ``postgres://`` or ``postgresql://user:password@host:port/database``.
    """

    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10,
                 connect_timeout: float = 3.0, command_timeout: float = 5.0):
        self._db = PostgresPool(dsn, name="tenant store", component=COMPONENT,
                                migrations=MIGRATIONS, min_size=min_size, max_size=max_size,
                                connect_timeout=connect_timeout,
                                command_timeout=command_timeout)

    def __repr__(self) -> str:
        return "PostgresTenantStore(dsn=<hidden>)"

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        await self._db.start()

    async def aclose(self) -> None:
        await self._db.aclose()

    async def ping(self) -> None:
        await self._db.ping()

    async def create_tenant(self, tenant: Tenant) -> Tenant:
        try:
            async with self._db.connection() as conn:
                row = await conn.fetchrow(
                    "INSERT INTO tenants (id, name, allowed_models, limits, monthly_budget_usd,"
                    " default_provider, fallback_providers, provider_keys, disabled,"
                    " model_budgets, budget_period, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8::jsonb, $9, $10::jsonb, $11,"
                    " $12, $13)"
                    " RETURNING *",
                    *_tenant_args(tenant), _ts(tenant.created_at), _ts(tenant.updated_at))
        except asyncpg.UniqueViolationError as exc:
            raise _tenant_exists(exc, tenant) from None
        return _tenant(row)

    async def get_tenant(self, tenant_id: str) -> Tenant | None:
        async with self._db.connection() as conn:
            row = await conn.fetchrow("SELECT * FROM tenants WHERE id = $1", tenant_id)
        return None if row is None else _tenant(row)

    async def list_tenants(self) -> list[Tenant]:
        async with self._db.connection() as conn:
            rows = await conn.fetch("SELECT * FROM tenants ORDER BY created_at, id")
        return [_tenant(r) for r in rows]

    async def update_tenant(self, tenant: Tenant) -> Tenant | None:
        try:
            async with self._db.connection() as conn:
                row = await conn.fetchrow(
                    f"UPDATE tenants SET name = $2, {_TENANT_VALUES}, updated_at = now()"
                    " WHERE id = $1 RETURNING *", *_tenant_args(tenant))
        except asyncpg.UniqueViolationError as exc:
            raise _tenant_exists(exc, tenant) from None
        return None if row is None else _tenant(row)

    async def delete_tenant(self, tenant_id: str) -> bool:
        async with self._db.connection() as conn:
            status = await conn.execute("DELETE FROM tenants WHERE id = $1", tenant_id)
        return bool(status == "DELETE 1")

    async def add_key(self, key: ApiKey) -> None:
        try:
            async with self._db.connection() as conn:
                await conn.execute(
                    "INSERT INTO api_keys (id, tenant_id, hash, prefix, name, created_at,"
                    " revoked_at, expires_at, monthly_budget_usd, budget_period)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    key.id, key.tenant_id, key.hash, key.prefix, key.name, _ts(key.created_at),
                    _ts_or_none(key.revoked_at), _ts_or_none(key.expires_at),
                    key.monthly_budget_usd, key.budget_period)
        except asyncpg.UniqueViolationError:
            raise AlreadyExistsError("this API key already exists") from None
        except asyncpg.ForeignKeyViolationError:
            raise NotFoundError(f"no tenant '{key.tenant_id}'") from None

    async def key_by_hash(self, key_hash: str) -> ApiKey | None:
        async with self._db.connection() as conn:
            row = await conn.fetchrow("SELECT * FROM api_keys WHERE hash = $1", key_hash)
        return None if row is None else _key(row)

    async def list_keys(self, tenant_id: str) -> list[ApiKey]:
        async with self._db.connection() as conn:
            rows = await conn.fetch(
                "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id", tenant_id)
        return [_key(r) for r in rows]

    async def revoke_key(self, key_id: str) -> ApiKey | None:
        async with self._db.connection() as conn:
            row = await conn.fetchrow(
                "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())"
                " WHERE id = $1 RETURNING *", key_id)
        return None if row is None else _key(row)

    async def record_usage(self, rows: Sequence[UsageRow]) -> None:
        if not rows:
            return
        records = [(r.tenant_id, pg_text(r.model), r.provider, r.prompt_tokens, r.completion_tokens,
                    r.cost_usd, r.latency_ms, r.status, r.request_id, _ts(r.created_at),
                    r.api_key_id)
                   for r in rows]
        async with self._db.connection() as conn, conn.transaction():
            await conn.copy_records_to_table("usage", records=records, columns=_USAGE_COLUMNS)

    async def usage_since(self, tenant_id: str, since: float, *, api_key_id: str = "",
                          model: str = "") -> UsageTotals:
        where, args = "tenant_id = $1 AND created_at >= $2", [tenant_id, _ts(since)]
        if api_key_id:
            args.append(api_key_id)
            where += f" AND api_key_id = ${len(args)}"
        if model:
            args.append(model)
            where += f" AND model = ${len(args)}"
        async with self._db.connection() as conn:
            row = await conn.fetchrow(
                "SELECT count(*) AS requests,"
                " coalesce(sum(prompt_tokens), 0) AS prompt_tokens,"
                " coalesce(sum(completion_tokens), 0) AS completion_tokens,"
                " coalesce(sum(cost_usd), 0) AS cost_usd"
                f" FROM usage WHERE {where}", *args)
        return UsageTotals(int(row["requests"]), int(row["prompt_tokens"]),
                           int(row["completion_tokens"]), float(row["cost_usd"]))


def _tenant_exists(exc: Exception, tenant: Tenant) -> AlreadyExistsError:
    if getattr(exc, "constraint_name", "") == "tenants_pkey":
        return AlreadyExistsError(f"a tenant with id '{tenant.id}' already exists")
    return AlreadyExistsError(f"a tenant named '{tenant.name}' already exists")


def _tenant_args(t: Tenant) -> tuple[Any, ...]:
    return (t.id, t.name, list(t.allowed_models), json.dumps(dataclasses.asdict(t.limits)),
            t.monthly_budget_usd, t.default_provider, list(t.fallback_providers),
            json.dumps(dict(t.provider_keys)), t.disabled, json.dumps(dict(t.model_budgets)),
            t.budget_period)


def _tenant(row: Any) -> Tenant:
    limits = json.loads(row["limits"])
    known = {f.name for f in dataclasses.fields(Limits)}
    return Tenant(
        id=row["id"], name=row["name"], allowed_models=tuple(row["allowed_models"]),
        limits=Limits(**{k: v for k, v in limits.items() if k in known}),
        monthly_budget_usd=row["monthly_budget_usd"], default_provider=row["default_provider"],
        fallback_providers=tuple(row["fallback_providers"]),
        provider_keys=json.loads(row["provider_keys"]), disabled=row["disabled"],
        created_at=row["created_at"].timestamp(), updated_at=row["updated_at"].timestamp(),
        model_budgets=json.loads(row["model_budgets"]), budget_period=row["budget_period"])


def _key(row: Any) -> ApiKey:
    return ApiKey(
        id=row["id"], tenant_id=row["tenant_id"], hash=row["hash"], prefix=row["prefix"],
        name=row["name"], created_at=row["created_at"].timestamp(),
        revoked_at=_float_or_none(row["revoked_at"]), expires_at=_float_or_none(row["expires_at"]),
        monthly_budget_usd=row["monthly_budget_usd"], budget_period=row["budget_period"])


def _ts(value: float) -> datetime:
    return datetime.fromtimestamp(value, UTC)


def _ts_or_none(value: float | None) -> datetime | None:
    return None if value is None else _ts(value)


def _float_or_none(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()
