"""The security sweep: every way in that must stay shut, over REST and gRPC alike; no secret
in anything the gateway emits; ``X-Request-ID`` injection; ``X-Forwarded-For`` spoofing.

Real parts throughout: gateway processes, a local OIDC issuer (discovery + JWKS over HTTP),
fake upstreams speaking each provider's wire protocol, redis-server with a password,
PostgreSQL, a real OTLP receiver. REST goes through httpx, the openai SDK or raw sockets;
gRPC through the generated stubs, or hand-driven HTTP/2 where grpcio refuses to send what
an attacker would. Each part records its figures in the reliability scorecard. The threat
model these tests stand behind is in docs/reliability.md ("Threat model").
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import descriptor as pb_descriptor
from google.protobuf import message_factory
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from tests.conftest import GatewayProcess, start_gateway
from tests.fakes.oidc import FakeIssuer, SigningKey, b64url
from tests.inprocess import InProcessGateway
from tests.reliability.scorecard import record, scaled

ADMIN = "adm-" + secrets.token_urlsafe(24)
STATIC = "sk-static-" + secrets.token_urlsafe(24)
HI = [{"role": "user", "content": "hello"}]
PUBLIC = ("/health", "/ready", "/metrics", "/openapi.json")


# --- a tally of attempts ---------------------------------------------------------------------


@dataclass
class Tally:
    """Each attempt, what it had to get and what it got; recorded, then asserted."""

    name: str
    attempts: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, what: str, expected: str, got: str, problem: str = "") -> None:
        with self.lock:
            self.attempts += 1
            self.answers[got] += 1
            if got != expected or problem:
                self.wrong.append(f"{what}: expected {expected}, got {got} {problem}".rstrip())

    def finish(self) -> None:
        record(section="security", name=self.name, inputs=self.attempts,
               served=self.attempts - len(self.wrong), errors=dict(self.answers))
        assert not self.wrong, "\n".join(self.wrong)
        assert self.attempts > 0


def error_shape(response: httpx.Response, *secrets_sent: str) -> str:
    """"" when ``response`` is an error in its API's shape (Anthropic's on ``/v1/messages``,
    else OpenAI's) naming none of ``secrets_sent``, else why not."""
    anthropic = response.request.url.path.startswith("/v1/messages")
    shape = "Anthropic's" if anthropic else "OpenAI's"
    fields = {"message", "type"} if anthropic else {"message", "type", "param", "code"}
    try:
        body = response.json()
        error = body["error"]
    except (ValueError, KeyError, TypeError):
        return f"not {shape} error shape: {response.text[:200]!r}"
    if anthropic and body.get("type") != "error":
        return f"not {shape} error shape: {body!r}"
    if not isinstance(error, dict) or set(error) < fields:
        return f"not {shape} error shape: {error!r}"
    if not isinstance(error["message"], str) or not error["message"]:
        return "no message"
    text = response.text + json.dumps(dict(response.headers))
    for secret in secrets_sent:
        if secret and secret in text:
            return "the answer repeats the credential"
    return ""


def rest_status(response: httpx.Response) -> str:
    return str(response.status_code)


# --- gRPC: every method through the generated stubs ------------------------------------------


def _methods(module: Any, service: str) -> list[pb_descriptor.MethodDescriptor]:
    return list(module.DESCRIPTOR.services_by_name[service].methods)


GATEWAY_METHODS = _methods(gateway_service_pb2, "GatewayService")
ADMIN_METHODS = _methods(admin_service_pb2, "AdminService")


def grpc_code(channel: grpc.Channel, method: pb_descriptor.MethodDescriptor,
              request: Any = None, token: str | None = None,
              metadata: Sequence[tuple[str, str]] = ()) -> str:
    """The status name one call ends with (``OK`` included), through the generated stub."""
    stub: Any = (gateway_service_pb2_grpc.GatewayServiceStub(channel)
                 if method.containing_service.name == "GatewayService"
                 else admin_service_pb2_grpc.AdminServiceStub(channel))
    if request is None:
        request = message_factory.GetMessageClass(method.input_type)()
    meta = [*metadata, *((("authorization", f"Bearer {token}"),) if token else ())]
    try:
        answer = getattr(stub, method.name)(request, metadata=meta, timeout=20)
        if method.server_streaming:
            for _ in answer:
                pass
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        details = exc.details() or ""
        if token and token in details:
            return f"{code.name} (repeats the credential)"
        return str(code.name)
    return "OK"


def chat_request(model: str = "mock-1") -> gateway_service_pb2.CreateChatCompletionRequest:
    return gateway_service_pb2.CreateChatCompletionRequest(request=chat_pb2.ChatRequest(
        model=model, messages=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                                    content="hello")]))


# --- the guarded gateway ---------------------------------------------------------------------


def guarded_config(issuer: FakeIssuer) -> str:
    return f"""
logging: {{level: info, format: json}}
auth:
  api_keys: {{enabled: true, keys: ["{STATIC}"]}}
  oidc: {{enabled: true, issuer: "{issuer.issuer}", audience: [llm-gateway]}}
  # Attacked from one address thousands of times: the per-address limit on failed
  # attempts would answer most of them 429; it has a test of its own.
  max_failed_attempts: 0
providers:
  mock: {{type: mock, models: [echo]}}
  premium: {{type: mock, models: [echo]}}
models:
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
conversations: {{store: memory, ttl: 1h}}
cache: {{enabled: true, store: memory, ttl: 5m}}
"""


@pytest.fixture(scope="module")
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture(scope="module")
def guarded(issuer: FakeIssuer, module_tmp: Path) -> Iterator[GatewayProcess]:
    """One gateway with every kind of credential on: admin key, static key, tenant keys,
    OIDC tokens. Every test leaves it serving; it must stop cleanly."""
    gw = start_gateway(guarded_config(issuer), module_tmp, env={"GATEWAY_ADMIN_KEY": ADMIN})
    yield gw
    code = gw.stop()
    logs = gw.logs()
    assert code == 0, logs
    assert "Traceback" not in logs and '"level":"error"' not in logs, logs


def admin(gw: GatewayProcess, method: str, path: str, body: object = None) -> httpx.Response:
    return httpx.request(method, gw.http_url + "/admin" + path, json=body, timeout=10,
                         headers={"Authorization": f"Bearer {ADMIN}"})


def new_tenant(gw: GatewayProcess, tenant_spec: dict[str, Any] | None = None,
               **key_spec: object) -> tuple[str, str, str]:
    """A tenant with one key: ``(tenant_id, key_id, secret)``."""
    r = admin(gw, "POST", "/tenants", {"name": f"t-{secrets.token_hex(4)}", **(tenant_spec or {})})
    assert r.status_code == 201, r.text
    tenant_id = r.json()["tenant"]["id"]
    r = admin(gw, "POST", f"/tenants/{tenant_id}/keys", {"name": "k", **key_spec})
    assert r.status_code == 201, r.text
    return tenant_id, r.json()["api_key"]["id"], r.json()["secret"]


