"""The facade's OpenAPI 3.1 description, built in code from what the routes and the
translators (``translate.py``, ``responses.py``, ``admin.py``, ``anthropic.py`` over
``gateway/messages_json.py``) accept and return.

Served at ``GET /openapi.json``. The bounds written here are the ones the
translators enforce; ``tests/integration/test_openapi.py`` checks that every
route listed is served and every route served is listed, and the REST fuzzer
checks answers against it.

Example::

    document = openapi_document(metrics_path="/metrics", max_body=10 << 20,
                                max_timeout=3600.0)
    assert document["paths"]["/v1/chat/completions"]["post"]
"""

from __future__ import annotations

from typing import Any

from gateway import __version__
from gateway.facade._openapi_schemas import (
    MAX_KEY_TTL,
    NONEMPTY,
    OBJ,
    STR,
    TIMESTAMP,
    Schema,
    admin_schemas,
    answer_schemas,
    arr,
    chat_schemas,
    const,
    enum,
    integer,
    messages_schemas,
    ref,
    responses_schemas,
)
from gateway.facade.anthropic import error_type
from gateway.facade.errors import ApiError

__all__ = ["MAX_KEY_TTL", "openapi_document"]


# --- headers, parameters, answers by status -------------------------------------------------

_HEADERS: dict[str, Schema] = {
    "X-Request-ID": {"description": "The request's id: the client's own when it is 1-128 "
                     "characters of [A-Za-z0-9._:-], else a new one.", "schema": STR},
    "X-RateLimit-Limit": {"description": "The caller's request limit (when limits apply).",
                          "schema": STR},
    "X-RateLimit-Remaining": {"description": "Requests left in the window.", "schema": STR},
    "X-RateLimit-Reset": {"description": "Seconds until the window resets.", "schema": STR},
    "Retry-After": {"description": "Whole seconds to wait before retrying.", "schema": STR},
    "X-Cache": {"description": "HIT or MISS, when the response cache is on.",
                "schema": enum("HIT", "MISS")},
    "request-id": {"description": "Anthropic's name for the request's id (the same as "
                   "X-Request-ID).", "schema": STR},
    "x-gateway-token-count": {"description": "`estimated` when the model's upstream cannot "
                              "count, and the gateway estimated the count.",
                              "schema": const("estimated")},
}
_LIMITS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
_STATUS_TEXT = {
    400: "Invalid request: malformed JSON, bad UTF-8, a wrong field (named in `param`).",
    401: "No valid API key, JWT or admin key.",
    402: "The tenant's monthly budget is spent.",
    403: "The caller may not do this (a model it is not allowed, a non-admin on /admin).",
    404: "Unknown model (`model_not_found`), response, tenant, key or path.",
    408: "The request body did not arrive within `server.body_timeout`.",
    409: "The resource already exists.",
    413: "The body is over `server.max_request_body_size`.",
    429: "A rate limit or quota was hit, here or upstream.",
    431: "The request line and headers are over `server.max_header_size`.",
    502: "The upstream provider failed (`error.provider` names it).",
    503: "The core is unavailable, draining, or every route's breaker is open.",
    504: "The client's timeout or the model's timeout passed.",
}
_PARAMS: dict[str, Schema] = {
    "X-Request-ID": {"name": "X-Request-ID", "in": "header", "schema": STR,
                     "description": "Correlates logs and traces; echoed."},
    "X-Provider": {"name": "X-Provider", "in": "header", "schema": STR,
                   "description": "Pins the request to one configured provider."},
    "X-Request-Timeout": {"name": "X-Request-Timeout", "in": "header",
                          "schema": {"type": "string", "pattern": r"^[1-9][0-9]{0,2}(\.[0-9]+)?$"},
                          "description": "Seconds: any number in (0, max] (the pattern shows "
                          "common values); bounds the whole call. The SDKs' "
                          "X-Stainless-Timeout is read the same way."},
    "X-Hedge-After": {"name": "X-Hedge-After", "in": "header",
                      "schema": {"type": "string", "pattern": r"^[0-9]{1,3}(ms|s)$"},
                      "description": "Hedge after this long without an answer (`500ms`, `2s`; "
                      "`0s` turns a model's hedging off); at most 10 minutes."},
    "X-Skip-Cache": {"name": "X-Skip-Cache", "in": "header", "schema": STR,
                     "description": "Any value but empty, 0, false or no bypasses the cache."},
    "anthropic-version": {"name": "anthropic-version", "in": "header", "schema": STR,
                          "description": "Anthropic's API version (`2023-06-01`), passed to "
                          "Anthropic-family upstreams; absent: the provider's default."},
    "anthropic-beta": {"name": "anthropic-beta", "in": "header", "schema": STR,
                       "description": "Comma-separated beta flags, passed to "
                       "Anthropic-family upstreams."},
    "beta": {"name": "beta", "in": "query", "required": False, "schema": STR,
             "description": "`true` from the SDKs' beta namespace: accepted and ignored."},
}
# The Messages API's answers by status (Anthropic's error shape, its type by status).
_ANTHROPIC_STATUS_TEXT = {
    400: "Invalid request: malformed JSON, a wrong field (named in the message), or one the "
    "model's upstream cannot be sent.",
    401: "No valid API key (`x-api-key` or `Authorization: Bearer`) or JWT.",
    402: "The tenant's monthly budget is spent.",
    403: "The caller may not use this model.",
    404: "Unknown model.",
    408: "The request body did not arrive within `server.body_timeout`.",
    413: "The body is over `server.max_request_body_size`.",
    429: "A rate limit or quota was hit, here or upstream.",
    502: "The upstream provider failed.",
    503: "The core is unavailable, draining, or every route's breaker is open.",
    504: "The client's timeout or the model's timeout passed.",
    529: "The upstream is overloaded.",
}


