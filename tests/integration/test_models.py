"""/v1/models and ListModels: configured aliases, advertised models, discovered models."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import free_port
from tests.fakes.openai import FakeOpenAI
from tests.inprocess import InProcessGateway


def test_providers_without_a_model_list_are_asked_for_theirs(
    gateway_factory: Callable[..., InProcessGateway], fake_openai: FakeOpenAI
) -> None:
    dead = free_port()
    gw = gateway_factory(f"""
providers:
  found: {{type: openai, base_url: "{fake_openai.base_url}/v1", api_key: "{FakeOpenAI.api_key}"}}
  gone: {{type: openai_compatible, base_url: "http://127.0.0.1:{dead}/v1"}}
  mock: {{type: mock, models: [echo]}}
models:
  - name: smart
    targets: [{{provider: found, model: gpt-4o-mini, weight: 3}}, {{provider: mock, model: echo}}]
    fallbacks: [mock/echo]
""")
    listed = httpx.get(gw.http_url + "/v1/models").json()["data"]
    by_id = {m["id"]: m for m in listed}
    assert by_id["smart"]["targets"] == ["found/gpt-4o-mini", "mock/echo"]
    assert by_id["smart"]["fallbacks"] == ["mock/echo"]
    assert by_id["found/gpt-4o-mini"]["owned_by"] == "found"
    assert "mock/echo" in by_id
    assert not any(m.startswith("gone/") for m in by_id)  # unreachable: listed nothing
    assert [r.path for r in fake_openai.requests] == ["/v1/models"]
    # Cached: a second listing does not ask the upstream again.
    httpx.get(gw.http_url + "/v1/models")
    assert len(fake_openai.requests) == 1
    assert httpx.get(gw.http_url + "/v1/models/found/gpt-4o-mini").json()["id"] == (
        "found/gpt-4o-mini")
    # Routable but not listed: still found by id.
    assert httpx.get(gw.http_url + "/v1/models/found/other-model").status_code == 200
    assert "discovery failed" in gw.logs()