def still_serving(gw: GatewayProcess, key: str) -> None:
    """The process is alive and answers a good request over REST and over gRPC."""
    assert gw.proc.poll() is None, gw.logs()
    r = httpx.post(gw.http_url + "/v1/chat/completions", json={"model": "mock-1", "messages": HI},
                   headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 200, r.text
    with grpc.insecure_channel(gw.grpc_target) as channel:
        assert grpc_code(channel, GATEWAY_METHODS[0], chat_request(), key) == "OK"


def rest_routes(gw: GatewayProcess, tenant_id: str, key_id: str) -> list[tuple[str, str, Any]]:
    """Every route the OpenAPI document lists but the public ones, parameters filled in,
    with a body that would be valid: ``(method, path, json)``."""
    document = httpx.get(gw.http_url + "/openapi.json", timeout=10).json()
    values = {"{model_id}": "mock-1", "{response_id}": "resp_0123456789abcdef",
              "{tenant_id}": tenant_id, "{key_id}": key_id, "{provider}": "mock"}
    bodies: dict[str, Any] = {
        "/v1/chat/completions": {"model": "mock-1", "messages": HI},
        "/v1/embeddings": {"model": "mock-1", "input": "hello"},
        "/v1/responses": {"model": "mock-1", "input": "hello"},
        "/v1/messages": {"model": "mock-1", "max_tokens": 16, "messages": HI},
        "/v1/messages/count_tokens": {"model": "mock-1", "messages": HI},
        "/admin/tenants": {"name": "intruder"},
        "/admin/tenants/{tenant_id}": {"name": "renamed-by-an-intruder"},
        "/admin/tenants/{tenant_id}/keys": {"name": "intruder"},
    }
    routes = []
    for template, operations in document["paths"].items():
        if template.startswith(PUBLIC) or template == "/health/live":
            continue
        path = template
        for name, value in values.items():
            path = path.replace(name, value)
        assert "{" not in path, f"no value for a parameter of {template}"
        for method in operations:
            body = bodies.get(template) if method in ("post", "put") else None
            routes.append((method.upper(), path, body))
    assert len(routes) >= 20, routes
    return routes


# --- 1. authentication and authorization -----------------------------------------------------


def bad_tokens(issuer: FakeIssuer, live_key: str) -> dict[str, str]:
    """Credentials that must all be a 401: malformed, wrong, forged."""
    now = time.time()
    rsa = issuer.key("RS256")
    good = issuer.mint({"org_id": "acme"})
    header, payload, signature = good.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    forged_claims = b64url(json.dumps({**issuer.claims({"roles": ["admin"]})}).encode())
    return {
        "a made-up sk- key": "sk-" + secrets.token_urlsafe(32),
        "a live key with one character changed": live_key[:-1] + (
            "A" if live_key[-1] != "A" else "B"),
        "a live key's SHA-256 (as stored)": hashlib.sha256(live_key.encode()).hexdigest(),
        "the admin key plus a character": ADMIN + "x",
        "the admin key minus a character": ADMIN[:-1],
        "the static key in other case": STATIC.upper(),
        "JWT alg none": issuer.mint(alg="none"),
        "JWT alg none naming a real kid": issuer.mint(alg="none", kid=rsa.kid),
        "JWT HS256 keyed with the issuer's RSA public key": issuer.mint(
            alg="HS256", key=rsa.public_pem(), kid=rsa.kid),
        "JWT expired": issuer.mint(lifetime=-120),
        "JWT not yet valid": issuer.mint({"nbf": int(now) + 600}),
        "JWT wrong issuer": issuer.mint({"iss": "https://issuer.invalid"}),
        "JWT wrong audience": issuer.mint({"aud": "another-service"}),
        "JWT signature tampered": f"{header}.{payload}.{flipped}",
        "JWT claims swapped under a real signature": f"{header}.{forged_claims}.{signature}",
        "JWT signed by a stranger under a real kid": issuer.mint(
            key=SigningKey.generate("RS256"), kid=rsa.kid),
        "JWT-shaped garbage": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
    }


MALFORMED_REST: dict[str, dict[str, str]] = {
    "no credential": {},
    "Basic credentials": {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()},
    "Bearer and nothing": {"Authorization": "Bearer"},
    "two Bearer schemes": {"Authorization": "Bearer Bearer"},
    "another scheme": {"Authorization": "Token sk-abc"},
    "empty x-api-key": {"x-api-key": ""},
    "x-api-key with a scheme": {"x-api-key": "Bearer sk-abc"},
}
MALFORMED_GRPC: dict[str, list[tuple[str, str]]] = {
    "no credential": [],
    "Basic credentials": [("authorization", "Basic " + base64.b64encode(b"u:p").decode())],
    "Bearer and nothing": [("authorization", "Bearer")],
    "another scheme": [("authorization", "Token sk-abc")],
    "x-api-key of blanks": [("x-api-key", "   ")],
}


def test_credentials_that_must_not_get_in(guarded: GatewayProcess, issuer: FakeIssuer) -> None:
    """No key, malformed headers, wrong/revoked/expired keys and forged tokens: 401 in
    OpenAI's shape on every REST route, UNAUTHENTICATED on every gRPC method."""
    tenant_id, key_id, live = new_tenant(guarded)
    _, revoked_id, revoked = new_tenant(guarded)
    _, _, expiring = new_tenant(guarded, ttl_seconds=1)
    assert admin(guarded, "DELETE", f"/keys/{revoked_id}").status_code == 200
    tally = Tally("auth: credentials refused (401 / UNAUTHENTICATED)")
    routes = rest_routes(guarded, tenant_id, key_id)
    time.sleep(1.2)  # the expiring key's second is over

    refused: dict[str, str] = {"revoked key": revoked, "expired key (ttl 1 s)": expiring,
                               **bad_tokens(issuer, live)}
    every_route = {"no credential", "a made-up sk- key", "revoked key"}
    chat_only = [r for r in routes if r[1] == "/v1/chat/completions"]
    with httpx.Client(base_url=guarded.http_url, timeout=20) as client:
        for case, headers in MALFORMED_REST.items():
            for method, path, body in routes if case in every_route else chat_only:
                r = client.request(method, path, json=body, headers=headers)
                tally.check(f"REST {method} {path} {case}", "401", rest_status(r), error_shape(r))
        r = client.post("/v1/chat/completions", json={"model": "mock-1", "messages": HI},
                        headers={b"Authorization": "Bearer ключ".encode()})
        tally.check("REST non-ASCII bearer", "401", rest_status(r), error_shape(r))
        for case, token in refused.items():
            for method, path, body in routes if case in every_route else chat_only:
                for header in ({"Authorization": f"Bearer {token}"}, {"x-api-key": token}):
                    r = client.request(method, path, json=body, headers=header)
                    tally.check(f"REST {method} {path} {case} via {next(iter(header))}", "401",
                                rest_status(r), error_shape(r, token))

    with grpc.insecure_channel(guarded.grpc_target) as channel:
        for case, metadata in MALFORMED_GRPC.items():
            for rpc in (GATEWAY_METHODS + ADMIN_METHODS if case in every_route
                        else GATEWAY_METHODS[:1]):
                tally.check(f"gRPC {rpc.name} {case}", "UNAUTHENTICATED",
                            grpc_code(channel, rpc, metadata=metadata))
        for case, token in refused.items():
            for rpc in (GATEWAY_METHODS + ADMIN_METHODS if case in every_route
                        else GATEWAY_METHODS[:2]):
                tally.check(f"gRPC {rpc.name} {case}", "UNAUTHENTICATED",
                            grpc_code(channel, rpc, token=token))
            tally.check(f"gRPC x-api-key {case}", "UNAUTHENTICATED", grpc_code(
                channel, GATEWAY_METHODS[0], chat_request(), metadata=[("x-api-key", token)]))
    tally.finish()
    still_serving(guarded, live)


def test_admin_api_refuses_every_non_admin(guarded: GatewayProcess, issuer: FakeIssuer) -> None:
    """Every /admin route and AdminService method: 401 without a credential, 403 with a
    tenant key, the static key or an OIDC token without the admin role; nothing changes."""
    tenant_id, key_id, live = new_tenant(guarded)
    before = admin(guarded, "GET", "/tenants").json()
    keys_before = admin(guarded, "GET", f"/tenants/{tenant_id}/keys").json()
    users = {"a tenant's key": live, "the static key": STATIC,
             "an OIDC token without roles": issuer.mint({"org_id": tenant_id}),
             "an OIDC token with role dev": issuer.mint({"roles": ["dev", "Admin", "admins"]})}
    routes = [r for r in rest_routes(guarded, tenant_id, key_id) if r[1].startswith("/admin")]
    tally = Tally("auth: admin API with user credentials (403 / PERMISSION_DENIED)")
    with httpx.Client(base_url=guarded.http_url, timeout=20) as client:
        for method, path, body in routes:
            r = client.request(method, path, json=body)
            tally.check(f"REST {method} {path} without a credential", "401", rest_status(r),
                        error_shape(r))
            for who, token in users.items():
                r = client.request(method, path, json=body,
                                   headers={"Authorization": f"Bearer {token}"})
                tally.check(f"REST {method} {path} with {who}", "403", rest_status(r),
                            error_shape(r, token))
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        for rpc in ADMIN_METHODS:
            tally.check(f"gRPC {rpc.name} without a credential", "UNAUTHENTICATED",
                        grpc_code(channel, rpc))
            for who, token in users.items():
                tally.check(f"gRPC {rpc.name} with {who}", "PERMISSION_DENIED",
                            grpc_code(channel, rpc, token=token))
    tally.finish()
    assert admin(guarded, "GET", "/tenants").json() == before
    assert admin(guarded, "GET", f"/tenants/{tenant_id}/keys").json() == keys_before
    still_serving(guarded, live)


def test_stored_responses_are_invisible_to_other_tenants(guarded: GatewayProcess) -> None:
    """Tenant A cannot read, delete or continue tenant B's stored response: 404, word for word
    the answer for an id that never existed (existence is not revealed), and B's response is
    intact afterwards. Nor does A get B's cached answers."""
    _, _, key_a = new_tenant(guarded)
    _, _, key_b = new_tenant(guarded)
    tally = Tally("auth: another tenant's stored response (404 / NOT_FOUND)")
    with httpx.Client(base_url=guarded.http_url, timeout=20) as client:
        def as_(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        made = client.post("/v1/responses", headers=as_(key_b),
                           json={"model": "mock-1", "input": "B's secret plan"})
        assert made.status_code == 200, made.text
        theirs = made.json()["id"]
        never = "resp_" + secrets.token_hex(12)

        def same_as_missing(method: str, path: str,
                            body: Callable[[str], Any] = lambda _: None) -> None:
            seen = client.request(method, path.format(theirs), json=body(theirs),
                                  headers=as_(key_a))
            missing = client.request(method, path.format(never), json=body(never),
                                     headers=as_(key_a))
            problem = error_shape(seen)
            if seen.text != missing.text.replace(never, theirs):
                problem += f" differs from a missing id's answer: {seen.text} / {missing.text}"
            if "secret plan" in seen.text:
                problem += " (B's content shown)"
            tally.check(f"REST {method} {path} of another tenant", "404", rest_status(seen),
                        problem)

        same_as_missing("GET", "/v1/responses/{}")
        same_as_missing("DELETE", "/v1/responses/{}")
        for stream in (False, True):
            def continuing(rid: str, stream: bool = stream) -> dict[str, Any]:
                return {"model": "mock-1", "input": "go on", "previous_response_id": rid,
                        "stream": stream}

            same_as_missing("POST", "/v1/responses", continuing)

        with grpc.insecure_channel(guarded.grpc_target) as channel:
            by_name = {m.name: m for m in GATEWAY_METHODS}
            probes: dict[str, Any] = {
                "GetResponse": gateway_service_pb2.GetResponseRequest(response_id=theirs),
                "DeleteResponse": gateway_service_pb2.DeleteResponseRequest(response_id=theirs),
                "CreateResponse": gateway_service_pb2.CreateResponseRequest(
                    request=gateway_service_pb2.ResponseRequest(
                        model="mock-1", previous_response_id=theirs,
                        input=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                                    content="go on")])),
                "StreamResponse": gateway_service_pb2.StreamResponseRequest(
                    request=gateway_service_pb2.ResponseRequest(
                        model="mock-1", previous_response_id=theirs,
                        input=[chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                                    content="go on")])),
            }
            for name, request in probes.items():
                tally.check(f"gRPC {name} of another tenant", "NOT_FOUND",
                            grpc_code(channel, by_name[name], request, key_a))
            tally.check("gRPC GetResponse by its owner", "OK", grpc_code(
                channel, by_name["GetResponse"],
                gateway_service_pb2.GetResponseRequest(response_id=theirs), key_b))

        still_there = client.get(f"/v1/responses/{theirs}", headers=as_(key_b))
        tally.check("REST GET by its owner after the attempts", "200",
                    rest_status(still_there))

        # The response cache is per tenant too: B's deterministic answer is not A's hit.
        question = {"model": "mock-1", "temperature": 0,
                    "messages": [{"role": "user", "content": f"cached {secrets.token_hex(4)}"}]}
        for who, key, expected in (("B", key_b, "MISS"), ("B", key_b, "HIT"),
                                   ("A", key_a, "MISS")):
            r = client.post("/v1/chat/completions", json=question, headers=as_(key))
            tally.check(f"REST cache lookup by {who}", expected, r.headers.get("X-Cache", "none"))
        with grpc.insecure_channel(guarded.grpc_target) as channel:
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            request = gateway_service_pb2.CreateChatCompletionRequest(
                request=chat_pb2.ChatRequest(model="mock-1", temperature=0, messages=[
                    chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER,
                                         content=question["messages"][0]["content"])]))
            _, call = stub.CreateChatCompletion.with_call(
                request, metadata=(("authorization", f"Bearer {key_a}"),), timeout=20)
            tally.check("gRPC cache lookup by A, after REST", "HIT",
                        dict(call.initial_metadata()).get("x-cache", "none"))
    tally.finish()
    still_serving(guarded, key_a)


