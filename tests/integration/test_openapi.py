"""GET /openapi.json: a valid OpenAPI 3.1 document, listing exactly the routes the
facade serves, whose schemas describe the answers the gateway really gives."""

from __future__ import annotations

import json
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


def _answer_validator(document: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator for the JSON of ``#/components/responses/<name>``."""
    return Draft202012Validator({**document, "$ref": f"#/components/responses/{name}"
                                 "/content/application~1json/schema"})


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


# --- Anthropic's Messages API --------------------------------------------------------------

MESSAGES = {"/v1/messages": "createMessage", "/v1/messages/count_tokens": "countMessageTokens"}
CLAUDE = {"model": "mock-1", "max_tokens": 16,
          "messages": [{"role": "user", "content": "describe me"}]}
# (body, accepted): the Messages API's edges, as gateway/messages_json.py reads them.
_TURN = [{"role": "user", "content": "hi"}]
MESSAGES_BODIES: list[tuple[dict[str, Any], bool]] = [
    (CLAUDE, True),
    ({**CLAUDE, "future_field": {"a": [1]}, "stream": False, "system": [],
      "stop_sequences": [], "temperature": 7, "top_p": -1.5, "top_k": 0,
      "metadata": {"user_id": None, "other": 1}, "tools": [],
      "thinking": {"type": "disabled"}, "tool_choice": {"type": "none", "name": 3}}, True),
    ({**CLAUDE, "system": "be brief"}, True),
    ({**CLAUDE, "system": [{"type": "text", "text": "x", "cache_control": None,
                            "citations": []}]}, True),
    ({**CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}},
        {"type": "document", "source": {"type": "content", "content": [{"a": 1}]},
         "title": "t"},
        {"type": "tool_result", "tool_use_id": "t", "is_error": True, "content": [
            {"type": "text", "text": "y"}, {"type": "search_result", "n": 1}]},
        {"type": "server_tool_use", "id": 5},
        ]}, {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": ""},
        {"type": "redacted_thinking", "data": "ZQ=="},
        {"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}, True),
    ({**CLAUDE, "tools": [{"name": "f", "input_schema": {"type": "object"}},
                          {"name": "g", "type": None, "input_schema": {}},
                          {"name": "web", "type": "web_search_20250305", "max_uses": 3}],
      "tool_choice": {"type": "tool", "name": "f", "disable_parallel_tool_use": True}}, True),
    ({**CLAUDE, "thinking": {"type": "enabled", "budget_tokens": 1024}}, True),
    ({**CLAUDE, "max_tokens": 2**31 - 1, "top_k": 2**31 - 1}, True),
    ({**CLAUDE, "model": ""}, False),
    ({k: v for k, v in CLAUDE.items() if k != "max_tokens"}, False),
    ({**CLAUDE, "max_tokens": 0}, False),
    ({**CLAUDE, "max_tokens": 2**31}, False),
    ({**CLAUDE, "max_tokens": None}, False),
    ({**CLAUDE, "max_tokens": True}, False),
    ({**CLAUDE, "stream": "yes"}, False),
    ({**CLAUDE, "temperature": "0.5"}, False),
    ({**CLAUDE, "top_k": -1}, False),
    ({**CLAUDE, "stop_sequences": ["a", 1]}, False),
    ({**CLAUDE, "metadata": {"user_id": 5}}, False),
    ({**CLAUDE, "system": [{"type": "image", "source": {"type": "url"}}]}, False),
    ({**CLAUDE, "system": 5}, False),
    ({**CLAUDE, "messages": [{"role": "system", "content": "x"}]}, False),
    ({**CLAUDE, "messages": [{"role": "user"}]}, False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [{"text": "no type"}]}]}, False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [{"type": "text", "text": "x",
                                                          "cache_control": {"ttl": "5m"}}]}]},
     False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [{"type": "image"}]}]}, False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": []}]}]}, False),
    ({**CLAUDE, "messages": [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text"}]}]}]}, False),
    ({**CLAUDE, "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hmm"}]}]}, False),
    ({**CLAUDE, "tools": [{"name": "f"}]}, False),
    ({**CLAUDE, "tools": [{"name": "f", "type": "custom", "input_schema": "x"}]}, False),
    ({**CLAUDE, "tool_choice": {"type": "tool"}}, False),
    ({**CLAUDE, "tool_choice": {"type": "sometimes"}}, False),
    ({**CLAUDE, "thinking": {"type": "enabled", "budget_tokens": 1023}}, False),
    ({**CLAUDE, "thinking": {"type": "enabled"}}, False),
    ({**CLAUDE, "thinking": {"budget_tokens": 2048}}, False),
]


