"""Retry timing: exponential backoff with full jitter, honouring ``Retry-After``.

Example::

    policy = RetryPolicy(attempts=3, backoff=0.1, max_backoff=2.0)
    policy.delay(attempt=1, retry_after=None)   # uniform in [0, 0.2)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]


@dataclass(slots=True)
class RetryPolicy:
    """``attempts`` is the number of tries per deployment (1 means no retry)."""

    attempts: int = 2
    backoff: float = 0.1
    max_backoff: float = 2.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before try number ``attempt + 1`` (``attempt`` counts from 1).

        Full jitter (uniform in [0, backoff * 2**(attempt-1)], capped), unless the
        upstream said when to come back: then exactly that.
        """
        if retry_after is not None:
            return max(0.0, retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
        return self.rng.uniform(0, ceiling)
