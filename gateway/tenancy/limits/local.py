"""Rate limits and quotas kept in process: :class:`LocalRateLimiter`.

For a single replica, or when no Redis is configured: every check is O(1) on a small record
per subject, with nothing to reach. The algorithms are written down once, on the class;
:class:`~gateway.tenancy.limits.redis.RedisRateLimiter` runs the same ones in Lua.

Example::

    limiter = LocalRateLimiter()
    decision = await limiter.acquire("ip:10.0.0.7", Limits(requests_per_minute=60))
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable

from gateway.tenancy.limits.base import LimitDecision
from gateway.tenancy.models import Limits

__all__ = [
    "ALLOWED",
    "CONCURRENCY_RETRY",
    "DAY",
    "LEASE_TTL",
    "MARGIN",
    "WINDOW",
    "LocalRateLimiter",
    "burst_of",
    "unlimited",
    "window_wait",
]

WINDOW = 60.0  # seconds in the per-minute windows
DAY = 86400.0
LEASE_TTL = 600.0  # seconds a concurrency lease lives unless released
CONCURRENCY_RETRY = 1.0  # retry_after when the concurrency limit refuses
MARGIN = 0.001  # added to computed waits so the retry lands past the boundary
SWEEP_EVERY = 1024  # calls between sweeps, at least (at most one per `len(states)` calls)

ALLOWED = LimitDecision(allowed=True)


def unlimited(limits: Limits) -> bool:
    """True when no limit of ``limits`` is enforced (every field None)."""
    return (limits.requests_per_second is None and limits.requests_per_minute is None
            and limits.tokens_per_minute is None and limits.concurrent_requests is None
            and limits.daily_token_quota is None)


def burst_of(limits: Limits, rps: float) -> int:
    """The bucket's size: ``burst``, else ``max(1, ceil(rps))``."""
    return limits.burst if limits.burst is not None else max(1, math.ceil(rps))


def window_wait(previous: float, current: float, limit: float, elapsed: float) -> float:
    """Seconds until ``previous * (60 - elapsed') / 60 + current < limit`` (refused now)."""
    if limit <= 0:
        return WINDOW
    if current < limit:  # the previous minute's share must fade (previous > 0 here)
        return max(0.0, WINDOW * (1 - (limit - current) / previous) - elapsed) + MARGIN
    # This minute alone is at the limit: it becomes the previous one and fades.
    return WINDOW - elapsed + WINDOW * (1 - limit / current) + MARGIN


