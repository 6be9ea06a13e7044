"""Logging setup: JSON lines (default) or text, level from config.

Request lines are emitted by the service interceptor with ``extra={"fields": ...}``;
the JSON formatter merges those fields into the line.

Log lines repeat what callers sent (a model name, a token's tenant claim), so neither format
lets that text start a line of its own: JSON escapes it; the text format escapes line breaks
and control characters in the message and fields, and indents the lines of a traceback, so
every line at column 0 is a record the gateway wrote. grpc's complaint about each piece of
client metadata that is not UTF-8 (an ERROR with a traceback, several per request, at any
client's will) is dropped: the call goes on without that value.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from typing import Any

import orjson

__all__ = ["configure_logging"]

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
            line["exception"] = self.formatException(record.exc_info)
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


def configure_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(_LEVELS.get(level, logging.INFO))
    # Hypercorn's and grpc's own chatter stays at warning unless debugging.
    for name in ("hypercorn.access", "hypercorn.error", "asyncio"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))
    cygrpc = logging.getLogger("grpc._cython.cygrpc")
    if _not_client_garbage not in cygrpc.filters:
        cygrpc.addFilter(_not_client_garbage)
