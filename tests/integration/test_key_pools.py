"""Key pools end to end: a real gateway whose provider lists two keys, in front of the fake
OpenAI API, which records the ``Authorization`` header of every request (the proof of which
key was used) and can answer one key differently from the other."""

from __future__ import annotations

import base64
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningGateway
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.inprocess import start_in_process

KEY_A = "sk-pool-primary-" + secrets.token_hex(8)
KEY_B = "sk-pool-second-" + secrets.token_hex(8)
OWN = "sk-tenant-own-" + secrets.token_hex(8)
ADMIN = "adm-key-pools-test"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(keys=(KEY_A, KEY_B, OWN)) as server:
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(fake: FakeOpenAI) -> None:
    fake.reset()
    fake.revoked.clear()


def config(fake: FakeOpenAI, provider: str, extra: str = "") -> str:
    return f"""
logging: {{level: info, format: json}}
retry: {{attempts: 1}}
circuit_breaker: {{consecutive_failures: 1000, min_requests: 1000}}
providers:
  {provider}:
    type: openai
    base_url: "{fake.base_url}/v1"
    api_keys:
      - {{key: "${{K_A}}", name: primary}}
      - "${{K_B}}"
    models: [m]
{extra}"""


@pytest.fixture
def start(fake: FakeOpenAI) -> Iterator[Callable[..., RunningGateway]]:
    """A gateway per test (a key's state lasts), its provider named after the test so
    that the process-wide metrics of one test do not show in another's."""
    started: list[RunningGateway] = []

    def make(provider: str, extra: str = "", env: dict[str, str] | None = None
             ) -> RunningGateway:
        gw = start_in_process(config(fake, provider, extra), env={
            "K_A": KEY_A, "K_B": KEY_B, "GATEWAY_ADMIN_KEY": ADMIN, **(env or {})})
        started.append(gw)
        return gw

    yield make
    for gw in started:
        code = gw.stop()
        assert code == 0, f"gateway exited {code}:\n{gw.logs()}"


def chat(gw: RunningGateway, provider: str, key: str = "sk-client") -> httpx.Response:
    return httpx.post(gw.http_url + "/v1/chat/completions", timeout=20,
                      headers={"Authorization": f"Bearer {key}"},
                      json={"model": f"{provider}/m", "messages": HI})


def used(fake: FakeOpenAI) -> list[str]:
    """Which key each request to the fake carried: "A", "B" or "own"."""
    names = {KEY_A: "A", KEY_B: "B", OWN: "own"}
    return [names[r.headers["Authorization"].removeprefix("Bearer ")] for r in fake.requests]


