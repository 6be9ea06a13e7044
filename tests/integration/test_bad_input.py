"""Bad input gets a clear 4xx in OpenAI's error shape, and the process keeps serving."""

from __future__ import annotations

import socket

import httpx
import pytest

from tests.conftest import RunningGateway

GOOD = {"model": "mock-1", "messages": [{"role": "user", "content": "still here?"}]}


@pytest.fixture(scope="module")
def gateway(channel_gateway: RunningGateway) -> RunningGateway:
    """Every test twice: the facade calling the core in process, then over gRPC (split)."""
    return channel_gateway


def _assert_openai_error(response: httpx.Response, status: int, param: object = ...) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "param", "code"}
    assert error["message"] and "Traceback" not in response.text
    if param is not ...:
        assert error["param"] == param
    return error


@pytest.mark.parametrize(("body", "param"), [
    ({"messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": 42, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "mock-1"}, "messages"),
    ({"model": "mock-1", "messages": []}, "messages"),
    ({"model": "mock-1", "messages": "hello"}, "messages"),
    ({"model": "mock-1", "messages": [{"content": "x"}]}, "messages[0].role"),
    ({"model": "mock-1", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
    ({"model": "mock-1", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({**GOOD, "temperature": "hot"}, "temperature"),
    ({**GOOD, "temperature": 9}, "temperature"),
    ({**GOOD, "max_tokens": -1}, "max_tokens"),
    ({**GOOD, "n": 0}, "n"),
    ({**GOOD, "stream": "yes"}, "stream"),
    ({**GOOD, "tools": [{"type": "function", "function": {}}]}, "tools[0].function.name"),
    ({**GOOD, "tool_choice": "sometimes"}, "tool_choice"),
    ({**GOOD, "response_format": {"type": "xml"}}, "response_format.type"),
    ({**GOOD, "stop": [1, 2]}, "stop[0]"),
    ({"model": "mock-1", "messages": [{"role": "tool", "content": "x"}]},
     "messages[0].tool_call_id"),
])
def test_wrong_fields_name_their_param(gateway: RunningGateway, body: dict, param: str) -> None:
    r = httpx.post(gateway.http_url + "/v1/chat/completions", json=body)
    error = _assert_openai_error(r, 400, param)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'{"model": "mock-1", "messa',
                                 b"\xff\xfe\x00garbage", b'{"model": "\xc3\x28"}'])
def test_malformed_bodies(gateway: RunningGateway, raw: bytes) -> None:
    r = httpx.post(gateway.http_url + "/v1/chat/completions", content=raw,
                   headers={"Content-Type": "application/json"})
    _assert_openai_error(r, 400, None)


def test_unknown_model_is_404_model_not_found(gateway: RunningGateway) -> None:
    r = httpx.post(gateway.http_url + "/v1/chat/completions",
                   json={**GOOD, "model": "gpt-17-ultra"})
    error = _assert_openai_error(r, 404, "model")
    assert error["code"] == "model_not_found"
    r = httpx.post(gateway.http_url + "/v1/chat/completions",
                   json={**GOOD, "model": "nosuchprovider/x", "stream": True})
    assert _assert_openai_error(r, 404)["code"] == "model_not_found"


def test_body_over_the_limit_is_413(gateway: RunningGateway) -> None:
    # The module's gateway sets server.max_request_body_size to 64 KiB.
    big = {**GOOD, "messages": [{"role": "user", "content": "x" * 70_000}]}
    r = httpx.post(gateway.http_url + "/v1/chat/completions", json=big)
    _assert_openai_error(r, 413)


def test_body_over_the_limit_without_content_length_is_413(gateway: RunningGateway) -> None:
    def chunks():  # chunked transfer encoding: no Content-Length to check up front
        yield b'{"model": "mock-1", "messages": [{"role": "user", "content": "'
        for _ in range(20):
            yield b"y" * 8192
        yield b'"}]}'

    r = httpx.post(gateway.http_url + "/v1/chat/completions", content=chunks(),
                   headers={"Content-Type": "application/json"})
    _assert_openai_error(r, 413)


def test_unknown_path_and_wrong_method(gateway: RunningGateway) -> None:
    _assert_openai_error(httpx.get(gateway.http_url + "/v1/nothing-here"), 404)
    _assert_openai_error(httpx.get(gateway.http_url + "/v1/chat/completions"), 405)


def test_truncated_request_then_still_serving(gateway: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.http_port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"mod")
    for _ in range(3):
        r = httpx.post(gateway.http_url + "/v1/chat/completions", json=GOOD)
        assert r.status_code == 200
        assert "still here?" in r.json()["choices"][0]["message"]["content"]
    assert "Traceback" not in gateway.logs()
