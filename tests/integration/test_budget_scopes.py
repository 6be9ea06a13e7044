"""Issue 23, item 5: budgets per API key and per (tenant, model), monthly or daily, on top
of the tenant's, through the same reservations. A request must fit every budget that
applies or it is 402 before any upstream call (OpenAI's error shape, Anthropic's on
/v1/messages, FAILED_PRECONDITION with BUDGET_EXCEEDED on gRPC, as the tenant's budget);
a burst against a budget that fits three worst cases serves three, on one replica and on
three sharing Redis; ``/v1/usage`` lists each budget; alerts come per budget; the admin
REST API, gRPC and the CLI set them. Prices are a dollar a token throughout."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import anthropic
import grpc
import httpx
import openai
import pytest
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    budgets_pb2,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from tests.conftest import ROOT, RunningGateway
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI, stream_events
from tests.fakes.server import Reply
from tests.integration.test_grpc import error_info
from tests.integration.test_reservations import FITS_THREE, burst, slow
from tests.integration.test_tenancy import ADMIN, Factory, admin
from tests.servers import RedisServer

HI = [{"role": "user", "content": "hello budgets"}]
# This checkout's generated stubs, not whichever the installed package points at.
CLI_ENV = {"GATEWAY_ADMIN_KEY": ADMIN, "PATH": "/usr/bin:/bin",
           "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}


def tenant(gw: RunningGateway, **spec: object) -> str:
    r = admin(gw, "POST", "/tenants", {"name": f"t-{secrets.token_hex(4)}", **spec})
    assert r.status_code == 201, r.text
    return str(r.json()["tenant"]["id"])


def key(gw: RunningGateway, tenant_id: str, **spec: object) -> tuple[str, dict[str, Any]]:
    """A new key of the tenant: ``(secret, its record)``."""
    r = admin(gw, "POST", f"/tenants/{tenant_id}/keys", {"name": "k", **spec})
    assert r.status_code == 201, r.text
    return r.json()["secret"], r.json()["api_key"]


def usage(gw: RunningGateway, secret: str) -> dict[str, Any]:
    r = httpx.get(gw.http_url + "/v1/usage", headers={"Authorization": f"Bearer {secret}"})
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


# --- bursts: at most what fits reaches the upstream ---------------------------------------


def test_a_burst_cannot_overspend_a_keys_budget(gateway_factory: Factory) -> None:
    """30 concurrent requests with a key whose budget fits three worst cases: three are
    served, 27 are 402; the tenant (no budget of its own) and its other keys go on."""
    gw = gateway_factory(slow(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    tenant_id = tenant(gw)
    capped, record = key(gw, tenant_id, monthly_budget_usd=FITS_THREE)
    assert record["monthly_budget_usd"] == FITS_THREE
    assert record["budget_period"] == "BUDGET_PERIOD_MONTHLY"
    other, _ = key(gw, tenant_id)
    codes = burst([gw.http_url], capped, 30, max_tokens=100)
    assert codes == Counter({200: 3, 402: 27}), codes
    assert burst([gw.http_url], other, 3, max_tokens=100) == Counter({200: 3})
    refused = httpx.post(gw.http_url + "/v1/chat/completions",
                         headers={"Authorization": f"Bearer {capped}"},
                         json={"model": "mock-1", "messages": HI, "max_tokens": 2000})
    assert refused.status_code == 402, refused.text
    error = refused.json()["error"]
    assert error["code"] == "budget_exceeded" and "API key's monthly budget" in error["message"]
    seen = usage(gw, capped)
    assert seen["monthly_budget_usd"] is None and seen["requests"] == 6  # the tenant's
    [mine] = seen["budgets"]
    assert (mine["scope"], mine["api_key_id"], mine["period"]) == (
        "api_key", record["id"], "monthly")
    assert mine["requests"] == 3 and 0 < mine["cost_usd"] <= mine["budget_usd"] == FITS_THREE
    assert usage(gw, other)["budgets"] == []  # the other key has none of its own


def test_a_burst_cannot_overspend_a_models_budget(gateway_factory: Factory) -> None:
    """A daily budget for one model of the tenant: a burst on it serves three; the tenant's
    other model is not limited by it."""
    gw = gateway_factory(slow(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    tenant_id = tenant(gw, model_budgets={"mock-2": FITS_THREE},
                       budget_period="BUDGET_PERIOD_DAILY", monthly_budget_usd=100_000)
    secret, _ = key(gw, tenant_id)
    codes = burst([gw.http_url], secret, 30, max_tokens=100, model="mock-2")
    assert codes == Counter({200: 3, 402: 27}), codes
    assert burst([gw.http_url], secret, 4, max_tokens=100) == Counter({200: 4})  # mock-1
    seen = usage(gw, secret)
    assert seen["budget_period"] == "daily" and seen["monthly_budget_usd"] == 100_000
    tenant_budget, model_budget = seen["budgets"]
    assert (tenant_budget["scope"], tenant_budget["requests"]) == ("tenant", 7)
    assert (model_budget["scope"], model_budget["model"], model_budget["period"]) == (
        "model", "mock-2", "daily")
    assert model_budget["period_start"] % 86400 == 0  # today, 00:00 UTC
    assert model_budget["requests"] == 3 and model_budget["cost_usd"] <= FITS_THREE


def test_three_replicas_share_key_and_model_budgets(gateway_factory: Factory,
                                                    postgres_dsn: str,
                                                    redis_server: RedisServer) -> None:
    env = {"GATEWAY_ADMIN_KEY": ADMIN, "DATABASE_URL": postgres_dsn,
           "REDIS_URL": redis_server.url}
    replicas = [gateway_factory(slow(), env=env) for _ in range(3)]
    urls = [gw.http_url for gw in replicas]
    # Each replica's link to Redis opened first, by a budget that holds nothing back: the
    # bursts below measure the budgets, not how fast a busy machine connects.
    roomy, _ = key(replicas[0], tenant(replicas[0], monthly_budget_usd=1e9))
    assert burst(urls, roomy, 3, text="hi", max_tokens=1) == Counter({200: 3})
    tenant_id = tenant(replicas[0], model_budgets={"mock-2": FITS_THREE})
    capped, _ = key(replicas[1], tenant_id, monthly_budget_usd=FITS_THREE,
                    budget_period="BUDGET_PERIOD_DAILY")
    codes = burst(urls, capped, 30, max_tokens=100)
    assert codes == Counter({200: 3, 402: 27}), codes
    other, _ = key(replicas[2], tenant_id)
    codes = burst(urls, other, 30, max_tokens=100, model="mock-2")
    assert codes == Counter({200: 3, 402: 27}), codes


# --- refusals before the upstream, in each API's shape -----------------------------------


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server  # type: ignore[misc]


@pytest.fixture(scope="module")
def anthropic_fake() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server  # type: ignore[misc]


@pytest.fixture
def fakes_gateway(gateway_factory: Factory, openai_fake: FakeOpenAI,
                  anthropic_fake: FakeAnthropic) -> RunningGateway:
    openai_fake.reset()
    anthropic_fake.reset()
    return gateway_factory(f"""
