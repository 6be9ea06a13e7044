"""The component schemas of the facade's OpenAPI document (see ``openapi.py``): what
the translators (``translate.py``, ``responses.py``, ``admin.py``, and for the Messages API
``gateway/messages_json.py``) accept, and what the routes return, with the bounds the
translators enforce.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ANTHROPIC_ERROR_TYPES", "MAX_KEY_TTL", "MESSAGE_EVENTS", "NONEMPTY", "OBJ",
           "RESPONSE_EVENTS", "STR", "Schema", "admin_schemas", "answer_schemas", "arr",
           "chat_schemas", "const", "enum", "messages_schemas", "ref", "responses_schemas"]

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
NONEMPTY: Schema = {"type": "string", "minLength": 1}
BOOL: Schema = {"type": "boolean"}
NUM: Schema = {"type": "number"}
INT: Schema = {"type": "integer"}
OBJ: Schema = {"type": "object"}
INT64_TEXT: Schema = {"type": "string", "pattern": "^-?[0-9]+$"}  # proto3 JSON of int64
TIMESTAMP: Schema = {"type": "string", "format": "date-time"}
INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
MAX_KEY_TTL = 100 * 365 * 86400  # the admin API's bound on an API key's lifetime


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def opt(schema: Schema) -> Schema:
    """``schema`` or JSON null (the translators treat null as absent)."""
    return {"anyOf": [schema, {"type": "null"}]}


def obj(props: dict[str, Schema], required: tuple[str, ...] = (), *,
        extra: bool | Schema = True, **more: Any) -> Schema:
    out: Schema = {"type": "object", "properties": props, "additionalProperties": extra, **more}
    if required:
        out["required"] = list(required)
    return out


def arr(items: Schema, **more: Any) -> Schema:
    return {"type": "array", "items": items, **more}


def integer(low: int, high: int = INT32_MAX) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def number(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def enum(*values: str) -> Schema:
    return {"type": "string", "enum": list(values)}


def const(value: str) -> Schema:
    return {"type": "string", "const": value}


# --- requests: what translate.py and responses.py accept ----------------------------------

def chat_schemas() -> dict[str, Schema]:
    # A prompt-cache breakpoint (Anthropic's), on parts, messages and tools.
    cache = {"cache_control": opt(obj({"type": STR, "ttl": opt(STR)}, ("type",)))}
    part = {
        "oneOf": [
            obj({"type": const("text"), "text": STR, **cache}, ("type", "text")),
            obj({"type": const("image_url"), "image_url": {"anyOf": [
                NONEMPTY, obj({"url": NONEMPTY, "detail": opt(STR)}, ("url",))]}, **cache},
                ("type", "image_url")),
            obj({"type": const("input_audio"),
                 "input_audio": obj({"data": STR, "format": opt(STR)}, ("data",))},
                ("type", "input_audio")),
            obj({"type": const("refusal"), "refusal": STR}, ("type", "refusal")),
        ],
    }
    tool_call = obj({"id": opt(STR), "type": STR,
                     "function": obj({"name": STR, "arguments": opt(STR)}, ("name",))},
                    ("function",))
    common = {
        "content": {"anyOf": [STR, arr(ref("ContentPart")), {"type": "null"}]},
        "name": opt(STR),
        "tool_calls": opt(arr(tool_call)),
        "refusal": opt(STR),
        **cache,
    }
    message = {"oneOf": [
        obj({"role": enum("system", "user", "assistant", "developer"), **common,
             "tool_call_id": opt(STR)}, ("role",)),
        obj({"role": const("tool"), **common, "tool_call_id": NONEMPTY},
            ("role", "tool_call_id")),
    ], "description": "A tool message answers the call named by `tool_call_id`."}
    tool = obj({"type": const("function"), "function": obj({
        "name": NONEMPTY, "description": opt(STR), "parameters": opt(OBJ),
        "strict": opt(BOOL)}, ("name",)), **cache}, ("function",))
    tool_choice = {"anyOf": [
        enum("auto", "none", "required"),
        obj({"type": STR, "function": obj({"name": NONEMPTY}, ("name",))}, ("function",)),
    ]}
    response_format = {"oneOf": [
        obj({"type": enum("text", "json_object")}, ("type",)),
        obj({"type": const("json_schema"), "json_schema": obj({
            "name": NONEMPTY, "description": opt(STR), "schema": opt(OBJ),
            "strict": opt(BOOL)}, ("name",))}, ("type", "json_schema")),
    ]}
    request = obj({
        "model": NONEMPTY,
        "messages": arr(ref("ChatMessage"), minItems=1, maxItems=10_000),
        "tools": opt(arr(ref("ChatTool"), maxItems=512)),
        "tool_choice": opt(tool_choice),
        "parallel_tool_calls": opt(BOOL),
        "response_format": opt(response_format),
        "temperature": opt(number(0, 2)),
        "top_p": opt(number(0, 1)),
        "max_tokens": opt(integer(1)),
        "max_completion_tokens": opt(integer(1)),
        "n": opt(integer(1, 128)),
        "stop": {"anyOf": [STR, arr(STR), {"type": "null"}]},
        "seed": opt(integer(-INT64_MAX - 1, INT64_MAX)),
        "presence_penalty": opt(number(-2, 2)),
        "frequency_penalty": opt(number(-2, 2)),
        "user": opt(STR),
        "stream": opt(BOOL),
        "stream_options": opt(obj({"include_usage": opt(BOOL)})),
    }, ("model", "messages"), description="Fields the gateway does not model are passed "
       "through to OpenAI-compatible upstreams.")
    embeddings = obj({
        "model": NONEMPTY,
        "input": {"anyOf": [STR, arr(STR, minItems=1, maxItems=2048)]},
        "dimensions": opt(integer(1, 65536)),
        "user": opt(STR),
        "encoding_format": enum("float", "base64"),
    }, ("model", "input"))
    return {"ContentPart": part, "ChatMessage": message, "ChatTool": tool,
            "ChatCompletionRequest": request, "EmbeddingsRequest": embeddings}


def responses_schemas() -> dict[str, Schema]:
    content_part = {"oneOf": [
        obj({"type": enum("input_text", "output_text"), "text": STR}, ("type", "text")),
        obj({"type": const("refusal"), "refusal": STR}, ("type", "refusal")),
        obj({"type": const("input_image"), "image_url": NONEMPTY, "detail": opt(STR)},
            ("type", "image_url")),
    ]}
    item = {"oneOf": [
        obj({"type": const("message"),
             "role": enum("user", "assistant", "system", "developer"),
             "content": {"anyOf": [STR, arr(content_part)]}}, ("role", "content")),
        obj({"type": const("function_call"), "call_id": STR, "name": STR,
             "arguments": opt(STR)}, ("type", "call_id", "name")),
        obj({"type": const("function_call_output"), "call_id": NONEMPTY, "output": {}},
            ("type", "call_id")),
    ]}
    tool = obj({"type": const("function"), "name": NONEMPTY, "description": opt(STR),
                "parameters": opt(OBJ), "strict": opt(BOOL)}, ("type", "name"))
    text_format = {"oneOf": [
        obj({"type": enum("text", "json_object")}, ("type",)),
        obj({"type": const("json_schema"), "name": NONEMPTY, "description": opt(STR),
             "schema": opt(OBJ), "strict": opt(BOOL)}, ("type", "name")),
    ]}
    request = obj({
        "model": NONEMPTY,
        "input": {"anyOf": [STR, arr(ref("ResponseInputItem"), minItems=1, maxItems=10_000)]},
        "instructions": opt(STR),
        "tools": opt(arr(tool, maxItems=512)),
        "tool_choice": opt({"anyOf": [
            enum("auto", "none", "required"),
            obj({"type": const("function"), "name": NONEMPTY}, ("type", "name"))]}),
        "temperature": opt(number(0, 2)),
        "top_p": opt(number(0, 1)),
        "max_output_tokens": opt(integer(1)),
        "text": opt(obj({"format": opt(text_format)})),
        "store": opt(BOOL),
        "metadata": opt({"type": "object", "maxProperties": 16,
                         "propertyNames": {"maxLength": 64},
                         "additionalProperties": {"type": "string", "maxLength": 512}}),
        "previous_response_id": opt(STR),
        "parallel_tool_calls": opt(BOOL),
        "user": opt(STR),
        "stream": opt(BOOL),
    }, ("model",), anyOf=[
        {"required": ["input"]},
        {"required": ["previous_response_id"], "properties": {"previous_response_id": NONEMPTY}}],
       description="`input` is required unless `previous_response_id` is given. "
       "Fields the gateway does not model are passed through.")
    return {"ResponseInputItem": item, "CreateResponseRequest": request}


# --- the Messages API: what messages_json.py accepts, what its routes return ---------------

MESSAGE_BLOCKS = ("text", "image", "document", "tool_use", "tool_result", "thinking",
                  "redacted_thinking")
MESSAGE_EVENTS = ("message_start", "content_block_start", "content_block_delta",
                  "content_block_stop", "message_delta", "message_stop", "ping", "error")
ANTHROPIC_ERROR_TYPES = ("invalid_request_error", "authentication_error", "billing_error",
                         "permission_error", "not_found_error", "request_too_large",
                         "rate_limit_error", "api_error", "overloaded_error", "timeout_error")


def _not(*values: str) -> Schema:
    """A string other than ``values``."""
    return {"type": "string", "not": {"enum": list(values)}}


def messages_schemas() -> dict[str, Schema]:
    """Anthropic's Messages API. ``messages_json.request_from_json`` refuses what the API
    refuses and keeps every key it does not model (so every object allows other keys), and
    refuses ``null`` but where the schema says so; a block of a type it does not model
    (``server_tool_use``, ``search_result``, ...) passes whole."""
    cache = opt(obj({"type": STR, "ttl": STR}, ("type",)))
    source = obj({"type": STR, "media_type": STR, "data": STR, "url": STR, "file_id": STR,
                  "content": {}}, ("type",), description="`base64`, `url`, `text`, "
                 "`content` (then `content` holds blocks) or `file`.")
    text = obj({"type": const("text"), "text": STR, "cache_control": cache}, ("type", "text"))
    media = [obj({"type": const(kind), "source": source, "cache_control": cache},
                 ("type", "source")) for kind in ("image", "document")]
    inner = {"oneOf": [text, *media, obj({"type": _not("text", "image", "document")},
                                         ("type",))],
             "description": "A block of a tool result: text, image, document, or any other "
             "type, passed whole."}
    block = {"oneOf": [
        text, *media,
        obj({"type": const("tool_use"), "id": STR, "name": STR, "input": OBJ,
             "cache_control": cache}, ("type", "id", "name", "input")),
        obj({"type": const("tool_result"), "tool_use_id": STR,
             "content": {"anyOf": [STR, arr(inner)]}, "is_error": BOOL,
             "cache_control": cache}, ("type", "tool_use_id")),
        obj({"type": const("thinking"), "thinking": STR, "signature": STR,
             "cache_control": cache}, ("type", "thinking", "signature")),
        obj({"type": const("redacted_thinking"), "data": STR, "cache_control": cache},
            ("type", "data")),
        obj({"type": _not(*MESSAGE_BLOCKS)}, ("type",), description="Any other block type "
            "(server_tool_use, search_result, container_upload, ...), passed whole."),
    ]}
    message = obj({"role": enum("user", "assistant"),
                   "content": {"anyOf": [STR, arr(ref("MessagesContentBlock"))]}},
                  ("role", "content"))
    tool = {"oneOf": [
        obj({"name": STR, "type": {"enum": ["custom", "", None]}, "description": STR,
             "input_schema": OBJ, "cache_control": cache}, ("name", "input_schema"),
            description="A client tool; `input_schema` is its input's JSON Schema."),
        obj({"name": STR, "type": _not("custom", ""), "description": STR,
             "cache_control": cache}, ("name", "type"),
            description="A server or Anthropic-defined tool (`web_search_20250305`, "
            "`bash_20250124`, ...); its other settings are passed on."),
    ]}
    tool_choice = {"oneOf": [
        obj({"type": enum("auto", "any", "none"), "disable_parallel_tool_use": BOOL},
            ("type",)),
        obj({"type": const("tool"), "name": STR, "disable_parallel_tool_use": BOOL},
            ("type", "name")),
    ]}
    thinking = {"oneOf": [
        obj({"type": const("enabled"), "budget_tokens": integer(1024)},
            ("type", "budget_tokens")),
        obj({"type": _not("enabled"), "budget_tokens": integer(0)}, ("type",)),
    ], "description": "`enabled` (with a budget of at least 1024 tokens), `disabled`, or "
       "a newer mode."}
    fields = {
        "model": NONEMPTY,
        "max_tokens": integer(1),
        "messages": arr(ref("MessagesInputMessage"), minItems=1, maxItems=10_000),
        "system": {"anyOf": [STR, arr(text)]},
        "tools": arr(ref("MessagesTool"), maxItems=512),
        "tool_choice": tool_choice,
        "stop_sequences": arr(STR),
        "temperature": NUM,
        "top_p": NUM,
        "top_k": integer(0),
        "metadata": obj({"user_id": opt(STR)}),
        "thinking": thinking,
    }
    request = obj({**fields, "stream": BOOL}, ("model", "max_tokens", "messages"),
                  description="Fields the gateway does not model (service_tier, container, "
                  "...) are passed on to Anthropic-family upstreams; JSON nested deeper than "
                  "254 levels is refused. Other upstreams refuse what they cannot be sent "
                  "(400, naming the field).")
    count = obj(fields, ("model", "messages"), description="A Messages request whose "
                "`max_tokens` is optional (checked when given, then ignored); `stream` is "
                "one more key the gateway does not model.")
    answer_block = {"oneOf": [
        obj({"type": const("text"), "text": STR}, ("type", "text")),
        obj({"type": const("tool_use"), "id": STR, "name": STR, "input": OBJ},
            ("type", "id", "name")),
        obj({"type": const("thinking"), "thinking": STR, "signature": STR},
            ("type", "thinking")),
        obj({"type": const("redacted_thinking"), "data": STR}, ("type", "data")),
        obj({"type": _not("text", "tool_use", "thinking", "redacted_thinking")}, ("type",),
            description="Any other block (server_tool_use, web_search_tool_result, ...), "
            "as the upstream sent it."),
    ]}
    usage = obj({"input_tokens": INT, "output_tokens": INT,
                 "cache_creation_input_tokens": opt(INT), "cache_read_input_tokens": opt(INT)},
                ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                 "cache_read_input_tokens"), description="`input_tokens` excludes the tokens "
                "read from or written to the prompt cache; other keys (server_tool_use, "
                "service_tier, ...) as the upstream sent them.")
    answer = obj({
        "id": STR, "type": const("message"), "role": const("assistant"), "model": STR,
        "content": arr(ref("MessageAnswerBlock")),
        "stop_reason": opt(STR), "stop_sequence": opt(STR), "usage": ref("MessageUsage"),
    }, ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"),
        description="`stop_reason`: end_turn, max_tokens, stop_sequence, tool_use, "
        "pause_turn, refusal (null only in a stream's `message_start`).")
    event = obj({
        "event": {"type": "string", "examples": list(MESSAGE_EVENTS)},
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": obj({"type": STR}, ("type",))},
    }, ("event", "data"), description="Named events in Anthropic's order: `message_start`, "
        "then per block `content_block_start`, `content_block_delta`..., "
        "`content_block_stop`, then `message_delta` and `message_stop`; `ping` at any "
        "point. `data` is the event as JSON, its `type` the event's name (an upstream's "
        "event of another type passes under its own name). A failure after the first event "
        "ends the stream with an `error` event: `{\"type\": \"error\", \"error\": {type, "
        "message}}`.")
    error = obj({"type": const("error"), "error": obj({
        "type": enum(*ANTHROPIC_ERROR_TYPES), "message": STR}, ("type", "message")),
        "request_id": STR}, ("type", "error", "request_id"))
    return {
        "MessagesContentBlock": block, "MessagesInputMessage": message,
        "MessagesTool": tool, "MessagesRequest": request,
        "CountMessageTokensRequest": count,
        "MessageAnswerBlock": answer_block, "MessageUsage": usage, "Message": answer,
        "MessageStreamEvent": event,
        "MessageTokenCount": obj({"input_tokens": INT}, ("input_tokens",)),
        "AnthropicError": error,
    }


def admin_schemas() -> dict[str, Schema]:
    """Admin bodies are proto3 JSON of the AdminService messages (``json_format``):
    null means unset, unknown fields are refused, int64 values are written as text."""
    def proto(props: dict[str, Schema], required: tuple[str, ...] = ()) -> Schema:
        return obj({k: v if k in required else opt(v) for k, v in props.items()},
                   required, extra=False)

    int64_in = {"anyOf": [integer(1, INT64_MAX),
                          {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"}]}
    limits = {
        "requests_per_second": {"type": "number", "minimum": 0},
        "burst": integer(1), "requests_per_minute": integer(1), "tokens_per_minute": int64_in,
        "concurrent_requests": integer(1), "daily_token_quota": int64_in,
    }
    periods = ("BUDGET_PERIOD_MONTHLY", "BUDGET_PERIOD_DAILY")
    period_in = enum("BUDGET_PERIOD_UNSPECIFIED", *periods)
    spec = proto({
        "name": {"type": "string", "pattern": "\\S"},
        "allowed_models": arr(STR), "limits": proto(limits),
        "monthly_budget_usd": {"type": "number", "minimum": 0},
        "default_provider": STR, "fallback_providers": arr(STR),
        "provider_credentials": {"type": "object", "additionalProperties": NONEMPTY,
                                 "description": "Provider name -> the tenant's own key "
                                 "(needs ENCRYPTION_KEY)."},
        "disabled": BOOL,
        "model_budgets": {"type": "object",
                          "additionalProperties": {"type": "number", "minimum": 0},
                          "description": "Model name (as clients ask for it) -> USD per "
                          "budget period, on top of the tenant's."},
        "budget_period": period_in,
    }, ("name",))
    limits_out = {k: INT64_TEXT if k in ("tokens_per_minute", "daily_token_quota") else
                  (NUM if k == "requests_per_second" else INT) for k in limits}
    tenant = obj({
        "id": STR, "name": STR, "allowed_models": arr(STR), "limits": obj(limits_out),
        "monthly_budget_usd": NUM, "default_provider": STR, "fallback_providers": arr(STR),
        "provider_credentials": arr(STR), "disabled": BOOL, "created_at": TIMESTAMP,
        "updated_at": TIMESTAMP, "model_budgets": {"type": "object",
                                                   "additionalProperties": NUM},
        "budget_period": enum(*periods),
    }, ("id", "name", "allowed_models", "default_provider", "fallback_providers",
        "provider_credentials", "disabled"))
    key = obj({"id": STR, "tenant_id": STR, "name": STR, "prefix": STR,
               "created_at": TIMESTAMP, "revoked_at": TIMESTAMP, "expires_at": TIMESTAMP,
               "monthly_budget_usd": NUM, "budget_period": enum(*periods)},
              ("id", "tenant_id", "name", "prefix"))
    states = ("CLOSED", "OPEN", "HALF_OPEN", "UNSPECIFIED")
    breaker = obj({"provider": STR,
                   "state": enum(*(f"CIRCUIT_BREAKER_STATE_{s}" for s in states)),
                   "requests": INT64_TEXT, "failures": INT64_TEXT,
                   "consecutive_failures": INT64_TEXT, "opened_at": TIMESTAMP,
                   "distributed": BOOL}, ("provider", "state"))
    key_states = ("READY", "RESTING", "OPEN", "UNSPECIFIED")
    pool_key = obj({"name": STR, "index": INT,
                    "state": enum(*(f"PROVIDER_KEY_STATE_{s}" for s in key_states)),
                    "weight": NUM, "requests_per_minute": INT, "tokens_per_minute": INT64_TEXT,
                    "seconds_left": NUM, "consecutive_failures": INT}, ("name", "state"))
    provider = obj({"name": STR, "type": STR, "base_url": STR, "models": arr(STR),
                    "has_api_key": BOOL, "keys": arr(pool_key)}, ("name", "type"))
    system = obj({"version": STR, "pod_name": STR, "pod_namespace": STR,
                  "started_at": TIMESTAMP, "providers": arr(STR), "model_aliases": INT,
                  "distributed_circuit_breakers": BOOL, "redis_configured": BOOL,
                  "database_configured": BOOL, "degraded": arr(STR)}, ("version",))
    price = obj({"entry": STR, "input_per_mtok": NUM, "output_per_mtok": NUM,
                 "cached_input_per_mtok": NUM, "cache_write_per_mtok": NUM}, ("entry",))
    route = obj({"name": STR, "alias": BOOL, "targets": arr(obj({
        "provider": STR, "model": STR, "weight": NUM, "price": price},
        ("provider", "model"))), "fallbacks": arr(STR), "strategy": STR,
        "hedge_after_seconds": NUM, "timeout_seconds": NUM}, ("name", "targets"))
    return {
        "TenantSpec": spec,
        "CreateApiKeyBody": proto({"tenant_id": STR, "name": STR, "ttl_seconds": {"anyOf": [
            integer(0, MAX_KEY_TTL), {"type": "string", "pattern": "^[0-9]{1,9}$"}]},
            "monthly_budget_usd": {"type": "number", "minimum": 0,
                                   "description": "The key's own budget in USD per "
                                   "budget_period, on top of its tenant's."},
            "budget_period": period_in}),
        "RotateApiKeyBody": proto({"tenant_id": STR, "key_id": STR, "name": STR}),
        "Tenant": tenant, "ApiKey": key, "CircuitBreaker": breaker,
        "TenantAnswer": obj({"tenant": ref("Tenant")}, ("tenant",)),
        "TenantList": obj({"tenants": arr(ref("Tenant"))}, ("tenants",)),
        "ApiKeyList": obj({"api_keys": arr(ref("ApiKey"))}, ("api_keys",)),
        "NewApiKey": obj({"api_key": ref("ApiKey"), "secret": STR,
                          "revoked_key_ids": arr(STR)}, ("api_key", "secret")),
        "RevokedApiKey": obj({"api_key": ref("ApiKey")}, ("api_key",)),
        "ProviderList": obj({"providers": arr(provider)}, ("providers",)),
        "CircuitBreakerList": obj({"circuit_breakers": arr(ref("CircuitBreaker"))},
                                  ("circuit_breakers",)),
        "CircuitBreakerAnswer": obj({"circuit_breaker": ref("CircuitBreaker")},
                                    ("circuit_breaker",)),
        "SystemInfo": system,
        "ModelRouteList": obj({"routes": arr(route), "default_provider": STR}, ("routes",)),
        "RequestLogPage": obj({"requests": arr(obj({
            "time": TIMESTAMP, "request_id": STR, "method": STR, "tenant_id": STR,
            "model": STR, "provider": STR, "status": STR, "latency_ms": NUM,
            "prompt_tokens": INT64_TEXT, "completion_tokens": INT64_TEXT, "cost_usd": NUM,
            "stream": BOOL}, ("request_id", "method", "model", "status"))),
            "next_page_token": STR}, ("requests",)),
        "UsageSeries": obj({"points": arr(obj({
            "time": TIMESTAMP, "key": STR, "requests": INT64_TEXT, "errors": INT64_TEXT,
            "latency_p50_ms": NUM, "latency_p95_ms": NUM, "prompt_tokens": INT64_TEXT,
            "completion_tokens": INT64_TEXT, "cost_usd": NUM}, ("time", "requests")))},
            ("points",)),
    }


# --- answers: what the routes return --------------------------------------------------------

RESPONSE_EVENTS = (
    "response.created", "response.in_progress", "response.output_item.added",
    "response.content_part.added", "response.output_text.delta", "response.output_text.done",
    "response.content_part.done", "response.function_call_arguments.delta",
    "response.function_call_arguments.done", "response.output_item.done",
    "response.completed", "response.incomplete", "response.failed", "error",
)


def answer_schemas() -> dict[str, Schema]:
    gateway = obj({"provider": STR, "model": STR, "latency_ms": NUM, "cost_usd": NUM,
                   "cache_hit": BOOL, "request_id": STR, "trace_id": opt(STR)})
    usage = obj({"prompt_tokens": INT, "completion_tokens": INT, "total_tokens": INT,
                 "prompt_tokens_details": OBJ, "completion_tokens_details": OBJ},
                ("prompt_tokens", "completion_tokens", "total_tokens"))
    finish = {"anyOf": [enum("stop", "length", "tool_calls", "content_filter",
                             "function_call"), {"type": "null"}]}
    call = obj({"id": STR, "type": const("function"),
                "function": obj({"name": STR, "arguments": STR})})
    choice = obj({"index": INT, "message": obj({
        "role": const("assistant"), "content": opt(STR), "refusal": opt(STR),
        "tool_calls": arr(call)}, ("role", "content")), "logprobs": {"type": "null"},
        "finish_reason": finish}, ("index", "message", "finish_reason"))
    completion = obj({
        "id": STR, "object": const("chat.completion"), "created": INT, "model": STR,
        "choices": arr(choice), "usage": opt(ref("Usage")),
        "system_fingerprint": opt(STR), "x_gateway": gateway,
    }, ("id", "object", "created", "model", "choices"))
    embedding = obj({"object": const("embedding"), "index": INT,
                     "embedding": {"anyOf": [arr(NUM), STR]}}, ("index", "embedding"))
    embeddings = obj({"object": const("list"), "data": arr(embedding), "model": STR,
                      "usage": obj({"prompt_tokens": INT, "total_tokens": INT}),
                      "x_gateway": OBJ}, ("object", "data", "model"))
    model = obj({"id": STR, "object": const("model"), "created": INT, "owned_by": STR,
                 "targets": arr(STR), "fallbacks": arr(STR)}, ("id", "object", "owned_by"))
    output_item = obj({"type": enum("message", "function_call"), "id": STR, "status": STR},
                      ("type", "id"))
    response = obj({
        "id": STR, "object": const("response"), "created_at": INT,
        "status": enum("in_progress", "completed", "incomplete", "failed"),
        "error": opt(obj({"code": STR, "message": STR})),
        "incomplete_details": opt(OBJ), "instructions": opt(STR),
        "max_output_tokens": opt(INT), "model": STR, "output": arr(output_item),
        "parallel_tool_calls": BOOL, "previous_response_id": opt(STR), "store": BOOL,
        "temperature": NUM, "top_p": NUM, "text": OBJ, "tools": arr(OBJ),
        "usage": opt(OBJ), "user": opt(STR), "metadata": {"type": "object",
                                                              "additionalProperties": STR},
        "x_gateway": gateway,
    }, ("id", "object", "created_at", "status", "model", "output"))
    delta_call = obj({"index": INT, "id": STR, "type": const("function"),
                      "function": obj({"name": STR, "arguments": STR})}, ("index",))
    chunk = obj({
        "id": STR, "object": const("chat.completion.chunk"), "created": INT, "model": STR,
        "choices": arr(obj({"index": INT, "delta": obj({
            "role": STR, "content": STR, "refusal": STR, "tool_calls": arr(delta_call)}),
            "logprobs": {"type": "null"}, "finish_reason": finish},
            ("index", "delta", "finish_reason"))),
        "usage": opt(ref("Usage")), "system_fingerprint": STR,
    }, ("id", "object", "created", "model", "choices"))
    chat_event = obj({
        "event": const("message"),
        "data": {"anyOf": [const("[DONE]"), {
            "type": "string", "contentMediaType": "application/json",
            "contentSchema": {"anyOf": [ref("ChatCompletionChunk"), ref("Error")]}}]},
    }, ("data",), description="`data: <chat.completion.chunk>` events, then `data: [DONE]`; "
       "a failure after the first event ends the stream with a `data: {\"error\": ...}` event.")
    response_event = obj({
        "event": enum(*RESPONSE_EVENTS),
        "data": {"type": "string", "contentMediaType": "application/json",
                 "contentSchema": obj({"type": enum(*RESPONSE_EVENTS),
                                       "sequence_number": INT, "response": ref("Response")},
                                      ("type", "sequence_number"))},
    }, ("event", "data"), description="Named events, `response.created` first and "
       "`response.completed` (or `.incomplete`, `.failed`, `error`) last; `data` is the event "
       "as JSON, its `type` the event's name.")
    error = obj({"error": obj({
        "message": STR, "type": STR, "param": opt(STR), "code": opt(STR),
        "provider": STR}, ("message", "type", "param", "code"))}, ("error",))
    return {
        "Usage": usage, "ChatCompletion": completion, "ChatCompletionChunk": chunk,
        "ChatStreamEvent": chat_event, "ResponseStreamEvent": response_event,
        "Embeddings": embeddings,
        "Model": model, "ModelList": obj({"object": const("list"), "data": arr(model)},
                                         ("object", "data")),
        "Response": response,
        "DeletedResponse": obj({"id": STR, "object": const("response"), "deleted": BOOL},
                               ("id", "object", "deleted")),
        "UsageReport": obj({
            "object": const("usage"), "tenant_id": STR, "period_start": INT,
            "requests": INT, "prompt_tokens": INT, "completion_tokens": INT,
            "total_tokens": INT, "cost_usd": NUM, "monthly_budget_usd": opt(NUM),
            "budget_used_ratio": opt(NUM), "budget_period": enum("monthly", "daily"),
            "budgets": arr(obj({
                "scope": enum("tenant", "api_key", "model"), "api_key_id": STR, "model": STR,
                "period": enum("monthly", "daily"), "period_start": INT, "budget_usd": NUM,
                "cost_usd": NUM, "requests": INT, "used_ratio": NUM},
                ("scope", "period", "period_start", "budget_usd", "cost_usd")))},
            ("object", "tenant_id", "period_start")),
        "Live": obj({"status": const("ok")}, ("status",)),
        "Readiness": obj({"status": enum("ready", "not_ready"), "reason": STR,
                          "checks": {"type": "object", "additionalProperties": STR},
                          "degraded": arr(STR)}, ("status",)),
        "Error": error,
    }
