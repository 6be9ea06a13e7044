"""Rate limits and quotas per subject (an identity or a tenant): the protocol.

One :meth:`RateLimiter.acquire` checks every configured limit of a subject
together and, only when all pass, takes one request from each: the token bucket
(``requests_per_second`` + ``burst``), requests per minute, a concurrency slot,
and the request's estimated tokens (``reserve``) from its tokens per minute and daily
quota, which admit while what is used and reserved is below the limit. After the answer
:meth:`RateLimiter.charge` settles the difference between the real usage and the
reservation (negative: a refund), so concurrent requests cannot all pass on one check.
Local implementations keep state in process; Redis ones do each call as one Lua
script, so N replicas enforce one limit.

Example::

    decision = await limiter.acquire("tenant:acme", limits, reserve=900)
    if not decision.allowed:
        raise RateLimitedError(..., retry_after=decision.retry_after)
    try:
        ...
    finally:
        await limiter.release("tenant:acme", decision.lease)
    await limiter.charge("tenant:acme", limits, tokens=123 - 900)  # used minus reserved
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
    async def acquire(self, subject: str, limits: Limits, reserve: int = 0) -> LimitDecision:
        """Check every limit; when all admit, take from each, ``reserve`` tokens included."""
        ...

    async def release(self, subject: str, lease: str) -> None:
        """Give back a concurrency slot (a no-op for an empty lease)."""
        ...

    async def charge(self, subject: str, limits: Limits, tokens: int) -> None:
        """Add ``tokens`` to the per-minute and daily counts: the used tokens less what was
        reserved (negative gives back, never below zero)."""
        ...

    async def aclose(self) -> None: ...
