"""Anthropic Messages API JSON <-> the `llmgateway.v1.messages` protobuf messages.

Pure converters shared by the REST facade and the gRPC core: they import nothing
from the gateway. JSON values are what `orjson.loads` gives (dicts, lists, str,
int, float, bool, None); JSON documents the protos carry as text (`*_json`) are
written with orjson.

    >>> body = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": True,
    ...         "messages": [{"role": "user", "content": "Hello"}]}
    >>> request, stream = request_from_json(body)
    >>> stream, request.messages[0].text
    (True, 'Hello')
    >>> request_to_json(request) == {k: v for k, v in body.items() if k != "stream"}
    True

Lossless: `x_to_json(x_from_json(data)) == data` (key order aside). Keys the protos
do not model travel in `extra_json`; blocks, deltas and events of types they do not
model travel whole in `other_json`. To keep a key whose value a proto field cannot
tell from its default (`"system": []`, `"cache_control": null`, `"signature": ""`,
a `null` token count, ...), `extra_json` holds that key too, with its value; a
non-default field value always wins over it when writing JSON.

Exceptions to exactness, all about keys upstreams always send:
- `usage` in a `message` object always gets all four token counts
  (`input_tokens`, `output_tokens`, `cache_creation_input_tokens`,
  `cache_read_input_tokens`); a missing one comes back as 0.
- `usage` in `message_delta` gets `output_tokens`, the other counts that are not 0,
  and the counts that were present as 0 or null (kept in `extra_json`).
- A `message` object always gets `id`, `type`, `role`, `model`, `content`,
  `stop_reason` and `stop_sequence` (null when unset); an empty `stop_reason` is null.
- `message_delta`'s `delta` always gets `stop_reason` and `stop_sequence`.
- An event of a known type with top-level keys its proto cannot hold (or an `error`
  event of another shape) travels whole in `MessageStreamEvent.other_json`.

Every value must be writable by orjson where it ends up in the document (at most
254 levels of nesting in all); otherwise `MessagesJsonError` is raised.
"""

from __future__ import annotations

from typing import Any

import orjson
from llmgateway.v1 import messages_pb2

__all__ = [
    "MessagesJsonError",
    "event_from_json",
    "event_to_json",
    "message_from_json",
    "message_to_json",
    "request_from_json",
    "request_to_json",
    "usage_from_json",
    "usage_to_json",
]

# Bounds on a request's lists, as the chat route's (each item costs reading and converting).
MAX_MESSAGES = 10_000
MAX_TOOLS = 512

_ContentBlock = messages_pb2.ContentBlock
_CacheControl = messages_pb2.CacheControl

_INT32_MAX = 2**31 - 1
_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# orjson writes at most this many nested arrays/objects.
_MAX_DEPTH = 254

_REQUIRED = "Field required"
_STR = "Input should be a valid string"
_INT = "Input should be a valid integer"
_NUM = "Input should be a valid number"
_BOOL = "Input should be a valid boolean"
_LIST = "Input should be a valid list"
_OBJ = "Input should be a valid dictionary"
_STR_OR_LIST = "Input should be a valid string or a list of content blocks"


