"""Graceful drain on SIGTERM: health goes NOT_SERVING at once, the servers keep serving
what was accepted (and the drain window), then the process exits 0."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import openai
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.conftest import GatewayProcess, start_gateway

pytestmark = pytest.mark.serial

SLOW = """
providers:
  mock: {type: mock, chunk_delay: 100ms, models: [echo]}
"""
WORDS = "one two three four five six seven eight"  # ~1 s as a stream


def test_sigterm_drains_rest_and_grpc_streams(
    process_factory: Callable[..., GatewayProcess],
) -> None:
    gw = process_factory(SLOW)
    results: dict[str, object] = {}
    under_way = threading.Semaphore(0)  # released by each stream at its first chunk

    def first_noted(chunks: Any) -> Any:
        for n, chunk in enumerate(chunks):
            if n == 0:
                under_way.release()
            yield chunk

    def rest_stream(i: int) -> None:
        with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0) as c:
            chunks = c.chat.completions.create(
                model="mock/echo", messages=[{"role": "user", "content": WORDS}], stream=True)
            results[f"rest{i}"] = "".join(ch.choices[0].delta.content or ""
                                          for ch in first_noted(chunks))

    def grpc_stream(i: int) -> None:
        with grpc.insecure_channel(gw.grpc_target) as channel:
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            request = gateway_service_pb2.StreamChatCompletionRequest(request=chat_pb2.ChatRequest(
                model="mock/echo",
                messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content=WORDS)]))
            results[f"grpc{i}"] = "".join(
                r.chunk.choices[0].delta.content
                for r in first_noted(stub.StreamChatCompletion(request)) if r.chunk.choices)

    threads = [threading.Thread(target=rest_stream, args=(i,)) for i in range(10)]
    threads += [threading.Thread(target=grpc_stream, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for _ in threads:  # every stream is under way (a busy machine may take a while)
        assert under_way.acquire(timeout=10)

    with grpc.insecure_channel(gw.grpc_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        assert health.Check(health_pb2.HealthCheckRequest()).status == (
            health_pb2.HealthCheckResponse.SERVING)
        gw.proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        deadline = signalled + 1
        status = None
        while time.monotonic() < deadline:
            status = health.Check(health_pb2.HealthCheckRequest(
                service="llmgateway.v1.GatewayService")).status
            if status == health_pb2.HealthCheckResponse.NOT_SERVING:
                break
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING
        assert time.monotonic() - signalled < 0.1 + 0.05  # the first answers after the signal

    ready = httpx.get(gw.http_url + "/ready")  # still answering, saying no
    assert ready.status_code == 503 and ready.json()["reason"] == "draining"
    for t in threads:
        t.join(15)
    expected = "Echo: " + WORDS
    assert results == {**{f"rest{i}": expected for i in range(10)},
                       **{f"grpc{i}": expected for i in range(10)}}
    assert gw.proc.wait(20) == 0
    assert "drain timeout" not in gw.logs()


def test_an_idle_gateway_stops_at_once(process_factory: Callable[..., GatewayProcess]) -> None:
    gw = process_factory(None)
    started = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - started < 2


def test_the_drain_timeout_bounds_the_wait(process_factory: Callable[..., GatewayProcess]) -> None:
    gw = process_factory("""
providers:
  mock: {type: mock, chunk_delay: 1s, models: [echo]}
""", env={"DRAIN_TIMEOUT": "1", "SHUTDOWN_TIMEOUT": "1"})
    done = threading.Event()

    def endless() -> None:
        try:
            with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0) as c:
                list(c.chat.completions.create(
                    model="mock/echo", stream=True,
                    messages=[{"role": "user", "content": "a b c d e f g h i j k l"}]))
        except openai.APIError:
            pass
        done.set()

    t = threading.Thread(target=endless)
    t.start()
    time.sleep(0.5)
    started = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - started < 4  # drain 1 s + shutdown 1 s, not the 12 s stream
    assert "drain timeout reached" in gw.logs()
    t.join(10)
    assert done.is_set()


def test_clients_dropping_streams_leave_nothing_in_flight(
    process_factory: Callable[..., GatewayProcess],
) -> None:
    gw = process_factory(None)  # the mock at full speed: the hang-up races the stream's end
    body = json.dumps({"model": "mock/echo", "stream": True, "messages": [
        {"role": "user", "content": " ".join(f"word{i}" for i in range(40))}]}).encode()
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               b"Content-Type: application/json\r\nContent-Length: "
               + str(len(body)).encode() + b"\r\n\r\n" + body)
    for _ in range(20):  # read a little of each stream, then hang up (like `curl | head`)
        with socket.create_connection(("127.0.0.1", gw.http_port), timeout=5) as sock:
            sock.sendall(request)
            sock.recv(300)
    time.sleep(0.5)
    started = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(10) == 0
    assert time.monotonic() - started < 3
    logs = gw.logs()
    assert "drain timeout" not in logs and "different Context" not in logs


def test_a_second_signal_stops_at_once(tmp_path: Path) -> None:
    gw = start_gateway("""
providers:
  mock: {type: mock, chunk_delay: 1s, models: [echo]}
""", tmp_path)  # not the factory: this process is meant to exit 1

    def endless() -> None:
        try:
            with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0) as c:
                list(c.chat.completions.create(model="mock/echo", stream=True, messages=[
                    {"role": "user", "content": "a b c d e f g h i j k l m n o p"}]))
        except openai.APIError:
            pass

    t = threading.Thread(target=endless)
    t.start()
    time.sleep(0.5)
    gw.proc.send_signal(signal.SIGTERM)  # drains: the stream would take 17 s
    time.sleep(0.3)
    assert gw.proc.poll() is None
    started = time.monotonic()
    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(5) == 1  # at once, and not a clean exit
    assert time.monotonic() - started < 1
    assert "second signal" in gw.logs()
    t.join(10)
