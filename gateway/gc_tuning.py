"""The garbage collector, set for a long-running server.

CPython's cyclic collector runs a young-generation pass every 700 net container
allocations and a full pass over every tracked object now and then. A serving worker
holds ~85,000 objects from its imports and start-up that live as long as the process,
and a loaded worker allocates a few hundred containers per request that are freed by
reference counting alone. With the defaults the collector cost ~0.15-0.2 ms of CPU per
REST request at concurrency 64 (about 13% of the path; each full pass ~60 ms), nearly
all of it re-scanning objects that were never garbage (docs/performance.md).

So once the gateway serves: everything built so far moves to the permanent generation
(:func:`gc.freeze`, never scanned again), and the young generation is collected every
10,000 net allocations instead of 700. A young pass then takes ~0.5 ms and runs a few
times a second under load; the collector's share of a request falls to ~0.001 ms.
Cycles are still collected, only in larger batches; the hot paths make none per
request (``tests/integration/test_gc.py`` keeps it so).
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "tune_for_serving"]

YOUNG_THRESHOLD = 10_000


def tune_for_serving() -> None:
    """Freeze the start-up heap and collect the young generation less often."""
    gc.collect()  # start-up's own garbage is not worth keeping forever
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
