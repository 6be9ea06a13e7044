"""The log handler's guards: credentials masked, third-party loggers held at warning."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from gateway.observability.logging import (
    REDACTED,
    RedactFilter,
    configure_logging,
    gateway_or_warning,
    redact,
)

GATEWAY_KEY = "sk-" + "Yh3qA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t"  # sk- + 43, as keys.py
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ0ZW5hbnQtMSJ9.c2lnbmF0dXJlLWJ5dGVz_-x"


@pytest.mark.parametrize(("text", "secret"), [
    ("(b'authorization', b'Bearer opaque-token-1234')", "opaque-token-1234"),  # hpack
    ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA=="),
    ('{"authorization": "Token t0k3n-value"}', "t0k3n-value"),
    ("headers {'x-api-key': 'plain-api-key-99'}", "plain-api-key-99"),
    ("(b'X-Api-Key', b'plain-api-key-99')", "plain-api-key-99"),
    ("url ?api_key=plain-api-key-99&x=1", "plain-api-key-99"),
    ("x-goog-api-key: plain-api-key-99", "plain-api-key-99"),
    ("sent bearer opaque-token-1234 upstream", "opaque-token-1234"),
    (f"tenant key {GATEWAY_KEY} refused", GATEWAY_KEY),
    ("upstream said: Incorrect API key provided: sk-proj-abcDEF123456789", "abcDEF123456789"),
    ("key sk-ant-api03-abcDEF123456789-xyz", "abcDEF123456789"),
    ("google key AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", "SyA1b2C3d4E5f6"),
    (f"oidc token {JWT} expired", "c2lnbmF0dXJl"),
])
def test_each_credential_is_masked(text: str, secret: str) -> None:
    safe = redact(text)
    assert secret not in safe and REDACTED in safe


@pytest.mark.parametrize("text", [
    "request", "token expired", "missing authorization header", "key prefix sk-Yh3q",
    "model gpt-4o-mini on up/m", "version 1.2.3",
])
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact(text) is text


def test_a_record_with_args_fields_and_a_traceback() -> None:
    try:
        raise ValueError(f"bad key {GATEWAY_KEY}")
    except ValueError:
        exc_info = sys.exc_info()
    header = (b"authorization", b"Bearer abc12345678")
    record = logging.LogRecord("hpack.hpack", logging.DEBUG, __file__, 1,
                               "Decoded %s, consumed %d", (header, 7), exc_info)
    record.fields = {"auth": "Bearer abc12345678", "count": 3, "headers": {"x-api-key": "k-9876"}}
    assert RedactFilter().filter(record)
    assert record.getMessage() == (f"Decoded (b'authorization', b'Bearer {REDACTED}'), "
                                   "consumed 7")
    assert record.fields == {"auth": f"Bearer {REDACTED}", "count": 3,
                             "headers": f"{{'x-api-key': '{REDACTED}'}}"}
    assert record.exc_text is not None and GATEWAY_KEY not in record.exc_text
    assert "ValueError: bad key [redacted]" in record.exc_text


def test_a_clean_record_keeps_its_message() -> None:
    record = logging.LogRecord("gateway", logging.INFO, __file__, 1, "served %d", (3,), None)
    record.fields = {"model": "gpt-4o-mini", "count": 3}
    assert RedactFilter().filter(record)
    assert record.getMessage() == "served 3"  # formatted once, here
    assert record.fields == {"model": "gpt-4o-mini", "count": 3}


@pytest.mark.parametrize(("name", "level", "passes"), [
    ("gateway", logging.DEBUG, True), ("gateway.request", logging.DEBUG, True),
    ("hpack.hpack", logging.DEBUG, False), ("hypercorn.error", logging.INFO, False),
    ("gatewayish", logging.INFO, False), ("grpc", logging.WARNING, True),
])
def test_only_the_gateway_logs_below_warning(name: str, level: int, passes: bool) -> None:
    record = logging.LogRecord(name, level, __file__, 1, "x", None, None)
    assert gateway_or_warning(record) is passes


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, gateway = logging.getLogger(), logging.getLogger("gateway")
    handlers, levels = root.handlers[:], (root.level, gateway.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    gateway.setLevel(levels[1])


def test_configure_logging_at_debug(restore_logging: None,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    configure_logging("debug", "json")
    later = logging.getLogger("made.after.configure")  # a library imported later
    assert logging.getLogger("gateway.state").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("hpack.hpack").isEnabledFor(logging.INFO)
    assert not later.isEnabledFor(logging.INFO)
    loud = logging.getLogger("loud.library")
    loud.setLevel(logging.DEBUG)  # its own level: the handler still holds it at warning
    try:
        loud.debug("Decoded (b'authorization', b'Bearer opaque-token-1234')")
        logging.getLogger("gateway.request").debug("sent %s", "x-api-key: plain-api-key-99")
    finally:
        loud.setLevel(logging.NOTSET)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines == [{**lines[0], "logger": "gateway.request", "level": "debug",
                      "msg": f"sent x-api-key: {REDACTED}"}]
