"""Issue 19, item 5: with auth on, a request that names no one is refused before its body is
read (an anonymous client costs no parsing), on the lean routes and the Quart routes alike,
in each API's error shape; and a request's lists are bounded in count."""

from __future__ import annotations

import socket

import httpx
import orjson

from tests.conftest import RunningGateway


def _head_only(gw: RunningGateway, path: str, length: int) -> bytes:
    """Send a request's head announcing ``length`` body bytes, send none, read the answer."""
    with socket.create_connection(("127.0.0.1", gw.http_port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {length}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            piece = sock.recv(65536)
            if not piece:
                break
            answer += piece
        return answer


def test_no_credential_is_refused_before_the_body(gateway_factory: object) -> None:
    gw = gateway_factory(  # type: ignore[operator]
        "auth: {api_keys: {enabled: true, keys: [sk-before-body]}}")
    for path, shape in (("/v1/chat/completions", "openai"), ("/v1/messages", "anthropic"),
                        ("/admin/tenants", "openai")):
        answer = _head_only(gw, path, 5_000_000)  # the body never comes: only the head
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 401"), (path, answer[:200])
        # The body is left unread: the connection closes, so no next request races it.
        assert b"connection: close" in head.lower(), (path, head)
        error = orjson.loads(body)
        if shape == "anthropic":
            assert error["type"] == "error"
            assert error["error"]["type"] == "authentication_error"
        else:
            assert error["error"]["type"] == "authentication_error"
    # With a credential the body is read as before.
    ok = httpx.post(gw.http_url + "/v1/chat/completions",
                    headers={"Authorization": "Bearer sk-before-body"},
                    json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]})
    assert ok.status_code == 200


def test_a_keep_alive_client_is_never_cut_after_an_early_401(gateway_factory: object) -> None:
    """A client that reuses its connections (httpx's pool) after 401s answered before their
    bodies were read gets every answer: none of its requests meets a closing connection."""
    gw = gateway_factory(  # type: ignore[operator]
        "auth: {api_keys: {enabled: true, keys: [sk-before-body]}, max_failed_attempts: 0}")
    body = {"model": "mock-1", "messages": [{"role": "user", "content": "x" * 20_000}]}
    with httpx.Client(base_url=gw.http_url, timeout=10) as client:
        for i in range(150):
            refused = client.post("/v1/chat/completions", json=body)
            assert refused.status_code == 401, i
            served = client.post("/v1/chat/completions", json=body,
                                 headers={"Authorization": "Bearer sk-before-body"})
            assert served.status_code == 200, i


def test_lists_are_bounded(gateway_factory: object) -> None:
    gateway = gateway_factory("server: {max_request_body_size: 10000000}")  # type: ignore[operator]
    many = [{"role": "user", "content": "x"}] * 10_001
    for path, body, param in (
        ("/v1/chat/completions", {"model": "mock-1", "messages": many}, "messages"),
        ("/v1/chat/completions", {"model": "mock-1", "messages": many[:1], "tools": [
            {"type": "function", "function": {"name": f"f{i}"}} for i in range(513)]},
         "tools"),
        ("/v1/responses", {"model": "mock-1", "input": many}, "input"),
    ):
        r = httpx.post(gateway.http_url + path, json=body, timeout=20)
        assert r.status_code == 400, (path, r.text[:200])
        assert r.json()["error"]["param"] == param
    r = httpx.post(gateway.http_url + "/v1/messages", timeout=20,
                   json={"model": "mock-1", "max_tokens": 8, "messages": many})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("messages:")


def test_failed_attempts_are_limited_per_address(gateway_factory: object) -> None:
    """Guessing keys from one address stops after auth.max_failed_attempts: the next tries
    are 429 with Retry-After, before any credential is looked at; another address (behind
    a trusted proxy) is not held to it."""
    gw = gateway_factory("""
auth: {api_keys: {enabled: true, keys: [sk-good-key-1]}, max_failed_attempts: 5}
server: {trusted_proxy_cidrs: ["127.0.0.0/8"]}
""")  # type: ignore[operator]

    def chat(key: str, address: str = "203.0.113.7") -> httpx.Response:
        return httpx.post(gw.http_url + "/v1/chat/completions", json={
            "model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": f"Bearer {key}", "X-Forwarded-For": address})

    assert [chat(f"sk-guess-{i}").status_code for i in range(5)] == [401] * 5
    refused = chat("sk-guess-5")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "failed authentication" in refused.json()["error"]["message"]
    assert chat("sk-good-key-1", "198.51.100.4").status_code == 200
    assert chat("sk-guess-6", "198.51.100.4").status_code == 401
