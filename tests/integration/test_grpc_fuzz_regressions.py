"""Defects the gRPC fuzzer (tests/fuzz/test_grpc_fuzz.py) found, reproduced through the
generated stubs against a real gateway: each was INTERNAL, UNKNOWN or an error the client
could not receive, and is now a clear status."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

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

from tests.conftest import MOCK_AND_FAKE_OPENAI_ROUTES, RunningGateway
from tests.fakes.openai import FakeOpenAI
from tests.inprocess import start_in_process

ADMIN = "adm-grpc-regressions"
METADATA = (("authorization", f"Bearer {ADMIN}"),)
CONFIG = """
auth: {{api_keys: {{enabled: true}}}}
""" + MOCK_AND_FAKE_OPENAI_ROUTES


@pytest.fixture(scope="module")
def gw(fake_openai: FakeOpenAI) -> Iterator[RunningGateway]:
    gateway = start_in_process(CONFIG.format(base_url=fake_openai.base_url), env={
        "GATEWAY_ADMIN_KEY": ADMIN, "FAKE_OPENAI_KEY": FakeOpenAI.api_key})
    yield gateway
    assert gateway.stop() == 0, gateway.logs()
    assert "Traceback" not in gateway.logs()


@pytest.fixture(scope="module")
def channel(gw: RunningGateway) -> Iterator[grpc.Channel]:
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
def test_errors_quoting_a_long_input_reach_the_client(gw: RunningGateway,
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
    assert r.status_code == 400, r.text  # names past MAX_MODEL_NAME are refused outright
    assert r.json()["error"]["param"] == "model" and "retry-after" not in r.headers


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


def test_embedding_dimensions_are_bounded(gw: RunningGateway, channel: grpc.Channel) -> None:
    # Was unbounded over gRPC (REST stopped at 65536): dimensions=2**31-1 made the mock
    # provider build a vector of two billion floats, and the gateway died of it.
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    for dimensions in (2**31 - 1, 65537):
        assert _code(lambda d=dimensions: stub.CreateEmbeddings(
            gateway_service_pb2.CreateEmbeddingsRequest(model="mock-1", inputs=["a"],
                                                        dimensions=d),
            metadata=METADATA, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    # Within the bound, the mock still refuses work no upstream would do in one request.
    assert _code(lambda: stub.CreateEmbeddings(gateway_service_pb2.CreateEmbeddingsRequest(
        model="mock-1", inputs=["a"] * 2048, dimensions=65536), metadata=METADATA,
        timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
    answer = stub.CreateEmbeddings(gateway_service_pb2.CreateEmbeddingsRequest(
        model="mock-1", inputs=["a"], dimensions=65536), metadata=METADATA, timeout=10)
    assert len(answer.embeddings[0].values) == 65536


@pytest.mark.parametrize("metadata", [
    {f"k{i}": "v" for i in range(17)}, {"k" * 65: "v"}, {"k": "v" * 513},
    {f"k{i}": "v" * 100_000 for i in range(80)},  # within the 10 MiB receive limit
], ids=["17-pairs", "long-key", "long-value", "8-megabytes"])
def test_response_metadata_is_bounded(channel: grpc.Channel,
                                      metadata: dict[str, str]) -> None:
    # Was unbounded over gRPC: stored with the response and echoed in each stream event,
    # so that the answer outgrew what clients receive (and the store kept megabytes).
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    request = gateway_service_pb2.ResponseRequest(model="mock-1", metadata=metadata, input=[
        chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="x")])
    assert _code(lambda: stub.CreateResponse(gateway_service_pb2.CreateResponseRequest(
        request=request), metadata=METADATA, timeout=20)) == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(lambda: list(stub.StreamResponse(gateway_service_pb2.StreamResponseRequest(
        request=request), metadata=METADATA, timeout=20))) == grpc.StatusCode.INVALID_ARGUMENT
    request.metadata.clear()
    request.metadata.update({f"k{i}": "v" * 512 for i in range(16)})
    answer = stub.CreateResponse(gateway_service_pb2.CreateResponseRequest(request=request),
                                 metadata=METADATA, timeout=20)
    assert len(answer.response.metadata) == 16


@pytest.mark.parametrize("field", ["parameters_json", "schema_json", "extra_json"])
@pytest.mark.parametrize("model", ["mock-1", "gpt-4o-mini"])
def test_json_text_nested_past_the_bound_is_invalid_argument(channel: grpc.Channel,
                                                             model: str, field: str) -> None:
    # Was INTERNAL for an HTTP provider: JSON text was taken up to the parser's 1024
    # levels, and the upstream body then could not be written (orjson writes 254).
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)

    def chat(depth: int) -> gateway_service_pb2.CreateChatCompletionRequest:
        text = "[" * (depth - 1) + '{"a":1}' + "]" * (depth - 1)
        if field != "extra_json":  # these must be objects
            text = '{"a":' + text + "}"
        req = chat_pb2.ChatRequest(model=model, messages=[chat_pb2.ChatMessage(
            role=chat_pb2.CHAT_ROLE_USER, content="x")])
        if field == "parameters_json":
            req.tools.add(name="f", parameters_json=text)
        elif field == "schema_json":
            req.response_format.type = chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
            req.response_format.json_schema.name = "n"
            req.response_format.json_schema.schema_json = text
        else:
            req.extra_json = '{"passed_on":' + text + "}"
        return gateway_service_pb2.CreateChatCompletionRequest(request=req)

    assert stub.CreateChatCompletion(chat(100), metadata=METADATA, timeout=10).completion
    for depth in (200, 300, 1000):
        assert _code(lambda d=depth: stub.CreateChatCompletion(
            chat(d), metadata=METADATA, timeout=10)) == grpc.StatusCode.INVALID_ARGUMENT
