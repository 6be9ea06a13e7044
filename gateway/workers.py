"""``gateway serve --workers N``: a parent that runs N single-worker processes.

The workers share the HTTP and gRPC ports through SO_REUSEPORT. The parent
forwards SIGTERM/SIGINT to them, restarts one that dies unexpectedly (with a
short back-off), and exits when all have stopped after a signal.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

__all__ = ["supervise"]

log = logging.getLogger("gateway.workers")

_RESTART_BACKOFF = 1.0


def _worker_args(argv: Sequence[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
        del i
    return [sys.executable, "-m", "gateway", *out]


def supervise(count: int, argv: Sequence[str]) -> int:
    command = _worker_args(argv)
    workers: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def start(slot: int) -> None:
        workers[slot] = subprocess.Popen(command)
        log.info("worker started", extra={"fields": {"slot": slot, "pid": workers[slot].pid}})

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        if stopping:  # second signal: stop now
            for proc in workers.values():
                proc.kill()
            return
        stopping = True
        for proc in workers.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for slot in range(count):
        start(slot)
    while True:
        alive = False
        for slot, proc in list(workers.items()):
            code = proc.poll()
            if code is None:
                alive = True
            elif not stopping:
                log.warning("worker exited; restarting", extra={"fields": {
                    "slot": slot, "pid": proc.pid, "exit_code": code}})
                time.sleep(_RESTART_BACKOFF)
                if not stopping:
                    start(slot)
                    alive = True
        if stopping and not alive:
            return 0
        time.sleep(0.2)
