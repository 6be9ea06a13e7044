"""Usage rows and budgets, kept off the hot path.

:class:`UsageRecorder` queues a row per request and writes them to the store in
batches (every second, or sooner when many are waiting), retrying while the store
is down (rows are kept, up to a bound) and flushing what is left at shutdown.

:class:`Budgets` answers "how much has this :class:`Budget` spent this period" (a
tenant's, one of its API keys', or the tenant's on one model; monthly or daily): the
store's total, refreshed every few seconds, plus what this process added since. It is
exact within one refresh interval across replicas. Admission reserves each request's
estimated cost against every budget that applies (:meth:`Budgets.reserve`, all or
nothing) and admits while what is spent and held is below each, so concurrent requests
cannot all pass on one reading; with Redis the reservations and the periods' spend live
in a :class:`RedisBudgetLedger` that every replica shares (an unreachable Redis refuses,
or falls back to this replica's own holds, logged once and shown by
:attr:`Budgets.degraded`). Crossing 80% and 95% of any budget logs a warning and counts
``gateway_budget_alerts_total`` once per budget and period; a tenant's own budget also
moves ``gateway_budget_usage_ratio``.

Example::

    tenant = Budget("ten_x", 50.0)
    key = Budget("ten_x", 2.0, "daily", api_key_id="key_y")
    hold = await budgets.reserve((tenant, key), cost=0.4)
    if isinstance(hold, Budget):
        ...  # refused: ``hold`` is the budget it did not fit
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.backends.redis_failures import Outage, unreachable
from gateway.errors import GatewayError, UnavailableError
from gateway.observability import metrics
from gateway.tenancy.budget_ledger import Account, RedisBudgetLedger
from gateway.tenancy.models import BudgetPeriod, TenantStore, UsageRow, UsageTotals

__all__ = ["Budget", "Budgets", "Hold", "UsageRecorder", "fits", "month_start",
           "period_start"]

log = logging.getLogger("gateway.tenancy")

FLUSH_INTERVAL = 1.0
BATCH = 500
MAX_PENDING = 100_000
ALERT_RATIOS = (0.8, 0.95)


def month_start(now: float) -> float:
    """Unix time of the first instant of ``now``'s month, UTC."""
    day = datetime.datetime.fromtimestamp(now, datetime.UTC)
    return day.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def period_start(now: float, period: BudgetPeriod) -> float:
    """Unix time of the first instant of ``now``'s month or day, UTC."""
    return month_start(now) if period == "monthly" else now - now % 86400


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


@dataclass(frozen=True, slots=True)
class Budget:
    """Whose spend is counted, and how much it may be per ``period`` (``usd`` None: none,
    counted only): a tenant's own (``api_key_id`` and ``model`` empty), one of its API
    keys', or the tenant's on one ``model`` (the name the client asks for)."""

    tenant_id: str
    usd: float | None
    period: BudgetPeriod = "monthly"
    api_key_id: str = ""
    model: str = ""

    @property
    def scope(self) -> Literal["tenant", "api_key", "model"]:
        return "api_key" if self.api_key_id else "model" if self.model else "tenant"

    @property
    def account(self) -> str:
        """Its name within the tenant's: empty for the tenant's own."""
        return (f"key:{self.api_key_id}" if self.api_key_id
                else f"model:{self.model}" if self.model else "")

    @property
    def label(self) -> str:
        """For people: ``the API key's daily budget``."""
        whose = {"tenant": "the tenant's", "api_key": "the API key's",
                 "model": f"the tenant's budget for '{self.model}'"}[self.scope]
        if self.scope == "model":
            return f"{whose} ({self.period})"
        return f"{whose} {self.period} budget"


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
    """A request's estimated cost, held against each of its budgets until settled."""

    budgets: tuple[Budget, ...]
    starts: tuple[float, ...]  # the period of each it was held in
    cost: float
    id: str = ""  # its id in the shared ledger; empty: held by this replica


