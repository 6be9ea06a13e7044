"""``gateway serve --workers N``: a parent that runs N single-worker processes.

The workers share the HTTP and gRPC ports through SO_REUSEPORT. The parent
forwards SIGTERM/SIGINT to them, restarts one that dies unexpectedly (with a
short back-off), and exits when all have stopped after a signal.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence

from gateway.config import Settings

__all__ = ["shared_state_warnings", "supervise"]

log = logging.getLogger("gateway.workers")

_RESTART_BACKOFF = 1.0


def shared_state_warnings(settings: Settings, workers: int) -> list[str]:
    """What ``workers`` processes would each keep for themselves, unlike one process: the
    start-up log says so (docs/deploy.md), since operators expect the limits they wrote."""
    if workers < 2:
        return []
    out = []
    limited = settings.rate_limit.enabled or settings.auth.api_keys.enabled or (
        settings.auth.oidc.enabled)
    if limited and not settings.redis.url:
        out.append(f"--workers {workers} without redis.url: rate limits, token limits and "
                   f"quotas are counted per worker, so a client gets up to {workers}x the "
                   "configured amounts; set redis.url to share them")
    if settings.auth.api_keys.enabled and not settings.database.url:
        out.append(f"--workers {workers} without database.url: tenants and API keys live "
                   "in each worker's memory, and an admin change reaches only the worker "
                   "that served it; set database.url to share them")
    return out


def _worker_args(argv: Sequence[str]) -> list[str]:
    """The command of one worker: this command line without ``--workers``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return [sys.executable, "-m", "gateway", *out]


def supervise(count: int, argv: Sequence[str]) -> int:
    """Run ``count`` workers until a signal stops them; metrics aggregate across them."""
    metrics_dir = tempfile.mkdtemp(prefix="llm-gateway-metrics-")
    try:
        return _supervise(count, argv, metrics_dir)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _supervise(count: int, argv: Sequence[str], metrics_dir: str) -> int:
    command = _worker_args(argv)
    # prometheus-client's multi-process mode: each worker writes its own files here and
    # any worker's /metrics adds them up.
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir}
    workers: dict[int, subprocess.Popen[bytes]] = {}
    stopping = False

    def start(slot: int) -> None:
        if slot in workers:  # a dead worker's live gauges must not be summed any more
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(workers[slot].pid, metrics_dir)  # type: ignore[no-untyped-call]
        workers[slot] = subprocess.Popen(command, env=env)
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
