"""Gateways served inside the test process, for behaviour tests.

Each gateway is the real composition root (:class:`gateway.app.Gateway`) running in a
thread of its own with its own event loop (uvloop, as ``gateway serve`` uses), bound to
port 0, built from the same config text and environment the tests hand to a gateway
process. It has the surface of :class:`tests.conftest.GatewayProcess` that behaviour tests
use: ``http_url``, ``grpc_target``, the ports, ``logs()`` (this gateway's log lines, in
its configured format) and ``stop()`` (a graceful shutdown; 0 when it ended cleanly).
:class:`SplitGateway` serves the core and the facade as two such gateways, the facade
calling the core over a real gRPC channel. Tests of the process itself (CLI, signals,
drain, workers, exit codes, the log stream) start ``python -m gateway serve`` instead
(``process_factory`` in tests/conftest.py).

What is shared by every gateway of one process stays shared here: the Prometheus
registry, the tracer provider and the garbage collector's settings. Tests that read exact
metric values, or need tracing, run their gateway as a process.

Example::

    gw = start_in_process(config_text, env={"GATEWAY_ADMIN_KEY": "adm"})
    httpx.get(gw.http_url + "/v1/models")
    assert gw.stop() == 0
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import tempfile
import threading
import time
import urllib.request
from collections.abc import Mapping
from typing import Literal

import uvloop

from gateway.app import Gateway
from gateway.config import Settings, load_settings
from gateway.observability.logging import (
    JsonFormatter,
    RedactFilter,
    TextFormatter,
    gateway_or_warning,
)

__all__ = ["InProcessGateway", "SplitGateway", "clean_env", "start_in_process", "start_split"]

Only = Literal["grpc", "http"] | None

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "warn": logging.WARNING, "error": logging.ERROR}
_redact = RedactFilter()
_serial = itertools.count(1)
# The root logger's level while gateways run: low enough for the most verbose of them.
_levels_lock = threading.Lock()
_needs: dict[str, int] = {}
_root_level = logging.NOTSET
# Which gateway a log record belongs to: set in its thread, inherited by every task and
# asyncio.to_thread call it starts.
_current: contextvars.ContextVar[InProcessGateway | None] = contextvars.ContextVar(
    "in_process_gateway", default=None)


def clean_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a test gateway sees: no provider keys or config path from the
    developer's shell, the log level the tests expect, then ``env``."""
    base = {k: v for k, v in os.environ.items()
            if not k.endswith(("_API_KEY", "_BASE_URL")) and k not in ("GATEWAY_CONFIG",)}
    return {**base, "LOG_LEVEL": "info", **(env or {})}


def load_test_settings(config: str | None, env: Mapping[str, str] | None = None) -> Settings:
    """Settings from config text and environment, both ports 0 (the kernel picks them)."""
    full_env = {**clean_env(env), "ADDR": "127.0.0.1:0", "GRPC_ADDR": "127.0.0.1:0"}
    if config is None:
        return load_settings(None, env=full_env)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="gw-config-") as file:
        file.write(config)
        file.flush()
        return load_settings(file.name, env=full_env)


