"""Rate limits and quotas per subject (an identity or a tenant), where callers are limited.

:class:`RateLimiter` is the protocol admission uses; :class:`LocalRateLimiter` keeps the
state in process, :class:`RedisRateLimiter` in Redis, so that N replicas enforce one limit.
"""

from gateway.tenancy.limits.base import LimitDecision, RateLimiter
from gateway.tenancy.limits.local import LocalRateLimiter
from gateway.tenancy.limits.redis import RedisRateLimiter

__all__ = ["LimitDecision", "LocalRateLimiter", "RateLimiter", "RedisRateLimiter"]
