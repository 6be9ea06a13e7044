"""Logging setup: JSON lines (default) or text, level from config.

Request lines are emitted by the service interceptor with ``extra={"fields": ...}``;
the JSON formatter merges those fields into the line.

Log lines repeat what callers sent (a model name, a token's tenant claim), so neither format
lets that text start a line of its own: JSON escapes it; the text format escapes line breaks
and control characters in the message and fields, and indents the lines of a traceback, so
every line at column 0 is a record the gateway wrote. grpc's complaint about each piece of
client metadata that is not UTF-8 (an ERROR with a traceback, several per request, at any
client's will) is dropped: the call goes on without that value.

Only the gateway's own loggers (``gateway``, ``gateway.*``) follow ``logging.level``; every
other logger is held at warning whatever that level, since at debug some print what clients
sent (hpack logs each decoded HTTP/2 header, bearer tokens included). And the handler
masks credentials (authorization and API-key header values, ``sk-``/``AIza`` keys, JWTs)
in whatever it writes::

    redact("(b'authorization', b'Bearer sk-abc123def456')")
    # "(b'authorization', b'Bearer [redacted]')"
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

__all__ = ["REDACTED", "RedactFilter", "configure_logging", "gateway_or_warning", "redact"]

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "warn": logging.WARNING, "error": logging.ERROR}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = record.exc_text or self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


# Everything str.splitlines() breaks on, and the other C0/C1 controls a terminal acts on.
_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(value: object) -> str:
    """``value`` on one line: control characters as Python escapes (``\\n``, ``\\x1b``)."""
    text = str(value)
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        safe = _escape(message)
        if safe != message:  # a copy: other handlers see the record as it was
            record = logging.makeLogRecord({**record.__dict__, "msg": safe, "args": None})
        text = super().format(record)
        fields = getattr(record, "fields", None)
        if fields:
            text += " " + " ".join(f"{_escape(k)}={_escape(v)}" for k, v in fields.items())
        return "\n    ".join(text.splitlines())  # a traceback's lines, indented under it


def _not_client_garbage(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Invalid encoding on")


def gateway_or_warning(record: logging.LogRecord) -> bool:
    """True for the gateway's own records and for warnings and above from anyone else:
    a third-party logger that sets its own level still cannot reach the handler below
    warning."""
    return (record.levelno >= logging.WARNING or record.name == "gateway"
            or record.name.startswith("gateway."))


REDACTED = "[redacted]"

# Lower-case substrings one of the patterns below needs: most lines contain none of them and
# skip the regexes.
_HINTS = ("bearer", "basic", "authorization", "api-key", "api_key", "apikey",
          "sk-", "aiza", "eyj")
_SCHEME = r"(?:bearer|basic|token)\s+"  # case-insensitive where used
_PATTERNS = (
    # A credential header's value, however it is printed: "authorization: Bearer x",
    # {"x-api-key": "x"}, hpack's (b'authorization', b'Basic x'), api_key=x.
    (re.compile(r"((?:proxy-)?authorization|(?:x-goog-|x[-_])?api[-_]?key)"
                r"(['\"]?\s*[:=,]\s*(?-i:b)?['\"]?\s*)(" + _SCHEME + r")?[^\s'\",;)}\]&]+",
                re.IGNORECASE), rf"\1\2\3{REDACTED}"),
    # A bearer or basic token anywhere else ("Basic authentication" is masked too: harmless).
    (re.compile(r"\b((?:[Bb]earer|BEARER|Basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
     rf"\1{REDACTED}"),
    # Gateway keys (sk- + 43 URL-safe characters) and OpenAI / Anthropic keys (sk-proj-...,
    # sk-ant-...); a display prefix ("sk-Yh3q") is too short to match.
    (re.compile(r"\bsk-[A-Za-z0-9_-]{8,}"), REDACTED),
    (re.compile(r"\bAIza[A-Za-z0-9_-]{20,}"), REDACTED),  # Google API keys
    # JWTs: three base64url segments, the first a JSON header ('{"' is "eyJ").
    (re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with every credential the patterns know replaced by :data:`REDACTED`."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _HINTS):
        return text
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """A handler filter: masks credentials in the message (its args included), the
    ``fields`` extra, and the traceback. It runs only on records the handler emits, and
    changes a record only when there is something to mask."""

    _plain = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact(message)
        if record.args or safe != message:  # formatted once: the formatter reuses it
            record.msg, record.args = safe, None
        fields = getattr(record, "fields", None)
        if fields:  # a new dict only when a value changed (the request log's common case)
            masked = {k: m for k, v in fields.items() if (m := _redact_value(v)) is not v}
            if masked:
                record.fields = {**fields, **masked}
        if record.exc_info and not record.exc_text:
            record.exc_text = self._plain.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def _redact_value(value: object) -> object:
    if value is None or isinstance(value, int | float):  # bool is an int
        return value
    text = value if isinstance(value, str) else str(value)
    safe = redact(text)
    return value if safe == text else safe


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(gateway_or_warning)
    handler.addFilter(RedactFilter())
    gateway_level = _LEVELS.get(level, logging.INFO)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    # Everyone else's loggers, those made later included, inherit warning from the root.
    root.setLevel(max(gateway_level, logging.WARNING))
    logging.getLogger("gateway").setLevel(gateway_level)
    cygrpc = logging.getLogger("grpc._cython.cygrpc")
    if _not_client_garbage not in cygrpc.filters:
        cygrpc.addFilter(_not_client_garbage)
