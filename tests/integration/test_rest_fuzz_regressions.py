"""Defects the REST fuzzer (tests/fuzz/test_rest_fuzz.py) found, reproduced against a
real gateway: each was a 500 and is now a clear 4xx, with the process still serving."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import GatewayProcess

GOOD = {"model": "mock-1", "messages": [{"role": "user", "content": "still here?"}]}


@pytest.mark.parametrize(("header", "status"), [
    ("X-Provider", 400), ("X-Skip-Cache", 400), ("Authorization", 401), ("X-Api-Key", 401),
])
@pytest.mark.parametrize("value", ["caf\u00e9", "a\x7fb", "\u00ff"])
def test_headers_grpc_cannot_carry_are_a_4xx(gateway: GatewayProcess, header: str,
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