class _Subject:
    __slots__ = ("tokens", "stamp", "full_at", "window", "req_cur", "req_prev", "tok_cur",
                 "tok_prev", "day", "day_tokens", "leases")

    def __init__(self) -> None:
        self.tokens = 0.0
        self.stamp: float | None = None  # bucket last updated; None: full
        self.full_at = -math.inf  # when the bucket is full again
        self.window = -2  # index of the current minute
        self.req_cur = 0
        self.req_prev = 0
        self.tok_cur = 0
        self.tok_prev = 0
        self.day = -1  # UTC day index of day_tokens
        self.day_tokens = 0
        self.leases: dict[str, float] = {}  # lease id -> expiry, in expiry order

    def roll(self, index: int) -> None:
        if index != self.window:
            if index == self.window + 1:
                self.req_prev, self.tok_prev = self.req_cur, self.tok_cur
            else:
                self.req_prev = self.tok_prev = 0
            self.req_cur = self.tok_cur = 0
            self.window = index

    def expire_leases(self, now: float) -> None:
        leases = self.leases
        while leases:  # one TTL for all: insertion order is expiry order
            lease, expiry = next(iter(leases.items()))
            if expiry > now:
                return
            del leases[lease]

    def idle(self, now: float, today: int) -> bool:
        """Equal to a fresh record: safe to forget."""
        self.expire_leases(now)
        return (now >= self.full_at and int(now // WINDOW) > self.window + 1
                and (self.day != today or self.day_tokens == 0) and not self.leases)


class LocalRateLimiter:
    """The :class:`~gateway.tenancy.limits.base.RateLimiter` of one process.

    - **Token bucket** (``requests_per_second`` + ``burst``): ``burst`` tokens (default
      ``max(1, ceil(rps))``), refilled continuously at ``rps`` per second; a request
      takes one. Refused: ``retry_after`` is the time until one token is back.
    - **Per-minute windows** (requests and tokens per minute): the two-bucket sliding
      window approximation (as Cloudflare's): counts for the current fixed minute and
      the one before it, and ``estimate = previous * (60 - elapsed) / 60 + current``.
      O(1) time and memory per subject, exact when traffic is even within a minute and
      never more than one minute's worth off. A limit admits while ``estimate <
      limit``; requests per minute then adds one, tokens per minute the request's
      ``reserve`` (:meth:`charge` later adds the real tokens less it). ``retry_after``
      solves ``estimate(t) < limit`` for ``t``, moving into the next minute when the
      current one alone is at the limit.
    - **Daily token quota**: tokens reserved and charged during the current UTC day (wall
      clock); refused once ``used >= quota``, until the next UTC midnight.
    - **Concurrency**: admitted requests hold a lease until :meth:`release`; leases
      expire after ``lease_ttl`` (10 minutes) so a lost release cannot leak a slot
      forever. Refused: ``retry_after`` is :data:`CONCURRENCY_RETRY` (1 s), as nobody
      knows when a request will finish.

    Acquiring is all-or-nothing: every limit is checked first, and only when all admit
    is anything taken. When several refuse, the decision names the one with the
    longest ``retry_after`` (retrying sooner is refused anyway). Every computed
    ``retry_after`` carries a :data:`MARGIN` of 1 ms, so a client that waits exactly
    that long is admitted despite float rounding.

    Records that have become equal to a fresh one (bucket full, both minutes over, no
    live lease, nothing charged today) are dropped by a sweep every ``max(SWEEP_EVERY,
    subjects)`` calls, which keeps memory bounded at an amortised O(1) cost per call.

    ``clock`` (monotonic seconds) times buckets, windows and leases; ``wall`` (unix
    seconds) tells the UTC day. Both are injectable for tests.
    """

    def __init__(self, *, lease_ttl: float = LEASE_TTL,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time):
        self.lease_ttl = lease_ttl
        self._clock = clock
        self._wall = wall
        self._states: dict[str, _Subject] = {}
        self._calls = 0
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        """Subjects with state held (idle ones go at the next sweep)."""
        return len(self._states)

    async def acquire(self, subject: str, limits: Limits, reserve: int = 0) -> LimitDecision:
        return self.acquire_now(subject, limits, reserve)

    async def release(self, subject: str, lease: str) -> None:
        self.release_now(subject, lease)

    async def charge(self, subject: str, limits: Limits, tokens: int) -> None:
        self.charge_now(subject, limits, tokens)

    async def aclose(self) -> None:
        self._states.clear()

    def acquire_now(self, subject: str, limits: Limits, reserve: int = 0) -> LimitDecision:
        if unlimited(limits):
            return ALLOWED
        now = self._clock()
        self._tick(now)
        st = self._states.get(subject)
        if st is None:
            st = self._states[subject] = _Subject()
        rps, rpm, tpm = (limits.requests_per_second, limits.requests_per_minute,
                         limits.tokens_per_minute)
        quota, slots = limits.daily_token_quota, limits.concurrent_requests
        scope, wait = "", -1.0

        burst, tokens = 0, 0.0
        if rps is not None:
            burst = burst_of(limits, rps)
            tokens = (float(burst) if st.stamp is None
                      else min(burst, st.tokens + max(0.0, now - st.stamp) * rps))
            if tokens < 1:
                scope, wait = "rps", (1 - tokens) / rps + MARGIN if rps > 0 else WINDOW

        index = int(now // WINDOW)
        elapsed = now - index * WINDOW
        estimate = 0.0
        if rpm is not None or tpm is not None:
            st.roll(index)
            weight = (WINDOW - elapsed) / WINDOW
            if rpm is not None:
                estimate = st.req_prev * weight + st.req_cur
                if estimate >= rpm:
                    w = window_wait(st.req_prev, st.req_cur, rpm, elapsed)
                    if w > wait:
                        scope, wait = "rpm", w
            if tpm is not None and st.tok_prev * weight + st.tok_cur >= tpm:
                w = window_wait(st.tok_prev, st.tok_cur, tpm, elapsed)
                if w > wait:
                    scope, wait = "tpm", w

        if quota is not None:
            wall = self._wall()
            today = int(wall // DAY)
            if (st.day_tokens if st.day == today else 0) >= quota:
                w = (today + 1) * DAY - wall + MARGIN
                if w > wait:
                    scope, wait = "daily_tokens", w

        if slots is not None:
            st.expire_leases(now)
            if len(st.leases) >= slots and CONCURRENCY_RETRY > wait:
                scope, wait = "concurrency", CONCURRENCY_RETRY

        allowed = not scope
        lease = ""
        if allowed:
            if rps is not None:
                tokens -= 1
            if rpm is not None:
                st.req_cur += 1
                estimate += 1
            if slots is not None:
                lease = f"{next(self._ids):x}"
                st.leases[lease] = now + self.lease_ttl
            if reserve > 0:
                self._add_tokens(st, limits, reserve, now)
        if rps is not None:
            st.tokens, st.stamp = tokens, now
            st.full_at = now + (burst - tokens) / rps if rps > 0 else math.inf

        limit, remaining, reset_after = 0, 0, 0.0
        if rpm is not None:
            limit, remaining = rpm, max(0, math.ceil(rpm - estimate - 1e-9))
            if st.req_cur:
                reset_after = 2 * WINDOW - elapsed
            elif st.req_prev:
                reset_after = WINDOW - elapsed
        elif rps is not None:
            limit, remaining = burst, max(0, math.floor(tokens))
            reset_after = (burst - tokens) / rps if rps > 0 else 0.0
        return LimitDecision(allowed=allowed, scope=scope, limit=limit, remaining=remaining,
                             reset_after=reset_after, retry_after=max(0.0, wait), lease=lease)

    def release_now(self, subject: str, lease: str) -> None:
        if lease:
            st = self._states.get(subject)
            if st is not None:
                st.leases.pop(lease, None)

    def charge_now(self, subject: str, limits: Limits, tokens: int) -> None:
        if tokens == 0 or (limits.tokens_per_minute is None and limits.daily_token_quota is None):
            return
        now = self._clock()
        self._tick(now)
        st = self._states.get(subject)
        if st is None:
            st = self._states[subject] = _Subject()
        self._add_tokens(st, limits, tokens, now)

    def _add_tokens(self, st: _Subject, limits: Limits, tokens: int, now: float) -> None:
        """Tokens into this minute and today. A refund (negative) comes out of this minute,
        then the one before (where a reservation made before the minute turned sits), and
        stops at zero."""
        if limits.tokens_per_minute is not None:
            st.roll(int(now // WINDOW))
            if tokens >= 0:
                st.tok_cur += tokens
            else:
                taken = min(-tokens, st.tok_cur)
                st.tok_cur -= taken
                st.tok_prev = max(0, st.tok_prev - (-tokens - taken))
        if limits.daily_token_quota is not None:
            today = int(self._wall() // DAY)
            if st.day != today:
                st.day, st.day_tokens = today, 0
            st.day_tokens = max(0, st.day_tokens + tokens)

    def _tick(self, now: float) -> None:
        self._calls += 1
        if self._calls >= max(SWEEP_EVERY, len(self._states)):
            self._calls = 0
            self.sweep(now)

    def sweep(self, now: float | None = None) -> None:
        """Forget the subjects whose state equals a fresh one."""
        now = self._clock() if now is None else now
        today = int(self._wall() // DAY)
        for subject in [s for s, st in self._states.items() if st.idle(now, today)]:
            del self._states[subject]