def test_allowed_models_cannot_be_steered_to_another_provider(guarded: GatewayProcess) -> None:
    """A tenant allowed only ``mock-1`` (routed to provider ``mock``) may not have it served by
    provider ``premium`` through an ``X-Provider`` pin, as it may not ask ``premium/echo``."""
    _, _, key = new_tenant(guarded, {"allowed_models": ["mock-1"]})
    tally = Tally("auth: allowed models steered by X-Provider (403 / PERMISSION_DENIED)")
    with httpx.Client(base_url=guarded.http_url, timeout=20) as client:
        for model, pin in (("premium/echo", None), ("mock-1", "premium")):
            headers = {"Authorization": f"Bearer {key}", **({"X-Provider": pin} if pin else {})}
            r = client.post("/v1/chat/completions", headers=headers,
                            json={"model": model, "messages": HI})
            tally.check(f"REST {model} pinned to {pin}", "403", rest_status(r),
                        error_shape(r) if r.status_code != 200 else "")
    with grpc.insecure_channel(guarded.grpc_target) as channel:
        tally.check("gRPC mock-1 pinned to premium", "PERMISSION_DENIED", grpc_code(
            channel, GATEWAY_METHODS[0], chat_request(), key, [("x-provider", "premium")]))
    tally.finish()