auth: {{api_keys: {{enabled: true}}}}
retry: {{attempts: 1}}
providers:
{openai_fake.provider("up", "gpt-4o-mini, text-embedding-3-small")}
  claude: {{type: anthropic, base_url: "{anthropic_fake.base_url}",
           api_key: "{anthropic_fake.api_key}"}}
pricing:   # a dollar a token
  gpt-4o-mini: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
  text-embedding-3-small: {{input_per_mtok: 1000000}}
  claude-x: {{input_per_mtok: 1000000, output_per_mtok: 1000000}}
""", env={"GATEWAY_ADMIN_KEY": ADMIN})


def test_a_spent_key_or_model_budget_is_402_before_any_upstream(
        fakes_gateway: RunningGateway, openai_fake: FakeOpenAI,
        anthropic_fake: FakeAnthropic) -> None:
    gw = fakes_gateway
    tenant_id = tenant(gw, model_budgets={"claude/claude-x": 0.5})
    broke, _ = key(gw, tenant_id, monthly_budget_usd=0.5)  # no request fits half a dollar
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key=broke, max_retries=0) as client:
        with pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # type: ignore[arg-type]
        assert info.value.status_code == 402
        assert info.value.code == "budget_exceeded" and "API key" in info.value.message
        with pytest.raises(openai.APIStatusError) as info:
            client.embeddings.create(model="up/text-embedding-3-small", input="hello")
        assert info.value.status_code == 402 and info.value.code == "budget_exceeded"
    with anthropic.Anthropic(base_url=gw.http_url, api_key=broke, max_retries=0) as claude:
        with pytest.raises(anthropic.APIStatusError) as refused:
            claude.messages.create(model="claude/claude-x", max_tokens=16,
                                   messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402
    assert refused.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
    # The model's budget, with a key that has none of its own.
    free, _ = key(gw, tenant_id)
    with anthropic.Anthropic(base_url=gw.http_url, api_key=free, max_retries=0) as claude:
        with pytest.raises(anthropic.APIStatusError) as refused:
            claude.messages.create(model="claude/claude-x", max_tokens=16,
                                   messages=[{"role": "user", "content": "hi"}])
    assert refused.value.status_code == 402
    assert "'claude/claude-x'" in refused.value.body["error"]["message"]  # type: ignore[index]
    # gRPC: the status the tenant's spent budget has.
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        request = gateway_service_pb2.CreateChatCompletionRequest(
            request=chat_pb2.ChatRequest(model="gpt-4o-mini", messages=[
                chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="hi")]))
        with pytest.raises(grpc.RpcError) as rpc:
            stub.CreateChatCompletion(request, metadata=(("authorization", f"Bearer {broke}"),))
        seen = stub.GetUsage(gateway_service_pb2.GetUsageRequest(),
                             metadata=(("authorization", f"Bearer {broke}"),))
    assert [(b.scope, b.budget_usd, b.cost_usd, b.period) for b in seen.budgets] == [
        (budgets_pb2.BUDGET_SCOPE_API_KEY, 0.5, 0.0, budgets_pb2.BUDGET_PERIOD_MONTHLY),
        (budgets_pb2.BUDGET_SCOPE_MODEL, 0.5, 0.0, budgets_pb2.BUDGET_PERIOD_MONTHLY)]
    assert seen.budgets[1].model == "claude/claude-x" and seen.budgets[0].api_key_id
    assert not seen.HasField("monthly_budget_usd")
    assert seen.budget_period == budgets_pb2.BUDGET_PERIOD_MONTHLY
    assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(rpc.value).reason == "BUDGET_EXCEEDED"
    assert openai_fake.requests == [] and anthropic_fake.requests == []  # none reached them


def test_embeddings_and_messages_are_charged_to_the_keys_budget(
        fakes_gateway: RunningGateway, anthropic_fake: FakeAnthropic) -> None:
    gw = fakes_gateway
    tenant_id = tenant(gw, model_budgets={"claude/claude-x": 1000})
    secret, record = key(gw, tenant_id, monthly_budget_usd=1000,
                         budget_period="BUDGET_PERIOD_DAILY")
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key=secret, max_retries=0) as client:
        client.embeddings.create(model="up/text-embedding-3-small", input="hello")  # 4 tokens
    with anthropic.Anthropic(base_url=gw.http_url, api_key=secret, max_retries=0) as claude:
        claude.messages.create(model="claude/claude-x", max_tokens=16,
                               messages=[{"role": "user", "content": "hi"}])
    assert len(anthropic_fake.requests) == 1
    seen = usage(gw, secret)
    budgets = {b["scope"]: b for b in seen["budgets"]}
    assert budgets["api_key"]["api_key_id"] == record["id"]
    assert budgets["api_key"]["period"] == "daily" and budgets["api_key"]["requests"] == 2
    assert budgets["api_key"]["cost_usd"] == pytest.approx(seen["cost_usd"])
    assert budgets["model"]["requests"] == 1  # the messages request only
    assert 4 < budgets["api_key"]["cost_usd"] and budgets["model"]["cost_usd"] > 0


# --- alerts --------------------------------------------------------------------------------


def test_a_keys_budget_alerts_once_per_crossing(gateway_factory: Factory) -> None:
    gw = gateway_factory(slow(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    tenant_id = tenant(gw)
    secret, record = key(gw, tenant_id, monthly_budget_usd=900)
    # Each costs $250 (240 prompt tokens, 10 answered) and holds about $310 first: 0.28,
    # 0.56, then 0.83 crosses 80%; the fourth does not fit what is left.
    for _ in range(3):
        assert burst([gw.http_url], secret, 1, max_tokens=10) == Counter({200: 1})
    assert burst([gw.http_url], secret, 1, max_tokens=10) == Counter({402: 1})
    assert usage(gw, secret)["budgets"][0]["cost_usd"] == 750
    lines = [json.loads(line) for line in gw.logs().splitlines()
             if "api key budget alert" in line]
    crossed = 0.8
    assert [line["threshold"] for line in lines] == [crossed]  # one crossing, one line
    assert lines[0]["api_key_id"] == record["id"] and lines[0]["tenant"] == tenant_id
    assert lines[0]["scope"] == "api_key" and lines[0]["period"] == "monthly"
    assert secret not in gw.logs()
    text = httpx.get(gw.http_url + "/metrics").text
    assert (f'gateway_budget_alerts_total{{scope="api_key",tenant="{tenant_id}",'
            f'threshold="{crossed:g}"}} 1.0') in text


# --- the admin API, gRPC and the CLI ------------------------------------------------------


def test_admin_rest_grpc_and_cli_set_the_budgets(gateway_factory: Factory) -> None:
    gw = gateway_factory(slow(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    created = admin(gw, "POST", "/tenants", {
        "name": "budgeted", "monthly_budget_usd": 100, "budget_period": "BUDGET_PERIOD_DAILY",
        "model_budgets": {"mock-2": 25.5}}).json()["tenant"]
    assert created["model_budgets"] == {"mock-2": 25.5}
    assert created["budget_period"] == "BUDGET_PERIOD_DAILY"
    tenant_id = created["id"]
    put = admin(gw, "PUT", f"/tenants/{tenant_id}", {"name": "budgeted",
                                                     "model_budgets": {"mock-1": 3}})
    assert put.status_code == 200, put.text
    assert put.json()["tenant"]["model_budgets"] == {"mock-1": 3}
    assert put.json()["tenant"]["budget_period"] == "BUDGET_PERIOD_MONTHLY"  # replaced
    _, record = key(gw, tenant_id, monthly_budget_usd=7.25, budget_period="BUDGET_PERIOD_DAILY")
    keys = admin(gw, "GET", f"/tenants/{tenant_id}/keys").json()["api_keys"]
    assert [(k["monthly_budget_usd"], k["budget_period"]) for k in keys] == [
        (7.25, "BUDGET_PERIOD_DAILY")]
    rotated = admin(gw, "POST", f"/tenants/{tenant_id}/rotate-key", {"key_id": record["id"]})
    assert rotated.json()["api_key"]["monthly_budget_usd"] == 7.25  # the successor keeps it
    assert rotated.json()["api_key"]["name"] == "k"  # and its name, when none is given

    for body, param in (({"monthly_budget_usd": -1}, "monthly_budget_usd"),
                        ({"monthly_budget_usd": "lots"}, None),
                        ({"budget_period": "BUDGET_PERIOD_WEEKLY"}, None),
                        ({"budget_period": 7}, "budget_period")):
        r = admin(gw, "POST", f"/tenants/{tenant_id}/keys", body)
        assert r.status_code == 400, (body, r.text)
        if param:
            assert r.json()["error"]["param"] == param
    r = admin(gw, "POST", "/tenants", {"name": "bad", "model_budgets": {"mock-1": -2}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model_budgets.mock-1"
    r = admin(gw, "POST", "/tenants", {"name": "bad", "model_budgets": {" ": 2}})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model_budgets"

    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)
        auth = (("authorization", f"Bearer {ADMIN}"),)
        made = stub.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(
            tenant_id=tenant_id, monthly_budget_usd=2.0,
            budget_period=budgets_pb2.BUDGET_PERIOD_DAILY), metadata=auth)
        assert made.api_key.HasField("monthly_budget_usd")
        assert made.api_key.budget_period == budgets_pb2.BUDGET_PERIOD_DAILY
        plain = stub.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(tenant_id=tenant_id),
                                  metadata=auth)
        assert not plain.api_key.HasField("monthly_budget_usd")
        got = stub.GetTenant(admin_service_pb2.GetTenantRequest(tenant_id=tenant_id),
                             metadata=auth).tenant
        assert dict(got.model_budgets) == {"mock-1": 3.0}

    def cli(*args: str) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "gateway", *args, "--grpc-target",
                              gw.grpc_target], capture_output=True, text=True, cwd=ROOT,
                             env=CLI_ENV,
                             check=True, timeout=30)
        return json.loads(out.stdout)  # type: ignore[no-any-return]

    made_cli = cli("tenants", "create", "cli-budgets", "--budget", "40", "--period", "daily",
                   "--model-budget", "mock-1=5", "--model-budget", "mock-2=6.5")["tenant"]
    assert made_cli["model_budgets"] == {"mock-1": 5.0, "mock-2": 6.5}
    assert made_cli["budget_period"] == "BUDGET_PERIOD_DAILY"
    updated = cli("tenants", "update", made_cli["id"], "--model-budget", "mock-2=none",
                  "--rpm", "10")["tenant"]
    assert updated["model_budgets"] == {"mock-1": 5.0}  # the rest kept
    assert updated["budget_period"] == "BUDGET_PERIOD_DAILY"
    new_key = cli("keys", "create", made_cli["id"], "--budget", "3", "--period", "daily")
    assert new_key["api_key"]["monthly_budget_usd"] == 3.0
    assert new_key["api_key"]["budget_period"] == "BUDGET_PERIOD_DAILY"
    bad = subprocess.run([sys.executable, "-m", "gateway", "tenants", "create", "x",
                          "--model-budget", "mock-1", "--grpc-target", gw.grpc_target],
                         capture_output=True, text=True, cwd=ROOT,
                         env=CLI_ENV)
    assert bad.returncode != 0 and "MODEL=USD" in bad.stderr


def test_a_cut_stream_is_charged_to_the_keys_and_the_models_budget(
        fakes_gateway: RunningGateway, openai_fake: FakeOpenAI) -> None:
    """The upstream dies mid-stream, before its usage: the key's and the model's budgets are
    charged the prompt and what was delivered, as the tenant's is."""
    gw = fakes_gateway
    tenant_id = tenant(gw, model_budgets={"up/gpt-4o-mini": 1000})
    secret, _ = key(gw, tenant_id, monthly_budget_usd=1000)
    openai_fake.enqueue(Reply(events=stream_events("gpt-4o-mini", ["one", " two"], True),
                              cut_after=3))
    httpx.post(gw.http_url + "/v1/chat/completions",
               headers={"Authorization": f"Bearer {secret}"},
               json={"model": "up/gpt-4o-mini", "stream": True, "max_tokens": 50,
                     "messages": [{"role": "user", "content": "count"}]})
    deadline = time.monotonic() + 5
    while (seen := usage(gw, secret))["cost_usd"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # charged once the stream's end is settled, after the answer
    budgets = {b["scope"]: b for b in seen["budgets"]}
    assert seen["cost_usd"] > 0
    assert budgets["api_key"]["cost_usd"] == budgets["model"]["cost_usd"] == seen["cost_usd"]
    assert budgets["api_key"]["requests"] == budgets["model"]["requests"] == 1