class MessagesJsonError(ValueError):
    """JSON the converters cannot take: `param` is the dotted path of the culprit."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class _Bad(Exception):
    """A failure deep in a document; callers prepend their part of the path."""

    def __init__(self, msg: str, *path: str | int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.path: list[str | int] = list(path)

    def under(self, *prefix: str | int) -> _Bad:
        self.path[:0] = prefix
        return self


def _error(bad: _Bad) -> MessagesJsonError:
    param = ".".join(map(str, bad.path))
    return MessagesJsonError(f"{param}: {bad.msg}" if param else bad.msg, param)


def _missing_or(d: dict[str, Any], key: str, msg: str) -> _Bad:
    return _Bad(msg if key in d else _REQUIRED, key)


# --- JSON text -----------------------------------------------------------------------


def _dumps(value: Any, level: int, *path: str | int) -> str:
    """`value` as JSON text; `level` arrays/objects enclose it in the whole document."""
    try:
        text = orjson.dumps(value)
        # n nested levels take 2n characters: a short text cannot be too deep.
        if len(text) >= 2 * (_MAX_DEPTH - level + 1):
            wrapped = value
            for _ in range(level):
                wrapped = (wrapped,)
            orjson.dumps(wrapped)
    except orjson.JSONEncodeError as exc:
        raise _Bad(f"Input cannot be written as JSON: {exc}", *path) from None
    return text.decode()


def _extra(d: dict[str, Any], known: frozenset[str], keep: list[str] | None, level: int) -> str:
    """The keys of `d` not modelled (unknown, or kept for their presence), as JSON text."""
    if keep:
        rest = {k: v for k, v in d.items() if k not in known or k in keep}
    else:
        rest = {k: v for k, v in d.items() if k not in known}
    return _dumps(rest, level) if rest else ""


def _loads(text: str, field: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise _Bad(f"Invalid JSON text: {exc}", field) from None


def _loads_obj(text: str, field: str) -> dict[str, Any]:
    value = _loads(text, field)
    if type(value) is not dict:
        raise _Bad("Should be a JSON object", field)
    return value


def _merge(d: dict[str, Any], extra: str) -> dict[str, Any]:
    """Adds the keys of `extra` (JSON text) that `d` does not have."""
    for k, v in _loads_obj(extra, "extra_json").items():
        if k not in d:
            d[k] = v
    return d


def _int(value: Any, low: int, high: int, key: str) -> int:
    # A whole number written as a float (1024.0) is an integer, as Anthropic reads it.
    number: int
    if type(value) is int:
        number = value
    elif type(value) is float and value.is_integer():
        number = int(value)
    else:
        raise _Bad(_INT, key)
    if number < low:
        raise _Bad(f"Input should be greater than or equal to {low}", key)
    if number > high:
        raise _Bad(f"Input should be less than or equal to {high}", key)
    return number


# --- Content blocks ------------------------------------------------------------------

_TEXT_KEYS = frozenset(("type", "text", "cache_control"))
_MEDIA_KEYS = frozenset(("type", "source", "cache_control"))
_TOOL_USE_KEYS = frozenset(("type", "id", "name", "input", "cache_control"))
_TOOL_RESULT_KEYS = frozenset(("type", "tool_use_id", "content", "is_error", "cache_control"))
_THINKING_KEYS = frozenset(("type", "thinking", "signature", "cache_control"))
_REDACTED_KEYS = frozenset(("type", "data", "cache_control"))
_CACHE_KEYS = frozenset(("type", "ttl"))
_SOURCE_KEYS = frozenset(("type", "media_type", "data", "url", "file_id", "content"))
_SOURCE_STRS = ("media_type", "data", "url", "file_id")


def _read_cache_control(cc: Any, m: messages_pb2.CacheControl, level: int) -> None:
    if type(cc) is not dict:
        raise _Bad(_OBJ)
    t = cc.get("type")
    if type(t) is not str:
        raise _missing_or(cc, "type", _STR)
    m.type = t
    n = 1
    keep = None
    if "ttl" in cc:
        ttl = cc["ttl"]
        if type(ttl) is not str:
            raise _Bad(_STR, "ttl")
        if ttl:
            m.ttl = ttl
            n = 2
        else:
            keep = ["ttl"]
    if len(cc) > n:
        m.extra_json = _extra(cc, _CACHE_KEYS, keep, level)


def _cache_control_json(m: messages_pb2.CacheControl) -> dict[str, Any]:
    d: dict[str, Any] = {"type": m.type}
    if m.ttl:
        d["ttl"] = m.ttl
    if m.extra_json:
        _merge(d, m.extra_json)
    return d


def _read_source(src: Any, m: messages_pb2.MediaSource, level: int) -> None:
    if type(src) is not dict:
        raise _Bad(_OBJ)
    t = src.get("type")
    if type(t) is not str:
        raise _missing_or(src, "type", _STR)
    m.type = t
    n = 1
    keep: list[str] | None = None
    for key in _SOURCE_STRS:
        if key in src:
            v = src[key]
            if type(v) is not str:
                raise _Bad(_STR, key)
            if v:
                setattr(m, key, v)
                n += 1
            elif keep is None:
                keep = [key]
            else:
                keep.append(key)
    if "content" in src:
        m.content_json = _dumps(src["content"], level + 1, "content")
        n += 1
    if len(src) > n:
        m.extra_json = _extra(src, _SOURCE_KEYS, keep, level)


def _source_json(m: messages_pb2.MediaSource) -> dict[str, Any]:
    d: dict[str, Any] = {"type": m.type}
    if m.media_type:
        d["media_type"] = m.media_type
    if m.data:
        d["data"] = m.data
    if m.url:
        d["url"] = m.url
    if m.file_id:
        d["file_id"] = m.file_id
    if m.content_json:
        d["content"] = _loads(m.content_json, "content_json")
    if m.extra_json:
        _merge(d, m.extra_json)
    return d


def _read_block(b: Any, cb: messages_pb2.ContentBlock, req: bool, inner: bool, level: int) -> None:
    """Fills `cb` from the block object `b` at `level`.

    `req`: a request's block (a thinking block needs its signature). `inner`: a block
    in a tool_result's content, where only text, image and document are modelled.
    """
    if type(b) is not dict:
        raise _Bad(_OBJ)
    t = b.get("type")
    if type(t) is not str:
        raise _missing_or(b, "type", _STR)
    keep: list[str] | None = None
    if t == "text":
        v = b.get("text")
        if type(v) is not str:
            raise _missing_or(b, "text", _STR)
        cb.text.text = v
        n = 2
        known = _TEXT_KEYS
    elif t == "image" or t == "document":
        try:
            _read_source(
                b.get("source"), (cb.image if t == "image" else cb.document).source, level + 1
            )
        except _Bad as bad:
            if "source" not in b:
                bad.msg = _REQUIRED
            raise bad.under("source") from None
        n = 2
        known = _MEDIA_KEYS
    elif t == "tool_use" and not inner:
        tu = cb.tool_use
        v = b.get("id")
        if type(v) is not str:
            raise _missing_or(b, "id", _STR)
        tu.id = v
        v = b.get("name")
        if type(v) is not str:
            raise _missing_or(b, "name", _STR)
        tu.name = v
        v = b.get("input")
        if type(v) is not dict:
            raise _missing_or(b, "input", _OBJ)
        tu.input_json = _dumps(v, level + 1, "input")
        n = 4
        known = _TOOL_USE_KEYS
    elif t == "tool_result" and not inner:
        tr = cb.tool_result
        v = b.get("tool_use_id")
        if type(v) is not str:
            raise _missing_or(b, "tool_use_id", _STR)
        tr.tool_use_id = v
        n = 2
        if "content" in b:
            c = b["content"]
            if type(c) is str:
                tr.text = c
                n = 3
            elif type(c) is list:
                if c:
                    add = tr.content.add
                    for j, x in enumerate(c):
                        try:
                            _read_block(x, add(), req, True, level + 2)
                        except _Bad as bad:
                            raise bad.under("content", j) from None
                    n = 3
                else:
                    keep = ["content"]
            else:
                raise _Bad(_STR_OR_LIST, "content")
        if "is_error" in b:
            v = b["is_error"]
            if type(v) is not bool:
                raise _Bad(_BOOL, "is_error")
            tr.is_error = v
            n += 1
        known = _TOOL_RESULT_KEYS
    elif t == "thinking" and not inner:
        th = cb.thinking
        v = b.get("thinking")
        if type(v) is not str:
            raise _missing_or(b, "thinking", _STR)
        th.thinking = v
        n = 2
        if "signature" in b:
            v = b["signature"]
            if type(v) is not str:
                raise _Bad(_STR, "signature")
            if v:
                th.signature = v
                n = 3
            else:
                keep = ["signature"]
        elif req:
            raise _Bad(_REQUIRED, "signature")
        known = _THINKING_KEYS
    elif t == "redacted_thinking" and not inner:
        v = b.get("data")
        if type(v) is not str:
            raise _missing_or(b, "data", _STR)
        cb.redacted_thinking.data = v
        n = 2
        known = _REDACTED_KEYS
    else:
        cb.other_json = _dumps(b, level)
        return
    if "cache_control" in b:
        cc = b["cache_control"]
        if cc is None:
            if keep is None:
                keep = ["cache_control"]
            else:
                keep.append("cache_control")
        else:
            try:
                _read_cache_control(cc, cb.cache_control, level + 1)
            except _Bad as bad:
                raise bad.under("cache_control") from None
            n += 1
    if len(b) > n:
        cb.extra_json = _extra(b, known, keep, level)


def _block_json(cb: messages_pb2.ContentBlock) -> dict[str, Any]:
    kind = cb.WhichOneof("block")
    d: dict[str, Any]
    if kind == "text":
        d = {"type": "text", "text": cb.text.text}
    elif kind == "tool_use":
        tu = cb.tool_use
        d = {"type": "tool_use", "id": tu.id, "name": tu.name}
        if tu.input_json:
            d["input"] = _loads(tu.input_json, "tool_use.input_json")
    elif kind == "tool_result":
        tr = cb.tool_result
        d = {"type": "tool_result", "tool_use_id": tr.tool_use_id}
        if tr.HasField("text"):
            d["content"] = tr.text
        elif tr.content:
            content = []
            for j, x in enumerate(tr.content):
                try:
                    content.append(_block_json(x))
                except _Bad as bad:
                    raise bad.under("tool_result", "content", j) from None
            d["content"] = content
        if tr.HasField("is_error"):
            d["is_error"] = tr.is_error
    elif kind == "thinking":
        th = cb.thinking
        d = {"type": "thinking", "thinking": th.thinking}
        if th.signature:
            d["signature"] = th.signature
    elif kind == "image" or kind == "document":
        try:
            d = {"type": kind, "source": _source_json(getattr(cb, kind).source)}
        except _Bad as bad:
            raise bad.under(kind, "source") from None
    elif kind == "redacted_thinking":
        d = {"type": "redacted_thinking", "data": cb.redacted_thinking.data}
    elif kind == "other_json":
        d = _loads_obj(cb.other_json, "other_json")
    else:
        raise _Bad("A content block needs one of its kinds set")
    if cb.HasField("cache_control"):
        try:
            d["cache_control"] = _cache_control_json(cb.cache_control)
        except _Bad as bad:
            raise bad.under("cache_control") from None
    if cb.extra_json:
        _merge(d, cb.extra_json)
    return d


def _read_blocks(blocks: list[Any], into: Any, req: bool, level: int, *path: str | int) -> None:
    add = into.add
    for j, b in enumerate(blocks):
        try:
            _read_block(b, add(), req, False, level)
        except _Bad as bad:
            raise bad.under(*path, j) from None


def _blocks_json(blocks: Any, *path: str | int) -> list[dict[str, Any]]:
    out = []
    for j, cb in enumerate(blocks):
        try:
            out.append(_block_json(cb))
        except _Bad as bad:
            raise bad.under(*path, j) from None
    return out


# --- Requests ------------------------------------------------------------------------

_REQUEST_KEYS = frozenset(
    (
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "thinking",
        "stream",
    )
)
# count_tokens has no `stream`: there it is one more key the gateway does not model.
_COUNT_TOKENS_KEYS = _REQUEST_KEYS - {"stream"}
_MESSAGE_KEYS = frozenset(("role", "content"))
_TOOL_KEYS = frozenset(("name", "type", "description", "input_schema", "cache_control"))
_TOOL_CHOICE_KEYS = frozenset(("type", "name", "disable_parallel_tool_use"))
_TOOL_CHOICE_TYPES = frozenset(("auto", "any", "tool", "none"))
_THINKING_CONFIG_KEYS = frozenset(("type", "budget_tokens"))
_METADATA_KEYS = frozenset(("user_id",))


def _read_input_message(m: Any, msg: messages_pb2.InputMessage) -> None:
    if type(m) is not dict:
        raise _Bad(_OBJ)
    role = m.get("role")
    if role != "user" and role != "assistant":
        raise _missing_or(m, "role", "Input should be 'user' or 'assistant'")
    msg.role = role
    c = m.get("content")
    if type(c) is str:
        msg.text = c
    elif type(c) is list:
        if c:
            _read_blocks(c, msg.content, True, 4, "content")
    else:
        raise _missing_or(m, "content", _STR_OR_LIST)
    if len(m) > 2:
        msg.extra_json = _extra(m, _MESSAGE_KEYS, None, 2)


def _read_tool(t: Any, m: messages_pb2.MessageTool) -> None:
    if type(t) is not dict:
        raise _Bad(_OBJ)
    v = t.get("name")
    if type(v) is not str:
        raise _missing_or(t, "name", _STR)
    m.name = v
    n = 1
    keep: list[str] | None = None
    if "type" in t:
        v = t["type"]
        if v is None or v == "":
            keep = ["type"]
        elif type(v) is str:
            m.type = v
            n = 2
        else:
            raise _Bad(_STR, "type")
    custom = not m.type or m.type == "custom"
    if "input_schema" in t:
        v = t["input_schema"]
        if custom and type(v) is not dict:
            raise _Bad(_OBJ, "input_schema")
        m.input_schema_json = _dumps(v, 3, "input_schema")
        n += 1
    elif custom:
        raise _Bad(_REQUIRED, "input_schema")
    if "description" in t:
        v = t["description"]
        if type(v) is not str:
            raise _Bad(_STR, "description")
        if v:
            m.description = v
            n += 1
        elif keep is None:
            keep = ["description"]
        else:
            keep.append("description")
    if "cache_control" in t:
        v = t["cache_control"]
        if v is None:
            if keep is None:
                keep = ["cache_control"]
            else:
                keep.append("cache_control")
        else:
            try:
                _read_cache_control(v, m.cache_control, 3)
            except _Bad as bad:
                raise bad.under("cache_control") from None
            n += 1
    if len(t) > n:
        m.extra_json = _extra(t, _TOOL_KEYS, keep, 2)


def _tool_json(m: messages_pb2.MessageTool) -> dict[str, Any]:
    d: dict[str, Any] = {"name": m.name}
    if m.type:
        d["type"] = m.type
    if m.description:
        d["description"] = m.description
    if m.input_schema_json:
        d["input_schema"] = _loads(m.input_schema_json, "input_schema_json")
    if m.HasField("cache_control"):
        d["cache_control"] = _cache_control_json(m.cache_control)
    if m.extra_json:
        _merge(d, m.extra_json)
    return d


def _read_tool_choice(tc: Any, m: messages_pb2.MessageToolChoice) -> None:
    if type(tc) is not dict:
        raise _Bad(_OBJ)
    t = tc.get("type")
    if type(t) is not str or t not in _TOOL_CHOICE_TYPES:
        raise _missing_or(tc, "type", "Input should be 'auto', 'any', 'tool' or 'none'")
    m.type = t
    n = 1
    if t == "tool":
        v = tc.get("name")
        if type(v) is not str:
            raise _missing_or(tc, "name", _STR)
        m.name = v
        n = 2
    if "disable_parallel_tool_use" in tc:
        v = tc["disable_parallel_tool_use"]
        if type(v) is not bool:
            raise _Bad(_BOOL, "disable_parallel_tool_use")
        m.disable_parallel_tool_use = v
        n += 1
    if len(tc) > n:
        # `name` is modelled for type "tool" only.
        known = _TOOL_CHOICE_KEYS if t == "tool" else _TOOL_CHOICE_KEYS - {"name"}
        m.extra_json = _extra(tc, known, None, 1)


def _tool_choice_json(m: messages_pb2.MessageToolChoice) -> dict[str, Any]:
    d: dict[str, Any] = {"type": m.type}
    if m.type == "tool":
        d["name"] = m.name
    if m.HasField("disable_parallel_tool_use"):
        d["disable_parallel_tool_use"] = m.disable_parallel_tool_use
    if m.extra_json:
        _merge(d, m.extra_json)
    return d


def _read_thinking(th: Any, m: messages_pb2.ThinkingConfig) -> None:
    if type(th) is not dict:
        raise _Bad(_OBJ)
    t = th.get("type")
    if type(t) is not str:
        raise _missing_or(th, "type", _STR)
    m.type = t
    n = 1
    if "budget_tokens" in th:
        m.budget_tokens = _int(
            th["budget_tokens"], 1024 if t == "enabled" else 0, _INT32_MAX, "budget_tokens"
        )
        n = 2
    elif t == "enabled":
        raise _Bad(_REQUIRED, "budget_tokens")
    if len(th) > n:
        m.extra_json = _extra(th, _THINKING_CONFIG_KEYS, None, 1)


def _read_metadata(md: Any, m: messages_pb2.MessageMetadata) -> None:
    if type(md) is not dict:
        raise _Bad(_OBJ)
    n = 0
    keep = None
    if "user_id" in md:
        v = md["user_id"]
        if type(v) is str:
            m.user_id = v
            n = 1
        elif v is None:
            keep = ["user_id"]
        else:
            raise _Bad(_STR, "user_id")
    if len(md) > n:
        m.extra_json = _extra(md, _METADATA_KEYS, keep, 1)
    else:
        m.SetInParent()


def _read_request(
    body: dict[str, Any], count_tokens: bool
) -> tuple[messages_pb2.MessagesRequest, bool]:
    r = messages_pb2.MessagesRequest()
    keep: list[str] | None = None
    get = body.get

    v = get("model")
    if type(v) is not str:
        raise _missing_or(body, "model", _STR)
    if not v:
        raise _Bad("String should have at least 1 character", "model")
    r.model = v
    n = 1

    if "max_tokens" in body:
        r.max_tokens = _int(body["max_tokens"], 1, _INT32_MAX, "max_tokens")
        n += 1
    elif not count_tokens:
        raise _Bad(_REQUIRED, "max_tokens")

    msgs = get("messages")
    if type(msgs) is not list:
        raise _missing_or(body, "messages", _LIST)
    if len(msgs) > MAX_MESSAGES:
        raise _Bad(f"List should have at most {MAX_MESSAGES} items", "messages")
    add = r.messages.add
    for i, m in enumerate(msgs):
        try:
            _read_input_message(m, add())
        except _Bad as bad:
            raise bad.under("messages", i) from None
    n += 1

    stream = False
    if not count_tokens and "stream" in body:
        stream = body["stream"]
        if type(stream) is not bool:
            raise _Bad(_BOOL, "stream")
        n += 1

    if "system" in body:
        v = body["system"]
        if type(v) is str:
            r.system_text = v
            n += 1
        elif type(v) is list:
            if v:
                add_system = r.system.add
                for j, b in enumerate(v):
                    if type(b) is dict and b.get("type") != "text":
                        raise _missing_or(b, "type", "Input should be 'text'").under("system", j)
                    try:
                        _read_block(b, add_system(), True, True, 2)
                    except _Bad as bad:
                        raise bad.under("system", j) from None
                n += 1
            else:
                keep = ["system"]
        else:
            raise _Bad("Input should be a valid string or a list of text blocks", "system")

    if "tools" in body:
        v = body["tools"]
        if type(v) is not list:
            raise _Bad(_LIST, "tools")
        if len(v) > MAX_TOOLS:
            raise _Bad(f"List should have at most {MAX_TOOLS} items", "tools")
        r.has_tools = True
        add_tool = r.tools.add
        for j, t in enumerate(v):
            try:
                _read_tool(t, add_tool())
            except _Bad as bad:
                raise bad.under("tools", j) from None
        n += 1

    if "tool_choice" in body:
        try:
            _read_tool_choice(body["tool_choice"], r.tool_choice)
        except _Bad as bad:
            raise bad.under("tool_choice") from None
        n += 1

    if "stop_sequences" in body:
        v = body["stop_sequences"]
        if type(v) is not list:
            raise _Bad(_LIST, "stop_sequences")
        if v:
            for j, s in enumerate(v):
                if type(s) is not str:
                    raise _Bad(_STR, "stop_sequences", j)
            r.stop_sequences.extend(v)
            n += 1
        elif keep is None:
            keep = ["stop_sequences"]
        else:
            keep.append("stop_sequences")

    if "temperature" in body:
        v = body["temperature"]
        if type(v) is not float and type(v) is not int:
            raise _Bad(_NUM, "temperature")
        r.temperature = v
        n += 1
    if "top_p" in body:
        v = body["top_p"]
        if type(v) is not float and type(v) is not int:
            raise _Bad(_NUM, "top_p")
        r.top_p = v
        n += 1
    if "top_k" in body:
        r.top_k = _int(body["top_k"], 0, _INT32_MAX, "top_k")
        n += 1

    if "metadata" in body:
        try:
            _read_metadata(body["metadata"], r.metadata)
        except _Bad as bad:
            raise bad.under("metadata") from None
        n += 1
    if "thinking" in body:
        try:
            _read_thinking(body["thinking"], r.thinking)
        except _Bad as bad:
            raise bad.under("thinking") from None
        n += 1

    if len(body) > n:
        known = _COUNT_TOKENS_KEYS if count_tokens else _REQUEST_KEYS
        r.extra_json = _extra(body, known, keep, 0)
    return r, stream


def request_from_json(
    body: Any, *, count_tokens: bool = False
) -> tuple[messages_pb2.MessagesRequest, bool]:
    """The request in the parsed JSON `body` of `POST /v1/messages`, and its `stream`.

    With `count_tokens`, `body` is one of `POST /v1/messages/count_tokens`: `max_tokens`
    is optional and `stream` is a key like any other the gateway does not model.
    Raises MessagesJsonError for a body Anthropic's API would refuse with a 400.
    """
    if type(body) is not dict:
        raise MessagesJsonError("The request body should be a JSON object", "")
    try:
        return _read_request(body, count_tokens)
    except _Bad as bad:
        raise _error(bad) from None
    except UnicodeEncodeError:
        raise MessagesJsonError("Strings should be valid UTF-8 text", "") from None


def request_to_json(request: messages_pb2.MessagesRequest) -> dict[str, Any]:
    """The JSON body of `request` (without `stream`).

    Raises MessagesJsonError, `param` naming the proto field, when a `*_json` field
    does not hold the JSON it should.
    """
    try:
        return _request_json(request)
    except _Bad as bad:
        raise _error(bad) from None


def _request_json(r: messages_pb2.MessagesRequest) -> dict[str, Any]:
    d: dict[str, Any] = {"model": r.model}
    if r.max_tokens:
        d["max_tokens"] = r.max_tokens
    if r.HasField("system_text"):
        d["system"] = r.system_text
    elif r.system:
        d["system"] = _blocks_json(r.system, "system")
    messages = []
    for i, m in enumerate(r.messages):
        if m.HasField("text"):
            md: dict[str, Any] = {"role": m.role, "content": m.text}
        else:
            md = {"role": m.role, "content": _blocks_json(m.content, "messages", i, "content")}
        if m.extra_json:
            try:
                _merge(md, m.extra_json)
            except _Bad as bad:
                raise bad.under("messages", i) from None
        messages.append(md)
    d["messages"] = messages
    if r.has_tools or r.tools:
        tools = []
        for j, t in enumerate(r.tools):
            try:
                tools.append(_tool_json(t))
            except _Bad as bad:
                raise bad.under("tools", j) from None
        d["tools"] = tools
    if r.HasField("tool_choice"):
        try:
            d["tool_choice"] = _tool_choice_json(r.tool_choice)
        except _Bad as bad:
            raise bad.under("tool_choice") from None
    if r.stop_sequences:
        d["stop_sequences"] = list(r.stop_sequences)
    if r.HasField("temperature"):
        d["temperature"] = r.temperature
    if r.HasField("top_p"):
        d["top_p"] = r.top_p
    if r.HasField("top_k"):
        d["top_k"] = r.top_k
    if r.HasField("metadata"):
        mm = r.metadata
        meta: dict[str, Any] = {}
        if mm.HasField("user_id"):
            meta["user_id"] = mm.user_id
        if mm.extra_json:
            try:
                _merge(meta, mm.extra_json)
            except _Bad as bad:
                raise bad.under("metadata") from None
        d["metadata"] = meta
    if r.HasField("thinking"):
        th = r.thinking
        think: dict[str, Any] = {"type": th.type}
        if th.HasField("budget_tokens"):
            think["budget_tokens"] = th.budget_tokens
        if th.extra_json:
            try:
                _merge(think, th.extra_json)
            except _Bad as bad:
                raise bad.under("thinking") from None
        d["thinking"] = think
    if r.extra_json:
        _merge(d, r.extra_json)
    return d


# --- Usage ---------------------------------------------------------------------------

_USAGE_KEYS = frozenset(
    ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
)


def _read_usage(u: Any, m: messages_pb2.MessageUsage, delta: bool, level: int) -> None:
    """Fills `m` from the usage object `u`; `delta`: the usage of a `message_delta`.

    A count that `_usage_json` would not write back as it was (null; 0 in a delta,
    where zeros are left out) is kept in extra_json too.
    """
    if type(u) is not dict:
        raise _Bad(_OBJ)
    n = 0
    keep: list[str] | None = None
    for key in _USAGE_KEYS:
        if key in u:
            v = u[key]
            if type(v) is int and _INT64_MIN <= v <= _INT64_MAX:
                if v or not delta or key == "output_tokens":
                    setattr(m, key, v)
                    n += 1
                    continue
            elif v is not None:
                raise _Bad(_INT, key)
            if keep is None:
                keep = [key]
            else:
                keep.append(key)
    if len(u) > n:
        m.extra_json = _extra(u, _USAGE_KEYS, keep, level)
    else:
        m.SetInParent()


def _usage_json(m: messages_pb2.MessageUsage, delta: bool) -> dict[str, Any]:
    d = _loads_obj(m.extra_json, "usage.extra_json") if m.extra_json else {}
    v = m.input_tokens
    if v or (not delta and "input_tokens" not in d):
        d["input_tokens"] = v
    v = m.cache_creation_input_tokens
    if v or (not delta and "cache_creation_input_tokens" not in d):
        d["cache_creation_input_tokens"] = v
    v = m.cache_read_input_tokens
    if v or (not delta and "cache_read_input_tokens" not in d):
        d["cache_read_input_tokens"] = v
    v = m.output_tokens
    if v or "output_tokens" not in d:
        d["output_tokens"] = v
    return d


def usage_from_json(data: Any) -> messages_pb2.MessageUsage:
    """The `usage` object of a `message`."""
    m = messages_pb2.MessageUsage()
    try:
        _read_usage(data, m, False, 0)
    except _Bad as bad:
        raise _error(bad) from None
    return m


def usage_to_json(usage: messages_pb2.MessageUsage) -> dict[str, Any]:
    """A `message`'s `usage`: always the four token counts, then the other keys."""
    try:
        return _usage_json(usage, False)
    except _Bad as bad:
        raise _error(bad) from None


