"""Rate limits and quotas per subject (an identity or a tenant): the protocol.

One :meth:`RateLimiter.acquire` checks every configured limit of a subject
together and, only when all pass, takes one request from each: the token bucket
(``requests_per_second`` + ``burst``), requests per minute, a concurrency slot;
tokens per minute and the daily token quota are checked (not taken) here and
charged with the real usage by :meth:`RateLimiter.charge` after the answer.
Local implementations keep state in process; Redis ones do each call as one Lua
script, so N replicas enforce one limit.

Example::

    decision = await limiter.acquire("tenant:acme", limits)
    if not decision.allowed:
        raise RateLimitedError(..., retry_after=decision.retry_after)
    try:
        ...
    finally:
        await limiter.release("tenant:acme", decision.lease)
    await limiter.charge("tenant:acme", limits, tokens=123)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.tenancy.models import Limits

__all__ = ["LimitDecision", "RateLimiter"]


@dataclass(frozen=True, slots=True)
class LimitDecision:
    """The answer of :meth:`RateLimiter.acquire`.

    ``scope`` names the limit that refused (``rps``, ``rpm``, ``tpm``, ``concurrency``,
    ``daily_tokens``), empty when allowed. ``limit``/``remaining``/``reset_after`` feed
    the ``X-RateLimit-*`` headers: they describe the request-count limit that is
    closest to refusing (requests per minute when set, else the bucket).
    ``lease`` is the concurrency slot to give back (empty when no concurrency limit).
    """

    allowed: bool
    scope: str = ""
    limit: int = 0
    remaining: int = 0
    reset_after: float = 0.0  # seconds until the reported limit is whole again
    retry_after: float = 0.0  # seconds to wait, when refused
    lease: str = ""


class RateLimiter(Protocol):
    async def acquire(self, subject: str, limits: Limits) -> LimitDecision: ...

    async def release(self, subject: str, lease: str) -> None:
        """Give back a concurrency slot (a no-op for an empty lease)."""
        ...

    async def charge(self, subject: str, limits: Limits, tokens: int) -> None:
        """Add tokens actually used to the per-minute and daily counts."""
        ...

    async def aclose(self) -> None: ...
