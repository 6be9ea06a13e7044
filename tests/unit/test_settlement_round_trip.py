"""Settling a request (slots back, tokens charged, the budgets' hold settled) makes its
Redis calls at once: one round trip after the answer, however many limits and budgets
apply (issue 23: a budget adds at most one round trip to a request, its reservation)."""

from __future__ import annotations

import asyncio

from gateway.tenancy.admission import Admission, Estimate
from gateway.tenancy.auth import Identity
from gateway.tenancy.limits.base import LimitDecision
from gateway.tenancy.memory_store import MemoryTenantStore
from gateway.tenancy.models import Limits, Tenant, UsageRow
from gateway.tenancy.usage import Budgets, Hold, UsageRecorder

LIMITS = Limits(concurrent_requests=5, tokens_per_minute=100_000)


class Together:
    """Every call waits until ``expected`` calls are waiting: made one after another, the
    first would wait for ever."""

    def __init__(self, expected: int) -> None:
        self.barrier = asyncio.Barrier(expected)
        self.calls: list[str] = []
        self.passed: list[str] = []

    async def meet(self, name: str) -> None:
        self.calls.append(name)
        await asyncio.wait_for(self.barrier.wait(), 5)
        self.passed.append(name)


class Limiter:
    def __init__(self, together: Together) -> None:
        self.together = together

    async def acquire(self, subject: str, limits: Limits, reserve: int = 0) -> LimitDecision:
        return LimitDecision(allowed=True, lease=f"lease-{subject}")

    async def release(self, subject: str, lease: str) -> None:
        await self.together.meet(f"release {subject}")

    async def charge(self, subject: str, limits: Limits, tokens: int) -> None:
        await self.together.meet(f"charge {subject} {tokens}")


class SettlingBudgets(Budgets):
    def __init__(self, together: Together) -> None:
        super().__init__(MemoryTenantStore())
        self.together = together

    async def settle(self, hold: Hold, cost: float) -> None:
        await self.together.meet(f"settle {cost}")
        await super().settle(hold, cost)


def admitting(together: Together) -> Admission:
    store = MemoryTenantStore()
    return Admission(Limiter(together), SettlingBudgets(together),  # type: ignore[arg-type]
                     UsageRecorder(store), identity_limits=LIMITS, cipher=None,
                     cost=lambda model, prompt, output: 0.5)


TENANT = Tenant(id="ten_1", name="acme", limits=LIMITS, monthly_budget_usd=10.0)
IDENTITY = Identity(kind="api_key", subject="key_1", tenant_id="ten_1", tenant=TENANT)
ROW = UsageRow("ten_1", "m", "p", 40, 10, 0.2, 1.0, "OK")


async def test_every_call_of_a_settlement_is_made_at_once() -> None:
    # two subjects: a release and a charge each, and the budget's hold: five calls
    together = Together(5)
    admission = admitting(together)
    admitted = await admission.admit(IDENTITY, "m", lambda: Estimate(100, 50))
    assert admitted.hold is not None and admitted.reserved_tokens == 150
    await asyncio.wait_for(admission.settle(admitted, ROW), 10)
    assert sorted(together.calls) == [
        "charge api_key:key_1 -100", "charge tenant:ten_1 -100",
        "release api_key:key_1", "release tenant:ten_1", "settle 0.2"]
    assert admitted.hold is None and not admitted.leases


async def test_a_request_cancelled_again_while_settling_still_gives_everything_back() -> None:
    """Settling runs in the ``finally`` of a cancelled request; cancelled once more there,
    its calls must still run (else a concurrency slot is lost for good)."""
    together = Together(5)
    admission = admitting(together)
    admitted = await admission.admit(IDENTITY, "m", lambda: Estimate(100, 50))
    settling = asyncio.ensure_future(admission.settle(admitted, ROW))
    await asyncio.sleep(0)  # it has started its calls and waits for them
    settling.cancel()
    await asyncio.gather(settling, return_exceptions=True)
    for _ in range(100):
        if len(together.passed) == 5:
            break
        await asyncio.sleep(0.01)
    assert sorted(together.passed) == [
        "charge api_key:key_1 -100", "charge tenant:ten_1 -100",
        "release api_key:key_1", "release tenant:ten_1", "settle 0.2"]
