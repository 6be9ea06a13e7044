"""A call grpc cancels because its deadline passed is recorded as DEADLINE_EXCEEDED, not
CANCELLED: under load grpc's cancellation may come before the gateway's own timeout."""

from __future__ import annotations

import time

from gateway.observability.context import RequestContext


def test_a_cancellation_at_or_past_the_deadline_is_the_deadline() -> None:
    assert not RequestContext("r").past_deadline()  # no deadline: a client's cancel
    assert not RequestContext("r", deadline_at=time.monotonic() + 5).past_deadline()
    assert RequestContext("r", deadline_at=time.monotonic()).past_deadline()
    assert RequestContext("r", deadline_at=time.monotonic() - 1).past_deadline()
