"""FailedAuthLimiter: an address over its failures is refused until its window ends."""

from __future__ import annotations

import pytest

from gateway.errors import RateLimitedError
from gateway.tenancy.failed_auth import FailedAuthLimiter


def test_an_address_is_refused_until_its_window_ends() -> None:
    now = [0.0]
    limiter = FailedAuthLimiter(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("a")
        limiter.failed("a")
    with pytest.raises(RateLimitedError) as refused:
        limiter.check("a")
    assert refused.value.retry_after == pytest.approx(60)
    limiter.check("b")  # other addresses are not held to it
    now[0] = 61
    limiter.check("a")  # the window is over
    limiter.failed("a")
    limiter.check("a")  # one failure in a new window


def test_a_limit_of_zero_is_off() -> None:
    limiter = FailedAuthLimiter(limit=0)
    for _ in range(100):
        limiter.failed("a")
    limiter.check("a")
