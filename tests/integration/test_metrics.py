"""/metrics after known traffic: names, labels and values exactly."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import GatewayProcess
from tests.deploy.deploy_manifests import gateway_metric_names, missing_metrics
from tests.fakes.openai import FakeOpenAI, openai_error

HI = [{"role": "user", "content": "hello metrics"}]
ADMIN = "adm-metrics"


def samples(gw: GatewayProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    r = httpx.get(gw.http_url + "/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    out = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(data: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return data.get((name, frozenset(labels.items())), 0.0)


def config(fake: FakeOpenAI) -> str:
    return f"""
retry: {{attempts: 1}}
circuit_breaker: {{consecutive_failures: 2, min_requests: 100, open_timeout: 60s}}
pricing:
  gpt-4o-mini: {{input_per_mtok: 150000, output_per_mtok: 600000}}
providers:
{fake.provider(models="gpt-4o-mini")}
  mock: {{type: mock, models: [echo]}}
models:
  - name: smart
    targets: [{{provider: up, model: gpt-4o-mini}}]
"""


def test_metrics_follow_the_traffic(process_factory: Callable[..., GatewayProcess],
                                    fake_openai: FakeOpenAI) -> None:
    gw = process_factory(config(fake_openai), env={"GATEWAY_ADMIN_KEY": ADMIN,
                                                   "POD_NAME": "gw-0", "POD_NAMESPACE": "ns"})
    client = openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0)
    with client:
        for _ in range(3):
            client.chat.completions.create(model="smart", messages=HI)  # type: ignore[arg-type]
        list(client.chat.completions.create(model="mock/echo",
                                            messages=HI, stream=True))  # type: ignore[arg-type]
        fake_openai.enqueue(openai_error(500, "x", "server_error"),
                            openai_error(503, "y", "server_error"))
        for _ in range(2):
            try:
                client.chat.completions.create(model="smart", messages=HI)  # type: ignore[arg-type]
            except openai.APIError:
                pass
        try:  # the breaker is open now: fails fast
            client.chat.completions.create(model="smart", messages=HI)  # type: ignore[arg-type]
        except openai.APIError as exc:
            assert "circuit open" in str(exc)
        try:
            client.chat.completions.create(model="nope", messages=HI)  # type: ignore[arg-type]
        except openai.NotFoundError:
            pass

    data = samples(gw)
    req = "gateway_requests_total"
    assert value(data, req, provider="up", model="smart", status="OK") == 3
    assert value(data, req, provider="mock", model="mock/echo", status="OK") == 1
    assert value(data, req, provider="up", model="smart", status="UNAVAILABLE") == 3
    assert value(data, req, provider="none", model="other", status="NOT_FOUND") == 1  # unknown
    assert value(data, "gateway_request_duration_seconds_count", provider="up",
                 model="smart") == 6
    errors = "gateway_provider_errors_total"
    assert value(data, errors, provider="up", error_type="server_error") == 2
    assert value(data, "gateway_circuit_breaker_state", provider="up") == 1
    assert value(data, "gateway_circuit_breaker_transitions_total", provider="up",
                 **{"from": "closed", "to": "open"}) == 1
    # The fake upstream reports 11 prompt and 7 completion tokens per answer.
    tokens = "gateway_tokens_total"
    assert value(data, tokens, provider="up", model="smart", type="prompt") == 33
    assert value(data, tokens, provider="up", model="smart", type="completion") == 21
    # 33 * 0.15 + 21 * 0.60 (USD per token at these prices)
    assert abs(value(data, "gateway_cost_usd_total", provider="up", model="smart")
               - (33 * 0.15 + 21 * 0.60)) < 1e-6
    assert value(data, "gateway_time_to_first_token_seconds_count", provider="mock",
                 model="mock/echo") == 1
    assert value(data, "gateway_active_streams") == 0
    assert value(data, "gateway_overhead_seconds_count") >= 7
    assert value(data, "gateway_instance_info", version="0.1.0", pod="gw-0",
                 namespace="ns") == 1
    # Bounded labels: no request ids, no keys anywhere in the exposition.
    text = httpx.get(gw.http_url + "/metrics").text
    assert "req_" not in text and FakeOpenAI.api_key not in text and ADMIN not in text


@pytest.mark.parametrize("breakers", ["local", "redis"])
def test_every_configured_breaker_is_exported_from_start_up(
    process_factory: Callable[..., GatewayProcess], fake_openai: FakeOpenAI,
    request: pytest.FixtureRequest, breakers: str,
) -> None:
    """A dashboard lists every provider before any traffic, closed (0), not only those whose
    breaker has moved."""
    env = {}
    if breakers == "redis":
        env = {"USE_DISTRIBUTED_CB": "true",
               "REDIS_URL": request.getfixturevalue("redis_server").url}
    gw = process_factory(f"""
providers:
{fake_openai.provider(name="first")}
{fake_openai.provider(name="second")}
""", env=env)
    data = samples(gw)
    states = {dict(labels)["provider"]: v for (name, labels), v in data.items()
              if name == "gateway_circuit_breaker_state"}
    assert states == {"first": 0, "second": 0}


def test_unbounded_model_names_do_not_grow_the_label_set(
    process_factory: Callable[..., GatewayProcess],
) -> None:
    gw = process_factory(None)
    with httpx.Client(base_url=gw.http_url) as c:
        for i in range(250):  # any mock/<name> routes: clients choose these names
            c.post("/v1/chat/completions", json={"model": f"mock/m{i}", "messages": HI})
    data = samples(gw)
    models = {dict(labels)["model"] for (name, labels) in data
              if name == "gateway_requests_total"}
    assert len(models) <= 201 and "other" in models


def test_unknown_model_names_use_no_label_room(
    process_factory: Callable[..., GatewayProcess], fake_openai: FakeOpenAI,
) -> None:
    """Issue 19 item 11: 205 junk names (404s) used to fill the 200 label values, and the
    real model asked for next was counted as `other`."""
    gw = process_factory(config(fake_openai))
    with httpx.Client(base_url=gw.http_url) as c:
        for i in range(205):
            r = c.post("/v1/chat/completions", json={"model": f"junk-{i}", "messages": HI})
            assert r.status_code == 404
        for model in ("smart", "mock/echo", "mock/unlisted"):  # the last: served, not listed
            r = c.post("/v1/chat/completions", json={"model": model, "messages": HI})
            assert r.status_code == 200, r.text
    data = samples(gw)
    req = "gateway_requests_total"
    assert value(data, req, provider="none", model="other", status="NOT_FOUND") == 205
    assert value(data, req, provider="up", model="smart", status="OK") == 1
    assert value(data, req, provider="mock", model="mock/echo", status="OK") == 1
    assert value(data, req, provider="mock", model="mock/unlisted", status="OK") == 1
    models = {dict(labels)["model"] for (name, labels) in data if name == req}
    assert models == {"other", "smart", "mock/echo", "mock/unlisted"}


def test_every_metric_the_alerts_use_is_exported(
    process_factory: Callable[..., GatewayProcess],
) -> None:
    gw = process_factory(None)
    httpx.post(gw.http_url + "/v1/chat/completions", json={"model": "mock-1", "messages": HI})
    text = httpx.get(gw.http_url + "/metrics").text
    assert gateway_metric_names()  # the rules do use metrics
    assert missing_metrics(text) == set()
