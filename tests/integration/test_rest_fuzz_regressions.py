"""Defects the REST fuzzer (tests/fuzz/test_rest_fuzz.py) found, reproduced against a
real gateway: each was a 500 and is now a clear 4xx, with the process still serving."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RunningGateway, openai_gateway_config
from tests.fakes.openai import FakeOpenAI
from tests.inprocess import start_in_process

ADMIN = "adm-rest-regressions"
GOOD = {"model": "mock-1", "messages": [{"role": "user", "content": "still here?"}]}


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI) -> Iterator[RunningGateway]:
    """conftest's gateway (providers `upstream`, the fake OpenAI, and `mock`) with an
    admin key, so that admin bodies get parsed."""
    gw = start_in_process(openai_gateway_config(fake_openai), env={
        "FAKE_OPENAI_KEY": FakeOpenAI.api_key, "GATEWAY_ADMIN_KEY": ADMIN})
    yield gw
    assert gw.stop() == 0, gw.logs()


@pytest.mark.parametrize(("header", "status"), [
    ("X-Provider", 400), ("X-Skip-Cache", 400), ("Authorization", 401), ("X-Api-Key", 401),
])
@pytest.mark.parametrize("value", ["caf\u00e9", "a\x7fb", "\u00ff"])
def test_headers_grpc_cannot_carry_are_a_4xx(gateway: RunningGateway, header: str,
                                             status: int, value: str) -> None:
    # Was: the gRPC call refused the metadata value (ExecuteBatchError), a 500 on every route.
    raw = value.encode("latin-1")
    for method, path, body in (("GET", "/v1/models/mock-1", None),
                               ("POST", "/v1/chat/completions", GOOD),
                               ("GET", "/admin/system", None)):
        r = httpx.request(method, gateway.http_url + path, json=body, timeout=10,
                          headers=[(header.encode(), raw)])
        assert r.status_code == status, r.text
        assert r.json()["error"]["param"] == header
    r = httpx.post(gateway.http_url + "/v1/chat/completions", json=GOOD, timeout=10)
    assert r.status_code == 200


def test_openapi_and_the_admin_api_agree_on_the_longest_key_lifetime() -> None:
    from gateway.facade.openapi import MAX_KEY_TTL as documented
    from gateway.service.admin_servicer import MAX_KEY_TTL as enforced

    assert documented == enforced


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


def _post(gateway: RunningGateway, path: str, body: str) -> httpx.Response:
    return httpx.post(gateway.http_url + path, content=body.encode(), timeout=10,
                      headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("model", ["mock-1", "gpt-4o-mini"])
@pytest.mark.parametrize(("template", "param"), [
    ('{"model":"%s","input":"x","tools":[{"type":"function","name":"f","parameters":NEST}]}',
     "tools[0].parameters"),
    ('{"model":"%s","input":"x","text":{"format":{"type":"json_schema","name":"n",'
     '"schema":NEST}}}', "text.format.schema"),
    ('{"model":"%s","input":"x","passed_on":NEST}', "extra"),
], ids=["tool", "schema", "passed-on"])
def test_responses_json_nested_too_deeply_is_400(gateway: RunningGateway, model: str,
                                                 template: str, param: str) -> None:
    # Was a 500: JSON nested past the 254 levels orjson writes failed in the facade, and
    # 254 itself failed writing the answer that echoes the tool (3 levels deeper).
    ok = _post(gateway, "/v1/responses", (template % model).replace("NEST", _nested(100)))
    assert ok.status_code == 200, ok.text
    for depth in (129, 254, 300):
        r = _post(gateway, "/v1/responses", (template % model).replace("NEST", _nested(depth)))
        assert r.status_code == 400, (depth, r.text)
        assert "deep" in r.json()["error"]["message"]


_CHAT = ('{"model":"%s","messages":[{"role":"user","content":"x"}],'
         '"tools":[{"type":"function","function":{"name":"f","parameters":NEST}}]}')


@pytest.mark.parametrize("model", ["mock-1", "gpt-4o-mini"])
def test_chat_json_nested_past_the_bound_is_400(gateway: RunningGateway, model: str) -> None:
    # Was a 500 with the OpenAI upstream: the core took JSON up to the parser's 1024
    # levels, then could not write the upstream body (orjson writes 254).
    assert _post(gateway, "/v1/chat/completions",
                 (_CHAT % model).replace("NEST", _nested(100))).status_code == 200
    for depth in (129, 250):
        r = _post(gateway, "/v1/chat/completions", (_CHAT % model).replace("NEST", _nested(depth)))
        assert r.status_code == 400, (depth, r.text)
        assert r.json()["error"]["param"] == "tools[0].function.parameters"


def test_chat_json_nested_past_what_can_be_written_is_400(gateway: RunningGateway) -> None:
    r = _post(gateway, "/v1/chat/completions", (_CHAT % "mock-1").replace("NEST", _nested(300)))
    assert r.status_code == 400, r.text


def test_admin_bodies_nested_deeply_are_400(gateway: RunningGateway) -> None:
    # Was a 500: json_format.ParseDict (and the message of its ParseError) recursed into
    # the value until RecursionError.
    headers = {"Authorization": f"Bearer {ADMIN}"}
    for body in ('{"name":"n","limits":' + "[" * 1000 + "]" * 1000 + "}",
                 '{"name":"n","allowed_models":' + _nested(1000) + "}"):
        r = httpx.post(gateway.http_url + "/admin/tenants", content=body.encode(), timeout=10,
                       headers={**headers, "Content-Type": "application/json"})
        assert r.status_code == 400, r.text
        assert "nested too deeply" in r.json()["error"]["message"]