class Budgets:
    def __init__(self, store: TenantStore, *, ledger: RedisBudgetLedger | None = None,
                 on_outage: Literal["closed", "local"] = "closed",
                 refresh: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self._ledger = ledger
        self._on_outage = on_outage
        self._outage = Outage(
            log, down="redis unreachable: budgets are " + (
                "refused (budgets.on_redis_outage: closed)" if on_outage == "closed"
                else "held per replica") + " until it is back",
            back="redis reachable again: budgets are shared", clock=clock)
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(6) + "-"  # hold ids unique across replicas
        self._store = store
        self._refresh = refresh
        self._clock = clock
        self._wall = wall
        self._spend: dict[tuple[str, str, BudgetPeriod], _Spend] = {}
        # (tenant, account, period start) -> estimated cost of requests in flight
        self._held: dict[tuple[str, str, float], float] = {}

    async def _current(self, budget: Budget) -> _Spend:
        period = period_start(self._wall(), budget.period)
        name = (budget.tenant_id, budget.account, budget.period)
        spend = self._spend.get(name)
        if spend is None or spend.period != period or self._clock() - spend.refreshed > (
            self._refresh
        ):
            base = await self._store.usage_since(budget.tenant_id, period,
                                                 api_key_id=budget.api_key_id,
                                                 model=budget.model)
            alerted = spend.alerted if spend is not None and spend.period == period else 0.0
            spend = _Spend(period, base, 0.0, 0, self._clock(), alerted)
            self._spend[name] = spend
        return spend

    async def totals(self, budget: Budget) -> tuple[float, UsageTotals]:
        """``(period start, totals this period)`` of ``budget``'s spend."""
        spend = await self._current(budget)
        base = spend.base
        return spend.period, UsageTotals(base.requests + spend.added_requests,
                                         base.prompt_tokens, base.completion_tokens,
                                         base.cost_usd + spend.added_cost)

    async def spent(self, budget: Budget) -> float:
        return (await self.totals(budget))[1].cost_usd

    async def reserve(self, budgets: Sequence[Budget], cost: float) -> Hold | Budget:
        """Admit a request when, for every one of ``budgets``, the period's spend, the
        reservations held and the request's worst-case ``cost`` fit it, then hold ``cost``
        against each until :meth:`settle`; else answer the first budget it does not fit
        (nothing held). In the shared ledger when there is one (one script for all), else
        here, with no await between the checks and the holds, so concurrent requests see
        each other. With the ledger unreachable: 503 (``on_outage="closed"``), or this
        replica's own holds (``"local"``)."""
        budgets = [b for b in budgets if b.usd is not None]  # counted only: nothing to hold
        spent = [await self.spent(b) for b in budgets]
        now = self._wall()
        starts = tuple(period_start(now, b.period) for b in budgets)
        limits = [b.usd or 0.0 for b in budgets]
        if self._ledger is not None and self._outage.usable():
            hold = f"{self._prefix}{next(self._ids):x}"
            accounts = [Account(b.tenant_id, b.account, start, budget=limit, seed=seed,
                                days=31 if b.period == "monthly" else 1)
                        for b, start, limit, seed in zip(budgets, starts, limits, spent,
                                                         strict=True)]
            try:
                refused = await self._ledger.reserve(hold, cost, accounts)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._outage.failed(exc)
            else:
                self._outage.recovered()
                if refused:
                    return budgets[refused - 1]
                return Hold(tuple(budgets), starts, cost, hold)
        if self._ledger is not None and self._on_outage == "closed":
            raise UnavailableError("budgets cannot be checked now (their store, Redis, is "
                                   "unreachable); try again shortly")
        names = [(b.tenant_id, b.account, start) for b, start in zip(budgets, starts,
                                                                      strict=True)]
        for budget, name, used, limit in zip(budgets, names, spent, limits, strict=True):
            if not fits(used, self._held.get(name, 0.0), cost, limit):
                return budget
        if cost > 0:
            for name in names:
                self._held[name] = self._held.get(name, 0.0) + cost
        return Hold(tuple(budgets), starts, cost)

    async def settle(self, hold: Hold, cost: float) -> None:
        """Give back ``hold``; in the shared ledger, add the request's real ``cost`` to each
        budget's period (this replica's view of it is :meth:`add`'s). Never fails the
        request: a ledger that cannot be reached lets the hold expire there."""
        if hold.id:
            assert self._ledger is not None
            accounts = [Account(b.tenant_id, b.account, start)
                        for b, start in zip(hold.budgets, hold.starts, strict=True)]
            try:
                await self._ledger.settle(hold.id, cost, accounts)
            except Exception as exc:
                if not unreachable(exc):
                    raise
                self._outage.failed(exc)
            return
        if hold.cost <= 0:
            return
        for budget, start in zip(hold.budgets, hold.starts, strict=True):
            name = (budget.tenant_id, budget.account, start)
            left = self._held.get(name, 0.0) - hold.cost
            if left > 1e-12:
                self._held[name] = left
            else:
                self._held.pop(name, None)

    @property
    def degraded(self) -> bool:
        """The shared ledger unreachable: holds are this replica's (or refused)."""
        return self._outage.degraded

    async def add(self, budgets: Sequence[Budget], cost: float) -> None:
        """Count a served request's cost in each of its ``budgets``. Runs after the
        answer, so it never fails it: with the store unreachable the last known spend is
        kept and refreshed once it answers (the usage row itself waits in
        :class:`UsageRecorder`)."""
        for budget in budgets:
            try:
                spend = await self._current(budget)
            except UnavailableError:
                kept = self._spend.get((budget.tenant_id, budget.account, budget.period))
                if kept is None or kept.period != period_start(self._wall(), budget.period):
                    continue  # nothing to add to: the store's total will include the row
                spend = kept
            spend.added_cost += cost
            spend.added_requests += 1
            if budget.usd:
                self._alert(budget, spend)

    def _alert(self, budget: Budget, spend: _Spend) -> None:
        assert budget.usd
        ratio = (spend.base.cost_usd + spend.added_cost) / budget.usd
        if budget.scope == "tenant":
            metrics.budget_ratio(budget.tenant_id, ratio)
        crossed = max((t for t in ALERT_RATIOS if ratio >= t), default=0.0)
        if crossed > spend.alerted:  # one line per crossing, for the highest threshold
            spend.alerted = crossed
            metrics.budget_alert(budget.tenant_id, budget.scope, crossed)
            fields: dict[str, object] = {
                "tenant": budget.tenant_id, "scope": budget.scope, "period": budget.period,
                "threshold": crossed, "ratio": round(ratio, 4), "budget_usd": budget.usd}
            if budget.api_key_id:
                fields["api_key_id"] = budget.api_key_id
            if budget.model:
                fields["model"] = budget.model
            log.warning(_ALERT_LINES[budget.scope], extra={"fields": fields})


_ALERT_LINES = {"tenant": "tenant budget alert", "api_key": "api key budget alert",
                "model": "model budget alert"}
