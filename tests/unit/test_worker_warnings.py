"""Issue 19, item 13: --workers N names the state each worker would keep for itself."""

from __future__ import annotations

from gateway.config import ApiKeysConfig, AuthConfig, RateLimitConfig, Settings, UrlConfig
from gateway.workers import shared_state_warnings

KEYED = Settings(auth=AuthConfig(api_keys=ApiKeysConfig(enabled=True)),
                 rate_limit=RateLimitConfig(enabled=True))


def test_limits_and_tenants_per_worker_are_named() -> None:
    warnings = shared_state_warnings(KEYED, 4)
    assert len(warnings) == 2
    assert "4x the configured amounts" in warnings[0] and "redis.url" in warnings[0]
    assert "database.url" in warnings[1]


def test_shared_backends_or_one_worker_say_nothing() -> None:
    shared = Settings(auth=KEYED.auth, rate_limit=KEYED.rate_limit,
                      redis=UrlConfig("redis://r:6379/0"), database=UrlConfig("postgres://d"))
    assert shared_state_warnings(shared, 4) == []
    assert shared_state_warnings(KEYED, 1) == []
    assert shared_state_warnings(Settings(), 4) == []  # zero config: nothing is limited