def keys_shown(gw: RunningGateway, provider: str) -> list[dict[str, Any]]:
    r = httpx.get(gw.http_url + "/admin/providers", timeout=10,
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    assert KEY_A not in r.text and KEY_B not in r.text
    (info,) = [p for p in r.json()["providers"] if p["name"] == provider]
    assert info["has_api_key"] is True
    return list(info["keys"])


def gauge(gw: RunningGateway, provider: str) -> dict[str, float]:
    text = httpx.get(gw.http_url + "/metrics", timeout=10).text
    assert KEY_A not in text and KEY_B not in text
    out = {}
    for line in text.splitlines():
        if line.startswith("gateway_provider_key_state{") and f'provider="{provider}"' in line:
            key = line.split('key="')[1].split('"')[0]
            out[key] = float(line.rsplit(" ", 1)[1])
    return out


def test_requests_spread_over_the_keys(start: Callable[..., RunningGateway],
                                       fake: FakeOpenAI) -> None:
    gw = start("spread")
    for _ in range(6):
        assert chat(gw, "spread").status_code == 200
    assert Counter(used(fake)) == {"A": 3, "B": 3}
    assert gauge(gw, "spread") == {"primary": 0.0, "#1": 0.0}
    assert [(k["name"], k["index"], k["state"], k["weight"]) for k in keys_shown(gw, "spread")] \
        == [("primary", 0, "PROVIDER_KEY_STATE_READY", 1.0),
            ("#1", 1, "PROVIDER_KEY_STATE_READY", 1.0)]


def test_a_429_rests_the_key_while_the_other_serves(start: Callable[..., RunningGateway],
                                                    fake: FakeOpenAI) -> None:
    gw = start("resting")
    fake.enqueue_for(KEY_A, openai_error(429, "Rate limit reached", "requests",
                                         "rate_limit_exceeded", headers={"Retry-After": "1"}))
    rested_at = time.monotonic()
    assert chat(gw, "resting").status_code == 200  # served by the other key at once
    assert used(fake) == ["A", "B"]
    for _ in range(3):
        assert chat(gw, "resting").status_code == 200
    assert used(fake)[2:] == ["B", "B", "B"]
    primary, second = keys_shown(gw, "resting")
    assert primary["state"] == "PROVIDER_KEY_STATE_RESTING" and 0 < primary["seconds_left"] <= 1
    assert second["state"] == "PROVIDER_KEY_STATE_READY" and second["seconds_left"] == 0
    assert gauge(gw, "resting") == {"primary": 1.0, "#1": 0.0}
    metrics = httpx.get(gw.http_url + "/metrics", timeout=10).text
    assert 'gateway_provider_key_rests_total{key="primary",provider="resting"} 1.0' in metrics
    time.sleep(max(0.0, rested_at + 1.05 - time.monotonic()))
    fake.reset()
    for _ in range(3):
        assert chat(gw, "resting").status_code == 200
    assert "A" in used(fake)  # rested: it serves again (its share evens out over a round)
    assert keys_shown(gw, "resting")[0]["state"] == "PROVIDER_KEY_STATE_READY"
    assert gauge(gw, "resting")["primary"] == 0.0


def test_a_refused_key_opens_its_breaker(start: Callable[..., RunningGateway],
                                         fake: FakeOpenAI) -> None:
    gw = start("revoked")
    fake.revoked.add(KEY_A)
    for _ in range(4):
        assert chat(gw, "revoked").status_code == 200
    assert used(fake) == ["A", "B", "B", "B", "B"]  # one 401, then the other key only
    primary, _ = keys_shown(gw, "revoked")
    assert primary["state"] == "PROVIDER_KEY_STATE_OPEN"
    assert primary["consecutive_failures"] == 1 and 50 < primary["seconds_left"] <= 60
    assert gauge(gw, "revoked") == {"primary": 2.0, "#1": 0.0}
    logs = gw.logs()
    assert '"msg":"provider key state"' in logs
    assert '"key":"primary"' in logs and '"state":"open"' in logs
    assert KEY_A not in logs and KEY_B not in logs


def test_every_key_at_rest_is_a_429_with_retry_after(start: Callable[..., RunningGateway],
                                                     fake: FakeOpenAI) -> None:
    gw = start("exhausted")
    fake.enqueue_for(KEY_A, openai_error(429, "slow down", "requests", headers={
        "Retry-After": "20"}))
    fake.enqueue_for(KEY_B, openai_error(429, "slow down", "requests", headers={
        "Retry-After": "10"}))
    first = chat(gw, "exhausted")
    assert first.status_code == 429 and used(fake) == ["A", "B"]
    second = chat(gw, "exhausted")  # no key can serve: the upstream is not asked
    assert second.status_code == 429 and len(fake.requests) == 2
    assert 9 <= float(second.headers["retry-after"]) <= 10
    assert [k["state"] for k in keys_shown(gw, "exhausted")] == [
        "PROVIDER_KEY_STATE_RESTING"] * 2


def test_pool_keys_are_redacted_from_upstream_text(start: Callable[..., RunningGateway],
                                                   fake: FakeOpenAI) -> None:
    gw = start("redacted")
    fake.enqueue(openai_error(400, f"bad request sent with {KEY_A} and {KEY_B}",
                              "invalid_request_error"))
    r = chat(gw, "redacted")
    assert r.status_code == 400
    assert KEY_A not in r.text and KEY_B not in r.text and "[redacted]" in r.text
    assert KEY_A not in gw.logs() and KEY_B not in gw.logs()


def test_a_tenants_own_key_bypasses_the_pool(start: Callable[..., RunningGateway],
                                             fake: FakeOpenAI) -> None:
    gw = start("owned", extra="auth: {api_keys: {enabled: true}}",
               env={"ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode()})
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = httpx.post(gw.http_url + "/admin/tenants", headers=admin, timeout=10, json={
        "name": "owner", "provider_credentials": {"owned": OWN}})
    assert r.status_code == 201, r.text
    tenant = r.json()["tenant"]["id"]
    r = httpx.post(gw.http_url + f"/admin/tenants/{tenant}/keys", headers=admin, timeout=10,
                   json={"name": "k"})
    secret = r.json()["secret"]
    for _ in range(2):
        assert chat(gw, "owned", secret).status_code == 200
    assert used(fake) == ["own", "own"]
    fake.revoked.add(OWN)  # the tenant's key failing says nothing about the pool's keys
    assert chat(gw, "owned", secret).status_code == 502
    assert [k["state"] for k in keys_shown(gw, "owned")] == ["PROVIDER_KEY_STATE_READY"] * 2


def test_a_stream_refused_on_one_key_is_served_by_the_other(
        start: Callable[..., RunningGateway], fake: FakeOpenAI) -> None:
    gw = start("streamed")
    fake.enqueue_for(KEY_A, openai_error(429, "slow down", "requests"))  # no Retry-After
    with httpx.stream("POST", gw.http_url + "/v1/chat/completions", timeout=20, json={
            "model": "streamed/m", "messages": HI, "stream": True}) as r:
        assert r.status_code == 200
        text = "".join(r.iter_text())
    assert '"Hello"' in text and text.rstrip().endswith("data: [DONE]")
    assert used(fake) == ["A", "B"]
    primary = keys_shown(gw, "streamed")[0]
    assert primary["state"] == "PROVIDER_KEY_STATE_RESTING" and primary["seconds_left"] <= 1