# --- Messages (answers) --------------------------------------------------------------

_ASSISTANT_KEYS = frozenset(
    ("id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage")
)


def _read_message(data: Any, m: messages_pb2.AssistantMessage, level: int) -> None:
    if type(data) is not dict:
        raise _Bad(_OBJ)
    n = 0
    for key in ("id", "role", "model"):
        v = data.get(key)
        if type(v) is str:
            setattr(m, key, v)
            n += 1
        elif key in data:
            raise _Bad(_STR, key)
    if "type" in data:
        if data["type"] != "message":
            raise _Bad("Input should be 'message'", "type")
        n += 1
    if "content" in data:
        c = data["content"]
        if type(c) is not list:
            raise _Bad(_LIST, "content")
        _read_blocks(c, m.content, False, level + 2, "content")
        n += 1
    if "stop_reason" in data:
        v = data["stop_reason"]
        if type(v) is str:
            m.stop_reason = v
        elif v is not None:
            raise _Bad(_STR, "stop_reason")
        n += 1
    if "stop_sequence" in data:
        v = data["stop_sequence"]
        if type(v) is str:
            m.stop_sequence = v
        elif v is not None:
            raise _Bad(_STR, "stop_sequence")
        n += 1
    if "usage" in data:
        try:
            _read_usage(data["usage"], m.usage, False, level + 1)
        except _Bad as bad:
            raise bad.under("usage") from None
        n += 1
    if len(data) > n:
        m.extra_json = _extra(data, _ASSISTANT_KEYS, None, level)