class _Capture(logging.Handler):
    """This gateway's log lines, formatted as its process would write them."""

    def __init__(self, gateway: InProcessGateway, settings: Settings) -> None:
        super().__init__(_LEVELS.get(settings.logging.level, logging.INFO))
        self.gateway = gateway
        self.lines: list[str] = []
        self.setFormatter(JsonFormatter() if settings.logging.format == "json"
                          else TextFormatter())

    def filter(self, record: logging.LogRecord) -> bool:
        if _current.get() is not self.gateway and record.threadName != self.gateway.name:
            return False
        # As the process's logging setup (gateway/observability/logging.py) does.
        if not gateway_or_warning(record) or not _redact.filter(record):
            return False
        # grpc's complaint about client metadata that is not UTF-8 (dropped by the process).
        return not (record.name == "grpc._cython.cygrpc"
                    and str(record.msg).startswith("Invalid encoding on"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # pragma: no cover - as logging.Handler does
            self.handleError(record)


class InProcessGateway:
    """One :class:`Gateway` in a thread of its own; see the module docstring."""

    def __init__(self, settings: Settings, *, only: Only = None, core_target: str = "") -> None:
        self.settings = settings
        self.only = only
        self.core_target = core_target
        self.name = f"gateway-{next(_serial)}"
        self.http_port = 0
        self.grpc_port = 0
        self.error: BaseException | None = None
        self._gateway: Gateway | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._capture = _Capture(self, settings)
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        return "\n".join(self._capture.lines) + "\n"

    # --- the gateway's thread ----------------------------------------------------------

    def _run(self) -> None:
        _current.set(self)
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            try:
                runner.run(self._serve())
            except BaseException as exc:
                self.error = exc
                logging.getLogger("gateway").error("gateway failed", exc_info=exc)
        self._ready.set()  # also when it failed to start

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        async with Gateway(self.settings, only=self.only,
                           grpc_target=self.core_target) as gateway:
            self._gateway = gateway
            self.http_port, self.grpc_port = gateway.http_port, gateway.grpc_port
            self._ready.set()
            await gateway.wait_closed()

    # --- the test's side ---------------------------------------------------------------

    def start(self, wait: str | None = "/ready", timeout: float = 30) -> InProcessGateway:
        _hold_level(self.name, self._capture.level)
        logging.getLogger().addHandler(self._capture)
        self._thread.start()
        if not self._ready.wait(timeout) or self.error is not None:
            self.stop()
            raise RuntimeError(f"gateway did not start: {self.error!r}\n{self.logs()}")
        if wait is not None and self.only != "grpc":
            try:
                _wait_http(self.http_url + wait, timeout)
            except Exception as exc:
                self.stop()
                raise RuntimeError(f"gateway did not become ready: {exc}\n{self.logs()}") from None
        return self

    def request_stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM does to a gateway process)."""
        if self._loop is not None and self._gateway is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._gateway.request_stop)

    def stop(self, timeout: float = 20) -> int:
        """Shut down gracefully and wait; 0 when the gateway ended without an error."""
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise AssertionError(f"gateway did not stop within {timeout}s:\n{self.logs()}")
        logging.getLogger().removeHandler(self._capture)
        _release_level(self.name)
        return 0 if self.error is None else 1


def _hold_level(name: str, level: int) -> None:
    """Let the root logger pass ``level`` while gateway ``name`` runs."""
    global _root_level
    root = logging.getLogger()
    with _levels_lock:
        if not _needs:
            _root_level = root.level
        _needs[name] = level
        root.setLevel(min(_root_level, *_needs.values()))


def _release_level(name: str) -> None:
    root = logging.getLogger()
    with _levels_lock:
        if _needs.pop(name, None) is None:
            return
        root.setLevel(min(_root_level, *_needs.values()) if _needs else _root_level)


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} not ready after {timeout}s")
        time.sleep(0.02)


def start_in_process(config: str | None = None, *, env: Mapping[str, str] | None = None,
                     only: Only = None, grpc_target: str = "",
                     wait: str | None = "/ready") -> InProcessGateway:
    """A gateway from config text and environment, served in this process on port 0."""
    settings = load_test_settings(config, env)
    return InProcessGateway(settings, only=only, core_target=grpc_target).start(wait)


class SplitGateway:
    """A core (``only="grpc"``) and a facade (``only="http"``) that calls it over a real gRPC
    channel, as ``--only grpc`` and ``--only http --grpc-target`` deploy them; both from the
    same config. REST goes to the facade, gRPC to the core."""

    def __init__(self, core: InProcessGateway, facade: InProcessGateway) -> None:
        self.core = core
        self.facade = facade

    @property
    def http_port(self) -> int:
        return self.facade.http_port

    @property
    def grpc_port(self) -> int:
        return self.core.grpc_port

    @property
    def http_url(self) -> str:
        return self.facade.http_url

    @property
    def grpc_target(self) -> str:
        return self.core.grpc_target

    def logs(self) -> str:
        return self.core.logs() + self.facade.logs()

    def stop(self, timeout: float = 20) -> int:
        """The facade first (it drains its calls into the core), then the core."""
        return max(self.facade.stop(timeout), self.core.stop(timeout))


def start_split(config: str | None = None, *, env: Mapping[str, str] | None = None,
                wait: str | None = "/ready") -> SplitGateway:
    """A :class:`SplitGateway` from config text and environment, both on port 0."""
    settings = load_test_settings(config, env)
    core = InProcessGateway(settings, only="grpc").start(None)
    try:
        facade = InProcessGateway(settings, only="http", core_target=core.grpc_target)
        return SplitGateway(core, facade.start(wait))
    except BaseException:
        core.stop()
        raise
