"""The garbage collector, set for a long-running server.

With CPython's defaults the collector keeps re-scanning the start-up heap, which lives as
long as the process and is never garbage. So once the gateway serves, that heap is frozen
(:func:`gc.freeze`) and the young generation is collected less often. Cycles are still
collected, in larger batches; the hot paths make none (``tests/integration/test_gc.py``).
The measurements are in docs/performance.md.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_serving"]

YOUNG_THRESHOLD = 10_000  # net allocations between young passes (CPython default: 700)


def tune_for_serving() -> None:
    """Freeze the start-up heap and collect the young generation less often."""
    gc.collect()  # start-up's own garbage is not worth keeping forever
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
