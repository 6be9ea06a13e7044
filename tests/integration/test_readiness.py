"""Readiness means able to serve: the core and every configured dependency answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.conftest import RunningGateway
from tests.inprocess import InProcessGateway
from tests.servers import PostgresServer, RedisServer

Factory = Callable[..., InProcessGateway]


def ready(gw: RunningGateway) -> httpx.Response:
    return httpx.get(gw.http_url + "/ready", timeout=5)


def wait_for(gw: RunningGateway, status: int, timeout: float = 10) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        r = ready(gw)
        if r.status_code == status or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def grpc_health(gw: RunningGateway, service: str) -> int:
    with grpc.insecure_channel(gw.grpc_target) as channel:
        return int(health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5).status)


def test_redis_outage_makes_the_replica_unready_not_dead(gateway_factory: Factory,
                                                         redis_server: RedisServer) -> None:
    gw = gateway_factory("conversations: {store: redis}", env={"REDIS_URL": redis_server.url})
    body = ready(gw).json()
    assert body["checks"] == {"grpc_core": "serving", "redis": "ok", "conversations": "ok"}
    redis_server.stop()
    r = wait_for(gw, 503)
    assert r.status_code == 503 and "redis: unavailable" in r.json()["reason"]
    assert r.json()["checks"]["redis"] == "unavailable"
    assert httpx.get(gw.http_url + "/health/live").status_code == 200  # liveness is cheap
    serving, not_serving = (health_pb2.HealthCheckResponse.SERVING,
                            health_pb2.HealthCheckResponse.NOT_SERVING)
    assert grpc_health(gw, "") == serving  # the process is alive...
    assert grpc_health(gw, "llmgateway.v1.GatewayService") == not_serving  # ...and unready
    # Chat still works without Redis (nothing here needs it).
    assert httpx.post(gw.http_url + "/v1/chat/completions", json={
        "model": "mock-1", "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
    redis_server.start()
    assert wait_for(gw, 200).status_code == 200
    assert grpc_health(gw, "llmgateway.v1.GatewayService") == serving
    assert "dependencies failing" in gw.logs() and "answering again" in gw.logs()


@pytest.mark.slow
def test_database_outage_is_named(gateway_factory: Factory, tmp_path: Path) -> None:
    server = PostgresServer().start()
    try:
        dsn = server.create_database("readiness")
        gw = gateway_factory(None, env={"DATABASE_URL": dsn})
        assert ready(gw).json()["checks"]["database"] == "ok"
        server.stop()
        r = wait_for(gw, 503)
        assert r.status_code == 503 and r.json()["checks"]["database"] != "ok"
        assert dsn not in r.text and dsn not in gw.logs()
        server.start()
        assert wait_for(gw, 200, timeout=15).status_code == 200
    finally:
        server.close()
