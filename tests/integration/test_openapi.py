"""GET /openapi.json: a valid OpenAPI 3.1 document, listing exactly the routes the
facade serves, whose schemas describe the answers the gateway really gives."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from gateway.facade.app import MAX_TIMEOUT, create_app
from gateway.facade.openapi import openapi_document
from gateway.lifecycle import DrainState
from tests.conftest import RunningGateway

METHODS = {"get", "post", "put", "delete", "patch"}
# A value for each path parameter; model ids may hold '/'.
SAMPLES = {"model_id": "mock/echo", "response_id": "resp_nothing", "tenant_id": "ten_nothing",
           "key_id": "key_nothing", "provider": "mock"}
GOOD = {"model": "mock-1", "messages": [{"role": "user", "content": "describe me"}]}


def _operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in METHODS}


def _template(rule: str) -> str:
    """A Werkzeug rule as an OpenAPI path template: ``<path:model_id>`` -> ``{model_id}``."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule)


def _schema_validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` that resolves the document's refs."""
    return Draft202012Validator({**document, "$ref": f"#/components/schemas/{name}"})


@pytest.fixture(scope="module")
def document(gateway: RunningGateway) -> Iterator[dict[str, Any]]:
    r = httpx.get(gateway.http_url + "/openapi.json", timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    yield r.json()


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)  # raises with the offending path when it is not
    for name in document["components"]["schemas"]:  # each schema is valid JSON Schema
        Draft202012Validator.check_schema(document["components"]["schemas"][name])


def test_the_served_document_is_the_built_one(gateway: RunningGateway,
                                              document: dict[str, Any]) -> None:
    # The module's gateway sets a 64 KiB body limit: the document says so.
    built = openapi_document(metrics_path="/metrics", max_body=65536, max_timeout=MAX_TIMEOUT)
    assert document == built
    assert "65536 bytes" in document["components"]["responses"]["Error413"]["description"]


async def test_every_route_served_is_listed_and_every_listed_route_is_served() -> None:
    channel = grpc.aio.insecure_channel("127.0.0.1:1")  # never called: only routes are read
    try:
        app = create_app(channel, max_body=1 << 20, drain=DrainState())
        served = {(method, _template(rule.rule)) for rule in app.url_map.iter_rules()
                  for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
        client = app.test_client()
        response = await client.get("/openapi.json")
        listed = _operations(await response.get_json())
    finally:
        await channel.close()
    assert served == listed, (f"served, not listed: {sorted(served - listed)}; "
                              f"listed, not served: {sorted(listed - served)}")
    assert ("GET", "/v1/models/{model_id}") in listed and ("POST", "/v1/responses") in listed


def test_every_listed_operation_is_routed_by_the_running_gateway(
        gateway: RunningGateway, document: dict[str, Any]) -> None:
    operations = sorted(_operations(document))
    assert len(operations) >= 25
    for method, path in operations:
        url = gateway.http_url + path.format(**SAMPLES)
        body = {} if method in ("POST", "PUT") else None
        r = httpx.request(method, url, json=body, timeout=10)
        assert r.status_code != 405, (method, path, r.text)
        if r.status_code == 404:  # the API's own 404 (unknown resource), never the router's
            assert r.json()["error"]["message"] != "Unknown path.", (method, path)
    # Proof that the check above can see an unrouted path:
    r = httpx.get(gateway.http_url + "/v1/nowhere", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["message"] == "Unknown path."


def test_answers_match_their_documented_schemas(gateway: RunningGateway,
                                                document: dict[str, Any]) -> None:
    url = gateway.http_url

    def check(name: str, r: httpx.Response, status: int) -> dict[str, Any]:
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        errors = sorted(_schema_validator(document, name).iter_errors(body), key=str)
        assert not errors, f"{name}: {[e.message for e in errors]}"
        return body

    _schema_validator(document, "ChatCompletionRequest").validate(GOOD)
    check("ChatCompletion", httpx.post(url + "/v1/chat/completions", json=GOOD, timeout=10), 200)
    check("Embeddings", httpx.post(url + "/v1/embeddings", timeout=10,
                                   json={"model": "mock-1", "input": ["a", "b"]}), 200)
    models = check("ModelList", httpx.get(url + "/v1/models", timeout=10), 200)
    assert any("/" in m["id"] for m in models["data"])
    check("Model", httpx.get(url + "/v1/models/mock/echo", timeout=10), 200)
    created = check("Response", httpx.post(url + "/v1/responses", timeout=10,
                                           json={"model": "mock-1", "input": "hi"}), 200)
    check("Response", httpx.get(f"{url}/v1/responses/{created['id']}", timeout=10), 200)
    check("DeletedResponse", httpx.delete(f"{url}/v1/responses/{created['id']}", timeout=10),
          200)
    check("Live", httpx.get(url + "/health", timeout=10), 200)
    check("Readiness", httpx.get(url + "/ready", timeout=10), 200)
    # Errors, in OpenAI's shape, with the statuses the document lists.
    check("Error", httpx.post(url + "/v1/chat/completions", json={"model": "mock-1"},
                              timeout=10), 400)
    check("Error", httpx.get(url + "/v1/usage", timeout=10), 401)  # no key: no tenant
    check("Error", httpx.get(url + "/admin/system", timeout=10), 401)
    check("Error", httpx.post(url + "/v1/chat/completions", timeout=10,
                              json={**GOOD, "model": "gpt-17-ultra"}), 404)
    # The document refuses what the translators refuse, and the gateway agrees.
    bad = {**GOOD, "temperature": 3}
    assert not _schema_validator(document, "ChatCompletionRequest").is_valid(bad)
    check("Error", httpx.post(url + "/v1/chat/completions", json=bad, timeout=10), 400)


def test_documented_stream_events_are_the_ones_sent(document: dict[str, Any]) -> None:
    from gateway.facade import responses

    event = document["components"]["schemas"]["ResponseStreamEvent"]["properties"]["event"]
    assert set(event["enum"]) == set(responses._EVENTS.values())