def _message_json(m: messages_pb2.AssistantMessage) -> dict[str, Any]:
    d: dict[str, Any] = {
        "id": m.id,
        "type": "message",
        "role": m.role or "assistant",
        "model": m.model,
        "content": _blocks_json(m.content, "content"),
        "stop_reason": m.stop_reason or None,
        "stop_sequence": m.stop_sequence if m.HasField("stop_sequence") else None,
        "usage": _usage_json(m.usage, False),
    }
    if m.extra_json:
        _merge(d, m.extra_json)
    return d


def message_from_json(data: Any) -> messages_pb2.AssistantMessage:
    """An upstream's `message` object (a non-streamed answer)."""
    m = messages_pb2.AssistantMessage()
    try:
        _read_message(data, m, 0)
    except _Bad as bad:
        raise _error(bad) from None
    except UnicodeEncodeError:
        raise MessagesJsonError("Strings should be valid UTF-8 text", "") from None
    return m


def message_to_json(message: messages_pb2.AssistantMessage) -> dict[str, Any]:
    """The `message` object of `message`, with `"type": "message"`."""
    try:
        return _message_json(message)
    except _Bad as bad:
        raise _error(bad) from None


# --- Stream events -------------------------------------------------------------------

_DELTA_TEXT_KEYS = frozenset(("type", "text"))
_DELTA_JSON_KEYS = frozenset(("type", "partial_json"))
_DELTA_THINKING_KEYS = frozenset(("type", "thinking"))
_DELTA_SIGNATURE_KEYS = frozenset(("type", "signature"))
_MESSAGE_DELTA_KEYS = frozenset(("stop_reason", "stop_sequence"))
# The delta types the proto models: type -> (field, keys).
_DELTAS = {
    "text_delta": ("text", _DELTA_TEXT_KEYS),
    "input_json_delta": ("partial_json", _DELTA_JSON_KEYS),
    "thinking_delta": ("thinking", _DELTA_THINKING_KEYS),
    "signature_delta": ("signature", _DELTA_SIGNATURE_KEYS),
}
_DELTA_TYPES = {field: t for t, (field, _) in _DELTAS.items()}
# The keys an event of each type may have to be read into its proto message; an
# event with others travels whole in other_json.
_BLOCK_DELTA_EVENT_KEYS = frozenset(("type", "index", "delta"))
_BLOCK_START_EVENT_KEYS = frozenset(("type", "index", "content_block"))
_BLOCK_STOP_EVENT_KEYS = frozenset(("type", "index"))
_MESSAGE_START_EVENT_KEYS = frozenset(("type", "message"))
_MESSAGE_DELTA_EVENT_KEYS = frozenset(("type", "delta", "usage"))


