"""`gateway serve --workers N`: workers share both ports, a killed one comes back,
metrics add up across them, and SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayProcess

pytestmark = pytest.mark.serial


def workers_of(parent: int) -> set[int]:
    out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


def requests_total(text: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(text)
               for s in family.samples
               if s.name == "gateway_requests_total" and s.labels.get("status") == "OK")


@pytest.mark.slow
def test_workers_share_ports_restart_and_aggregate(
    process_factory: Callable[..., GatewayProcess],
) -> None:
    gw = process_factory(None, args=("--workers", "2"))
    deadline = time.monotonic() + 20
    while len(workers_of(gw.proc.pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    first = workers_of(gw.proc.pid)
    assert len(first) == 2
    with httpx.Client(base_url=gw.http_url) as c:
        for _ in range(40):  # new connections: the kernel spreads them over both workers
            with httpx.Client(base_url=gw.http_url) as fresh:
                assert fresh.post("/v1/chat/completions", json={
                    "model": "mock-1", "messages": [{"role": "user", "content": "x"}]}
                ).status_code == 200
        assert requests_total(c.get("/metrics").text) == 40  # any worker shows the sum

        victim = sorted(first)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = workers_of(gw.proc.pid)
            if len(now) == 2 and victim not in now:
                break
            time.sleep(0.1)
        now = workers_of(gw.proc.pid)
        assert len(now) == 2 and victim not in now  # restarted
        for _ in range(10):  # and serving throughout
            with httpx.Client(base_url=gw.http_url) as fresh:
                r = fresh.post("/v1/chat/completions", json={
                    "model": "mock-1", "messages": [{"role": "user", "content": "y"}]})
                assert r.status_code == 200
    assert "worker exited; restarting" in gw.logs()
    assert gw.stop() == 0
    assert not workers_of(gw.proc.pid)
