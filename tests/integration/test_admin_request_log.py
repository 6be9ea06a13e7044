"""The request log through the admin API (issue 22, item 4): every inference request, REST
and gRPC, streamed or not, failed or not, listed newest first and filtered, in pages;
per-minute series by model; admins only; never the prompt or the answer."""

from __future__ import annotations

import grpc
import httpx
import openai
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from tests.integration.test_tenancy import ADMIN, Factory, keyed, new_tenant

SECRET_PROMPT = "the-launch-code-is-0451"


def admin_get(url: str, path: str, key: str = ADMIN, **params: str) -> httpx.Response:
    return httpx.get(url + path, params=params, timeout=10,
                     headers={"Authorization": f"Bearer {key}"})


def test_requests_are_listed_filtered_and_paged(channel_factory: Factory) -> None:
    gw = channel_factory(keyed(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    tenant_id, key = new_tenant(gw)
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key=key, max_retries=0) as client:
        client.chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": SECRET_PROMPT}])
        "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": "stream it"}],
            stream=True) if c.choices)
        try:
            client.chat.completions.create(model="no-such-model",
                                           messages=[{"role": "user", "content": "x"}])
        except openai.NotFoundError:
            pass

    page = admin_get(gw.http_url, "/admin/requests")
    assert page.status_code == 200, page.text
    assert SECRET_PROMPT not in page.text and "Echo" not in page.text
    rows = page.json()["requests"]
    assert [(r["model"], r["status"], r["stream"]) for r in rows[:3]] == [
        ("no-such-model", "NOT_FOUND", False), ("mock-1", "OK", True), ("mock-1", "OK", False)]
    served = rows[2]
    assert served["tenant_id"] == tenant_id and served["provider"] == "mock"
    assert served["method"] == "CreateChatCompletion" and served["request_id"].startswith("req_")
    assert int(served["prompt_tokens"]) > 0 and served["latency_ms"] > 0

    failed = admin_get(gw.http_url, "/admin/requests", status="NOT_FOUND").json()["requests"]
    assert [r["model"] for r in failed] == ["no-such-model"]
    first = admin_get(gw.http_url, "/admin/requests", tenant_id=tenant_id, page_size="2").json()
    assert len(first["requests"]) == 2 and first["next_page_token"]
    rest = admin_get(gw.http_url, "/admin/requests", tenant_id=tenant_id, page_size="2",
                     page_token=first["next_page_token"]).json()
    assert [r["request_id"] for r in rest["requests"]] == [rows[2]["request_id"]]
    assert rest["next_page_token"] == ""

    series = admin_get(gw.http_url, "/admin/usage/series", group_by="model").json()["points"]
    by_model = {p["key"]: p for p in series}
    assert int(by_model["mock-1"]["requests"]) == 2
    assert int(by_model["no-such-model"]["errors"]) == 1
    assert by_model["mock-1"]["latency_p95_ms"] > 0

    assert admin_get(gw.http_url, "/admin/requests", key=key).status_code == 403
    assert httpx.get(gw.http_url + "/admin/requests").status_code == 401
    for bad in ({"page_size": "-1"}, {"page_size": "1001"}, {"page_size": "many"},
                {"page_token": "nonsense"}, {"since": "yesterday"}):
        answer = admin_get(gw.http_url, "/admin/requests", **bad)
        assert answer.status_code == 400, (bad, answer.text)
    assert admin_get(gw.http_url, "/admin/usage/series", step_seconds="61").status_code == 400


def test_grpc_calls_are_logged_and_listed_over_grpc(gateway_factory: Factory) -> None:
    gw = gateway_factory(keyed(), env={"GATEWAY_ADMIN_KEY": ADMIN})
    _, key = new_tenant(gw)
    with grpc.insecure_channel(gw.grpc_target) as channel:
        chat = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        chat.CreateChatCompletion(gateway_service_pb2.CreateChatCompletionRequest(
            request=chat_pb2.ChatRequest(model="mock-1", messages=[chat_pb2.ChatMessage(
                role=chat_pb2.CHAT_ROLE_USER, content=SECRET_PROMPT)])),
            metadata=(("authorization", f"Bearer {key}"),), timeout=10)
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        listed = admin.ListRequests(admin_service_pb2.ListRequestsRequest(model="mock-1"),
                                    metadata=(("authorization", f"Bearer {ADMIN}"),),
                                    timeout=10)
        assert [r.method for r in listed.requests] == ["CreateChatCompletion"]
        assert SECRET_PROMPT.encode() not in listed.SerializeToString()
        series = admin.GetUsageSeries(admin_service_pb2.GetUsageSeriesRequest(
            group_by=admin_service_pb2.USAGE_SERIES_GROUP_TENANT),
            metadata=(("authorization", f"Bearer {ADMIN}"),), timeout=10)
        assert sum(p.requests for p in series.points) == 1


def test_a_disabled_log_keeps_nothing_and_serves_as_before(channel_factory: Factory) -> None:
    gw = channel_factory(keyed("request_log: {enabled: false}\n"),
                         env={"GATEWAY_ADMIN_KEY": ADMIN})
    _, key = new_tenant(gw)
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key=key, max_retries=0) as client:
        answer = client.chat.completions.create(
            model="mock-1", messages=[{"role": "user", "content": SECRET_PROMPT}])
    assert answer.choices[0].message.content

    page = admin_get(gw.http_url, "/admin/requests")
    assert page.status_code == 200, page.text
    assert page.json().get("requests", []) == []
    series = admin_get(gw.http_url, "/admin/usage/series")
    assert series.status_code == 200, series.text
    assert series.json().get("points", []) == []
