"""The lean ASGI routes in front of Quart (gateway/facade/hot.py): a client that leaves a
non-stream chat mid-call stops the core's work at once (its concurrency slot comes back),
methods other than POST are refused like Quart refused them, and the liveness probe
answers GET and HEAD."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable

import httpx

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI
from tests.fakes.server import Reply
from tests.inprocess import InProcessGateway

Factory = Callable[..., InProcessGateway]
ADMIN = {"Authorization": "Bearer adm-hot"}


def tenant_key(gw: RunningGateway) -> str:
    tenant = httpx.post(gw.http_url + "/admin/tenants", headers=ADMIN, json={
        "name": "t", "limits": {"concurrent_requests": 1}}).json()["tenant"]["id"]
    return str(httpx.post(gw.http_url + f"/admin/tenants/{tenant}/keys", headers=ADMIN,
                          json={}).json()["secret"])


def test_a_client_leaving_a_slow_completion_frees_its_slot_at_once(
    gateway_factory: Factory, fake_openai: FakeOpenAI,
) -> None:
    gw = gateway_factory(f"""
providers:
{fake_openai.provider()}
""", env={"GATEWAY_ADMIN_KEY": "adm-hot"})
    key = tenant_key(gw)
    fake_openai.enqueue(Reply(delay=5.0))  # the upstream takes 5 s: the client will not wait
    body = json.dumps({"model": "up/m", "messages": [{"role": "user", "content": "x"}]})
    with socket.create_connection(("127.0.0.1", gw.http_port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Authorization: Bearer " + key.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nContent-Length: "
                     + str(len(body)).encode() + b"\r\n\r\n" + body.encode())
        time.sleep(0.5)  # admitted and waiting on the upstream
    time.sleep(0.3)
    started = time.monotonic()
    r = httpx.post(gw.http_url + "/v1/chat/completions", headers={
        "Authorization": f"Bearer {key}"}, json={"model": "up/m", "messages": [
            {"role": "user", "content": "next"}]}, timeout=10)
    # Limit 1: had the first call gone on, this one would be refused (429) for 4 more s.
    assert r.status_code == 200, r.text
    assert time.monotonic() - started < 2


def test_other_methods_and_the_liveness_probe(gateway_factory: Factory) -> None:
    gw = gateway_factory(None)
    r = httpx.get(gw.http_url + "/v1/chat/completions")
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.json()["error"]["type"] == "invalid_request_error" and r.headers["x-request-id"]
    for path in ("/health", "/health/live"):
        assert httpx.get(gw.http_url + path).json() == {"status": "ok"}
        head = httpx.head(gw.http_url + path)
        assert head.status_code == 200 and head.content == b""
        assert httpx.post(gw.http_url + path).status_code == 405
