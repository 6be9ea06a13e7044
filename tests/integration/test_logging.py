"""Logs: one JSON line per request with its ids and outcome; never a prompt or a secret."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from tests.conftest import GatewayProcess
from tests.fakes.openai import FakeOpenAI, openai_error

PROMPT = "my very private prompt"
ADMIN = "adm-log-secret-9f8e"
UPSTREAM_KEY = FakeOpenAI.api_key


def test_request_lines_and_no_secrets(process_factory: Callable[..., GatewayProcess],
                                      fake_openai: FakeOpenAI) -> None:
    gw = process_factory(f"""
logging: {{level: debug, format: json}}
providers:
  up: {{type: openai, base_url: "{fake_openai.base_url}/v1", api_key: "${{UP_KEY}}",
        models: [m]}}
""", env={"UP_KEY": UPSTREAM_KEY, "GATEWAY_ADMIN_KEY": ADMIN, "LOG_LEVEL": "debug",
          "REDIS_URL": "redis://:redis-pass-secret@127.0.0.1:1/0"},
        wait="/health")  # the Redis here never answers: the replica is alive, never ready
    body = {"model": "up/m", "messages": [{"role": "user", "content": PROMPT}]}
    ok = httpx.post(gw.http_url + "/v1/chat/completions", json=body,
                    headers={"X-Request-ID": "log-test-1", "Authorization": "Bearer sk-client-x"})
    assert ok.status_code == 200
    fake_openai.enqueue(openai_error(401, f"Incorrect API key provided: {UPSTREAM_KEY}",
                                     "invalid_request_error", "invalid_api_key"))
    bad = httpx.post(gw.http_url + "/v1/chat/completions", json=body,
                     headers={"X-Request-ID": "log-test-2"})
    assert bad.status_code == 502
    httpx.get(gw.http_url + "/admin/system", headers={"Authorization": f"Bearer {ADMIN}"})
    assert gw.stop() == 0

    text = gw.logs()
    for secret in (PROMPT, ADMIN, UPSTREAM_KEY, "redis-pass-secret", "sk-client-x"):
        assert secret not in text, secret
    lines = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    requests = {line["request_id"]: line for line in lines if line["msg"] == "request"}
    first = requests["log-test-1"]
    assert first["status"] == "OK" and first["provider"] == "up" and first["model"] == "up/m"
    assert first["prompt_tokens"] == 11 and first["completion_tokens"] == 7
    assert first["latency_ms"] > 0 and first["level"] == "info"
    assert requests["log-test-2"]["status"] == "UNAVAILABLE"
    assert {"serving", "draining", "stopped"} <= {line["msg"] for line in lines}


def test_text_format_for_development(process_factory: Callable[..., GatewayProcess]) -> None:
    gw = process_factory(None, env={"LOG_FORMAT": "text"})
    httpx.post(gw.http_url + "/v1/chat/completions",
               json={"model": "mock-1", "messages": [{"role": "user", "content": "hi"}]},
               headers={"X-Request-ID": "text-1"})
    assert gw.stop() == 0
    line = next(li for li in gw.logs().splitlines() if "request_id=text-1" in li)
    assert " INFO " in line and "status=OK" in line and not line.startswith("{")


def test_debug_level_never_logs_http2_credentials(
        process_factory: Callable[..., GatewayProcess]) -> None:
    """Issue 19 item 7: at ``level: debug`` the hpack logger printed every decoded header of
    an HTTP/2 request, bearer tokens included. Third-party loggers stay at warning and a
    redaction filter guards the handler; the gateway's own debug lines still appear."""
    bearer, api_key = "sk-h2-canary-bearer-1d9c7e", "h2-canary-api-key-77ab31"
    gw = process_factory("logging: {level: debug, format: json}\n", env={"LOG_LEVEL": "debug"})
    with httpx.Client(http1=False, http2=True) as client:  # h2c, prior knowledge
        reply = client.post(gw.http_url + "/v1/chat/completions",
                            json={"model": "mock-1", "messages": [{"role": "user",
                                                                    "content": "hi"}]},
                            headers={"Authorization": f"Bearer {bearer}", "x-api-key": api_key,
                                     "X-Request-ID": "h2-debug-1"})
    assert reply.http_version == "HTTP/2"
    assert gw.stop() == 0

    text = gw.logs()
    assert bearer not in text and api_key not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert any(line["level"] == "debug" and line["logger"].startswith("gateway")
               for line in lines)
    assert all(line["logger"].startswith("gateway") or line["level"] not in ("debug", "info")
               for line in lines)
