"""Usage rows and monthly budgets, kept off the hot path.

:class:`UsageRecorder` queues a row per request and writes them to the store in
batches (every second, or sooner when many are waiting), retrying while the store
is down (rows are kept, up to a bound) and flushing what is left at shutdown.

:class:`Budgets` answers "how much has this tenant spent this month": the store's
total, refreshed every few seconds, plus what this process added since. It is
exact within one refresh interval across replicas, which is the precision a
monthly budget needs. Admission reserves each request's estimated cost
(:meth:`Budgets.reserve`) and admits while what is spent and held is below the
budget, so concurrent requests cannot all pass on one reading; with Redis the
reservations and the month's spend live in a :class:`RedisBudgetLedger` that every
replica shares (an unreachable Redis falls back to this replica's own holds, logged
once and shown by :attr:`Budgets.degraded`). Crossing 80% and 95%
logs a warning once per tenant and month and moves ``gateway_budget_usage_ratio``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.backends.redis_failures import unreachable
from gateway.errors import GatewayError, UnavailableError
from gateway.observability import metrics
from gateway.tenancy.budget_ledger import RedisBudgetLedger
from gateway.tenancy.models import TenantStore, UsageRow, UsageTotals

__all__ = ["Budgets", "Hold", "UsageRecorder", "month_start"]

log = logging.getLogger("gateway.tenancy")

FLUSH_INTERVAL = 1.0
BATCH = 500
MAX_PENDING = 100_000
ALERT_RATIOS = (0.8, 0.95)
RETRY_LEDGER_AFTER = 2.0  # seconds on this replica's own holds after a Redis failure


def month_start(now: float) -> float:
    """Unix time of the first instant of ``now``'s month, UTC."""
    day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