def test_a_flood_of_unknown_kids_costs_at_most_one_jwks_fetch(guarded: GatewayProcess,
                                                             issuer: FakeIssuer) -> None:
    """Tokens under made-up ``kid`` values, concurrently over REST and gRPC: each is a 401,
    and the issuer's JWKS is fetched at most once per 10 s window, not once per token."""
    stranger = SigningKey.generate("RS256")
    count = scaled(80, 1000)
    tokens = [issuer.mint(key=stranger, kid=f"kid-{secrets.token_hex(6)}") for _ in range(count)]
    _, _, live = new_tenant(guarded)
    tally = Tally("auth: unknown-kid flood")
    fetches_before = issuer.jwks_fetches

    http = httpx.Client(base_url=guarded.http_url, timeout=20,
                        limits=httpx.Limits(max_connections=16))

    def over_rest(token: str) -> None:
        r = http.post("/v1/chat/completions", json={"model": "mock-1", "messages": HI},
                      headers={"Authorization": f"Bearer {token}"})
        tally.check("REST unknown kid", "401", rest_status(r), error_shape(r, token))

    channel = grpc.insecure_channel(guarded.grpc_target)

    def over_grpc(token: str) -> None:
        tally.check("gRPC unknown kid", "UNAUTHENTICATED",
                    grpc_code(channel, GATEWAY_METHODS[0], chat_request(), token))

    started = time.monotonic()
    with http, channel, ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda it: (over_rest if it[0] % 2 else over_grpc)(it[1]),
                      enumerate(tokens)))
    windows = 1 + int((time.monotonic() - started) // 10)
    fetched = issuer.jwks_fetches - fetches_before
    record(section="security", name="auth: JWKS fetches during the unknown-kid flood",
           inputs=count, served=count if fetched <= windows else 0,
           errors={"jwks_fetches": fetched}, note=f"{windows} 10-second window(s)")
    tally.finish()
    assert fetched <= windows, f"{fetched} JWKS fetches for {count} tokens"
    assert issuer.discovery_fetches <= 1 + windows
    # The issuer's real keys still work afterwards.
    r = httpx.post(guarded.http_url + "/v1/chat/completions", timeout=20,
                   json={"model": "mock-1", "messages": HI},
                   headers={"Authorization": f"Bearer {issuer.mint({'sub': 'after-flood'})}"})
    assert r.status_code == 200, r.text
    still_serving(guarded, live)


# --- 2. no secret in anything the gateway emits ----------------------------------------------


class Witness:
    """Keeps what a client sees: every answer's headers, every error body, every admin read,
    and the same for gRPC (details, metadata). ``places()`` is what gets scanned."""

    def __init__(self) -> None:
        self.headers: list[str] = []
        self.errors: list[str] = []
        self.reads: list[str] = []
        self.statuses: Counter[str] = Counter()

    def hook(self, response: httpx.Response) -> None:
        self.statuses[str(response.status_code)] += 1
        self.headers.append(json.dumps(response.headers.multi_items()))
        if response.status_code >= 400:
            response.read()
            self.errors.append(response.text)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(event_hooks={"response": [self.hook]}, timeout=20, **kwargs)

    def sdk(self, base_url: str, key: str) -> Any:
        import openai

        client: Any = self.client()  # the SDK's own type is httpx's under another name
        return openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0,
                             http_client=client)

    def grpc(self, call: Callable[[], Any]) -> Any:
        """Run one gRPC call; keep its metadata and, on failure, its details."""
        try:
            answer = call()
            if isinstance(answer, tuple):  # with_call: (response, call)
                response, rpc = answer
                self.headers.append(repr(rpc.initial_metadata()) + repr(rpc.trailing_metadata()))
                self.statuses["OK"] += 1
                return response
            return answer
        except grpc.RpcError as exc:
            self.statuses[exc.code().name] += 1
            self.errors.append(f"{exc.details()} {exc.trailing_metadata()!r}")
            return None

    def places(self) -> dict[str, list[str]]:
        return {"response headers": self.headers, "error bodies": self.errors,
                "admin reads": self.reads}


def secrets_config(issuer: FakeIssuer, receiver_port: int, otlp_token: str, admin_key: str,
                   static_key: str, upstreams: dict[str, str]) -> str:
    return f"""
logging: {{level: debug, format: json}}
observability:
  tracing:
    enabled: true
    service_name: gw-secrets
    sampler: {{type: always}}
    exporter: {{type: otlp, endpoint: "127.0.0.1:{receiver_port}", insecure: true,
               headers: {{authorization: "Bearer {otlp_token}"}}}}
rate_limit: {{enabled: true, requests_per_second: 1000, burst: 1000}}
circuit_breaker: {{distributed: true, consecutive_failures: 100000, min_requests: 100000}}
retry: {{attempts: 1}}
cache: {{enabled: true, store: redis, ttl: 5m}}
conversations: {{store: sql, driver: pgx, dsn: "${{DATABASE_URL}}", ttl: 1h}}
auth:
  admin_keys: ["{admin_key}"]
  api_keys: {{enabled: true, keys: ["{static_key}"]}}
  oidc: {{enabled: true, issuer: "{issuer.issuer}", audience: [llm-gateway]}}
providers:
  oa: {{type: openai, base_url: "{upstreams['oa']}/v1", api_key: "${{OA_KEY}}",
        models: [gpt-4o-mini]}}
  an: {{type: anthropic, base_url: "{upstreams['an']}", api_key: "${{AN_KEY}}",
        models: [claude-3-5-haiku-latest]}}
  go: {{type: google, base_url: "{upstreams['go']}", api_key: "${{GO_KEY}}",
        models: [gemini-2.0-flash]}}
  mock: {{type: mock, models: [echo]}}
models:
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
"""


