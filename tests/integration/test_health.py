"""Health: the standard ``grpc.health.v1`` protocol, the HTTP probes, drain on SIGTERM,
and the split deployment (``--only grpc`` + ``--only http --grpc-target``).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.conftest import ROOT, GatewayProcess, RunningGateway, free_port
from tests.inprocess import InProcessGateway

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
GATEWAY_SERVICE = "llmgateway.v1.GatewayService"

Factory = Callable[..., InProcessGateway]
ProcessFactory = Callable[..., GatewayProcess]


def http_get(url: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, (
                response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def http_post_json(url: str, body: dict[str, Any], timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def check(target: str, service: str = "", timeout: float = 5) -> int:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        return int(response.status)


def wait_grpc_serving(gw: GatewayProcess, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if gw.proc.poll() is not None:
            raise AssertionError(f"gateway exited with {gw.proc.returncode}:\n{gw.logs()}")
        try:
            if check(gw.grpc_target, timeout=1) == SERVING:
                return
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"gRPC health never SERVING:\n{gw.logs()}")


@pytest.fixture
def health(gateway: RunningGateway) -> Iterator[health_pb2_grpc.HealthStub]:
    with grpc.insecure_channel(gateway.grpc_target) as channel:
        yield health_pb2_grpc.HealthStub(channel)


# --- gRPC health on the shared gateway -----------------------------------------------------


@pytest.mark.parametrize("service", ["", GATEWAY_SERVICE])
def test_check_serving(health: health_pb2_grpc.HealthStub, service: str) -> None:
    response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
    assert response.status == SERVING


def test_check_unknown_service_is_not_found(health: health_pb2_grpc.HealthStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("service", ["", GATEWAY_SERVICE])
def test_watch_starts_serving(health: health_pb2_grpc.HealthStub, service: str) -> None:
    stream = health.Watch(health_pb2.HealthCheckRequest(service=service), timeout=5)
    try:
        assert next(stream).status == SERVING
    finally:
        stream.cancel()


def test_watch_unknown_service_is_service_unknown(health: health_pb2_grpc.HealthStub) -> None:
    stream = health.Watch(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    try:
        assert next(stream).status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
    finally:
        stream.cancel()


# --- HTTP probes ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/health/live"])
def test_http_liveness(gateway: RunningGateway, path: str) -> None:
    status, headers, body = http_get(gateway.http_url + path)
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["status"] == "ok"


@pytest.mark.parametrize("path", ["/ready", "/health/ready"])
def test_http_readiness(gateway: RunningGateway, path: str) -> None:
    status, headers, body = http_get(gateway.http_url + path)
    assert status == 200
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert answer["status"] == "ready"
    assert answer["checks"]["grpc_core"] == "serving"


def test_http_only_with_dead_core_is_live_but_not_ready(gateway_factory: Factory) -> None:
    gw = gateway_factory(None, only="http", grpc_target="127.0.0.1:1", wait="/health")
    for path in ("/ready", "/health/ready"):
        started = time.monotonic()
        status, headers, body = http_get(gw.http_url + path)
        assert status == 503, body
        assert time.monotonic() - started < 3  # a probe answers within its own timeout
        assert headers["content-type"].startswith("application/json")
        answer = json.loads(body)
        assert answer["status"] == "not_ready"
        assert "grpc" in answer["reason"]
    for path in ("/health", "/health/live"):
        status, _, _ = http_get(gw.http_url + path)
        assert status == 200


# --- drain on SIGTERM ----------------------------------------------------------------------


@pytest.mark.serial
def test_sigterm_turns_health_not_serving_and_exits_zero(process_factory: ProcessFactory) -> None:
    gw = process_factory(None, env={"DRAIN_TIMEOUT": "5"})
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        streams = {
            service: stub.Watch(health_pb2.HealthCheckRequest(service=service), timeout=15)
            for service in ("", GATEWAY_SERVICE)
        }
        try:
            for stream in streams.values():
                assert next(stream).status == SERVING
            signalled = time.monotonic()
            gw.proc.send_signal(signal.SIGTERM)
            for service, stream in streams.items():
                update = next(stream)
                elapsed = time.monotonic() - signalled
                assert update.status == NOT_SERVING, service
                assert elapsed < 1.0, f"{service!r} went NOT_SERVING after {elapsed:.2f}s"
        finally:
            for stream in streams.values():
                stream.cancel()
    # With the watchers gone nothing is in flight: the drain ends well before its timeout.
    assert gw.proc.wait(timeout=10) == 0, gw.logs()
    assert time.monotonic() - signalled < 5


@pytest.mark.serial
def test_sigterm_lets_in_flight_stream_finish(process_factory: ProcessFactory) -> None:
    """A stream that is running when SIGTERM arrives completes during the drain."""
    config = """
providers:
  mock: {type: mock, models: [echo], chunk_delay: 100ms}
models:
  - name: mock-1
    targets: [{provider: mock, model: echo}]
"""
    gw = process_factory(config, env={"DRAIN_TIMEOUT": "10"})
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        request = gateway_service_pb2.StreamChatCompletionRequest(
            request=chat_pb2.ChatRequest(model="mock-1", messages=[chat_pb2.ChatMessage(
                role=chat_pb2.CHAT_ROLE_USER, content="a b c d e f g h")]),
            include_usage=True)
        stream = stub.StreamChatCompletion(request, timeout=15)
        first = next(stream)
        gw.proc.send_signal(signal.SIGTERM)
        rest = list(stream)
    chunks = [first.chunk, *(r.chunk for r in rest)]
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == "Echo: a b c d e f g h"
    assert chunks[-1].HasField("usage")
    assert gw.proc.wait(timeout=10) == 0, gw.logs()


# --- split deployment ----------------------------------------------------------------------


def test_split_grpc_and_http_processes_serve_chat(process_factory: ProcessFactory) -> None:
    core = process_factory(None, args=("--only", "grpc"), wait=None)
    wait_grpc_serving(core)
    assert check(core.grpc_target, GATEWAY_SERVICE) == SERVING
    # The grpc-only process serves no HTTP.
    with pytest.raises(OSError):
        urllib.request.urlopen(core.http_url + "/health", timeout=1)

    facade = process_factory(None, args=("--only", "http", "--grpc-target", core.grpc_target))
    status, _, body = http_get(facade.http_url + "/ready")
    assert status == 200, body
    status, answer = http_post_json(facade.http_url + "/v1/chat/completions", {
        "model": "mock-1", "messages": [{"role": "user", "content": "split deployment works"}]})
    assert status == 200, answer
    assert "split deployment works" in answer["choices"][0]["message"]["content"]
    assert answer["x_gateway"]["provider"] == "mock"
    status, answer = http_post_json(facade.http_url + "/v1/chat/completions", {
        "model": "no-such-model", "messages": [{"role": "user", "content": "x"}]})
    assert status == 404
    assert answer["error"]["code"] == "model_not_found"


def test_only_http_requires_grpc_target() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--only", "http"],
        env={"PATH": "/usr/bin:/bin", "ADDR": f"127.0.0.1:{free_port()}",
             "GRPC_ADDR": f"127.0.0.1:{free_port()}"},
        cwd=ROOT, capture_output=True, timeout=30,
    )
    assert result.returncode != 0
    assert b"--grpc-target" in result.stdout + result.stderr
