"""The model table through the admin API (issue 22, the UI's models page): ``ListModelRoutes``
over gRPC and ``GET /admin/models`` over REST show each alias with its targets, weights,
strategy, hedge, fallbacks and prices, and each provider's own models; admins only; never a
provider's credentials."""

from __future__ import annotations

import grpc
import httpx
from jsonschema import Draft202012Validator
from llmgateway.v1 import admin_service_pb2, admin_service_pb2_grpc

from tests.integration.test_tenancy import ADMIN, Factory, keyed, new_tenant

UPSTREAM_SECRET = "sk-upstream-never-shown-0123456789"

MODELS = f"""
auth:
  api_keys: {{enabled: true}}
providers:
  mock: {{type: mock, models: [echo]}}
  other: {{type: openai_compatible, base_url: "http://127.0.0.1:9/v1", models: [big, small],
          api_key: "{UPSTREAM_SECRET}"}}
default_provider: mock
pricing:
  echo: {{input_per_mtok: 0.5, output_per_mtok: 1.5, cached_input_per_mtok: 0.05}}
  other/big: {{input_per_mtok: 3, output_per_mtok: 15}}
models:
  - name: smart
    strategy: ordered
    hedge: {{after: 250ms}}
    timeout: 30s
    fallbacks: [mock-1]
    targets:
      - {{provider: other, model: big, weight: 3}}
      - {{provider: mock, model: echo, weight: 1}}
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
"""


def test_the_model_table_lists_aliases_targets_and_prices(channel_factory: Factory) -> None:
    gw = channel_factory(MODELS, env={"GATEWAY_ADMIN_KEY": ADMIN})
    r = httpx.get(gw.http_url + "/admin/models", timeout=10,
                  headers={"Authorization": f"Bearer {ADMIN}"})
    assert r.status_code == 200, r.text
    assert UPSTREAM_SECRET not in r.text and "127.0.0.1:9" not in r.text
    body = r.json()
    document = httpx.get(gw.http_url + "/openapi.json", timeout=10).json()
    Draft202012Validator({**document, "$ref": "#/components/schemas/ModelRouteList"}
                         ).validate(body)
    assert body["default_provider"] == "mock"
    names = [route["name"] for route in body["routes"]]
    assert names == ["mock-1", "smart", "mock/echo", "other/big", "other/small"]
    smart = body["routes"][1]
    assert smart["alias"] is True and smart["strategy"] == "ordered"
    assert smart["hedge_after_seconds"] == 0.25 and smart["timeout_seconds"] == 30
    assert smart["fallbacks"] == ["mock-1"]
    big, echo = smart["targets"]
    assert (big["provider"], big["model"], big["weight"]) == ("other", "big", 3)
    assert big["price"] == {"entry": "other/big", "input_per_mtok": 3, "output_per_mtok": 15}
    assert echo["price"]["entry"] == "echo" and echo["price"]["cached_input_per_mtok"] == 0.05
    small = body["routes"][4]
    assert small["alias"] is False and small["strategy"] == ""
    assert small["targets"] == [{"provider": "other", "model": "small", "weight": 1}]

    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        answer = stub.ListModelRoutes(admin_service_pb2.ListModelRoutesRequest(), timeout=10,
                                      metadata=[("authorization", f"Bearer {ADMIN}")])
        assert [route.name for route in answer.routes] == names
        assert not answer.routes[4].targets[0].HasField("price")


def test_only_admins_see_the_model_table(channel_factory: Factory) -> None:
    gw = channel_factory(keyed(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    _, key = new_tenant(gw)
    for credential, status in ((None, 401), (key, 403), ("adm-wrong", 401)):
        headers = {"Authorization": f"Bearer {credential}"} if credential else {}
        r = httpx.get(gw.http_url + "/admin/models", headers=headers, timeout=10)
        assert r.status_code == status, r.text
        assert r.json()["error"]["message"]