def test_no_secret_in_logs_errors_metrics_or_traces(
    tmp_path: Path, issuer: FakeIssuer, postgres_server: Any, postgres_dsn: str,
) -> None:
    """A gateway holding every kind of secret, driven through successes and failures
    (upstreams refusing its keys and echoing them, bad keys, forged tokens, a Redis outage):
    no secret, as is or encoded, in any log line, error body, response header, admin read,
    /metrics, or span exported over OTLP."""
    from tests.fakes.anthropic import FakeAnthropic, anthropic_error
    from tests.fakes.gemini import FakeGemini, gemini_error
    from tests.fakes.openai import FakeOpenAI, openai_error
    from tests.fakes.server import Reply
    from tests.reliability.security_kit import PasswordRedis, SpanLog, leaks

    def token(prefix: str) -> str:
        return prefix + secrets.token_urlsafe(24)

    found: dict[str, str] = {
        "openai key": token("sk-oa-"), "anthropic key": token("sk-ant-"),
        "google key": token("AIza"), "admin key (env)": token("adm-env-"),
        "admin key (config)": token("adm-cfg-"), "static key": token("sk-static-"),
        "tenant's own openai key": token("sk-own-"), "OTLP header token": token("otlp-"),
        "redis password": token("redis-"), "postgres password": postgres_server.password,
        "ENCRYPTION_KEY": base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    witness = Witness()
    oa, an, go, spans = FakeOpenAI(), FakeAnthropic(), FakeGemini(), SpanLog()
    with oa, an, go, spans:
        oa.api_key, an.api_key, go.api_key = (found["openai key"], found["anthropic key"],
                                              found["google key"])
        redis = PasswordRedis(tmp_path, found["redis password"]).start()
        try:
            gw = start_gateway(
                secrets_config(issuer, spans.port, found["OTLP header token"],
                               found["admin key (config)"], found["static key"],
                               {"oa": oa.base_url, "an": an.base_url, "go": go.base_url}),
                tmp_path, env={
                    "GATEWAY_ADMIN_KEY": found["admin key (env)"],
                    "ENCRYPTION_KEY": found["ENCRYPTION_KEY"], "REDIS_URL": redis.url,
                    "DATABASE_URL": postgres_dsn, "OA_KEY": found["openai key"],
                    "AN_KEY": found["anthropic key"], "GO_KEY": found["google key"]})
            try:
                drive(gw, witness, found, issuer, oa, an, go, redis, Reply=Reply,
                      openai_error=openai_error, anthropic_error=anthropic_error,
                      gemini_error=gemini_error)
                metrics_text = httpx.get(gw.http_url + "/metrics", timeout=10).text
            finally:
                code = gw.stop()
        finally:
            redis.stop()
    logs = gw.logs()
    assert code == 0, logs
    assert spans.exports and len(spans.spans) > 20, "the traffic was not traced"
    assert '"msg":"request"' in logs and "gateway_requests_total" in metrics_text
    places = {"logs": logs.splitlines(), "/metrics": [metrics_text], "spans": spans.exports,
              **witness.places()}
    hits = leaks(found, places)
    scanned = sum(len(texts) for texts in places.values())
    record(section="security", name="secrets: scan of logs, errors, metrics, spans",
           inputs=scanned * len(found), served=scanned * len(found) - len(hits),
           errors={"hits": len(hits), **{k: v for k, v in witness.statuses.items()}},
           note=f"{len(found)} secrets x {scanned} texts")
    assert not hits, "\n".join(hits)
    # The run did what it says: failures of every kind happened.
    for status in ("401", "403", "404", "502", "UNAUTHENTICATED", "PERMISSION_DENIED"):
        assert witness.statuses[status] > 0, (status, witness.statuses)


def drive(gw: GatewayProcess, witness: Witness, found: dict[str, str], issuer: FakeIssuer,
          oa: Any, an: Any, go: Any, redis: Any, **fakes: Any) -> None:
    """The traffic of the secret scan: adds the secrets it makes (keys, tokens) to
    ``found``."""
    Reply, openai_error = fakes["Reply"], fakes["openai_error"]
    anthropic_error, gemini_error = fakes["anthropic_error"], fakes["gemini_error"]
    admin_env, admin_cfg = found["admin key (env)"], found["admin key (config)"]
    own = found["tenant's own openai key"]

    def bearer(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    with witness.client(base_url=gw.http_url) as http:
        # Admin: tenants, keys, the tenant's own provider key; reads of everything.
        r = http.post("/admin/tenants", headers=bearer(admin_env), json={
            "name": "own-keys", "provider_credentials": {"oa": own}})
        assert r.status_code == 201, r.text
        owner = r.json()["tenant"]["id"]
        r = http.post("/admin/tenants", headers=bearer(admin_cfg), json={"name": "plain"})
        plain = r.json()["tenant"]["id"]
        found["tenant key (own keys)"] = http.post(
            f"/admin/tenants/{owner}/keys", headers=bearer(admin_env), json={}).json()["secret"]
        found["tenant key (revoked by rotation)"] = http.post(
            f"/admin/tenants/{plain}/keys", headers=bearer(admin_env), json={}).json()["secret"]
        found["tenant key (rotated)"] = http.post(
            f"/admin/tenants/{plain}/rotate-key", headers=bearer(admin_cfg),
            json={}).json()["secret"]
        key = found["tenant key (rotated)"]
        for path in ("/tenants", f"/tenants/{owner}", f"/tenants/{owner}/keys", "/providers",
                     "/system", "/circuit-breakers"):
            r = http.get("/admin" + path, headers=bearer(admin_env))
            assert r.status_code == 200, r.text
            witness.reads.append(r.text)

        # Good traffic on every provider, every API, every credential kind.
        found["OIDC token"] = issuer.mint({"org_id": plain, "sub": "alice"})
        found["OIDC token signature"] = found["OIDC token"].rsplit(".", 1)[1]
        with witness.sdk(gw.http_url, key) as sdk:
            for model in ("oa/gpt-4o-mini", "an/claude-3-5-haiku-latest", "go/gemini-2.0-flash"):
                sdk.chat.completions.create(model=model, messages=HI)
                list(sdk.chat.completions.create(model=model, messages=HI, stream=True))
            sdk.embeddings.create(model="oa/gpt-4o-mini", input="hello")
            for _ in range(2):  # the second from the Redis cache
                sdk.chat.completions.create(model="oa/gpt-4o-mini", messages=HI, temperature=0)
            first = sdk.responses.create(model="mock-1", input="remember this")
            sdk.responses.create(model="mock-1", input="and this",
                                 previous_response_id=first.id)
            sdk.responses.retrieve(first.id)
        for credential in (found["OIDC token"], found["static key"], admin_env):
            assert http.post("/v1/chat/completions", headers=bearer(credential),
                             json={"model": "mock-1", "messages": HI}).status_code == 200
        r = http.get("/v1/usage", headers=bearer(key))
        assert r.status_code == 200, r.text

        # The tenant's own key at the upstream: refused (echoed back), then accepted.
        oa.api_key = own
        oa.enqueue(openai_error(401, f"Incorrect API key provided: {own}",
                                "invalid_request_error", "invalid_api_key"))
        tenant = bearer(found["tenant key (own keys)"])
        for _ in range(2):
            http.post("/v1/chat/completions", headers=tenant,
                      json={"model": "oa/gpt-4o-mini", "messages": HI})
        oa.api_key = found["openai key"]
        http.post("/v1/chat/completions", headers=tenant,  # the upstream refuses it now
                  json={"model": "oa/gpt-4o-mini", "messages": HI})

        # Upstreams failing and echoing the gateway's own keys in every way they can.
        for status in (401, 403, 429, 500, 400):
            oa.enqueue(openai_error(status, f"bad key {found['openai key']}", "error"))
            an.enqueue(anthropic_error(status, "error", f"bad key {found['anthropic key']}"))
            go.enqueue(gemini_error(status, f"bad key {found['google key']}", "ERROR"))
            for model in ("oa/gpt-4o-mini", "an/claude-3-5-haiku-latest",
                          "go/gemini-2.0-flash"):
                http.post("/v1/chat/completions", headers=bearer(key),
                          json={"model": model, "messages": HI})
        oa.enqueue(Reply(events=[{"error": {"message": f"boom {found['openai key']}"}}]))
        with http.stream("POST", "/v1/chat/completions", headers=bearer(key), json={
                "model": "oa/gpt-4o-mini", "messages": HI, "stream": True}) as streamed:
            text = streamed.read().decode()
            witness.errors.append(text)  # an error event inside a 200 stream

        # Bad credentials of every kind, REST and gRPC.
        found["a made-up key"] = token_like("sk-")
        bad = [found["a made-up key"], found["tenant key (revoked by rotation)"],
               issuer.mint(lifetime=-120), issuer.mint(alg="none"),
               issuer.mint(alg="HS256", key=issuer.key("RS256").public_pem())]
        found["forged token"] = issuer.mint({"org_id": plain}, key=SigningKey.generate("RS256"),
                                            kid=issuer.key("RS256").kid)
        bad.append(found["forged token"])
        for credential in bad:
            for headers in (bearer(credential), {"x-api-key": credential}):
                http.post("/v1/chat/completions", headers=headers,
                          json={"model": "mock-1", "messages": HI})
        http.get("/admin/tenants", headers=bearer(key))
        http.get(f"/v1/responses/resp_{secrets.token_hex(8)}", headers=bearer(key))
        http.post("/v1/chat/completions", headers=bearer(key),
                  json={"model": "no-such-model", "messages": HI})

        with grpc.insecure_channel(gw.grpc_target) as channel:
            stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
            admin_stub = admin_service_pb2_grpc.AdminServiceStub(channel)
            def as_(credential: str) -> tuple[tuple[str, str]]:
                return (("authorization", f"Bearer {credential}"),)

            for credential in (key, *bad):
                witness.grpc(partial(stub.CreateChatCompletion.with_call,
                                     chat_request("oa/gpt-4o-mini"), metadata=as_(credential)))
            witness.grpc(lambda: list(stub.StreamChatCompletion(
                gateway_service_pb2.StreamChatCompletionRequest(
                    request=chat_request("go/gemini-2.0-flash").request),
                metadata=(("authorization", f"Bearer {key}"),))))
            for method in ("ListProviders", "GetSystemInfo", "ListTenants"):
                request = getattr(admin_service_pb2, f"{method}Request")()
                call = getattr(admin_stub, method).with_call
                answer = witness.grpc(partial(call, request, metadata=as_(admin_cfg)))
                assert answer is not None
                witness.reads.append(str(answer))
                witness.grpc(partial(call, request, metadata=as_(key)))
            go.enqueue(gemini_error(500, f"bad key {found['google key']}", "INTERNAL"))
            witness.grpc(lambda: stub.CreateChatCompletion.with_call(
                chat_request("go/gemini-2.0-flash"),
                metadata=(("authorization", f"Bearer {key}"),)))

        # Redis goes away (limits fail open, the cache misses, breakers go local), comes back.
        redis.stop()
        for _ in range(3):
            http.post("/v1/chat/completions", headers=bearer(key),
                      json={"model": "oa/gpt-4o-mini", "messages": HI, "temperature": 0})
        witness.errors.append(http.get("/ready").text)
        redis.start()
        deadline = time.monotonic() + 20
        while http.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert http.post("/v1/chat/completions", headers=bearer(key),
                         json={"model": "mock-1", "messages": HI}).status_code == 200


def token_like(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def test_redaction_replaces_every_form_of_a_credential() -> None:
    """The unit under the scan's fix: what ``RedactingCodec`` replaces, and what it leaves."""
    from urllib.parse import quote

    from gateway.providers.redact import REDACTED, redact

    key = "sk-" + secrets.token_urlsafe(24)
    entra = "eyJ" + secrets.token_urlsafe(40)
    odd = "k+y/with=" + secrets.token_hex(8)
    text = f"bad key {key}; token {entra}; encoded {quote(odd, safe='')}; short word"
    cleaned = redact(text, [key, f"Bearer {entra}", odd, "short", ""])
    assert cleaned == f"bad key {REDACTED}; token {REDACTED}; encoded {REDACTED}; short word"


# --- 3. X-Request-ID: accepted only when plain, never a way to forge a header or a log line ---

GENERATED_ID = re.compile(r"req_[0-9a-f]{24}")
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ +[\w.]+: ")


def injected_ids() -> dict[str, bytes]:
    """``X-Request-ID`` values as raw header bytes; each names a forged header ``Forged-N``
    or a forged log line ``FORGED-N`` so that the test can look for it."""
    return {
        "bare CR then a header": b"a\rForged-1: x",
        "bare LF then a header": b"a\nForged-2: x",
        "obs-fold continuation": b"a\r\n Forged-3: x",
        "CRLF percent-encoded": b"a%0d%0aForged-4:%20x",
        "a forged log line": b"a\rFORGED-5 INFO gateway.request: request request_id=admin",
        "NUL": b"a\x00FORGED-6",
        "control character": b"a\x01FORGED-7",
        "DEL": b"a\x7fFORGED-8",
        "tab": b"a\tFORGED-9",
        "space": b"a FORGED-10",
        "UTF-8": "a-é-FORGED-11".encode(),
        "latin-1": b"a-\xe9-FORGED-12",
        "unicode line separator": "a\u2028FORGED-13".encode(),
        "129 characters": b"FORGED-14-" + b"a" * 119,
        "8 KiB": b"FORGED-15-" + b"a" * 8192,
        "20 KiB (over the header limit)": b"FORGED-16-" + b"a" * 20480,
        "log4j-style lookup": b"${jndi:ldap://FORGED-17/x}",
    }


GOOD_IDS = ["good-id_1.2:3", "a" * 128, "550e8400-e29b-41d4-a716-446655440000"]


GENUINE_REQUEST_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO    gateway\.request: request "
    r"request_id=[A-Za-z0-9._:\-]+ ")


def well_formed_logs(logs: str, text: bool, marker: str = "FORGED") -> str:
    """"" when every line is a whole record the gateway wrote (JSON; or text starting with
    a timestamp, or indented under one) and ``marker`` shows up only inside a genuine
    request line; else the first line that is not."""
    for line in logs.split("\n"):
        if not line:
            continue
        if text:
            whole = TEXT_LINE.match(line) is not None or line.startswith("    ")
            if not whole or (marker in line and not GENUINE_REQUEST_LINE.match(line)):
                return line
        else:
            try:
                json.loads(line)
            except ValueError:
                return line
    return ""


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_request_id_injection_over_rest(
    process_factory: Callable[..., GatewayProcess], log_format: str
) -> None:
    """Raw HTTP/1.1 with hostile ``X-Request-ID`` values: refused by the HTTP parser (400)
    or replaced by a generated id, never echoed, never a forged header or log line; a
    well-formed id is echoed and logged."""
    from tests.reliability.security_kit import http_request, raw_http

    gw = process_factory(f"logging: {{level: info, format: {log_format}}}\n")
    body = json.dumps({"model": "mock-1", "messages": HI}).encode()
    tally = Tally(f"X-Request-ID injection over REST ({log_format} logs)")
    for case, value in injected_ids().items():
        answer = raw_http(gw.http_port, http_request("POST", "/v1/chat/completions",
                                                     [(b"X-Request-ID", value)], body))
        echoed = answer.header("x-request-id")
        problem = ""
        if any(line.lower().startswith(b"forged") for line in answer.header_lines()):
            problem += " a forged response header"
        if b"FORGED" in answer.head or b"Forged" in answer.head:
            problem += " the raw value echoed"
        if answer.status not in (200, 400, 431):
            problem += f" status {answer.status}"
        # A bare LF ends the header line for the HTTP parser: the id it saw is "a".
        seen = value.split(b"\n")[0].decode() if case.startswith("bare LF") else None
        if answer.status == 200 and not (echoed and (GENERATED_ID.fullmatch(echoed)
                                                     or echoed == seen)):
            problem += f" id {echoed!r} is neither generated nor what the parser saw"
        outcome = "refused" if answer.status in (400, 431) else "replaced"
        tally.check(f"REST {case}", outcome, outcome, problem)  # wrong when a problem
    for good in GOOD_IDS:
        answer = raw_http(gw.http_port, http_request("POST", "/v1/chat/completions",
                                                     [(b"X-Request-ID", good.encode())], body))
        tally.check(f"REST well-formed {good[:20]}", "echoed",
                    "echoed" if answer.header("x-request-id") == good else "not echoed",
                    "" if answer.status == 200 else f"status {answer.status}")
        tally.check(f"REST well-formed {good[:20]} in the body", "echoed",
                    "echoed" if json.loads(answer.body)["x_gateway"]["request_id"] == good
                    else "not echoed")
    r = httpx.post(gw.http_url + "/v1/chat/completions", json={"model": "mock-1", "messages": HI})
    assert r.status_code == 200  # still serving
    assert gw.stop() == 0
    logs = gw.logs()
    tally.check("log lines well formed", "", well_formed_logs(logs, log_format == "text"))
    tally.check("no forged marker in the logs", "0",
                str(logs.count("FORGED") + logs.count("Forged")))
    for good in GOOD_IDS:
        tally.check(f"well-formed id {good[:20]} logged", "1",
                    str(logs.count(f"request_id={good} " if log_format == "text"
                                   else f'"request_id":"{good}"')))
    tally.finish()


GRPC_CHAT = "/llmgateway.v1.GatewayService/CreateChatCompletion"


def test_request_id_injection_over_grpc(process_factory: Callable[..., GatewayProcess]) -> None:
    """gRPC metadata: what grpcio lets through (spaces, lengths, lookups) and, over a
    hand-driven HTTP/2 connection, what it does not (CR, LF, NUL, non-ASCII): refused by the
    server or replaced by a generated id; a well-formed id is echoed in the trailers; the
    text log has no forged line and the server keeps serving."""
    from tests.reliability.security_kit import raw_grpc

    gw = process_factory("logging: {level: info, format: text}\n")
    tally = Tally("X-Request-ID injection over gRPC")
    message = chat_request().SerializeToString()
    with grpc.insecure_channel(gw.grpc_target) as channel:
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        sendable = {case: value.decode() for case, value in injected_ids().items()
                    if value.isascii() and all(32 <= c < 127 for c in value)}
        assert len(sendable) >= 5, sendable
        for case, value in sendable.items():
            try:
                _, call = stub.CreateChatCompletion.with_call(
                    chat_request(), metadata=(("x-request-id", value),), timeout=20)
                echoed = dict(call.trailing_metadata())["x-request-id"]
                tally.check(f"gRPC {case}", "replaced",
                            "replaced" if GENERATED_ID.fullmatch(echoed) else f"{echoed!r}")
            except grpc.RpcError as exc:
                # Past grpc's soft metadata limit (8 KiB) calls are refused, at random up to
                # the hard limit (16 KiB), then always.
                code = exc.code().name
                refused = len(value) > 8000 and code == "RESOURCE_EXHAUSTED"
                tally.check(f"gRPC {case}", "replaced", "replaced" if refused else code)
        for good in GOOD_IDS:
            _, call = stub.CreateChatCompletion.with_call(
                chat_request(), metadata=(("x-request-id", good),), timeout=20)
            tally.check(f"gRPC well-formed {good[:20]}", good,
                        dict(call.trailing_metadata())["x-request-id"])
    for case, raw in injected_ids().items():
        answer = raw_grpc(gw.grpc_port, GRPC_CHAT, message, [(b"x-request-id", raw)])
        echoed = answer.metadata("x-request-id")
        problem = ""
        if b"FORGED" in answer.everything() or b"Forged" in answer.everything():
            problem += " the raw value echoed"
        if answer.grpc_status == 0 and not (echoed and GENERATED_ID.fullmatch(echoed)):
            problem += f" id {echoed!r} is not a generated one"
        if answer.grpc_status not in (None, 0, 3, 8) or answer.closed:
            problem += f" grpc-status {answer.grpc_status}, closed {answer.closed}"
        outcome = "replaced" if answer.grpc_status == 0 else "refused"
        tally.check(f"raw HTTP/2 {case}", outcome, outcome, problem)
    plain = raw_grpc(gw.grpc_port, GRPC_CHAT, message, [(b"x-request-id", b"raw-h2-good")])
    tally.check("raw HTTP/2 well-formed", "raw-h2-good", str(plain.metadata("x-request-id")))
    still = httpx.post(gw.http_url + "/v1/chat/completions", json={"model": "mock-1",
                                                                    "messages": HI})
    assert still.status_code == 200
    assert gw.stop() == 0
    logs = gw.logs()
    tally.check("log lines well formed", "", well_formed_logs(logs, text=True))
    tally.check("no forged marker in the logs", "0",
                str(logs.count("FORGED") + logs.count("Forged")))
    tally.finish()


def test_client_text_cannot_forge_a_log_line(
    process_factory: Callable[..., GatewayProcess]
) -> None:
    """What the request log repeats from the caller (the model name) is escaped in the text
    format, as the JSON format escapes it: a newline in it cannot start a forged line."""
    gw = process_factory("logging: {level: info, format: text}\n")
    forged = "x\n2030-01-01 00:00:00,000 INFO gateway.request: request FORGED-LINE tenant=admin"
    r = httpx.post(gw.http_url + "/v1/chat/completions",
                   json={"model": forged, "messages": HI})
    assert r.status_code == 404, r.text
    with grpc.insecure_channel(gw.grpc_target) as channel:
        code = grpc_code(channel, GATEWAY_METHODS[0], chat_request(forged.replace("\n", "\r\n")))
    assert code == "NOT_FOUND"
    assert gw.stop() == 0
    logs = gw.logs()
    assert logs.count("FORGED-LINE") == 2  # logged, but inside the request's own line
    bad = well_formed_logs(logs, text=True)
    record(section="security", name="log forging through the model name (text logs)",
           inputs=2, served=0 if bad else 2, errors={"forged lines": int(bool(bad))})
    assert not bad, f"a forged log line: {bad!r}"


# --- 4. X-Forwarded-For: honoured only from trusted proxies, read from the right -------------

FORWARDING = """
logging: {level: info, format: json}
rate_limit: {enabled: true, requests_per_second: 0.001, burst: 1}
server: {trusted_proxy_cidrs: ["127.0.0.1/32"]}
"""
_untrusted_peers = itertools.count(2)  # 127.0.0.2, .3, ...: one per test, a fresh address


class Attribution:
    """Which client address the gateway charged a request to, seen through the per-client
    limit: with ``burst: 1`` an address's second request is a 429 (gRPC:
    RESOURCE_EXHAUSTED). Direct calls come from 127.0.0.1 (the trusted proxy), ``untrusted``
    ones from ``peer`` (another loopback address), over REST or gRPC."""

    def __init__(self, gw: GatewayProcess, tally: Tally, peer: str):
        from tests.reliability.security_kit import SourceRelay

        self.tally = tally
        body = {"model": "mock-1", "messages": HI}
        self._trusted = httpx.Client(base_url=gw.http_url, timeout=20)
        self._untrusted = httpx.Client(base_url=gw.http_url, timeout=20, transport=
                                       httpx.HTTPTransport(local_address=peer))
        self._body = body
        self._relay = SourceRelay(gw.grpc_port, peer).__enter__()
        self._channels = {False: grpc.insecure_channel(gw.grpc_target),
                          True: grpc.insecure_channel(self._relay.target)}

    def close(self) -> None:
        for channel in self._channels.values():
            channel.close()
        self._relay.__exit__(None, None, None)
        self._trusted.close()
        self._untrusted.close()

    def rest(self, what: str, expected: str, *, untrusted: bool = False,
             headers: Sequence[tuple[str | bytes, str | bytes]] = (),
             path: str = "/v1/chat/completions") -> None:
        client = self._untrusted if untrusted else self._trusted
        body = self._body if path == "/v1/chat/completions" else {"model": "mock-1",
                                                                  "input": "hello"}
        r = client.post(path, json=body, headers=[(_bytes(k), _bytes(v)) for k, v in headers])
        problem = error_shape(r) if r.status_code != 200 else ""
        self.tally.check(f"REST {what}", expected, rest_status(r), problem)

    def grpc(self, what: str, expected: str, *, untrusted: bool = False,
             metadata: Sequence[tuple[str, str]] = ()) -> None:
        self.tally.check(f"gRPC {what}", expected, grpc_code(
            self._channels[untrusted], GATEWAY_METHODS[0], chat_request(), metadata=metadata))


def _bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


@pytest.fixture(scope="module")
def forwarding(module_tmp: Path) -> Iterator[GatewayProcess]:
    """One gateway for the X-Forwarded-For tests; each test uses addresses of its own."""
    gw = start_gateway(FORWARDING, module_tmp)
    yield gw
    assert gw.stop() == 0, gw.logs()


@pytest.fixture
def attribution(forwarding: GatewayProcess) -> Iterator[Attribution]:
    probe = Attribution(forwarding, Tally("X-Forwarded-For attribution"),
                        peer=f"127.0.0.{next(_untrusted_peers)}")
    yield probe
    probe.close()
    assert forwarding.proc.poll() is None


OK, LIMITED, EXHAUSTED = "200", "429", "RESOURCE_EXHAUSTED"


def test_forwarded_for_from_an_untrusted_peer_is_ignored(attribution: Attribution) -> None:
    """From 127.0.0.2 (not a trusted proxy) every client-address header is ignored over REST
    and gRPC: the request is the peer's, and the address it names is not charged."""
    a = attribution
    a.rest("the untrusted peer's first request", OK, untrusted=True)
    spoofs: list[tuple[str, str, str]] = [
        ("X-Forwarded-For", "203.0.113.10", "203.0.113.10"),
        ("X-Forwarded-For", "203.0.113.11, 127.0.0.1", "203.0.113.11"),
        ("Forwarded", "for=203.0.113.12", "203.0.113.12"),
        ("X-Real-IP", "203.0.113.13", "203.0.113.13"),
        ("X-Client-IP", "203.0.113.14", "203.0.113.14"),
    ]
    for header, value, _ in spoofs:
        a.rest(f"untrusted peer, {header}: {value}", LIMITED, untrusted=True,
               headers=[(header, value)])
    grpc_spoofs = [("x-forwarded-for", "203.0.113.15"), ("x-client-ip", "203.0.113.16"),
                   ("x-real-ip", "203.0.113.17")]
    for key, value in grpc_spoofs:
        a.grpc(f"untrusted peer, {key}: {value}", EXHAUSTED, untrusted=True,
               metadata=[(key, value)])
    a.grpc("untrusted peer, x-client-ip and x-forwarded-for", EXHAUSTED, untrusted=True,
           metadata=[("x-client-ip", "203.0.113.18"), ("x-forwarded-for", "203.0.113.18")])
    # None of the named addresses was charged: each still has its one request.
    for named in [s[2] for s in spoofs] + [v for _, v in grpc_spoofs] + ["203.0.113.18"]:
        a.rest(f"{named} through the trusted proxy, untouched", OK,
               headers=[("X-Forwarded-For", named)])
    a.tally.name = "X-Forwarded-For from an untrusted peer ignored"
    a.tally.finish()


def test_forwarded_for_from_a_trusted_proxy_is_read_from_the_right(
    attribution: Attribution,
) -> None:
    """Through the trusted proxy (127.0.0.1) the client is the rightmost address that is not
    a trusted proxy; whatever a client wrote further left is not charged; REST and gRPC
    agree on one address."""
    a = attribution
    a.rest("203.0.113.20 alone", OK, headers=[("X-Forwarded-For", "203.0.113.20")])
    a.rest("a spoofed hop left of 203.0.113.20", LIMITED,
           headers=[("X-Forwarded-For", "198.51.100.7, 203.0.113.20")])
    a.rest("the spoofed hop itself, untouched", OK,
           headers=[("X-Forwarded-For", "198.51.100.7")])
    a.rest("203.0.113.21 behind another trusted hop", OK,
           headers=[("X-Forwarded-For", "203.0.113.21, 127.0.0.1")])
    a.rest("203.0.113.21 again", LIMITED, headers=[("X-Forwarded-For", "203.0.113.21")])
    a.grpc("a spoofed hop left of 203.0.113.22", "OK",
           metadata=[("x-forwarded-for", "198.51.100.8, 203.0.113.22")])
    a.rest("203.0.113.22 over REST after gRPC", LIMITED,
           headers=[("X-Forwarded-For", "203.0.113.22")])
    a.grpc("203.0.113.22 again", EXHAUSTED, metadata=[("x-forwarded-for", "203.0.113.22")])
    a.rest("2001:db8::1 (IPv6)", OK, headers=[("X-Forwarded-For", "2001:db8::1")])
    a.grpc("2001:db8::1 again", EXHAUSTED, metadata=[("x-forwarded-for", "2001:db8::1")])
    a.tally.name = "X-Forwarded-For through a trusted proxy"
    a.tally.finish()


GARBAGE_FORWARDED: list[bytes] = [
    b",", b",,,,", b"not-an-ip", b"unknown", b"1.2.3.4, garbage", b"garbage, 1.2.3.4",
    b"999.1.1.1", b"1.2.3.4:80", b"[::1]:80", b"fe80::1%eth0", b"1.2.3.4 5.6.7.8",
    b"::ffff:127.0.0.1", b"127.0.0.1", b"0.0.0.0", b"-1.2.3.4", b"1.2.3", b"1e3.0.0.1",
    "\uff11.\uff12.\uff13.\uff14".encode(), b"\xff\xfe\xfd", b"a" * 8000,
    b"1.1.1.1," * 1500, b"${jndi:ldap://x/a}", b"<script>", b"' OR '1'='1",
]


def test_garbage_forwarded_for_never_fails_a_request(attribution: Attribution) -> None:
    """Malformed, overlong, non-ASCII and hostile ``X-Forwarded-For`` values from the
    trusted proxy: served or limited, never a 5xx, and the gateway keeps serving."""
    a = attribution
    for value in GARBAGE_FORWARDED:
        r = a._trusted.post("/v1/chat/completions", json=a._body,
                            headers=[(b"X-Forwarded-For", value)])
        a.tally.check(f"REST X-Forwarded-For {value[:30]!r}", "served or limited",
                      "served or limited" if r.status_code in (200, 429) else rest_status(r),
                      error_shape(r) if r.status_code != 200 else "")
    for value in GARBAGE_FORWARDED:
        if not value.isascii() or len(value) > 8000:
            continue
        code = grpc_code(a._channels[False], GATEWAY_METHODS[0], chat_request(),
                         metadata=[("x-forwarded-for", value.decode())])
        a.tally.check(f"gRPC x-forwarded-for {value[:30]!r}", "served or limited",
                      "served or limited" if code in ("OK", EXHAUSTED) else code)
    a.rest("a fresh client afterwards", OK, headers=[("X-Forwarded-For", "203.0.113.99")])
    a.tally.name = "X-Forwarded-For garbage"
    a.tally.finish()


def test_repeated_forwarded_for_lines_are_read_as_one_list(attribution: Attribution) -> None:
    """A proxy that appends its own ``X-Forwarded-For`` line (HAProxy's ``option forwardfor``)
    after the client's: the lines are one list (RFC 9110, 5.3), so the client is the
    rightmost address, not whatever the client wrote in the first line, on every route."""
    a = attribution
    for i, path in enumerate(("/v1/chat/completions", "/v1/responses")):
        real, spoofed = f"203.0.113.{40 + i}", f"198.51.100.{40 + i}"
        a.rest(f"{path}: the real client", OK, path=path,
               headers=[("X-Forwarded-For", real)])
        a.rest(f"{path}: a spoofed first line, the proxy's line after it", LIMITED, path=path,
               headers=[("X-Forwarded-For", spoofed), ("X-Forwarded-For", real)])
    a.tally.name = "X-Forwarded-For in repeated header lines"
    a.tally.finish()


def test_a_grpc_client_on_the_loopback_cannot_name_its_own_address(
    gateway_factory: Callable[..., InProcessGateway],
) -> None:
    """No trusted proxies: a gRPC client connecting over the loopback (as every client does
    behind a sidecar proxy) is its peer address, whatever ``x-client-ip`` it sends."""
    gw = gateway_factory(FORWARDING.replace('["127.0.0.1/32"]', "[]"))
    tally = Tally("x-client-ip from a loopback gRPC client")
    with grpc.insecure_channel(gw.grpc_target) as channel:
        for i, expected in enumerate(("OK", EXHAUSTED, EXHAUSTED)):
            tally.check(f"gRPC x-client-ip 203.0.113.{50 + i}", expected, grpc_code(
                channel, GATEWAY_METHODS[0], chat_request(),
                metadata=[("x-client-ip", f"203.0.113.{50 + i}")]))
    tally.finish()