def _index(data: dict[str, Any]) -> int:
    if "index" not in data:
        raise _Bad(_REQUIRED, "index")
    return _int(data["index"], 0, _INT32_MAX, "index")


def _read_block_delta(delta: Any, bd: messages_pb2.BlockDelta) -> None:
    if type(delta) is not dict:
        raise _Bad(_OBJ)
    t = delta.get("type")
    if type(t) is not str:
        raise _missing_or(delta, "type", _STR)
    known = _DELTAS.get(t)
    if known is None:
        bd.other_json = _dumps(delta, 1)
        return
    field, keys = known
    v = delta.get(field)
    if type(v) is not str:
        raise _missing_or(delta, field, _STR)
    setattr(bd, field, v)
    if len(delta) > 2:
        bd.extra_json = _extra(delta, keys, None, 1)


def _read_event(data: dict[str, Any], t: str, e: messages_pb2.MessageStreamEvent) -> None:
    keys = data.keys()
    if t == "content_block_delta" and keys <= _BLOCK_DELTA_EVENT_KEYS:
        cd = e.content_block_delta
        cd.index = _index(data)
        try:
            _read_block_delta(data.get("delta"), cd.delta)
        except _Bad as bad:
            if "delta" not in data:
                bad.msg = _REQUIRED
            raise bad.under("delta") from None
    elif t == "content_block_start" and keys <= _BLOCK_START_EVENT_KEYS:
        cs = e.content_block_start
        cs.index = _index(data)
        try:
            _read_block(data.get("content_block"), cs.content_block, False, False, 1)
        except _Bad as bad:
            if "content_block" not in data:
                bad.msg = _REQUIRED
            raise bad.under("content_block") from None
    elif t == "content_block_stop" and keys <= _BLOCK_STOP_EVENT_KEYS:
        e.content_block_stop.index = _index(data)
    elif t == "message_start" and keys <= _MESSAGE_START_EVENT_KEYS:
        try:
            _read_message(data.get("message"), e.message_start, 1)
        except _Bad as bad:
            if "message" not in data:
                bad.msg = _REQUIRED
            raise bad.under("message") from None
    elif t == "message_delta" and keys <= _MESSAGE_DELTA_EVENT_KEYS:
        md = e.message_delta
        md.SetInParent()
        delta = data.get("delta")
        if type(delta) is not dict:
            raise _missing_or(data, "delta", _OBJ)
        n = 0
        for key in ("stop_reason", "stop_sequence"):
            if key in delta:
                v = delta[key]
                if type(v) is str:
                    setattr(md, key, v)
                elif v is not None:
                    raise _Bad(_STR, "delta", key)
                n += 1
        if len(delta) > n:
            md.extra_json = _extra(delta, _MESSAGE_DELTA_KEYS, None, 1)
        if "usage" in data:
            try:
                _read_usage(data["usage"], md.usage, True, 1)
            except _Bad as bad:
                raise bad.under("usage") from None
    elif (t == "message_stop" or t == "ping") and len(data) == 1:
        (e.message_stop if t == "message_stop" else e.ping).SetInParent()
    elif t == "error" and len(data) == 2 and _is_plain_error(data.get("error")):
        err = data["error"]
        se = e.error
        se.type = err["type"]
        se.message = err["message"]
    else:
        e.other_json = _dumps(data, 0)


