"""The composition root (gateway/app.py) closes what it built, in reverse order of
construction: on a normal stop, when a close fails (logged, the rest still closed), and when
start-up fails half-way (what was built is closed, its ports released)."""

from __future__ import annotations

import logging
import socket

import pytest

from gateway.app import Gateway
from gateway.config import load_settings
from gateway.providers.mock import MockProvider


def settings(http: str = "127.0.0.1:0", redis_url: str = "") -> object:
    env = {"ADDR": http, "GRPC_ADDR": "127.0.0.1:0"}
    return load_settings(None, env=env)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def test_a_failing_close_is_logged_and_the_rest_still_close(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    async def broken_close(self: MockProvider) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(MockProvider, "aclose", broken_close)
    caplog.set_level(logging.INFO, logger="gateway")
    async with Gateway(settings()) as gw:  # type: ignore[arg-type]
        grpc_port, http_port = gw.grpc_port, gw.http_port
        assert not port_is_free(grpc_port) and not port_is_free(http_port)
    failed = [r for r in caplog.records if r.getMessage() == "closing provider mock failed"]
    assert len(failed) == 1 and failed[0].exc_info is not None
    assert port_is_free(grpc_port) and port_is_free(http_port)
    assert caplog.records[-1].getMessage() == "stopped"


async def test_a_start_that_fails_half_way_closes_what_it_built(
        caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        gateway = Gateway(settings(http=f"127.0.0.1:{port}"))  # type: ignore[arg-type]
        with pytest.raises(OSError):
            await gateway.__aenter__()
    assert gateway.grpc_port and port_is_free(gateway.grpc_port)  # the core was up, then closed