def _header_refs(*names: str, request_id: bool = True) -> dict[str, Schema]:
    picked = (("X-Request-ID",) if request_id else ()) + names
    return {n: {"$ref": f"#/components/headers/{n}"} for n in picked}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def _anthropic_errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/AnthropicError{s}"} for s in statuses}


def _json_answer(schema: Schema, description: str, **more: Any) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **more}


def _error_responses() -> dict[str, Schema]:
    out = {}
    for status, text in _STATUS_TEXT.items():
        headers = _header_refs(*(("Retry-After", *_LIMITS) if status == 429 else
                                 ("Retry-After",) if status == 503 else ()))
        out[f"Error{status}"] = _json_answer(ref("Error"), text, headers=headers)
    for status, text in _ANTHROPIC_STATUS_TEXT.items():
        kind = error_type(ApiError(status, text))[1]
        headers = _header_refs("request-id", *(("Retry-After", *_LIMITS) if status == 429 else
                                               ("Retry-After",) if status in (503, 529) else
                                               ()))
        schema = {"allOf": [ref("AnthropicError"), {"properties": {"error": {
            "properties": {"type": const(kind)}}}}]}
        out[f"AnthropicError{status}"] = _json_answer(schema, f"{text} (`{kind}`)",
                                                      headers=headers)
    return out


# --- paths ----------------------------------------------------------------------------------

_INFERENCE_ERRORS = (400, 401, 402, 403, 404, 408, 413, 429, 431, 502, 503, 504)
# The Messages API's, in Anthropic's shape; 431 comes before any route, in OpenAI's.
_MESSAGES_ERRORS = (400, 401, 402, 403, 404, 408, 413, 429, 502, 503, 504, 529)
_READ_ERRORS = (400, 401, 403, 404, 429, 431, 503)
_ADMIN_ERRORS = (400, 401, 403, 404, 409, 429, 431, 503)
_PUBLIC: list[dict[str, list[str]]] = []  # no security requirement


def _op(op_id: str, summary: str, tag: str, answers: dict[str, Schema], *,
        body: str | None = None, body_required: bool = True,
        params: tuple[Schema, ...] = (), public: bool = False) -> Schema:
    out: Schema = {"operationId": op_id, "summary": summary, "tags": [tag],
                   "responses": answers}
    if params:
        out["parameters"] = list(params)
    if body is not None:
        out["requestBody"] = {"required": body_required, "content": {
            "application/json": {"schema": ref(body)}}}
    if public:
        out["security"] = _PUBLIC
        answers.update(_errors(431))  # the header limit holds everywhere
    return out


def _path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": NONEMPTY,
            "description": description}


