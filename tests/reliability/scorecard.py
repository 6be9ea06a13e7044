"""The reliability scorecard's seam: tests record what they tried and what happened.

Every reliability, fault, security, fuzz and soak test calls :func:`record` with its
figures. Normally that does nothing; ``scripts/scorecard.sh`` sets ``SCORECARD_FILE`` and
``GATEWAY_LONG_RUNS=1``, runs those tests, and renders the lines they appended into the
table in docs/reliability.md.

``LONG`` is the one switch between the fast part CI runs on every change and the long runs:
tests scale their durations, request counts and example counts with :func:`scaled`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

__all__ = ["LONG", "record", "scaled"]

LONG = os.environ.get("GATEWAY_LONG_RUNS") == "1"


def scaled(fast: int, long: int) -> int:
    """``fast`` in CI, ``long`` in the documented long run."""
    return long if LONG else fast


def record(section: str, name: str, *, inputs: int = 0, served: int = 0,
           errors: dict[str, int] | None = None, lost: int = 0,
           rss_drift_mib: float | None = None, fd_drift: int | None = None,
           note: str = "") -> None:
    """Append one row: ``section`` (fuzz, hostile, faults, security, soak), ``name`` (what
    was tried), ``inputs`` (requests or examples sent), ``served`` (answered as the
    contract says), ``errors`` by class (e.g. ``{"429": 3, "503": 10}``), ``lost`` (anything
    acknowledged and then missing: must be zero), memory and fd drift after warm-up."""
    path = os.environ.get("SCORECARD_FILE")
    if not path:
        return
    row: dict[str, Any] = {
        "section": section, "name": name, "inputs": inputs, "served": served,
        "errors": dict(sorted((errors or {}).items())), "lost": lost,
        "rss_drift_mib": rss_drift_mib, "fd_drift": fd_drift, "note": note,
        "at": time.time(),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
