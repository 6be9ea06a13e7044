"""Defects the gRPC fuzzer (tests/fuzz/test_grpc_fuzz.py) found, reproduced through the
generated stubs against a real gateway: each was INTERNAL, UNKNOWN or an error the client
could not receive, and is now a clear status."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from tests.conftest import GatewayProcess, start_gateway

ADMIN = "adm-grpc-regressions"
METADATA = (("authorization", f"Bearer {ADMIN}"),)
CONFIG = """
auth: {api_keys: {enabled: true}}
providers:
  mock: {type: mock, models: [echo]}
models:
  - name: mock-1
    targets: [{provider: mock, model: echo}]
"""


@pytest.fixture(scope="module")
def gw(module_tmp: Path) -> Iterator[GatewayProcess]:
    gateway = start_gateway(CONFIG, module_tmp, env={"GATEWAY_ADMIN_KEY": ADMIN})
    yield gateway
    assert "Traceback" not in gateway.logs()
    assert gateway.stop() == 0, gateway.logs()


@pytest.fixture(scope="module")
def channel(gw: GatewayProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(gw.grpc_target) as ch:
        yield ch


@pytest.fixture(scope="module")
def admin(channel: grpc.Channel) -> admin_service_pb2_grpc.AdminServiceStub:
    return admin_service_pb2_grpc.AdminServiceStub(channel)


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert isinstance(error, grpc.Call)
    return error.code()


@pytest.mark.parametrize("method", ["/llmgateway.v1.GatewayService/GetModel",
                                    "/llmgateway.v1.AdminService/GetTenant"])
@pytest.mark.parametrize("raw", [b"\xff\xff\xff", b"\x0a\x02\xc3\x28", b"\x0a\x10ab"],
                         ids=["garbage", "bad-utf8", "truncated"])
def test_bytes_that_are_no_message_are_invalid_argument(channel: grpc.Channel, method: str,
                                                        raw: bytes) -> None:
    # Was UNKNOWN "Unexpected <class 'DecodeError'>..." from grpc itself, before auth.
    call = channel.unary_unary(method)
    assert _code(lambda: call(raw, metadata=METADATA, timeout=10)) == (
        grpc.StatusCode.INVALID_ARGUMENT)
    assert _code(lambda: call(raw, timeout=10)) == grpc.StatusCode.UNAUTHENTICATED
    stream = channel.unary_stream("/llmgateway.v1.GatewayService/StreamChatCompletion")
    assert _code(lambda: list(stream(raw, metadata=METADATA, timeout=10))) == (
        grpc.StatusCode.INVALID_ARGUMENT)


@pytest.mark.parametrize("name", ["x" * 20_000, "\u00e9" * 3000, "\U0001f600" * 3000])
def test_errors_quoting_a_long_input_reach_the_client(gw: GatewayProcess,
                                                      channel: grpc.Channel,
                                                      name: str) -> None:
    # Was: the message quoting the name overflowed the client's 16 KiB metadata limit, so
    # gRPC clients got RESOURCE_EXHAUSTED and REST clients a 429 "rate_limit_error".
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetModel(gateway_service_pb2.GetModelRequest(model_id=name), metadata=METADATA,
                      timeout=10)
    assert isinstance(caught.value, grpc.Call)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert len(caught.value.details() or "") <= 512
    r = httpx.post(gw.http_url + "/v1/chat/completions", timeout=10,
                   headers={"Authorization": f"Bearer {ADMIN}"},
                   json={"model": name, "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "model_not_found" and "retry-after" not in r.headers


def test_api_key_lifetime_past_year_9999_is_refused(
        admin: admin_service_pb2_grpc.AdminServiceStub) -> None:
    # Was INTERNAL (no Timestamp for the expiry) after the key was stored, so that every
    # later ListApiKeys of the tenant failed with INTERNAL too.
    tenant = admin.CreateTenant(admin_service_pb2.CreateTenantRequest(
        tenant=admin_service_pb2.TenantSpec(name="long-lived")), metadata=METADATA).tenant
    for ttl in (2**63 - 1, 10**12):
        assert _code(lambda t=ttl: admin.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(
            tenant_id=tenant.id, ttl_seconds=t), metadata=METADATA)) == (
            grpc.StatusCode.INVALID_ARGUMENT)
    admin.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(
        tenant_id=tenant.id, ttl_seconds=100 * 365 * 86400), metadata=METADATA)
    keys = admin.ListApiKeys(admin_service_pb2.ListApiKeysRequest(tenant_id=tenant.id),
                             metadata=METADATA).api_keys
    assert len(keys) == 1


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("field", ["requests_per_second", "monthly_budget_usd"])
def test_tenant_numbers_that_are_not_finite_are_refused(
        channel: grpc.Channel, admin: admin_service_pb2_grpc.AdminServiceStub, field: str,
        value: float) -> None:
    # Was accepted: a NaN or infinite requests_per_second made every request of the
    # tenant's keys INTERNAL (500), a NaN budget was stored and shown as "NaN".
    spec = admin_service_pb2.TenantSpec(name=f"odd-{field}-{value}")
    if field == "requests_per_second":
        spec.limits.requests_per_second = value
    else:
        spec.monthly_budget_usd = value
    assert _code(lambda: admin.CreateTenant(admin_service_pb2.CreateTenantRequest(tenant=spec),
                                            metadata=METADATA)) == (
        grpc.StatusCode.INVALID_ARGUMENT)
    spec.name = f"fine-{field}-{value}"
    if field == "requests_per_second":
        spec.limits.requests_per_second = 50.0
    else:
        spec.monthly_budget_usd = 5.0
    tenant = admin.CreateTenant(admin_service_pb2.CreateTenantRequest(tenant=spec),
                                metadata=METADATA).tenant
    secret = admin.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(tenant_id=tenant.id),
                                metadata=METADATA).secret
    spec.name = tenant.name
    if field == "requests_per_second":
        spec.limits.requests_per_second = value
    else:
        spec.monthly_budget_usd = value
    assert _code(lambda: admin.UpdateTenant(admin_service_pb2.UpdateTenantRequest(
        tenant_id=tenant.id, tenant=spec), metadata=METADATA)) == (
        grpc.StatusCode.INVALID_ARGUMENT)
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    answer = stub.CreateChatCompletion(gateway_service_pb2.CreateChatCompletionRequest(
        request=chat_pb2.ChatRequest(model="mock-1", messages=[chat_pb2.ChatMessage(
            role=chat_pb2.CHAT_ROLE_USER, content="fine")])),
        metadata=(("authorization", f"Bearer {secret}"),), timeout=10)
    assert answer.completion.choices
