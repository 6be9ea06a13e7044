"""Issue 19 item 12: auth off while admin keys or tenants exist is named at start-up."""

from __future__ import annotations

from gateway.config import ApiKeysConfig, AuthConfig
from gateway.tenancy.auth import Authenticator
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import Tenant


async def test_zero_config_serves_anonymous_callers_without_a_warning() -> None:
    assert await Authenticator(AuthConfig(), MemoryTenantStore(), None).unguarded() is None


async def test_admin_keys_with_auth_off_are_named() -> None:
    auth = Authenticator(AuthConfig(admin_keys=("adm",)), MemoryTenantStore(), None)
    warning = await auth.unguarded()
    assert warning is not None
    assert "admin keys are configured" in warning and "auth.api_keys.enabled" in warning
    assert "adm," not in warning and "'adm'" not in warning  # never the key itself


async def test_stored_tenants_with_auth_off_are_named() -> None:
    store = MemoryTenantStore()
    await store.create_tenant(Tenant(id="ten_1", name="acme", allowed_models=("cheap",)))
    warning = await Authenticator(AuthConfig(), store, None).unguarded()
    assert warning is not None and "the tenant store holds tenants" in warning


async def test_no_warning_once_keys_are_required() -> None:
    config = AuthConfig(admin_keys=("adm",), api_keys=ApiKeysConfig(enabled=True))
    assert await Authenticator(config, MemoryTenantStore(), None).unguarded() is None
