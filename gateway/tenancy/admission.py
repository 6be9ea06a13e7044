"""Admission: may this identity make this request now, and what it cost afterwards.

:meth:`Admission.admit` runs before routing: the tenant's allowed models, its
budgets (the tenant's, the API key's and the tenant's for the model: 402 when the
request does not fit one; see :func:`budgets_of`), then the rate limits, per identity
(the config's ``rate_limit``) and per tenant (the tenant's limits), each one atomic
check. It reserves the request's :class:`Estimate` (its tokens from tokens per minute
and the daily quota, its cost from every budget, all or nothing), so a burst of
concurrent requests cannot all pass on one reading. It hands back an :class:`Admitted`
whose ``headers`` are the ``X-RateLimit-*`` values and whose ``credentials`` are the
tenant's own provider keys, decrypted. :meth:`Admission.settle` runs after the answer,
stream or not: it gives back the concurrency slots and the reservations and charges the
real tokens, all in one round trip to Redis, then records the usage row and the spend.

Example::

    admitted = await admission.admit(identity, "gpt-4o-mini", lambda: Estimate(1200, 1024))
    try:
        ...  # route, answer
    finally:
        await admission.settle(admitted, usage_row)
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
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
from gateway.tenancy.usage import Budget, Budgets, Hold, UsageRecorder

__all__ = ["DEFAULT_OUTPUT_RESERVATION", "Admission", "Admitted", "CostEstimator", "Estimate",
           "budgets_of"]

# Output tokens reserved for a request that sets no limit on its answer.
DEFAULT_OUTPUT_RESERVATION = 1024

# The cost of (model asked for, prompt tokens, output tokens or None when the request sets
# no limit), at the dearest of the deployments the model may be served by.
CostEstimator = Callable[[str, int, int | None], float]

log = logging.getLogger("gateway.tenancy")


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a request is expected to use, reserved at admission: its prompt (estimated
    from its text) and its answer (its ``max_tokens``; None when it sets none: the price
    table's ``max_output_tokens`` for the budget, else :data:`DEFAULT_OUTPUT_RESERVATION`)."""

    prompt_tokens: int
    output_tokens: int | None

    @property
    def tokens(self) -> int:
        output = self.output_tokens
        return self.prompt_tokens + (DEFAULT_OUTPUT_RESERVATION if output is None else output)


@dataclass(slots=True)
class Admitted:
    identity: Identity
    leases: list[tuple[str, Limits, str]] = field(default_factory=list)  # subject, limits, lease
    headers: dict[str, str] = field(default_factory=dict)
    credentials: Mapping[str, str] | None = None
    reserved_tokens: int = 0  # taken from each subject's token limits
    hold: Hold | None = None  # the estimated cost held against the budgets
    model: str = ""  # as asked for (the model budgets')


def budgets_of(identity: Identity, model: str | None) -> list[Budget]:
    """The budgets a request of ``identity`` for ``model`` counts in: its tenant's own
    (always first, ``usd`` None when it has none: counted only), its API key's, and its
    tenant's for that model (``model`` None: for every model, as ``/v1/usage`` shows).
    Nobody to charge, no budgets."""
    account = identity.usage_account
    if not account:
        return []
    tenant = identity.tenant
    period = tenant.budget_period if tenant is not None else "monthly"
    out = [Budget(account, tenant.monthly_budget_usd if tenant is not None else None, period)]
    key = identity.api_key
    if key is not None and key.monthly_budget_usd is not None:
        out.append(Budget(account, key.monthly_budget_usd, key.budget_period,
                          api_key_id=key.id))
    if tenant is not None:
        out += [Budget(account, usd, period, model=name)
                for name, usd in sorted(tenant.model_budgets.items())
                if model is None or name == model]
    return out


def _headers(decision: LimitDecision) -> dict[str, str]:
    if not decision.limit:
        return {}
    return {"x-ratelimit-limit": str(decision.limit),
            "x-ratelimit-remaining": str(max(0, decision.remaining)),
            "x-ratelimit-reset": str(math.ceil(decision.reset_after))}


