"""Who is calling: credentials in, an :class:`Identity` out.

A bearer token (``Authorization: Bearer ...`` or ``x-api-key``) is, in order:
an admin key (constant-time against every configured one); a JWT, verified
against the OIDC issuer; a static key from the config (tenant ``default``); a
tenant's API key, looked up by its SHA-256. While an auth method is enabled
(``auth.api_keys.enabled`` or ``auth.oidc.enabled``) anything else is a 401. While
none is, a caller without a valid credential is identified by its client IP: the
OpenAI SDKs always send some bearer token, and a gateway without auth must take
them all; a valid key still identifies its tenant (limits, budget, usage). That
is a risk once admin keys or tenants exist (a restricted tenant's key is refused
while the same caller with no key is served): :meth:`Authenticator.unguarded`
names it, and the app logs it at start-up.

Keys and tenants are cached for :data:`CACHE_TTL` seconds, so a revocation or a
tenant change reaches every replica within that time without a database query
per request.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, TypeVar

from gateway.config import AuthConfig
from gateway.errors import AuthenticationError, PermissionDeniedError
from gateway.tenancy.jose import looks_like_jwt
from gateway.tenancy.keys import hash_secret, matches_any
from gateway.tenancy.models import ApiKey, Tenant, TenantStore

if TYPE_CHECKING:
    from gateway.tenancy.oidc import OidcVerifier

__all__ = ["DEFAULT_TENANT", "Authenticator", "Identity", "current_identity", "set_identity"]

CACHE_TTL = 5.0
_CACHE_MAX = 10_000
DEFAULT_TENANT = "default"
# The usage account of the admin key, which has no tenant (tenant ids are ``ten_...``).
ADMIN_ACCOUNT = "admin"

Kind = Literal["admin", "api_key", "static_key", "oidc", "ip"]


@dataclass(frozen=True, slots=True)
class Identity:
    kind: Kind
    subject: str  # key id, JWT subject, or client IP
    tenant_id: str = ""
    tenant: Tenant | None = None
    roles: tuple[str, ...] = ()
    api_key: ApiKey | None = None  # the tenant's key it called with (its own budget)

    @property
    def is_admin(self) -> bool:
        return self.kind == "admin" or "admin" in self.roles

    @property
    def usage_account(self) -> str:
        """Whom usage rows and spend are recorded for: the tenant, or :data:`ADMIN_ACCOUNT`
        for the admin key (which skips limits but not accounting); empty: nobody."""
        return self.tenant_id or (ADMIN_ACCOUNT if self.kind == "admin" else "")

    @property
    def rate_subject(self) -> str:
        """The key per-identity limits count under."""
        return f"{self.kind}:{self.subject}"

    @property
    def owner(self) -> str:
        """The scope this identity shares with its tenant (the response cache, and stored
        responses with ``conversations.share_within_tenant``): its tenant, else itself."""
        return f"tenant:{self.tenant_id}" if self.tenant_id else self.rate_subject


K = TypeVar("K")
V = TypeVar("V")


_identity: contextvars.ContextVar[Identity | None] = contextvars.ContextVar(
    "identity", default=None)


def current_identity() -> Identity | None:
    """The caller of the RPC being served (set by the service's interceptor)."""
    return _identity.get()


def set_identity(identity: Identity | None) -> contextvars.Token[Identity | None]:
    return _identity.set(identity)


class _TtlCache(Generic[K, V]):
    def __init__(self, clock: Callable[[], float]):
        self._clock = clock
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> tuple[bool, V | None]:
        item = self._items.get(key)
        if item is None or item[0] < self._clock():
            return False, None
        return True, item[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= _CACHE_MAX:
            self._items.clear()  # bounded; a cold cache only costs lookups
        self._items[key] = (self._clock() + CACHE_TTL, value)

    def clear(self) -> None:
        self._items.clear()


class Authenticator:
    def __init__(self, config: AuthConfig, store: TenantStore, oidc: OidcVerifier | None, *,
                 clock: Callable[[], float] = time.monotonic):
        self._admin_keys = [k.encode() for k in config.admin_keys]
        self._static_keys = ([k.encode() for k in config.api_keys.keys]
                             if config.api_keys.enabled else [])
        self._store = store
        self._oidc = oidc
        self.required = config.api_keys.enabled or oidc is not None
        self._keys: _TtlCache[str, ApiKey] = _TtlCache(clock)
        self._tenants: _TtlCache[str, Tenant] = _TtlCache(clock)

    async def unguarded(self) -> str | None:
        """A warning if no auth method is on although admin keys or tenants exist, else None.

        Example::

            auth = Authenticator(AuthConfig(admin_keys=("adm",)), MemoryTenantStore(), None)
            await auth.unguarded()  # 'auth is off although admin keys are configured: ...'
        """
        if self.required:
            return None
        present = []
        if self._admin_keys:
            present.append("admin keys are configured")
        if await self._store.list_tenants():
            present.append("the tenant store holds tenants")
        if not present:
            return None  # zero config: serving anonymous callers is the point
        return (f"auth is off although {' and '.join(present)}: a caller with no valid key "
                "is served as its client IP, outside every tenant's allowed models, limits "
                "and budget (a restricted tenant's key is refused, the same caller without "
                "it is served); set auth.api_keys.enabled: true (tenant keys still work) or "
                "enable auth.oidc to refuse anonymous callers")

    def forget(self) -> None:
        """Drop cached keys and tenants (after an admin change in this process)."""
        self._keys.clear()
        self._tenants.clear()

    async def tenant(self, tenant_id: str) -> Tenant | None:
        hit, tenant = self._tenants.get(tenant_id)
        if not hit:
            tenant = await self._store.get_tenant(tenant_id)
            self._tenants.put(tenant_id, tenant)  # type: ignore[arg-type]
        return tenant

    async def _with_tenant(self, identity: Identity) -> Identity:
        """``identity`` with its tenant's record. No record, no service: an API key whose
        tenant was deleted is no key (401), a token naming an unknown tenant is refused
        (403). The config's static keys belong to the ``default`` tenant, which needs no
        record (one created by an admin brings its limits)."""
        if not identity.tenant_id:
            return identity
        tenant = await self.tenant(identity.tenant_id)
        if tenant is None and identity.kind == "api_key":
            raise AuthenticationError("invalid API key")
        if tenant is None and identity.kind == "oidc":
            raise PermissionDeniedError(f"the token names tenant '{identity.tenant_id}', "
                                        "which does not exist")
        if tenant is not None and tenant.disabled:
            raise PermissionDeniedError("this tenant is disabled")
        return Identity(identity.kind, identity.subject, identity.tenant_id, tenant,
                        identity.roles, identity.api_key)

    async def authenticate(self, token: str, client_ip: str) -> Identity:
        if not token:
            if self.required:
                raise AuthenticationError(
                    "authentication required: send 'Authorization: Bearer <key or token>'")
            return Identity("ip", client_ip)
        if self._admin_keys and matches_any(token, self._admin_keys):
            return Identity("admin", "admin-key", roles=("admin",))
        if looks_like_jwt(token):
            if self._oidc is None:
                if self.required:
                    raise AuthenticationError("bearer tokens (JWT) are not accepted here")
                return Identity("ip", client_ip)
            claims = await self._oidc.verify(token)
            return await self._with_tenant(
                Identity("oidc", claims.subject, claims.tenant, roles=claims.roles))
        if self._static_keys and matches_any(token, self._static_keys):
            return await self._with_tenant(
                Identity("static_key", hash_secret(token)[:16], DEFAULT_TENANT))
        key = await self._key(hash_secret(token))
        if key is None or not key.usable(time.time()):
            if not self.required:
                return Identity("ip", client_ip)
            raise AuthenticationError("invalid API key")
        return await self._with_tenant(Identity("api_key", key.id, key.tenant_id,
                                                api_key=key))

    async def _key(self, key_hash: str) -> ApiKey | None:
        hit, key = self._keys.get(key_hash)
        if not hit:
            key = await self._store.key_by_hash(key_hash)
            self._keys.put(key_hash, key)  # type: ignore[arg-type]
        return key
