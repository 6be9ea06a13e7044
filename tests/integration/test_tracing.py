"""One trace from the client's traceparent through the facade and the gRPC core to the
upstream, exported over OTLP/gRPC to a real receiver."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable

import grpc
import httpx
import openai
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from llmgateway.v1 import chat_pb2, gateway_service_pb2, gateway_service_pb2_grpc

from tests.conftest import GatewayProcess
from tests.fakes.anthropic import FakeAnthropic
from tests.fakes.openai import FakeOpenAI
from tests.fakes.otlp import OtlpReceiver

HI = [{"role": "user", "content": "secret prompt text"}]


def config(fake: FakeOpenAI, receiver: OtlpReceiver) -> str:
    return f"""
observability:
  tracing:
    enabled: true
    service_name: gw-under-test
    sampler: {{type: probability, rate: 0.0}}   # only sampled parents are recorded
    exporter: {{type: otlp, endpoint: "127.0.0.1:{receiver.port}", insecure: true,
               headers: {{x-tenant-token: otlp-header-secret}}}}
providers:
{fake.provider(models="gpt-4o-mini")}
"""


def test_one_trace_from_client_to_upstream(process_factory: Callable[..., GatewayProcess],
                                           fake_openai: FakeOpenAI) -> None:
    with OtlpReceiver() as receiver:
        gw = process_factory(config(fake_openai, receiver))
        trace_id = secrets.token_hex(16)
        parent = secrets.token_hex(8)
        traceparent = f"00-{trace_id}-{parent}-01"
        r = httpx.post(gw.http_url + "/v1/chat/completions",
                       json={"model": "up/gpt-4o-mini", "messages": HI},
                       headers={"traceparent": traceparent})
        assert r.status_code == 200
        assert r.json()["x_gateway"]["trace_id"] == trace_id
        sent = fake_openai.requests[-1].headers["traceparent"]
        assert sent.split("-")[1] == trace_id and sent.split("-")[2] != parent

        with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="x", max_retries=0,
                           default_headers={"traceparent": f"00-{'ab' * 16}-{parent}-01"}) as c:
            list(c.chat.completions.create(model="up/gpt-4o-mini", messages=HI,  # type: ignore[arg-type]
                                           stream=True, stream_options={"include_usage": True}))
        # Unsampled by the client (flag 00) and rate 0: nothing is recorded for this one.
        httpx.post(gw.http_url + "/v1/chat/completions",
                   json={"model": "up/gpt-4o-mini", "messages": HI},
                   headers={"traceparent": f"00-{'cd' * 16}-{parent}-00"})
        assert gw.stop() == 0  # shutdown flushes the batch processor

    ours = [s for s in receiver.spans if s["trace_id"] == trace_id]
    by_name = {s["name"]: s for s in ours}
    assert {"POST /v1/chat/completions",
            "/llmgateway.v1.GatewayService/CreateChatCompletion",
            "chat gpt-4o-mini"} <= set(by_name)
    # Parent links: REST span <- gRPC client span <- gRPC server span <- upstream span.
    rest = by_name["POST /v1/chat/completions"]
    assert rest["parent_span_id"] == parent
    upstream = by_name["chat gpt-4o-mini"]
    assert sent.split("-")[2] == upstream["span_id"]
    attrs = upstream["attributes"]
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.usage.input_tokens"] == 11
    assert attrs["gen_ai.usage.output_tokens"] == 7
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert attrs["server.address"] == "127.0.0.1"
    assert upstream["resource"]["service.name"] == "gw-under-test"

    stream_spans = [s for s in receiver.spans if s["trace_id"] == "ab" * 16]
    streamed = next(s for s in stream_spans if s["name"] == "chat gpt-4o-mini")
    assert streamed["attributes"]["gen_ai.usage.output_tokens"] == 7
    assert not [s for s in receiver.spans if s["trace_id"] == "cd" * 16]

    everything = json.dumps(receiver.spans)
    assert "secret prompt text" not in everything and FakeOpenAI.api_key not in everything
    assert receiver.metadata[0]["x-tenant-token"] == "otlp-header-secret"

    logged = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    request_lines = [line for line in logged if line.get("msg") == "request"
                     and line.get("trace_id") == trace_id]
    assert request_lines and len(request_lines[0]["span_id"]) == 16


def test_upstream_errors_mark_the_span(process_factory: Callable[..., GatewayProcess],
                                       fake_openai: FakeOpenAI) -> None:
    from tests.fakes.openai import openai_error

    with OtlpReceiver() as receiver:
        gw = process_factory(config(fake_openai, receiver).replace("rate: 0.0", "rate: 1.0"))
        fake_openai.enqueue(openai_error(500, "x", "server_error"),
                            openai_error(500, "x", "server_error"))
        assert httpx.post(gw.http_url + "/v1/chat/completions",
                          json={"model": "up/gpt-4o-mini", "messages": HI}).status_code == 502
        assert gw.stop() == 0
    attempts = [s for s in receiver.spans if s["name"] == "chat gpt-4o-mini"]
    assert len(attempts) == 2  # a span per attempt
    assert all(s["attributes"]["error.type"] == "server_error" and s["status"] == 2
               for s in attempts)


def test_rest_spans_are_named_by_route_never_by_path(
        process_factory: Callable[..., GatewayProcess], fake_openai: FakeOpenAI) -> None:
    """Ids and junk paths stay out of span names (their number would have no bound); the
    path itself is still an attribute."""
    with OtlpReceiver() as receiver:
        gw = process_factory(config(fake_openai, receiver).replace("rate: 0.0", "rate: 1.0"))
        for path in ("/v1/responses/resp_abc123", "/v1/models/up/gpt-4o-mini",
                     "/admin/tenants/ten_42/keys", "/wp-login.php", "/v1/responses/a/b"):
            assert httpx.get(gw.http_url + path).status_code in (200, 401, 403, 404)
        assert gw.stop() == 0
    by_path = {s["attributes"]["url.path"]: s for s in receiver.spans
               if "url.path" in s["attributes"]}
    assert by_path["/v1/responses/resp_abc123"]["name"] == "GET /v1/responses/{response_id}"
    assert by_path["/v1/models/up/gpt-4o-mini"]["name"] == "GET /v1/models/{model_id}"
    assert by_path["/admin/tenants/ten_42/keys"]["name"] == "GET /admin/tenants/{tenant_id}/keys"
    assert by_path["/admin/tenants/ten_42/keys"]["attributes"]["http.route"] == \
        "/admin/tenants/{tenant_id}/keys"
    for unrouted in ("/wp-login.php", "/v1/responses/a/b"):
        assert by_path[unrouted]["name"] == "GET"
        assert "http.route" not in by_path[unrouted]["attributes"]


def test_grpc_calls_are_traced_but_health_and_reflection_are_not(
    process_factory: Callable[..., GatewayProcess], fake_openai: FakeOpenAI
) -> None:
    with OtlpReceiver() as receiver:
        gw = process_factory(config(fake_openai, receiver).replace("rate: 0.0", "rate: 1.0"))
        target = gw.grpc_target

        async def calls() -> None:
            async with grpc.aio.insecure_channel(target) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
                reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
                async for _ in reflection.ServerReflectionInfo(
                        iter([reflection_pb2.ServerReflectionRequest(list_services="")])):
                    pass
                await gateway_service_pb2_grpc.GatewayServiceStub(channel).CreateChatCompletion(
                    gateway_service_pb2.CreateChatCompletionRequest(request=chat_pb2.ChatRequest(
                        model="up/gpt-4o-mini", messages=[chat_pb2.ChatMessage(
                            role=chat_pb2.CHAT_ROLE_USER, content="hi")])))

        asyncio.run(calls())
        assert gw.stop() == 0

    names = {s["name"] for s in receiver.spans}
    assert "/llmgateway.v1.GatewayService/CreateChatCompletion" in names
    assert not [n for n in names if "grpc.health" in n or "grpc.reflection" in n], names


def test_a_messages_request_is_one_trace(process_factory: Callable[..., GatewayProcess]) -> None:
    with OtlpReceiver() as receiver, FakeAnthropic() as fake:
        gw = process_factory(f"""
