"""Admission: may this identity make this request now, and what it cost afterwards.

:meth:`Admission.admit` runs before routing: the tenant's allowed models, its
monthly budget (402 when spent), then the rate limits, per identity (the config's
``rate_limit``) and per tenant (the tenant's limits), each one atomic check. It
hands back an :class:`Admitted` whose ``headers`` are the ``X-RateLimit-*`` values
and whose ``credentials`` are the tenant's own provider keys, decrypted.
:meth:`Admission.settle` runs after the answer, stream or not: it gives back the
concurrency slots, charges the real tokens, records the usage row and the spend.

Example::

    admitted = await admission.admit(identity, "gpt-4o-mini")
    try:
        ...  # route, answer
    finally:
        await admission.settle(admitted, usage_row)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.errors import (
    BudgetExceededError,
    PermissionDeniedError,
    RateLimitedError,
    UnavailableError,
)
from gateway.observability import metrics
from gateway.tenancy.auth import Identity
from gateway.tenancy.crypto import CredentialCipher, CredentialError
from gateway.tenancy.limits import LimitDecision, RateLimiter
from gateway.tenancy.models import Limits, UsageRow
from gateway.tenancy.usage import Budgets, UsageRecorder

__all__ = ["Admission", "Admitted"]

log = logging.getLogger("gateway.tenancy")


@dataclass(slots=True)
class Admitted:
    identity: Identity
    leases: list[tuple[str, Limits, str]] = field(default_factory=list)  # subject, limits, lease
    headers: dict[str, str] = field(default_factory=dict)
    credentials: Mapping[str, str] | None = None


def _headers(decision: LimitDecision) -> dict[str, str]:
    if not decision.limit:
        return {}
    return {"x-ratelimit-limit": str(decision.limit),
            "x-ratelimit-remaining": str(max(0, decision.remaining)),
            "x-ratelimit-reset": str(math.ceil(decision.reset_after))}


class Admission:
    def __init__(self, limiter: RateLimiter, budgets: Budgets, recorder: UsageRecorder, *,
                 identity_limits: Limits | None, cipher: CredentialCipher | None):
        self._limiter = limiter
        self._budgets = budgets
        self._recorder = recorder
        self._identity_limits = identity_limits
        self._cipher = cipher

    def _checks(self, identity: Identity) -> list[tuple[str, Limits]]:
        checks: list[tuple[str, Limits]] = []
        if self._identity_limits is not None and not identity.is_admin:
            checks.append((identity.rate_subject, self._identity_limits))
        if identity.tenant is not None:
            checks.append((f"tenant:{identity.tenant.id}", identity.tenant.limits))
        return checks

    async def admit(self, identity: Identity, model: str) -> Admitted:
        admitted = Admitted(identity)
        tenant = identity.tenant
        if tenant is not None:
            if tenant.allowed_models and model not in tenant.allowed_models:
                raise PermissionDeniedError(f"this tenant may not use the model '{model}'",
                                            param="model")
            budget = tenant.monthly_budget_usd
            if budget is not None and await self._budgets.spent(tenant.id) >= budget:
                raise BudgetExceededError(
                    "the tenant's monthly budget is spent", code="budget_exceeded")
        try:
            closest: LimitDecision | None = None
            for subject, limits in self._checks(identity):
                decision = await self._limiter.acquire(subject, limits)
                if not decision.allowed:
                    metrics.rate_limited(decision.scope or "unknown")
                    raise RateLimitedError(
                        f"rate limit exceeded ({decision.scope}); retry after "
                        f"{decision.retry_after:.1f}s",
                        retry_after=max(decision.retry_after, 0.001), scope=decision.scope,
                        headers=_headers(decision))
                admitted.leases.append((subject, limits, decision.lease))
                if decision.limit and (closest is None or decision.remaining < closest.remaining):
                    closest = decision
            if closest is not None:
                admitted.headers = _headers(closest)
            if tenant is not None and tenant.provider_keys:
                admitted.credentials = self._open_credentials(tenant.id, tenant.provider_keys)
        except Exception:
            # Nobody settles a request that was not admitted: the slots taken go back here,
            # whether a later limit refused or failed (a limiter's error is a 500, not an
            # outage) or the credentials cannot be opened.
            await self._release(admitted)
            raise
        return admitted

    def _open_credentials(self, tenant_id: str, sealed: Mapping[str, str]) -> dict[str, str]:
        """The tenant's own provider keys, in clear for this request only.

        A credential that cannot be opened (ENCRYPTION_KEY missing, or the key that
        sealed it removed) fails the request with 503 rather than quietly calling the
        provider on the gateway's own account.
        """
        if self._cipher is None:
            raise UnavailableError("this tenant's provider credentials need ENCRYPTION_KEY")
        try:
            return {provider: self._cipher.decrypt(token, context=f"{tenant_id}/{provider}")
                    for provider, token in sealed.items()}
        except CredentialError:
            log.error("a tenant credential cannot be decrypted", extra={"fields": {
                "tenant": tenant_id}})
            raise UnavailableError("this tenant's provider credentials cannot be opened; "
                                   "an administrator must set them again") from None

    async def _release(self, admitted: Admitted) -> None:
        for subject, _, lease in admitted.leases:
            if lease:
                await self._limiter.release(subject, lease)
        admitted.leases.clear()

    async def settle(self, admitted: Admitted, row: UsageRow | None) -> None:
        """After the answer (or the failure): slots back, tokens charged, usage recorded."""
        leases = list(admitted.leases)
        await self._release(admitted)
        if row is None:
            return
        tokens = row.prompt_tokens + row.completion_tokens
        if tokens:
            for subject, limits, _ in leases:
                await self._limiter.charge(subject, limits, tokens)
        tenant = admitted.identity.tenant
        if row.tenant_id:
            self._recorder.record(row)
            await self._budgets.add(row.tenant_id,
                                    tenant.monthly_budget_usd if tenant is not None else None,
                                    row.cost_usd)