def _is_plain_error(err: Any) -> bool:
    return (
        type(err) is dict
        and len(err) == 2
        and type(err.get("type")) is str
        and type(err.get("message")) is str
    )


def event_from_json(data: Any) -> messages_pb2.MessageStreamEvent:
    """One server-sent event's data object (which has a `type`)."""
    if type(data) is not dict:
        raise MessagesJsonError("An event should be a JSON object", "")
    t = data.get("type")
    if type(t) is not str:
        raise _error(_missing_or(data, "type", _STR))
    e = messages_pb2.MessageStreamEvent()
    try:
        _read_event(data, t, e)
    except _Bad as bad:
        raise _error(bad) from None
    except UnicodeEncodeError:
        raise MessagesJsonError("Strings should be valid UTF-8 text", "") from None
    return e


def event_to_json(event: messages_pb2.MessageStreamEvent) -> tuple[str, dict[str, Any]]:
    """The SSE event name of `event` and its data object (with `type`)."""
    try:
        return _event_json(event)
    except _Bad as bad:
        raise _error(bad) from None


def _event_json(e: messages_pb2.MessageStreamEvent) -> tuple[str, dict[str, Any]]:
    kind = e.WhichOneof("event")
    if kind == "content_block_delta":
        cd = e.content_block_delta
        bd = cd.delta
        dk = bd.WhichOneof("delta")
        if dk == "other_json":
            delta = _loads_obj(bd.other_json, "content_block_delta.delta.other_json")
        elif dk is None:
            raise _Bad("A delta needs one of its kinds set", "content_block_delta", "delta")
        else:
            delta = {"type": _DELTA_TYPES[dk], dk: getattr(bd, dk)}
        if bd.extra_json:
            try:
                _merge(delta, bd.extra_json)
            except _Bad as bad:
                raise bad.under("content_block_delta", "delta") from None
        return kind, {"type": kind, "index": cd.index, "delta": delta}
    if kind == "content_block_start":
        cs = e.content_block_start
        try:
            block = _block_json(cs.content_block)
        except _Bad as bad:
            raise bad.under(kind, "content_block") from None
        return kind, {"type": kind, "index": cs.index, "content_block": block}
    if kind == "content_block_stop":
        return kind, {"type": kind, "index": e.content_block_stop.index}
    if kind == "message_start":
        try:
            message = _message_json(e.message_start)
        except _Bad as bad:
            raise bad.under(kind) from None
        return kind, {"type": kind, "message": message}
    if kind == "message_delta":
        md = e.message_delta
        stop: dict[str, Any] = {
            "stop_reason": md.stop_reason or None,
            "stop_sequence": md.stop_sequence if md.HasField("stop_sequence") else None,
        }
        try:
            if md.extra_json:
                _merge(stop, md.extra_json)
            out: dict[str, Any] = {"type": kind, "delta": stop}
            if md.HasField("usage"):
                out["usage"] = _usage_json(md.usage, True)
        except _Bad as bad:
            raise bad.under(kind) from None
        return kind, out
    if kind == "message_stop" or kind == "ping":
        return kind, {"type": kind}
    if kind == "error":
        return kind, {"type": kind, "error": {"type": e.error.type, "message": e.error.message}}
    if kind == "other_json":
        data = _loads_obj(e.other_json, "other_json")
        t = data.get("type")
        if type(t) is not str:
            raise _Bad("An event needs a string `type`", "other_json")
        return t, data
    raise _Bad("An event needs one of its kinds set")