logging: {{level: info, format: json}}
observability:
  tracing:
    enabled: true
    sampler: {{type: probability, rate: 0.0}}
    exporter: {{type: otlp, endpoint: "127.0.0.1:{receiver.port}", insecure: true}}
providers:
  anthropic: {{type: anthropic, base_url: "{fake.base_url}", api_key: "{fake.api_key}"}}
""")
        ids = [secrets.token_hex(16) for _ in range(2)]
        for trace_id, stream in zip(ids, (False, True), strict=True):
            r = httpx.post(gw.http_url + "/v1/messages", headers={
                "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}, json={
                "model": "anthropic/claude-haiku-4-5", "max_tokens": 16, "stream": stream,
                "messages": [{"role": "user", "content": "secret prompt text"}]})
            assert r.status_code == 200
            assert fake.requests[-1].headers["traceparent"].split("-")[1] == trace_id
        assert gw.stop() == 0

    for trace_id, rpc in zip(ids, ("CreateMessage", "StreamMessage"), strict=True):
        by_name = {s["name"]: s for s in receiver.spans if s["trace_id"] == trace_id}
        assert {"POST /v1/messages", f"/llmgateway.v1.GatewayService/{rpc}",
                "chat claude-haiku-4-5"} <= set(by_name)
        attrs = by_name["chat claude-haiku-4-5"]["attributes"]
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.provider.name"] == "anthropic"
        assert attrs["gen_ai.usage.input_tokens"] == 16  # 11, and 3 read and 2 written cached
        assert attrs["gen_ai.usage.output_tokens"] == 7
        assert attrs["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert "secret prompt text" not in json.dumps(receiver.spans)
    logged = [json.loads(line) for line in gw.logs().splitlines() if line.startswith("{")]
    lines = [line for line in logged if line.get("msg") == "request"
             and line.get("trace_id") in ids]
    assert len(lines) == 2 and {line["model"] for line in lines} == {
        "anthropic/claude-haiku-4-5"}


def test_sampler_never_is_final(process_factory: Callable[..., GatewayProcess],
                                fake_openai: FakeOpenAI) -> None:
    """Issue 19, item 13: a client's sampled traceparent does not override `never`."""
    with OtlpReceiver() as receiver:
        gw = process_factory(config(fake_openai, receiver).replace(
            "{type: probability, rate: 0.0}", "{type: never}"))
        trace_id = secrets.token_hex(16)
        r = httpx.post(gw.http_url + "/v1/chat/completions",
                       json={"model": "up/gpt-4o-mini", "messages": HI},
                       headers={"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
        assert r.status_code == 200
        assert gw.stop() == 0
    assert not [s for s in receiver.spans if s["trace_id"] == trace_id]