def _query_param(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _header_params(*names: str) -> tuple[Schema, ...]:
    return tuple({"$ref": f"#/components/parameters/{n}"} for n in ("X-Request-ID", *names))


def _ok(schema: str, description: str, status: str = "200", *, limited: bool = False,
        cache: bool = False, sse: str | None = None, headers: tuple[str, ...] = (),
        links: dict[str, Schema] | None = None) -> dict[str, Schema]:
    answer = _json_answer(ref(schema), description, headers=_header_refs(
        *headers, *(_LIMITS if limited else ()), *(("X-Cache",) if cache else ())))
    if sse is not None:
        answer["content"]["text/event-stream"] = {"schema": ref(sse)}  # one event's schema
    if links:
        answer["links"] = links
    return {status: answer}


def _links(param: str, expression: str, *op_ids: str) -> dict[str, Schema]:
    return {op_id[0].upper() + op_id[1:]: {"operationId": op_id,
                                           "parameters": {param: expression}}
            for op_id in op_ids}


def _inference_paths() -> dict[str, Schema]:
    infer = _header_params("X-Provider", "X-Request-Timeout", "X-Skip-Cache", "X-Hedge-After")
    read = _header_params()
    response_id = _path_param("response_id", "A `resp_...` id.")
    return {
        "/v1/chat/completions": {"post": _op(
            "createChatCompletion", "A chat completion; `stream: true` answers with SSE "
            "(`data: {chunk}` ... `data: [DONE]`).", "inference",
            {**_ok("ChatCompletion", "The completion, or its chunks as server-sent events.",
                   limited=True, cache=True, sse="ChatStreamEvent"),
             **_errors(*_INFERENCE_ERRORS)},
            body="ChatCompletionRequest", params=infer)},
        "/v1/embeddings": {"post": _op(
            "createEmbeddings", "Embeddings of a string or a list of strings.", "inference",
            {**_ok("Embeddings", "The vectors.", limited=True),
             **_errors(*_INFERENCE_ERRORS)}, body="EmbeddingsRequest", params=infer)},
        "/v1/models": {"get": _op(
            "listModels", "Every routable model, aliases included.", "models",
            {**_ok("ModelList", "The models.", links=_links(
                "model_id", "$response.body#/data/0/id", "getModel")),
             **_errors(*_READ_ERRORS)}, params=read)},
        "/v1/models/{model_id}": {"get": _op(
            "getModel", "One model by id; ids may contain '/' (`provider/model`).", "models",
            {**_ok("Model", "The model."), **_errors(*_READ_ERRORS)},
            params=(_path_param("model_id", "An alias or `provider/model`."), *read))},
        "/v1/responses": {"post": _op(
            "createResponse", "A Responses API response; `stream: true` answers with the "
            "API's named SSE events.", "responses",
            {**_ok("Response", "The response, or its events.", limited=True,
                   sse="ResponseStreamEvent", links=_links(
                       "response_id", "$response.body#/id", "getResponse", "deleteResponse")),
             **_errors(*_INFERENCE_ERRORS)}, body="CreateResponseRequest", params=infer)},
        "/v1/responses/{response_id}": {
            "get": _op("getResponse", "A stored response (its creator only).", "responses",
                       {**_ok("Response", "The response."), **_errors(*_READ_ERRORS)},
                       params=(response_id, *read)),
            "delete": _op("deleteResponse", "Delete a stored response.", "responses",
                          {**_ok("DeletedResponse", "Deleted."), **_errors(*_READ_ERRORS)},
                          params=(response_id, *read)),
        },
        "/v1/usage": {"get": _op(
            "getUsage",
            "The caller's usage and cost this period, against each budget that applies.",
            "usage",
            {**_ok("UsageReport", "The usage."), **_errors(*_READ_ERRORS)}, params=read)},
    }


def _messages_paths() -> dict[str, Schema]:
    """Anthropic's Messages API: its bodies, answers and errors in Anthropic's shape."""
    anthropic = tuple({"$ref": f"#/components/parameters/{n}"}
                      for n in ("anthropic-version", "anthropic-beta", "beta"))
    errors = {**_anthropic_errors(*_MESSAGES_ERRORS), **_errors(431)}
    return {
        "/v1/messages": {"post": _op(
            "createMessage", "An Anthropic Messages API `message`; `stream: true` answers "
            "with the API's named SSE events.", "anthropic",
            {**_ok("Message", "The message, or its events as server-sent events (a failure "
                   "after the first ends the stream with an `error` event).",
                   headers=("request-id",), limited=True, cache=True,
                   sse="MessageStreamEvent"), **errors},
            body="MessagesRequest", params=(*_header_params(
                "X-Provider", "X-Request-Timeout", "X-Skip-Cache", "X-Hedge-After"),
                *anthropic))},
        "/v1/messages/count_tokens": {"post": _op(
            "countMessageTokens", "The input tokens a Messages request would use: the "
            "upstream's own count, or the gateway's estimate (`x-gateway-token-count: "
            "estimated`) for models whose upstream cannot count.", "anthropic",
            {**_ok("MessageTokenCount", "The count.", limited=True,
                   headers=("request-id", "x-gateway-token-count")), **errors},
            body="CountMessageTokensRequest",
            params=(*_header_params("X-Provider", "X-Request-Timeout", "X-Hedge-After"),
                    *anthropic))},
    }


def _admin_paths() -> dict[str, Schema]:
    read = _header_params()
    tenant_id = _path_param("tenant_id", "A `ten_...` id.")
    tenant_links = _links("tenant_id", "$response.body#/tenant/id", "getTenant",
                          "updateTenant", "deleteTenant", "listApiKeys", "createApiKey",
                          "rotateApiKey")
    remove = {"name": "remove_provider_credentials", "in": "query", "required": False,
              "schema": arr(STR), "style": "form", "explode": True,
              "description": "Provider names whose stored credentials are dropped."}

    def admin(op_id: str, summary: str, answer: dict[str, Schema], *,
              body: str | None = None, body_required: bool = True,
              params: tuple[Schema, ...] = ()) -> Schema:
        errors = _errors(*_ADMIN_ERRORS, *((408, 413) if body else ()))
        return _op(op_id, summary, "admin", {**answer, **errors}, body=body,
                   body_required=body_required, params=(*params, *read))

    return {
        "/admin/tenants": {
            "get": admin("listTenants", "Every tenant.", _ok("TenantList", "The tenants.")),
            "post": admin("createTenant", "Create a tenant.",
                          _ok("TenantAnswer", "Created.", "201", links=tenant_links),
                          body="TenantSpec"),
        },
        "/admin/tenants/{tenant_id}": {
            "get": admin("getTenant", "One tenant.", _ok("TenantAnswer", "The tenant."),
                         params=(tenant_id,)),
            "put": admin("updateTenant", "Replace a tenant's settings.",
                         _ok("TenantAnswer", "Updated."), body="TenantSpec",
                         params=(tenant_id, remove)),
            "delete": admin("deleteTenant", "Delete a tenant and its keys.",
                            {"200": _json_answer(OBJ, "Deleted.", headers=_header_refs())},
                            params=(tenant_id,)),
        },
        "/admin/tenants/{tenant_id}/keys": {
            "get": admin("listApiKeys", "A tenant's keys (never their secrets).",
                         _ok("ApiKeyList", "The keys."), params=(tenant_id,)),
            "post": admin("createApiKey", "A new key; its secret is shown once.",
                          _ok("NewApiKey", "Created.", "201", links=_links(
                              "key_id", "$response.body#/api_key/id", "revokeApiKey")),
                          body="CreateApiKeyBody", body_required=False, params=(tenant_id,)),
        },
        "/admin/tenants/{tenant_id}/rotate-key": {"post": admin(
            "rotateApiKey", "Revoke a key (or every active key) and issue one new key.",
            _ok("NewApiKey", "The new key."), body="RotateApiKeyBody", body_required=False,
            params=(tenant_id,))},
        "/admin/keys/{key_id}": {"delete": admin(
            "revokeApiKey", "Revoke an API key.", _ok("RevokedApiKey", "Revoked."),
            params=(_path_param("key_id", "A `key_...` id."),))},
        "/admin/providers": {"get": admin(
            "listProviders", "The configured provider deployments (never credentials).",
            _ok("ProviderList", "The providers."))},
        "/admin/circuit-breakers": {"get": admin(
            "listCircuitBreakers", "Every deployment's circuit breaker.",
            _ok("CircuitBreakerList", "The breakers."))},
        "/admin/circuit-breakers/{provider}/reset": {"post": admin(
            "resetCircuitBreaker", "Close one deployment's breaker and clear its counts.",
            _ok("CircuitBreakerAnswer", "The breaker."),
            params=(_path_param("provider", "A configured provider name."),))},
        "/admin/models": {"get": admin(
            "listModelRoutes", "The model table: aliases, targets, weights, strategy, hedge, "
            "fallbacks and prices (never credentials).", _ok("ModelRouteList", "The routes."))},
        "/admin/system": {"get": admin(
            "getSystemInfo", "Version, instance and configuration summary.",
            _ok("SystemInfo", "The summary."))},
        "/admin/requests": {"get": admin(
            "listRequests", "The request log: recent requests (never their text), newest "
            "first.", _ok("RequestLogPage", "A page of requests."), params=(
                *(_query_param(n, STR, d) for n, d in (
                    ("tenant_id", "Only this tenant's."), ("model", "Only this model's."),
                    ("provider", "Only this provider's."),
                    ("status", "Only this gRPC status (OK, RESOURCE_EXHAUSTED, ...)."),
                    ("request_id", "Only this request."),
                    ("page_token", "`next_page_token` of the page before."))),
                *(_query_param(n, TIMESTAMP, d) for n, d in (
                    ("since", "From this time (RFC 3339)."),
                    ("until", "Before this time (RFC 3339)."))),
                _query_param("page_size", integer(1, 1000), "At most this many (100)."),
            ))},
        "/admin/usage/series": {"get": admin(
            "getUsageSeries", "Requests, errors, latency, tokens and spend over time.",
            _ok("UsageSeries", "The points, oldest first."), params=(
                _query_param("since", TIMESTAMP, "From this time (default: an hour ago)."),
                _query_param("until", TIMESTAMP, "Until this time (default: now)."),
                _query_param("step_seconds", {"type": "integer", "minimum": 60,
                                              "multipleOf": 60}, "Step (60)."),
                _query_param("group_by", enum("tenant", "model", "provider"),
                             "One series per tenant, model or provider."),
                _query_param("tenant_id", STR, "Only this tenant's."),
                _query_param("model", STR, "Only this model's."),
            ))},
    }


def _operations_paths(metrics_path: str | None) -> dict[str, Schema]:
    live = _json_answer(ref("Live"), "The process serves.")
    ready = {"200": _json_answer(ref("Readiness"), "Ready: the gRPC core answers SERVING "
                                 "and the configured stores answer."),
             "503": _json_answer(ref("Readiness"), "Not ready (or draining), with a reason.")}
    paths: dict[str, Schema] = {
        "/health": {"get": _op("health", "Liveness.", "operations", {"200": live},
                               public=True)},
        "/health/live": {"get": _op("healthLive", "Liveness.", "operations", {"200": live},
                                    public=True)},
        "/ready": {"get": _op("ready", "Readiness.", "operations", ready, public=True)},
        "/health/ready": {"get": _op("healthReady", "Readiness.", "operations", ready,
                                     public=True)},
        "/openapi.json": {"get": _op("openapi", "This document.", "operations", {
            "200": _json_answer(OBJ, "The OpenAPI 3.1 description of this facade.")},
            public=True)},
    }
    if metrics_path:
        paths[metrics_path] = {"get": _op("metrics", "Prometheus metrics.", "operations", {
            "200": {"description": "Prometheus text exposition format.",
                    "content": {"text/plain": {"schema": STR}}}}, public=True)}
    return paths


def openapi_document(*, metrics_path: str | None, max_body: int,
                     max_timeout: float) -> dict[str, Any]:
    """The facade's OpenAPI 3.1 document as served (``metrics_path`` as configured,
    ``max_body`` the body limit, ``max_timeout`` the largest ``X-Request-Timeout``)."""
    params = {k: dict(v) for k, v in _PARAMS.items()}
    params["X-Request-Timeout"]["description"] = params["X-Request-Timeout"][
        "description"].replace("max", f"{max_timeout:g}")
    errors = _error_responses()
    errors["Error413"]["description"] = f"The body is over {max_body} bytes."
    errors["AnthropicError413"]["description"] = (
        f"The body is over {max_body} bytes. (`request_too_large`)")
    return {
        "openapi": "3.1.0",
        "info": {"title": "llm-gateway", "version": __version__,
                 "description": "OpenAI-compatible REST in front of many LLM providers, "
                 "and Anthropic's Messages API. Errors are OpenAI's shape: `{\"error\": "
                 "{message, type, param, code}}`; the Messages API's (tag `anthropic`) are "
                 "Anthropic's: `{\"type\": \"error\", \"error\": {type, message}, "
                 "\"request_id\"}`."},
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        "tags": [{"name": n} for n in ("inference", "models", "responses", "anthropic",
                                       "usage", "admin", "operations")],
        "paths": {**_inference_paths(), **_messages_paths(), **_admin_paths(),
                  **_operations_paths(metrics_path)},
        "components": {
            "schemas": {**chat_schemas(), **responses_schemas(), **messages_schemas(),
                        **admin_schemas(), **answer_schemas()},
            "responses": errors,
            "headers": _HEADERS,
            "parameters": params,
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "An API key (`sk-...`), an admin key or an "
                               "OIDC JWT. Needed whenever any auth method is enabled."},
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }
