"""Hostile clients: slow headers, slow bodies, huge bodies and headers, idle connection
floods, clients that vanish mid-stream. The configured limits hold, and the gateway
keeps serving everyone else."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.conftest import GatewayProcess, RunningGateway
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Reply
from tests.inprocess import InProcessGateway

Factory = Callable[..., InProcessGateway]
ProcessFactory = Callable[..., GatewayProcess]
GOOD = {"model": "mock-1", "messages": [{"role": "user", "content": "still serving?"}]}
LIMITS = """
server: {keep_alive_timeout: 1s, body_timeout: 1s, max_header_size: 8192,
         max_request_body_size: 1048576}
"""


def still_serving(gw: RunningGateway) -> None:
    r = httpx.post(gw.http_url + "/v1/chat/completions", json=GOOD, timeout=10)
    assert r.status_code == 200 and "still serving" in r.text


def read_response(sock: socket.socket, timeout: float = 5) -> tuple[str, bytes]:
    """One whole HTTP/1.1 response: ``(head, body)``, however it was segmented."""
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), None)
    while length is not None and len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.decode(), body


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_slow_headers_are_cut_off(gateway_factory: Factory) -> None:
    gw = gateway_factory(LIMITS)
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for _ in range(3):  # a header line now and then, never the end
            time.sleep(0.3)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        assert closed_by_server(sock, within=5)
        assert time.monotonic() - started < 4
    still_serving(gw)


def test_slow_bodies_get_408(gateway_factory: Factory) -> None:
    gw = gateway_factory(LIMITS)
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"mo")
        head, raw = read_response(sock)
    assert head.startswith("HTTP/1.1 408"), head[:80]
    assert json.loads(raw)["error"]["message"].startswith("The request body did not arrive")
    still_serving(gw)


def test_huge_headers_and_bodies_are_refused(gateway_factory: Factory) -> None:
    gw = gateway_factory(LIMITS)
    r = httpx.post(gw.http_url + "/v1/chat/completions", json=GOOD,
                   headers={"X-Big": "a" * 20_000})
    assert r.status_code == 431 and r.json()["error"]["code"] == "headers_too_large"
    # 100 MB announced: refused without reading it.
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n")
        head, raw = read_response(sock)
    assert head.startswith("HTTP/1.1 413"), head[:80]
    assert json.loads(raw)["error"]["code"] == "request_too_large"
    # 100 MB streamed without a length: cut at the limit.
    sent = 0

    def chunks():  # type: ignore[no-untyped-def]
        nonlocal sent
        while sent < 100 * 1024 * 1024:
            sent += 65536
            yield b"x" * 65536

    try:
        r = httpx.post(gw.http_url + "/v1/chat/completions", content=chunks(), timeout=30)
        assert r.status_code == 413
    except httpx.HTTPError:
        pass  # the server may close before the client finishes writing: also a refusal
    assert sent < 100 * 1024 * 1024
    still_serving(gw)


@pytest.mark.serial
@pytest.mark.slow
def test_a_flood_of_idle_connections(process_factory: ProcessFactory) -> None:
    # A process of its own: the flood's client and server ends would share one descriptor
    # budget in this one.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    count = min(1500, soft - 200)
    gw = process_factory(LIMITS)
    sockets = []
    try:
        for _ in range(count):
            sockets.append(socket.create_connection(("127.0.0.1", gw.http_port)))
        still_serving(gw)  # a real client gets through the crowd
        time.sleep(1.5)  # keep_alive_timeout: idle connections are closed by the server
        closed = sum(closed_by_server(s, within=0.01) for s in sockets[:200])
        assert closed == 200
    finally:
        for s in sockets:
            s.close()
    still_serving(gw)


def test_a_client_vanishing_mid_stream_cancels_the_upstream_and_charges_nothing(
    gateway_factory: Factory, fake_openai: FakeOpenAI,
) -> None:
    gw = gateway_factory(f"""
circuit_breaker: {{consecutive_failures: 1, min_requests: 1}}
providers:
{fake_openai.provider()}
""", env={"GATEWAY_ADMIN_KEY": "adm-hostile"})
    admin = {"Authorization": "Bearer adm-hostile"}
    tenant = httpx.post(gw.http_url + "/admin/tenants", headers=admin, json={
        "name": "t", "limits": {"concurrent_requests": 1}}).json()["tenant"]["id"]
    key = httpx.post(gw.http_url + f"/admin/tenants/{tenant}/keys", headers=admin,
                     json={}).json()["secret"]
    # A slow upstream stream: the client leaves after the first event.
    events = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
               "choices": [{"index": 0, "delta": {"content": f"w{i} "},
                            "finish_reason": None}]} for i in range(50)]
    fake_openai.enqueue(Reply(events=[*events, "[DONE]"], delay=0.0))
    body = json.dumps({"model": "up/m", "stream": True, "messages": [
        {"role": "user", "content": "x"}]}).encode()
    done = threading.Event()

    def leave_early() -> None:
        with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Authorization: Bearer " + key.encode() + b"\r\n"
                         b"Content-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\n\r\n" + body)
            sock.recv(200)
        done.set()

    leave_early()
    assert done.wait(5)
    time.sleep(0.5)
    # The concurrency slot came back (limit 1): the next request is admitted.
    r = httpx.post(gw.http_url + "/v1/chat/completions", json={**GOOD, "model": "up/m"},
                   headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200, r.text
    # The breaker was not charged with a failure for the client's departure.
    breakers = httpx.get(gw.http_url + "/admin/circuit-breakers", headers=admin).json()
    up = next(b for b in breakers["circuit_breakers"] if b["provider"] == "up")
    assert up["state"] == "CIRCUIT_BREAKER_STATE_CLOSED" and int(up.get("failures", 0)) == 0


@pytest.mark.parametrize("framing", [
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
])
def test_a_body_framed_two_ways_is_answered_then_the_connection_closed(
        gateway_factory: Factory, framing: bytes) -> None:
    # Was answered with the connection kept, so whatever the client meant by the other
    # framing could be read as the next request (RFC 9112, 6.3: close after answering).
    gw = gateway_factory(None)
    body = json.dumps(GOOD).encode()
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\n" + framing + b"\r\n"
                     + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body))
        head, _ = read_response(sock)
        assert head.startswith("HTTP/1.1 200") and "connection: close" in head.lower()
        assert closed_by_server(sock, within=2)
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:  # one framing: kept
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))
        head, _ = read_response(sock)
        assert head.startswith("HTTP/1.1 200") and "connection: close" not in head.lower()
        assert not closed_by_server(sock, within=0.3)
