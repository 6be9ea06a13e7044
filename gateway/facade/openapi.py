"""The facade's OpenAPI 3.1 description, built in code from what the routes and the
translators (``translate.py``, ``responses.py``, ``admin.py``) accept and return.

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

__all__ = ["openapi_document"]

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NONEMPTY: Schema = {"type": "string", "minLength": 1}
BOOL: Schema = {"type": "boolean"}
NUM: Schema = {"type": "number"}
INT: Schema = {"type": "integer"}
OBJ: Schema = {"type": "object"}
INT64_TEXT: Schema = {"type": "string", "pattern": "^-?[0-9]+$"}  # proto3 JSON of int64
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1
MAX_KEY_TTL = 100 * 365 * 86400  # the admin API's bound on an API key's lifetime


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _opt(schema: Schema) -> Schema:
    """``schema`` or JSON null (the translators treat null as absent)."""
    return {"anyOf": [schema, {"type": "null"}]}


def _obj(props: dict[str, Schema], required: tuple[str, ...] = (), *,
         extra: bool | Schema = True, **more: Any) -> Schema:
    out: Schema = {"type": "object", "properties": props, "additionalProperties": extra, **more}
    if required:
        out["required"] = list(required)
    return out


def _arr(items: Schema, **more: Any) -> Schema:
    return {"type": "array", "items": items, **more}


def _int(low: int, high: int = _INT32_MAX) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _num(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def _enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def _const(value: str) -> Schema:
    return {"type": "string", "const": value}


# --- requests: what translate.py and responses.py accept ----------------------------------

def _chat_schemas() -> dict[str, Schema]:
    part = {
        "oneOf": [
            _obj({"type": _const("text"), "text": STR}, ("type", "text")),
            _obj({"type": _const("image_url"), "image_url": {"anyOf": [
                NONEMPTY, _obj({"url": NONEMPTY, "detail": _opt(STR)}, ("url",))]}},
                ("type", "image_url")),
            _obj({"type": _const("input_audio"),
                  "input_audio": _obj({"data": STR, "format": _opt(STR)}, ("data",))},
                 ("type", "input_audio")),
            _obj({"type": _const("refusal"), "refusal": STR}, ("type", "refusal")),
        ],
    }
    tool_call = _obj({"id": _opt(STR), "type": STR,
                      "function": _obj({"name": STR, "arguments": _opt(STR)}, ("name",))},
                     ("function",))
    common = {
        "content": {"anyOf": [STR, _arr(_ref("ContentPart")), {"type": "null"}]},
        "name": _opt(STR),
        "tool_calls": _opt(_arr(tool_call)),
        "refusal": _opt(STR),
    }
    message = {"oneOf": [
        _obj({"role": _enum("system", "user", "assistant", "developer"), **common,
              "tool_call_id": _opt(STR)}, ("role",)),
        _obj({"role": _const("tool"), **common, "tool_call_id": NONEMPTY},
             ("role", "tool_call_id")),
    ], "description": "A tool message answers the call named by `tool_call_id`."}
    tool = _obj({"type": _const("function"), "function": _obj({
        "name": NONEMPTY, "description": _opt(STR), "parameters": _opt(OBJ),
        "strict": _opt(BOOL)}, ("name",))}, ("function",))
    tool_choice = {"anyOf": [
        _enum("auto", "none", "required"),
        _obj({"type": STR, "function": _obj({"name": NONEMPTY}, ("name",))}, ("function",)),
    ]}
    response_format = {"oneOf": [
        _obj({"type": _enum("text", "json_object")}, ("type",)),
        _obj({"type": _const("json_schema"), "json_schema": _obj({
            "name": NONEMPTY, "description": _opt(STR), "schema": _opt(OBJ),
            "strict": _opt(BOOL)}, ("name",))}, ("type", "json_schema")),
    ]}
    request = _obj({
        "model": NONEMPTY,
        "messages": _arr(_ref("ChatMessage"), minItems=1),
        "tools": _opt(_arr(_ref("ChatTool"))),
        "tool_choice": _opt(tool_choice),
        "parallel_tool_calls": _opt(BOOL),
        "response_format": _opt(response_format),
        "temperature": _opt(_num(0, 2)),
        "top_p": _opt(_num(0, 1)),
        "max_tokens": _opt(_int(1)),
        "max_completion_tokens": _opt(_int(1)),
        "n": _opt(_int(1, 128)),
        "stop": {"anyOf": [STR, _arr(STR), {"type": "null"}]},
        "seed": _opt(_int(-_INT64_MAX - 1, _INT64_MAX)),
        "presence_penalty": _opt(_num(-2, 2)),
        "frequency_penalty": _opt(_num(-2, 2)),
        "user": _opt(STR),
        "stream": _opt(BOOL),
        "stream_options": _opt(_obj({"include_usage": _opt(BOOL)})),
    }, ("model", "messages"), description="Fields the gateway does not model are passed "
       "through to OpenAI-compatible upstreams.")
    embeddings = _obj({
        "model": NONEMPTY,
        "input": {"anyOf": [STR, _arr(STR, minItems=1, maxItems=2048)]},
        "dimensions": _opt(_int(1, 65536)),
        "user": _opt(STR),
        "encoding_format": _enum("float", "base64"),
    }, ("model", "input"))
    return {"ContentPart": part, "ChatMessage": message, "ChatTool": tool,
            "ChatCompletionRequest": request, "EmbeddingsRequest": embeddings}


def _responses_schemas() -> dict[str, Schema]:
    content_part = {"oneOf": [
        _obj({"type": _enum("input_text", "output_text"), "text": STR}, ("type", "text")),
        _obj({"type": _const("refusal"), "refusal": STR}, ("type", "refusal")),
        _obj({"type": _const("input_image"), "image_url": NONEMPTY, "detail": _opt(STR)},
             ("type", "image_url")),
    ]}
    item = {"oneOf": [
        _obj({"type": _const("message"),
              "role": _enum("user", "assistant", "system", "developer"),
              "content": {"anyOf": [STR, _arr(content_part)]}}, ("role", "content")),
        _obj({"type": _const("function_call"), "call_id": STR, "name": STR,
              "arguments": _opt(STR)}, ("type", "call_id", "name")),
        _obj({"type": _const("function_call_output"), "call_id": NONEMPTY, "output": {}},
             ("type", "call_id")),
    ]}
    tool = _obj({"type": _const("function"), "name": NONEMPTY, "description": _opt(STR),
                 "parameters": _opt(OBJ), "strict": _opt(BOOL)}, ("type", "name"))
    text_format = {"oneOf": [
        _obj({"type": _enum("text", "json_object")}, ("type",)),
        _obj({"type": _const("json_schema"), "name": NONEMPTY, "description": _opt(STR),
              "schema": _opt(OBJ), "strict": _opt(BOOL)}, ("type", "name")),
    ]}
    request = _obj({
        "model": NONEMPTY,
        "input": {"anyOf": [STR, _arr(_ref("ResponseInputItem"), minItems=1)]},
        "instructions": _opt(STR),
        "tools": _opt(_arr(tool)),
        "tool_choice": _opt({"anyOf": [
            _enum("auto", "none", "required"),
            _obj({"type": _const("function"), "name": NONEMPTY}, ("type", "name"))]}),
        "temperature": _opt(_num(0, 2)),
        "top_p": _opt(_num(0, 1)),
        "max_output_tokens": _opt(_int(1)),
        "text": _opt(_obj({"format": _opt(text_format)})),
        "store": _opt(BOOL),
        "metadata": _opt({"type": "object", "maxProperties": 16,
                          "additionalProperties": STR}),
        "previous_response_id": _opt(STR),
        "parallel_tool_calls": _opt(BOOL),
        "user": _opt(STR),
        "stream": _opt(BOOL),
    }, ("model",), anyOf=[
        {"required": ["input"]},
        {"required": ["previous_response_id"], "properties": {"previous_response_id": NONEMPTY}}],
       description="`input` is required unless `previous_response_id` is given. "
       "Fields the gateway does not model are passed through.")
    return {"ResponseInputItem": item, "CreateResponseRequest": request}


def _admin_schemas() -> dict[str, Schema]:
    """Admin bodies are proto3 JSON of the AdminService messages (``json_format``):
    null means unset, unknown fields are refused, int64 values are written as text."""
    def proto(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
        return _obj({k: v if k in required else _opt(v) for k, v in props.items()},
                    required, extra=False)

    int64_in = {"anyOf": [_int(1, _INT64_MAX), {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}]}
    limits = {
        "requests_per_second": {"type": "number", "minimum": 0},
        "burst": _int(1), "requests_per_minute": _int(1), "tokens_per_minute": int64_in,
        "concurrent_requests": _int(1), "daily_token_quota": int64_in,
    }
    spec = proto({
        "name": {"type": "string", "pattern": "\\S"},
        "allowed_models": _arr(STR), "limits": proto(limits),
        "monthly_budget_usd": {"type": "number", "minimum": 0},
        "default_provider": STR, "fallback_providers": _arr(STR),
        "provider_credentials": {"type": "object", "additionalProperties": NONEMPTY,
                                 "description": "Provider name -> the tenant's own key "
                                 "(needs ENCRYPTION_KEY)."},
        "disabled": BOOL,
    }, ("name",))
    limits_out = {k: INT64_TEXT if k in ("tokens_per_minute", "daily_token_quota") else
                  (NUM if k == "requests_per_second" else INT) for k in limits}
    tenant = _obj({
        "id": STR, "name": STR, "allowed_models": _arr(STR), "limits": _obj(limits_out),
        "monthly_budget_usd": NUM, "default_provider": STR, "fallback_providers": _arr(STR),
        "provider_credentials": _arr(STR), "disabled": BOOL, "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP,
    }, ("id", "name", "allowed_models", "default_provider", "fallback_providers",
        "provider_credentials", "disabled"))
    key = _obj({"id": STR, "tenant_id": STR, "name": STR, "prefix": STR,
                "created_at": TIMESTAMP, "revoked_at": TIMESTAMP, "expires_at": TIMESTAMP},
               ("id", "tenant_id", "name", "prefix"))
    states = ("CLOSED", "OPEN", "HALF_OPEN", "UNSPECIFIED")
    breaker = _obj({"provider": STR,
                    "state": _enum(*(f"CIRCUIT_BREAKER_STATE_{s}" for s in states)),
                    "requests": INT64_TEXT, "failures": INT64_TEXT,
                    "consecutive_failures": INT64_TEXT, "opened_at": TIMESTAMP,
                    "distributed": BOOL}, ("provider", "state"))
    provider = _obj({"name": STR, "type": STR, "base_url": STR, "models": _arr(STR),
                     "has_api_key": BOOL}, ("name", "type"))
    system = _obj({"version": STR, "pod_name": STR, "pod_namespace": STR,
                   "started_at": TIMESTAMP, "providers": _arr(STR), "model_aliases": INT,
                   "distributed_circuit_breakers": BOOL, "redis_configured": BOOL,
                   "database_configured": BOOL, "degraded": _arr(STR)}, ("version",))
    return {
        "TenantSpec": spec,
        "CreateApiKeyBody": proto({"tenant_id": STR, "name": STR, "ttl_seconds": {"anyOf": [
            _int(0, MAX_KEY_TTL), {"type": "string", "pattern": "^[0-9]{1,9}$"}]}}),
        "RotateApiKeyBody": proto({"tenant_id": STR, "key_id": STR, "name": STR}),
        "Tenant": tenant, "ApiKey": key, "CircuitBreaker": breaker,
        "TenantAnswer": _obj({"tenant": _ref("Tenant")}, ("tenant",)),
        "TenantList": _obj({"tenants": _arr(_ref("Tenant"))}, ("tenants",)),
        "ApiKeyList": _obj({"api_keys": _arr(_ref("ApiKey"))}, ("api_keys",)),
        "NewApiKey": _obj({"api_key": _ref("ApiKey"), "secret": STR,
                           "revoked_key_ids": _arr(STR)}, ("api_key", "secret")),
        "RevokedApiKey": _obj({"api_key": _ref("ApiKey")}, ("api_key",)),
        "ProviderList": _obj({"providers": _arr(provider)}, ("providers",)),
        "CircuitBreakerList": _obj({"circuit_breakers": _arr(_ref("CircuitBreaker"))},
                                   ("circuit_breakers",)),
        "CircuitBreakerAnswer": _obj({"circuit_breaker": _ref("CircuitBreaker")},
                                     ("circuit_breaker",)),
        "SystemInfo": system,
    }


# --- answers: what the routes return --------------------------------------------------------

_RESPONSE_EVENTS = (
    "response.created", "response.in_progress", "response.output_item.added",
    "response.content_part.added", "response.output_text.delta", "response.output_text.done",
    "response.content_part.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.output_item.done",
    "response.completed", "response.incomplete", "response.failed", "error",
)

def _answer_schemas() -> dict[str, Schema]:
    gateway = _obj({"provider": STR, "model": STR, "latency_ms": NUM, "cost_usd": NUM,
                    "cache_hit": BOOL, "request_id": STR, "trace_id": _opt(STR)})
    usage = _obj({"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT,
                  "prompt_tokens_details": OBJ, "completion_tokens_details": OBJ},
                 ("prompt_tokens", "completion_tokens", "total_tokens"))
    finish = {"anyOf": [_enum("stop", "length", "tool_calls", "content_filter",
                              "function_call"), {"type": "null"}]}
    call = _obj({"id": STR, "type": _const("function"),
                 "function": _obj({"name": STR, "arguments": STR})})
    choice = _obj({"index": INT, "message": _obj({
        "role": _const("assistant"), "content": _opt(STR), "refusal": _opt(STR),
        "tool_calls": _arr(call)}, ("role", "content")), "logprobs": {"type": "null"},
        "finish_reason": finish}, ("index", "message", "finish_reason"))
    completion = _obj({
        "id": STR, "object": _const("chat.completion"), "created": INT, "model": STR,
        "choices": _arr(choice), "usage": _opt(_ref("Usage")),
        "system_fingerprint": _opt(STR), "x_gateway": gateway,
    }, ("id", "object", "created", "model", "choices"))
    embedding = _obj({"object": _const("embedding"), "index": INT,
                      "embedding": {"anyOf": [_arr(NUM), STR]}}, ("index", "embedding"))
    embeddings = _obj({"object": _const("list"), "data": _arr(embedding), "model": STR,
                       "usage": _obj({"prompt_tokens": INT, "total_tokens": INT}),
                       "x_gateway": OBJ}, ("object", "data", "model"))
    model = _obj({"id": STR, "object": _const("model"), "created": INT, "owned_by": STR,
                  "targets": _arr(STR), "fallbacks": _arr(STR)}, ("id", "object", "owned_by"))
    output_item = _obj({"type": _enum("message", "function_call"), "id": STR, "status": STR},
                       ("type", "id"))
    response = _obj({
        "id": STR, "object": _const("response"), "created_at": INT,
        "status": _enum("in_progress", "completed", "incomplete", "failed"),
        "error": _opt(_obj({"code": STR, "message": STR})),
        "incomplete_details": _opt(OBJ), "instructions": _opt(STR),
        "max_output_tokens": _opt(INT), "model": STR, "output": _arr(output_item),
        "parallel_tool_calls": BOOL, "previous_response_id": _opt(STR), "store": BOOL,
        "temperature": NUM, "top_p": NUM, "text": OBJ, "tools": _arr(OBJ),
        "usage": _opt(OBJ), "user": _opt(STR), "metadata": {"type": "object",
                                                              "additionalProperties": STR},
        "x_gateway": gateway,
    }, ("id", "object", "created_at", "status", "model", "output"))
    delta_call = _obj({"index": INT, "id": STR, "type": _const("function"),
                       "function": _obj({"name": STR, "arguments": STR})}, ("index",))
    chunk = _obj({
        "id": STR, "object": _const("chat.completion.chunk"), "created": INT, "model": STR,
        "choices": _arr(_obj({"index": INT, "delta": _obj({
            "role": STR, "content": STR, "refusal": STR, "tool_calls": _arr(delta_call)}),
            "logprobs": {"type": "null"}, "finish_reason": finish},
            ("index", "delta", "finish_reason"))),
        "usage": _opt(_ref("Usage")), "system_fingerprint": STR,
    }, ("id", "object", "created", "model", "choices"))
    chat_event = _obj({
        "event": _const("message"),
        "data": {"anyOf": [_const("[DONE]"), {
            "type": "string", "contentMediaType": "application/json",
            "contentSchema": {"anyOf": [_ref("ChatCompletionChunk"), _ref("Error")]}}]},
    }, ("data",), description="`data: <chat.completion.chunk>` events, then `data: [DONE]`; "
       "a failure after the first event ends the stream with a `data: {\"error\": ...}` event.")
    response_event = _obj({
        "event": _enum(*_RESPONSE_EVENTS),
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": _obj({"type": _enum(*_RESPONSE_EVENTS),
                                        "sequence_number": INT, "response": _ref("Response")},
                                       ("type", "sequence_number"))},
    }, ("event", "data"), description="Named events, `response.created` first and "
       "`response.completed` (or `.incomplete`, `.failed`, `error`) last; `data` is the event "
       "as JSON, its `type` the event's name.")
    error = _obj({"error": _obj({
        "message": STR, "type": STR, "param": _opt(STR), "code": _opt(STR),
        "provider": STR}, ("message", "type", "param", "code"))}, ("error",))
    return {
        "Usage": usage, "ChatCompletion": completion, "ChatCompletionChunk": chunk,
        "ChatStreamEvent": chat_event, "ResponseStreamEvent": response_event,
        "Embeddings": embeddings,
        "Model": model, "ModelList": _obj({"object": _const("list"), "data": _arr(model)},
                                          ("object", "data")),
        "Response": response,
        "DeletedResponse": _obj({"id": STR, "object": _const("response"), "deleted": BOOL},
                                ("id", "object", "deleted")),
        "UsageReport": _obj({
            "object": _const("usage"), "tenant_id": STR, "period_start": INT,
            "requests": INT, "prompt_tokens": INT, "completion_tokens": INT,
            "total_tokens": INT, "cost_usd": NUM, "monthly_budget_usd": _opt(NUM),
            "budget_used_ratio": _opt(NUM)}, ("object", "tenant_id", "period_start")),
        "Live": _obj({"status": _const("ok")}, ("status",)),
        "Readiness": _obj({"status": _enum("ready", "not_ready"), "reason": STR,
                           "checks": {"type": "object", "additionalProperties": STR},
                           "degraded": _arr(STR)}, ("status",)),
        "Error": error,
    }


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
                "schema": _enum("HIT", "MISS")},
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
    "X-Skip-Cache": {"name": "X-Skip-Cache", "in": "header", "schema": STR,
                     "description": "Any value but empty, 0, false or no bypasses the cache."},
}


def _header_refs(*names: str, request_id: bool = True) -> dict[str, Schema]:
    picked = (("X-Request-ID",) if request_id else ()) + names
    return {n: {"$ref": f"#/components/headers/{n}"} for n in picked}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(s): {"$ref": f"#/components/responses/Error{s}"} for s in statuses}


def _json_answer(schema: Schema, description: str, **more: Any) -> Schema:
    return {"description": description, "content": {"application/json": {"schema": schema}},
            **more}


def _error_responses() -> dict[str, Schema]:
    out = {}
    for status, text in _STATUS_TEXT.items():
        headers = _header_refs(*(("Retry-After", *_LIMITS) if status == 429 else
                                 ("Retry-After",) if status == 503 else ()))
        out[f"Error{status}"] = _json_answer(_ref("Error"), text, headers=headers)
    return out


# --- paths ----------------------------------------------------------------------------------

_INFERENCE_ERRORS = (400, 401, 402, 403, 404, 408, 413, 429, 431, 502, 503, 504)
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
            "application/json": {"schema": _ref(body)}}}
    if public:
        out["security"] = _PUBLIC
    return out


def _path_param(name: str, description: str) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": NONEMPTY,
            "description": description}


def _header_params(*names: str) -> tuple[Schema, ...]:
    return tuple({"$ref": f"#/components/parameters/{n}"} for n in ("X-Request-ID", *names))


def _ok(schema: str, description: str, status: str = "200", *, limited: bool = False,
        cache: bool = False, sse: str | None = None,
        links: dict[str, Schema] | None = None) -> dict[str, Schema]:
    answer = _json_answer(_ref(schema), description, headers=_header_refs(
        *(_LIMITS if limited else ()), *(("X-Cache",) if cache else ())))
    if sse is not None:
        answer["content"]["text/event-stream"] = {"schema": _ref(sse)}  # one event's schema
    if links:
        answer["links"] = links
    return {status: answer}


def _links(param: str, expression: str, *op_ids: str) -> dict[str, Schema]:
    return {op_id[0].upper() + op_id[1:]: {"operationId": op_id,
                                           "parameters": {param: expression}}
            for op_id in op_ids}


def _inference_paths() -> dict[str, Schema]:
    infer = _header_params("X-Provider", "X-Request-Timeout", "X-Skip-Cache")
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
            "getUsage", "The caller's usage and cost this month, against its budget.", "usage",
            {**_ok("UsageReport", "The usage."), **_errors(*_READ_ERRORS)}, params=read)},
    }


def _admin_paths() -> dict[str, Schema]:
    read = _header_params()
    tenant_id = _path_param("tenant_id", "A `ten_...` id.")
    tenant_links = _links("tenant_id", "$response.body#/tenant/id", "getTenant",
                          "updateTenant", "deleteTenant", "listApiKeys", "createApiKey",
                          "rotateApiKey")
    remove = {"name": "remove_provider_credentials", "in": "query", "required": False,
              "schema": _arr(STR), "style": "form", "explode": True,
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
        "/admin/system": {"get": admin(
            "getSystemInfo", "Version, instance and configuration summary.",
            _ok("SystemInfo", "The summary."))},
    }


def _operations_paths(metrics_path: str | None) -> dict[str, Schema]:
    live = _json_answer(_ref("Live"), "The process serves.")
    ready = {"200": _json_answer(_ref("Readiness"), "Ready: the gRPC core answers SERVING "
                                 "and the configured stores answer."),
             "503": _json_answer(_ref("Readiness"), "Not ready (or draining), with a reason.")}
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
    return {
        "openapi": "3.1.0",
        "info": {"title": "llm-gateway", "version": __version__,
                 "description": "OpenAI-compatible REST in front of many LLM providers. "
                 "Errors are OpenAI's shape: `{\"error\": {message, type, param, code}}`."},
        "security": [{"bearerAuth": []}, {"apiKeyAuth": []}],
        "tags": [{"name": n} for n in ("inference", "models", "responses", "usage",
                                       "admin", "operations")],
        "paths": {**_inference_paths(), **_admin_paths(), **_operations_paths(metrics_path)},
        "components": {
            "schemas": {**_chat_schemas(), **_responses_schemas(), **_admin_schemas(),
                        **_answer_schemas()},
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