class Admission:
    def __init__(self, limiter: RateLimiter, budgets: Budgets, recorder: UsageRecorder, *,
                 identity_limits: Limits | None, cipher: CredentialCipher | None,
                 cost: CostEstimator | None = None):
        self._cost = cost
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

    async def admit(self, identity: Identity, model: str,
                    estimate: Callable[[], Estimate] | None = None) -> Admitted:
        """``estimate`` (None: nothing is reserved) is made only when a budget or a token
        limit applies, and held until :meth:`settle`."""
        admitted = Admitted(identity, model=model)
        tenant = identity.tenant
        checks = self._checks(identity)
        budgets = ([b for b in budgets_of(identity, model) if b.usd is not None]
                   if tenant is not None else [])
        expected = None
        if estimate is not None and (budgets or any(
                limits.tokens_per_minute is not None or limits.daily_token_quota is not None
                for _, limits in checks)):
            expected = estimate()
        if tenant is not None:
            if tenant.allowed_models and model not in tenant.allowed_models:
                raise PermissionDeniedError(f"this tenant may not use the model '{model}'",
                                            param="model")
            if budgets:
                cost = 0.0
                if expected is not None and self._cost is not None:
                    cost = self._cost(model, expected.prompt_tokens, expected.output_tokens)
                hold = await self._budgets.reserve(budgets, cost)
                if isinstance(hold, Budget):
                    raise BudgetExceededError(f"{hold.label} is spent", code="budget_exceeded")
                admitted.hold = hold
        admitted.reserved_tokens = expected.tokens if expected is not None else 0
        try:
            closest: LimitDecision | None = None
            for subject, limits in checks:
                decision = await self._limiter.acquire(subject, limits, admitted.reserved_tokens)
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
        except BaseException:
            # Nobody settles a request that was not admitted: the slots and reservations
            # taken go back here, whether a later limit refused or failed (a limiter's error
            # is a 500, not an outage), the credentials cannot be opened, or the caller left.
            await self._unreserve(admitted)
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

    def _releases(self, admitted: Admitted) -> list[Awaitable[None]]:
        """The calls that give the slots back (the leases are forgotten here)."""
        calls: list[Awaitable[None]] = [self._limiter.release(subject, lease)
                                         for subject, _, lease in admitted.leases if lease]
        admitted.leases.clear()
        return calls

    async def _unreserve(self, admitted: Admitted) -> None:
        """Slots and reservations back (a request that used nothing)."""
        await self._give_back(admitted, 0, 0.0)

    async def _give_back(self, admitted: Admitted, used: int, cost: float) -> None:
        """Slots back, each subject charged the tokens used less those reserved (negative:
        a refund), the budgets' hold settled to the real cost: every call at once, so the
        settlement costs one round trip to Redis however many limits and budgets apply."""
        leases = list(admitted.leases)
        calls = self._releases(admitted)
        delta = used - admitted.reserved_tokens
        admitted.reserved_tokens = 0
        if delta:
            calls += [self._limiter.charge(subject, limits, delta)
                      for subject, limits, _ in leases]
        hold, admitted.hold = admitted.hold, None
        if hold is not None:
            calls.append(self._budgets.settle(hold, cost))
        if len(calls) == 1:
            await calls[0]
        elif calls:
            # Shielded: this runs in the ``finally`` of requests being cancelled, and a
            # second cancellation must not cancel a release before it ran (a slot lost).
            settled = asyncio.gather(*calls, return_exceptions=True)
            for outcome in await asyncio.shield(settled):
                if isinstance(outcome, BaseException):
                    raise outcome

    async def settle(self, admitted: Admitted, row: UsageRow | None) -> None:
        """After the answer (or the failure): slots and reservations back, tokens charged,
        usage recorded."""
        used = row.prompt_tokens + row.completion_tokens if row is not None else 0
        await self._give_back(admitted, used, row.cost_usd if row is not None else 0.0)
        if row is None:
            return
        if row.tenant_id:
            self._recorder.record(row)
            await self._budgets.add(budgets_of(admitted.identity, admitted.model),
                                    row.cost_usd)