class UsageRecorder:
    def __init__(self, store: TenantStore, *, interval: float = FLUSH_INTERVAL):
        self._store = store
        self._interval = interval
        self._pending: list[UsageRow] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._dropped = 0

    def record(self, row: UsageRow) -> None:
        if len(self._pending) >= MAX_PENDING:
            self._dropped += 1  # the store has been down for long: keep memory bounded
            return
        self._pending.append(row)
        if len(self._pending) >= BATCH:
            self._wake.set()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write what is pending; False (rows kept) when the store is unavailable."""
        while self._pending:
            batch = self._pending[:BATCH]
            try:
                await self._store.record_usage(batch)
            except GatewayError as exc:
                log.warning("usage rows not written yet", extra={"fields": {
                    "pending": len(self._pending), "error": exc.message}})
                return False
            del self._pending[:len(batch)]
        if self._dropped:
            log.error("usage rows dropped while the store was down",
                      extra={"fields": {"dropped": self._dropped}})
            self._dropped = 0
        return True

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not await self.flush():
            log.error("usage rows lost at shutdown: the store is unavailable",
                      extra={"fields": {"rows": len(self._pending)}})


@dataclass(slots=True)
class _Spend:
    period: float
    base: UsageTotals
    added_cost: float
    added_requests: int
    refreshed: float
    alerted: float = 0.0  # the highest alert ratio already raised this period


def fits(spent: float, held: float, cost: float, budget: float) -> bool:
    """A request's worst-case ``cost`` fits what is left of ``budget`` (a request with no
    known cost fits while anything is left)."""
    return spent + held < budget and spent + held + cost <= budget


@dataclass(frozen=True, slots=True)
class Hold:
    """A request's estimated cost, held against its tenant's budget until settled."""

    tenant_id: str
    cost: float
    period: float  # the month it was held in
    id: str = ""  # its id in the shared ledger; empty: held by this replica


class Budgets:
    def __init__(self, store: TenantStore, *, ledger: RedisBudgetLedger | None = None,
                 on_outage: Literal["closed", "local"] = "closed",
                 refresh: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self._ledger = ledger
        self._on_outage = on_outage
        self._ledger_down_until = 0.0
        self.degraded = False  # the shared ledger unreachable: holds are this replica's
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(6) + "-"  # hold ids unique across replicas
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._wall = wall
        self._spend: dict[str, _Spend] = {}
        self._held: dict[str, float] = {}  # tenant -> estimated cost of requests in flight

    async def _current(self, tenant_id: str) -> _Spend:
        period = month_start(self._wall())
        spend = self._spend.get(tenant_id)
        if spend is None or spend.period != period or self._clock() - spend.refreshed > (
            self._refresh
        ):
            base = await self._store.usage_since(tenant_id, period)
            alerted = spend.alerted if spend is not None and spend.period == period else 0.0
            spend = _Spend(period, base, 0.0, 0, self._clock(), alerted)
            self._spend[tenant_id] = spend
        return spend

    async def totals(self, tenant_id: str) -> tuple[float, UsageTotals]:
        """``(period start, month-to-date totals)`` for the tenant."""
        spend = await self._current(tenant_id)
        base = spend.base
        return spend.period, UsageTotals(base.requests + spend.added_requests,
                                         base.prompt_tokens, base.completion_tokens,
                                         base.cost_usd + spend.added_cost)

    async def spent(self, tenant_id: str) -> float:
        return (await self.totals(tenant_id))[1].cost_usd

    async def reserve(self, tenant_id: str, budget: float, cost: float) -> Hold | None:
        """Admit a request when the month's spend, the reservations held and its own
        worst-case ``cost`` fit ``budget``, then hold ``cost`` until :meth:`settle`; None
        when it does not fit. In the shared ledger when there is one (one script), else
        here, with no await between the check and the hold, so concurrent requests see
        each other. With the ledger unreachable: 503 (``on_outage="closed"``), or this
        replica's own holds (``"local"``)."""
        spent = await self.spent(tenant_id)
        period = month_start(self._wall())
        if self._ledger is not None and self._clock() >= self._ledger_down_until:
            hold = f"{self._prefix}{next(self._ids):x}"
            try:
                admitted = await self._ledger.reserve(tenant_id, period, hold, budget=budget,
                                                      cost=cost, seed=spent)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._ledger_failed(exc)
            else:
                self._ledger_recovered()
                return Hold(tenant_id, cost, period, hold) if admitted else None
        if self._ledger is not None and self._on_outage == "closed":
            raise UnavailableError("budgets cannot be checked now (their store, Redis, is "
                                   "unreachable); try again shortly")
        held = self._held.get(tenant_id, 0.0)
        if not fits(spent, held, cost, budget):
            return None
        if cost > 0:
            self._held[tenant_id] = held + cost
        return Hold(tenant_id, cost, period)

    async def settle(self, hold: Hold, cost: float) -> None:
        """Give back ``hold``; in the shared ledger, add the request's real ``cost`` to the
        month (this replica's view of it is :meth:`add`'s). Never fails the request: a
        ledger that cannot be reached lets the hold expire there."""
        if hold.id:
            assert self._ledger is not None
            try:
                await self._ledger.settle(hold.tenant_id, hold.period, hold.id, cost=cost)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._ledger_failed(exc)
            return
        if hold.cost <= 0:
            return
        left = self._held.get(hold.tenant_id, 0.0) - hold.cost
        if left > 1e-12:
            self._held[hold.tenant_id] = left
        else:
            self._held.pop(hold.tenant_id, None)

    def _ledger_failed(self, exc: Exception) -> None:
        self._ledger_down_until = self._clock() + RETRY_LEDGER_AFTER
        if not self.degraded:
            self.degraded = True
            log.warning("redis unreachable: budgets are " + (
                "refused (budgets.on_redis_outage: closed)" if self._on_outage == "closed"
                else "held per replica") + " until it is back",
                extra={"fields": {"error": type(exc).__name__}})

    def _ledger_recovered(self) -> None:
        if self.degraded:
            self.degraded = False
            log.info("redis reachable again: budgets are shared")

    async def add(self, tenant_id: str, budget: float | None, cost: float) -> None:
        """Count a served request's cost. Runs after the answer, so it never fails it: with
        the store unreachable the last known spend is kept and refreshed once it answers
        (the usage row itself waits in :class:`UsageRecorder`)."""
        try:
            spend = await self._current(tenant_id)
        except UnavailableError:
            kept = self._spend.get(tenant_id)
            if kept is None or kept.period != month_start(self._wall()):
                return  # nothing to add to: the store's total will include the row
            spend = kept
        spend.added_cost += cost
        spend.added_requests += 1
        if not budget:
            return
        ratio = (spend.base.cost_usd + spend.added_cost) / budget
        metrics.budget_ratio(tenant_id, ratio)
        crossed = max((t for t in ALERT_RATIOS if ratio >= t), default=0.0)
        if crossed > spend.alerted:  # one line per crossing, for the highest threshold
            spend.alerted = crossed
            log.warning("tenant budget alert", extra={"fields": {
                "tenant": tenant_id, "threshold": crossed, "ratio": round(ratio, 4),
                "budget_usd": budget}})
