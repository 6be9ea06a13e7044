"""The TenantStore contract, run against both stores: memory, and PostgreSQL on a real
server. Then what only PostgreSQL has: migrations, durability, outages, and ciphertexts
that never leave a plaintext credential in any table."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg  # type: ignore[import-untyped]
import pytest

from gateway.backends.postgres import apply_migrations
from gateway.errors import AlreadyExistsError, NotFoundError, UnavailableError
from gateway.tenancy.crypto import CredentialCipher, credential_context
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import ApiKey, Limits, Tenant, TenantStore, UsageRow, new_id
from gateway.tenancy.postgres_store import MIGRATIONS, PostgresTenantStore
from tests.servers import PostgresServer

DAY = 86400
PLAINTEXT = "sk-live-PLAINTEXT-never-stored-0123456789"


@pytest.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[TenantStore]:
    impl: TenantStore
    if request.param == "memory":
        impl = MemoryTenantStore()
    else:
        impl = PostgresTenantStore(request.getfixturevalue("postgres_dsn"))
    await impl.start()
    yield impl
    await impl.aclose()


def tenant(name: str = "acme", **fields: object) -> Tenant:
    return Tenant(id=new_id("ten"), name=name, **fields)  # type: ignore[arg-type]


def api_key(tenant_id: str, secret: str, **fields: object) -> ApiKey:
    return ApiKey(id=new_id("key"), tenant_id=tenant_id, hash=f"hash-of-{secret}",
                  prefix=secret[:7], **fields)  # type: ignore[arg-type]


def usage(tenant_id: str, at: float, prompt: int = 10, completion: int = 5,
          cost: float = 0.25, model: str = "gpt-4o-mini", api_key_id: str = "") -> UsageRow:
    return UsageRow(tenant_id=tenant_id, model=model, provider="openai",
                    prompt_tokens=prompt, completion_tokens=completion, cost_usd=cost,
                    latency_ms=12.5, status="ok", request_id=new_id("req"), created_at=at,
                    api_key_id=api_key_id)


def same_tenant(a: Tenant, b: Tenant) -> None:
    """Equal but for timestamps, which PostgreSQL keeps to the microsecond."""
    assert dataclasses.replace(a, created_at=0, updated_at=0, provider_keys={}) == (
        dataclasses.replace(b, created_at=0, updated_at=0, provider_keys={}))
    assert dict(a.provider_keys) == dict(b.provider_keys)
    assert a.created_at == pytest.approx(b.created_at, abs=1e-5)


# --- the contract, both stores ------------------------------------------------------------


async def test_tenant_crud(store: TenantStore) -> None:
    assert await store.list_tenants() == []
    assert await store.get_tenant("ten_missing") is None
    full = tenant("acme", allowed_models=("gpt-4o-mini", "claude-3-5-haiku"),
                  limits=Limits(requests_per_second=5.5, burst=10, requests_per_minute=600,
                                tokens_per_minute=100_000, concurrent_requests=4,
                                daily_token_quota=1_000_000),
                  monthly_budget_usd=125.5, default_provider="openai",
                  fallback_providers=("anthropic", "google"), disabled=True)
    created = await store.create_tenant(full)
    same_tenant(created, full)
    fetched = await store.get_tenant(full.id)
    assert fetched is not None
    same_tenant(fetched, full)

    plain = await store.create_tenant(tenant("globex"))
    assert plain.limits == Limits() and plain.monthly_budget_usd is None
    assert [t.name for t in await store.list_tenants()] == ["acme", "globex"]
    assert await store.delete_tenant(plain.id) is True
    assert await store.delete_tenant(plain.id) is False
    assert [t.id for t in await store.list_tenants()] == [full.id]


async def test_duplicate_names_and_ids_are_refused(store: TenantStore) -> None:
    first = await store.create_tenant(tenant("acme"))
    with pytest.raises(AlreadyExistsError, match="acme"):
        await store.create_tenant(tenant("acme"))
    with pytest.raises(AlreadyExistsError, match=first.id):
        await store.create_tenant(dataclasses.replace(first, name="other"))
    other = await store.create_tenant(tenant("globex"))
    with pytest.raises(AlreadyExistsError, match="acme"):
        await store.update_tenant(dataclasses.replace(other, name="acme"))
    assert [t.name for t in await store.list_tenants()] == ["acme", "globex"]


async def test_update_replaces_all_but_id_and_created_at(store: TenantStore) -> None:
    original = await store.create_tenant(tenant("acme", created_at=time.time() - 3600,
                                                updated_at=time.time() - 3600))
    change = dataclasses.replace(
        original, name="acme-2", allowed_models=("m",), limits=Limits(burst=3),
        monthly_budget_usd=9.0, default_provider="ollama", fallback_providers=("mock",),
        provider_keys={"openai": "v1:token"}, disabled=True, created_at=0.0)
    updated = await store.update_tenant(change)
    assert updated is not None
    assert updated.id == original.id
    assert updated.created_at == pytest.approx(original.created_at, abs=1e-5)
    assert updated.updated_at > original.updated_at + 3000
    same_tenant(dataclasses.replace(change, created_at=original.created_at), updated)
    fetched = await store.get_tenant(original.id)
    assert fetched is not None
    same_tenant(fetched, updated)
    assert await store.update_tenant(tenant("ghost")) is None
    # The old name is free again.
    await store.create_tenant(tenant("acme"))


async def test_delete_cascades_to_keys_but_keeps_usage(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme"))
    other = await store.create_tenant(tenant("globex"))
    await store.add_key(api_key(acme.id, "sk-acme-1"))
    await store.add_key(api_key(other.id, "sk-globex-1"))
    now = time.time()
    await store.record_usage([usage(acme.id, now), usage(acme.id, now)])

    assert await store.delete_tenant(acme.id)
    assert await store.get_tenant(acme.id) is None
    assert await store.key_by_hash("hash-of-sk-acme-1") is None
    assert await store.list_keys(acme.id) == []
    assert (await store.usage_since(acme.id, now - DAY)).requests == 2
    assert await store.key_by_hash("hash-of-sk-globex-1") is not None


async def test_keys_by_hash_and_listing(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme"))
    other = await store.create_tenant(tenant("globex"))
    now = time.time()
    first = api_key(acme.id, "sk-one", name="ci", created_at=now - 10, expires_at=now + DAY)
    second = api_key(acme.id, "sk-two", created_at=now)
    for key in (second, first, api_key(other.id, "sk-three")):
        await store.add_key(key)

    found = await store.key_by_hash("hash-of-sk-one")
    assert found is not None
    assert (found.id, found.tenant_id, found.prefix, found.name) == (first.id, acme.id,
                                                                     "sk-one", "ci")
    assert found.expires_at == pytest.approx(now + DAY, abs=1e-5)
    assert found.revoked_at is None and found.usable(now)
    assert await store.key_by_hash("hash-of-nothing") is None
    assert [k.id for k in await store.list_keys(acme.id)] == [first.id, second.id]
    assert await store.list_keys("ten_missing") == []

    with pytest.raises(AlreadyExistsError):
        await store.add_key(api_key(other.id, "sk-one"))  # same hash
    with pytest.raises(NotFoundError):
        await store.add_key(api_key("ten_missing", "sk-four"))


async def test_revoke_is_idempotent(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme"))
    key = api_key(acme.id, "sk-one")
    await store.add_key(key)
    revoked = await store.revoke_key(key.id)
    assert revoked is not None and revoked.revoked_at is not None
    assert not revoked.usable(time.time())
    again = await store.revoke_key(key.id)
    assert again is not None and again.revoked_at == revoked.revoked_at
    stored = await store.key_by_hash(key.hash)
    assert stored is not None and stored.revoked_at == revoked.revoked_at
    assert await store.revoke_key("key_missing") is None


async def test_usage_totals_since_a_time(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme"))
    since = time.time() // DAY * DAY  # today, UTC midnight: how quotas and budgets ask
    assert await store.usage_since(acme.id, since) == (await store.usage_since("x", 0))
    await store.record_usage([])
    await store.record_usage([
        usage(acme.id, since - 1, prompt=1000, completion=1000, cost=100.0),  # yesterday
        usage(acme.id, since - 40 * DAY, prompt=1000, completion=1000, cost=100.0),
        usage(acme.id, since, prompt=10, completion=5, cost=0.25),
        usage(acme.id, since + 1, prompt=20, completion=7, cost=0.5),
        usage("ten_other", since + 1, prompt=500, completion=500, cost=50.0),
    ])
    await store.record_usage([usage(acme.id, since + 2, prompt=3, completion=1, cost=0.125)])
    totals = await store.usage_since(acme.id, since)
    assert (totals.requests, totals.prompt_tokens, totals.completion_tokens) == (3, 33, 13)
    assert totals.cost_usd == pytest.approx(0.875)
    assert (await store.usage_since(acme.id, since - DAY)).requests == 4
    empty = await store.usage_since("ten_nobody", since)
    assert (empty.requests, empty.prompt_tokens, empty.cost_usd) == (0, 0, 0.0)


async def test_budgets_per_key_and_model_round_trip(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme", monthly_budget_usd=10.0,
                                            model_budgets={"gpt-4o": 2.5, "o1": 0.0},
                                            budget_period="daily"))
    fetched = await store.get_tenant(acme.id)
    assert fetched is not None and dict(fetched.model_budgets) == {"gpt-4o": 2.5, "o1": 0.0}
    assert fetched.budget_period == "daily"
    changed = await store.update_tenant(dataclasses.replace(
        fetched, model_budgets={"gpt-4o": 3.0}, budget_period="monthly"))
    assert changed is not None and dict(changed.model_budgets) == {"gpt-4o": 3.0}
    assert changed.budget_period == "monthly"
    capped = api_key(acme.id, "sk-capped", monthly_budget_usd=1.5, budget_period="daily")
    plain = api_key(acme.id, "sk-plain")
    await store.add_key(capped)
    await store.add_key(plain)
    got = await store.key_by_hash(capped.hash)
    assert got is not None and (got.monthly_budget_usd, got.budget_period) == (1.5, "daily")
    got = await store.key_by_hash(plain.hash)
    assert got is not None and (got.monthly_budget_usd, got.budget_period) == (None, "monthly")
    assert [k.monthly_budget_usd for k in await store.list_keys(acme.id)] == [1.5, None]


async def test_usage_totals_per_key_and_per_model(store: TenantStore) -> None:
    acme = await store.create_tenant(tenant("acme"))
    since = time.time() // DAY * DAY
    await store.record_usage([
        usage(acme.id, since, cost=1.0, model="gpt-4o", api_key_id="key_a"),
        usage(acme.id, since + 1, cost=2.0, model="gpt-4o", api_key_id="key_b"),
        usage(acme.id, since + 2, cost=4.0, model="o1", api_key_id="key_a"),
        usage(acme.id, since - 1, cost=8.0, model="gpt-4o", api_key_id="key_a"),  # yesterday
        usage(acme.id, since + 3, cost=16.0, model="gpt-4o"),  # a static key or a token
        usage("ten_other", since, cost=32.0, model="gpt-4o", api_key_id="key_a"),
    ])
    assert (await store.usage_since(acme.id, since)).cost_usd == 23.0
    by_key = await store.usage_since(acme.id, since, api_key_id="key_a")
    assert (by_key.requests, by_key.cost_usd) == (2, 5.0)
    by_model = await store.usage_since(acme.id, since, model="gpt-4o")
    assert (by_model.requests, by_model.cost_usd) == (3, 19.0)
    assert (await store.usage_since(acme.id, since - DAY, model="gpt-4o")).cost_usd == 27.0
    assert (await store.usage_since(acme.id, since, api_key_id="key_c")).requests == 0


async def test_usage_with_any_model_name_a_client_sent_is_recorded(store: TenantStore) -> None:
    """The model of a usage row is the name the client asked for: a NUL, a lone surrogate or
    a name past any index's bound must not fail the batch (it would, at every retry, and no
    usage of the replica would be written again)."""
    acme = await store.create_tenant(tenant("acme"))
    since = time.time() // DAY * DAY
    await store.record_usage([usage(acme.id, since, cost=1.0, model="a\x00b"),
                              usage(acme.id, since, cost=2.0, model="lone \ud800"),
                              usage(acme.id, since, cost=4.0, model="m" * 5000),
                              usage(acme.id, since, cost=8.0)])
    assert (await store.usage_since(acme.id, since)).cost_usd == 15.0


async def test_provider_keys_round_trip_as_stored_ciphertexts(store: TenantStore) -> None:
    cipher = CredentialCipher(os.urandom(32))
    acme = tenant("acme")
    sealed = {p: cipher.encrypt(f"{PLAINTEXT}-{p}", context=credential_context(acme.id, p))
              for p in ("openai", "anthropic")}
    await store.create_tenant(dataclasses.replace(acme, provider_keys=sealed))
    fetched = await store.get_tenant(acme.id)
    assert fetched is not None
    assert dict(fetched.provider_keys) == sealed
    assert cipher.decrypt(fetched.provider_keys["openai"],
                          context=credential_context(acme.id, "openai")) == f"{PLAINTEXT}-openai"
    assert PLAINTEXT not in repr(fetched)


async def test_the_caller_cannot_change_a_stored_tenant_by_its_mapping() -> None:
    store = MemoryTenantStore()
    keys = {"openai": "v1:a"}
    acme = await store.create_tenant(tenant("acme", provider_keys=keys))
    keys["openai"] = "changed"
    fetched = await store.get_tenant(acme.id)
    assert fetched is not None and fetched.provider_keys["openai"] == "v1:a"


# --- PostgreSQL only ------------------------------------------------------------------------


async def migration_rows(dsn: str) -> list[tuple[str, int]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT component, version FROM schema_migrations "
                                "ORDER BY component, version")
        return [(r["component"], r["version"]) for r in rows]
    finally:
        await conn.close()


async def test_migrations_are_idempotent_and_race_free(postgres_dsn: str) -> None:
    expected = [("tenancy", v) for v, _, _ in MIGRATIONS]
    stores = [PostgresTenantStore(postgres_dsn) for _ in range(4)]
    try:
        await asyncio.gather(*(s.start() for s in stores))  # replicas starting together
        assert await migration_rows(postgres_dsn) == expected
        await stores[0].start()  # and again, on a started store
        await stores[1].create_tenant(tenant("acme"))
        assert [t.name for t in await stores[2].list_tenants()] == ["acme"]
    finally:
        for s in stores:
            await s.aclose()
    async with PostgresTenantStore(postgres_dsn) as later:
        assert [t.name for t in await later.list_tenants()] == ["acme"]
    assert await migration_rows(postgres_dsn) == expected


async def test_only_new_migrations_are_applied(postgres_dsn: str) -> None:
    async with PostgresTenantStore(postgres_dsn):
        pass
    later = (*MIGRATIONS, (len(MIGRATIONS) + 1, "tenant notes",
                           "ALTER TABLE tenants ADD COLUMN note text NOT NULL DEFAULT ''"))
    conn = await asyncpg.connect(postgres_dsn)
    try:
        assert await apply_migrations(conn, "tenancy", later) == [len(MIGRATIONS) + 1]
        assert await apply_migrations(conn, "tenancy", later) == []
        assert await apply_migrations(conn, "other", [(1, "x", "CREATE TABLE x (i int)")]) == [1]
    finally:
        await conn.close()
    async with PostgresTenantStore(postgres_dsn) as store:  # unknown columns do no harm
        await store.create_tenant(tenant("acme"))
    assert len(await migration_rows(postgres_dsn)) == len(MIGRATIONS) + 2


async def test_a_database_of_the_first_schema_is_upgraded(postgres_dsn: str) -> None:
    """Tenants, keys and usage written before per-key and per-model budgets existed read
    back with none of them (monthly), and usage rows without a key."""
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await apply_migrations(conn, "tenancy", MIGRATIONS[:1])
        await conn.execute("INSERT INTO tenants (id, name, monthly_budget_usd)"
                           " VALUES ('ten_old', 'old', 5)")
        await conn.execute("INSERT INTO api_keys (id, tenant_id, hash, prefix)"
                           " VALUES ('key_old', 'ten_old', 'h-old', 'sk-old')")
        await conn.execute("INSERT INTO usage (tenant_id, model, provider, prompt_tokens,"
                           " completion_tokens, cost_usd, latency_ms, status)"
                           " VALUES ('ten_old', 'gpt-4o', 'openai', 1, 1, 0.5, 1, 'ok')")
    finally:
        await conn.close()
    async with PostgresTenantStore(postgres_dsn) as store:
        old = await store.get_tenant("ten_old")
        assert old is not None and old.monthly_budget_usd == 5
        assert (dict(old.model_budgets), old.budget_period) == ({}, "monthly")
        key = await store.key_by_hash("h-old")
        assert key is not None and (key.monthly_budget_usd, key.budget_period) == (
            None, "monthly")
        assert (await store.usage_since("ten_old", 0, model="gpt-4o")).cost_usd == 0.5
        assert (await store.usage_since("ten_old", 0, api_key_id="key_old")).requests == 0


async def test_data_outlives_the_store_object(postgres_dsn: str) -> None:
    acme = tenant("acme", limits=Limits(daily_token_quota=7))
    async with PostgresTenantStore(postgres_dsn) as first:
        await first.create_tenant(acme)
        await first.add_key(api_key(acme.id, "sk-one"))
        await first.record_usage([usage(acme.id, time.time())])
    # Both spellings of the scheme.
    async with PostgresTenantStore(postgres_dsn.replace("postgresql://", "postgres://")) as again:
        fetched = await again.get_tenant(acme.id)
        assert fetched is not None and fetched.limits.daily_token_quota == 7
        assert await again.key_by_hash("hash-of-sk-one") is not None
        assert (await again.usage_since(acme.id, 0)).requests == 1


def test_a_dsn_of_another_kind_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="postgres://") as caught:
        PostgresTenantStore("mysql://root:hunter2@db/x")
    assert "hunter2" not in str(caught.value)
    with pytest.raises(ValueError) as caught:
        PostgresTenantStore("root:hunter2@db/x")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(PostgresTenantStore("postgresql://root:hunter2@db/x"))


def assert_unavailable(exc: pytest.ExceptionInfo[UnavailableError], server: PostgresServer,
                       dsn: str) -> None:
    assert exc.value.message == "tenant store unavailable"
    seen: BaseException | None = exc.value
    while seen is not None:  # nothing in the chain a traceback would print
        for secret in (dsn, server.password):
            assert secret not in str(seen) and secret not in repr(seen)
        seen = seen.__cause__ or (None if seen.__suppress_context__ else seen.__context__)


async def test_a_wrong_password_is_unavailable_without_leaking_it(
    postgres_server: PostgresServer,
) -> None:
    dsn = postgres_server.url.replace(postgres_server.password, "not-the-password-42")
    with pytest.raises(UnavailableError) as caught:
        await PostgresTenantStore(dsn, connect_timeout=2).start()
    assert_unavailable(caught, postgres_server, dsn)


async def test_a_silent_server_times_out_quickly() -> None:
    with socket.socket() as silent:  # accepts connections (the backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dsn = f"postgresql://u:secret-pw@127.0.0.1:{silent.getsockname()[1]}/db"
        started = time.monotonic()
        with pytest.raises(UnavailableError, match="^tenant store unavailable$"):
            await PostgresTenantStore(dsn, connect_timeout=0.5).start()
        assert time.monotonic() - started < 3


async def test_an_outage_is_unavailable_then_recovers() -> None:
    server = PostgresServer().start()
    dsn = server.create_database("gateway")
    store = PostgresTenantStore(dsn, connect_timeout=1, command_timeout=2)
    try:
        await store.start()
        acme = await store.create_tenant(tenant("acme"))
        await store.add_key(api_key(acme.id, "sk-one"))
        server.stop()

        calls: list[Callable[[], Awaitable[object]]] = [
            store.ping, lambda: store.get_tenant(acme.id), store.list_tenants,
            lambda: store.create_tenant(tenant("globex")),
            lambda: store.key_by_hash("hash-of-sk-one"), lambda: store.revoke_key("key_x"),
            lambda: store.record_usage([usage(acme.id, time.time())]),
            lambda: store.usage_since(acme.id, 0), store.start]
        for call in calls:
            with pytest.raises(UnavailableError) as caught:
                await call()
            assert_unavailable(caught, server, dsn)
        with pytest.raises(UnavailableError) as caught:
            await PostgresTenantStore(dsn, connect_timeout=1).start()  # a replica starting now
        assert_unavailable(caught, server, dsn)

        server.start()
        await store.ping()
        assert (await store.get_tenant(acme.id)) is not None
        assert await store.key_by_hash("hash-of-sk-one") is not None
        await store.record_usage([usage(acme.id, time.time())])
        assert (await store.usage_since(acme.id, 0)).requests == 1
    finally:
        await store.aclose()
        server.close()


async def test_no_table_holds_a_plaintext_credential(postgres_dsn: str) -> None:
    cipher = CredentialCipher(os.urandom(32))
    acme = tenant("acme")
    sealed = {"openai": cipher.encrypt(PLAINTEXT, context=credential_context(acme.id, "openai"))}
    async with PostgresTenantStore(postgres_dsn) as store:
        await store.create_tenant(dataclasses.replace(acme, provider_keys=sealed))
        await store.add_key(api_key(acme.id, "sk-one"))
        await store.record_usage([usage(acme.id, time.time())])
        renamed = dataclasses.replace(acme, name="acme-2", provider_keys={
            "openai": cipher.reencrypt(sealed["openai"], credential_context(acme.id, "openai"))})
        await store.update_tenant(renamed)

    conn = await asyncpg.connect(postgres_dsn)
    try:
        tables = [r["table_name"] for r in await conn.fetch(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        assert {"tenants", "api_keys", "usage", "schema_migrations"} <= set(tables)
        dump = []
        for table in tables:
            dump += [r["row"] for r in await conn.fetch(f'SELECT t::text AS row FROM "{table}" t')]
    finally:
        await conn.close()
    text = "\n".join(dump)
    assert "v1:" in text and acme.id in text  # the dump does see the tenant and its ciphertext
    assert PLAINTEXT not in text
    assert PLAINTEXT[:16] not in text
