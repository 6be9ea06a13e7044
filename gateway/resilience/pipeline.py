"""The resilience pipeline: one operation tried over ordered candidate deployments.

For each candidate in order (the router puts the model's targets in weighted
order, then its fallback models' targets): ask its breaker for a permit (skip the
candidate when refused), try up to ``RetryPolicy.attempts`` times with backoff
while the failure is retryable, and report each outcome to the breaker. The
client's deadline bounds everything: attempts get the time that is left, and a
backoff that would overrun it is not taken.

A caller error (the provider said 400) ends the chain at once: another
deployment would say the same. When every candidate fails, the last upstream
error is raised; when none could even be tried, :class:`UnavailableError`.

With ``hold=True`` (streams) a success is not reported: the caller gets the
:class:`Ticket` and reports the outcome when the stream ends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.errors import (
    DeadlineExceededError,
    GatewayError,
    InvalidRequestError,
    UnavailableError,
    UpstreamError,
)
from gateway.observability import metrics
from gateway.resilience.breaker import Breaker, BreakerBoard, Outcome, Permit
from gateway.resilience.retry import RetryPolicy

__all__ = ["Candidate", "Pipeline", "Ticket"]

log = logging.getLogger("gateway.resilience")

C = TypeVar("C")
R = TypeVar("R")


@dataclass(slots=True, frozen=True)
class Candidate(Generic[C]):
    """A deployment to try: ``item`` is handed to the operation; ``breaker`` names
    the breaker; ``timeout`` bounds one attempt."""

    item: C
    breaker: str
    timeout: float


@dataclass(slots=True)
class Ticket:
    """An admitted call whose outcome is still to be reported."""

    breaker: Breaker
    permit: Permit
    reported: bool = False

    async def report(self, outcome: Outcome) -> None:
        if not self.reported:
            self.reported = True
            await self.breaker.record(self.permit, outcome)


class Pipeline:
    def __init__(self, board: BreakerBoard, retry: RetryPolicy, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.board = board
        self.retry = retry
        self._sleep = sleep
        self._clock = clock

    async def run(
        self,
        candidates: Sequence[Candidate[C]],
        op: Callable[[C, float], Awaitable[R]],
        *,
        deadline_at: float | None = None,
        hold: bool = False,
        on_attempt: Callable[[C], None] | None = None,
        on_refused: Callable[[C], None] | None = None,
    ) -> tuple[R, Candidate[C], Ticket]:
        last_error: GatewayError | None = None
        refused: list[str] = []
        for candidate in candidates:
            breaker = self.board.get(candidate.breaker)
            for attempt in range(1, max(1, self.retry.attempts) + 1):
                timeout = candidate.timeout
                if deadline_at is not None:
                    remaining = deadline_at - self._clock()
                    if remaining <= 0:
                        raise DeadlineExceededError(
                            "the request deadline passed before an answer came")
                    timeout = min(timeout, remaining)
                permit = await breaker.allow()
                if permit is None:
                    refused.append(candidate.breaker)
                    if on_refused is not None:
                        on_refused(candidate.item)
                    break  # open: the next candidate
                ticket = Ticket(breaker, permit)
                if on_attempt is not None:
                    on_attempt(candidate.item)
                try:
                    result = await op(candidate.item, timeout)
                except InvalidRequestError:
                    await ticket.report(Outcome.IGNORED)
                    raise
                except UpstreamError as exc:
                    await ticket.report(Outcome.FAILURE)
                    metrics.provider_error(candidate.breaker, exc.error_type)
                    last_error = exc
                    log.info("upstream attempt failed", extra={"fields": {
                        "provider": candidate.breaker, "attempt": attempt,
                        "error_type": exc.error_type, "retryable": exc.retryable}})
                    if not exc.retryable or attempt >= self.retry.attempts:
                        break
                    delay = self.retry.delay(attempt, exc.retry_after)
                    if deadline_at is not None and self._clock() + delay >= deadline_at:
                        break  # no time to wait: try the next candidate now
                    if delay > self.retry.max_backoff and exc.retry_after is not None:
                        break  # the upstream asks for longer than we wait: move on
                    await self._sleep(delay)
                    continue
                except BaseException:
                    await ticket.report(Outcome.IGNORED)  # cancelled, or a bug
                    raise
                if not hold:
                    await ticket.report(Outcome.SUCCESS)
                return result, candidate, ticket
        if last_error is not None:
            raise last_error
        names = ", ".join(dict.fromkeys(refused)) or "none"
        raise UnavailableError(f"no deployment can take the request now (circuit open: {names})",
                               code="circuit_open")