def test_the_messages_operations_are_documented_with_anthropic_errors(
        document: dict[str, Any]) -> None:
    from gateway.facade.anthropic import error_type
    from gateway.facade.errors import ApiError

    assert {"name": "anthropic"} in document["tags"]
    responses = document["components"]["responses"]
    for path, op_id in MESSAGES.items():
        operation = document["paths"][path]["post"]
        assert (operation["operationId"], operation["tags"]) == (op_id, ["anthropic"])
        assert {"anthropic-version", "anthropic-beta", "beta"} <= {
            p["$ref"].rsplit("/", 1)[1] for p in operation["parameters"]}
        errors = {int(s): a["$ref"].rsplit("/", 1)[1]
                  for s, a in operation["responses"].items() if int(s) >= 400}
        # Every error in Anthropic's shape, but the header limit's, refused before routing.
        assert errors.pop(431) == "Error431"
        assert {400, 401, 404, 413, 429, 502, 503, 504, 529} <= set(errors)
        for status, name in errors.items():
            assert name == f"AnthropicError{status}", (path, status)
            kind = responses[name]["content"]["application/json"]["schema"]["allOf"][1][
                "properties"]["error"]["properties"]["type"]["const"]
            assert kind == error_type(ApiError(status, ""))[1], (path, status)
            body = {"type": "error", "error": {"type": kind, "message": "m"},
                    "request_id": "r"}
            assert _answer_validator(document, name).is_valid(body)
            assert not _answer_validator(document, "Error400").is_valid(body)  # not OpenAI's
    assert "65536 bytes" in responses["AnthropicError413"]["description"]
    create = document["paths"]["/v1/messages"]["post"]
    assert set(create["responses"]["200"]["content"]) == {"application/json",
                                                          "text/event-stream"}


def _reads(body: dict[str, Any], *, count_tokens: bool = False) -> bool:
    from gateway import messages_json

    try:
        messages_json.request_from_json(body, count_tokens=count_tokens)
    except messages_json.MessagesJsonError:
        return False
    return True


@pytest.mark.parametrize(("body", "accepted"), MESSAGES_BODIES)
def test_the_document_refuses_what_the_messages_validation_refuses(
        document: dict[str, Any], body: dict[str, Any], accepted: bool) -> None:
    assert _reads(body) == accepted  # the table is right about the validation
    assert _schema_validator(document, "MessagesRequest").is_valid(body) == accepted
    assert _schema_validator(document, "CountMessageTokensRequest").is_valid(body) == (
        _reads(body, count_tokens=True))


def test_messages_answers_match_their_documented_schemas(gateway: RunningGateway,
                                                         document: dict[str, Any]) -> None:
    url = gateway.http_url

    def check(name: str, r: httpx.Response, status: int, *,
              answer: bool = False) -> dict[str, Any]:
        assert r.status_code == status, r.text
        body: dict[str, Any] = r.json()
        validator = (_answer_validator if answer else _schema_validator)(document, name)
        errors = sorted(validator.iter_errors(body), key=str)
        assert not errors, f"{name}: {[e.message for e in errors]}"
        return body

    message = check("Message", httpx.post(url + "/v1/messages?beta=true", json=CLAUDE,
                                          timeout=10), 200)
    assert message["content"][0]["type"] == "text"
    counted = httpx.post(url + "/v1/messages/count_tokens", json=CLAUDE, timeout=10)
    check("MessageTokenCount", counted, 200)
    assert counted.headers["x-gateway-token-count"] == "estimated"
    assert counted.headers["request-id"] == counted.headers["X-Request-ID"]
    streamed = httpx.post(url + "/v1/messages", json={**CLAUDE, "stream": True}, timeout=10)
    assert streamed.headers["content-type"].startswith("text/event-stream")
    event = _schema_validator(document, "MessageStreamEvent")
    names = document["components"]["schemas"]["MessageStreamEvent"]["properties"]["event"][
        "examples"]
    for block in streamed.text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        event.validate(fields)
        assert fields["event"] in names and json.loads(fields["data"])["type"] == fields["event"]
    # Errors, in Anthropic's shape, with the statuses the document lists.
    for path in MESSAGES:
        check("AnthropicError400", httpx.post(url + path, content=b"{not json", timeout=10),
              400, answer=True)
        check("AnthropicError400", httpx.post(url + path, json={**CLAUDE, "messages": []},
                                              timeout=10), 400, answer=True)
        bad = check("AnthropicError400", httpx.post(url + path, json={**CLAUDE, "top_k": -1},
                                                    timeout=10), 400, answer=True)
        assert bad["error"]["message"].startswith("top_k:")
        check("AnthropicError404", httpx.post(url + path, json={**CLAUDE, "model": "no-such"},
                                              timeout=10), 404, answer=True)
    assert not _schema_validator(document, "MessagesRequest").is_valid({**CLAUDE,
                                                                        "messages": []})


def test_documented_message_events_are_the_ones_modelled(document: dict[str, Any]) -> None:
    from llmgateway.v1 import messages_pb2

    event = document["components"]["schemas"]["MessageStreamEvent"]["properties"]["event"]
    oneof = messages_pb2.MessageStreamEvent.DESCRIPTOR.oneofs_by_name["event"]
    assert set(event["examples"]) == {f.name for f in oneof.fields} - {"other_json"}
