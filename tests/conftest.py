"""Shared fixtures: free ports, fake upstreams, and gateways.

Behaviour tests use gateways served in the test process on port 0
(``gateway_factory``, ``gateway``; tests/inprocess.py). Tests of the process itself
(the CLI, signals, drain, workers, exit codes, the process's log stream, exact metric
values, tracing) start real processes (``python -m gateway serve``) on free loopback
ports (``process_factory``, ``start_gateway``).
"""

from __future__ import annotations

import functools
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import pytest

from tests.fakes.openai import FakeOpenAI
from tests.inprocess import InProcessGateway, clean_env, start_in_process, start_split
from tests.servers import PostgresServer, RedisServer

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningGateway(Protocol):
    """What behaviour tests use of a gateway, in this process or in its own."""

    @property
    def http_port(self) -> int: ...

    @property
    def grpc_port(self) -> int: ...

    @property
    def http_url(self) -> str: ...

    @property
    def grpc_target(self) -> str: ...

    def logs(self) -> str: ...

    def stop(self, timeout: float = 20) -> int: ...


@dataclass
class GatewayProcess:
    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("gateway did not stop after SIGTERM:\n" + self.logs()) from None


def wait_http(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


def start_gateway(config: str | None, tmp: Path, *, env: dict[str, str] | None = None,
                  args: tuple[str, ...] = (), wait: str | None = "/ready") -> GatewayProcess:
    http_port, grpc_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "gateway", "serve", *args]
    if config is not None:
        path = tmp / f"config-{http_port}.yaml"
        path.write_text(config)
        cmd += ["--config", str(path)]
    # A clean environment: no provider keys from the developer's shell.
    full_env = clean_env({"ADDR": f"127.0.0.1:{http_port}", "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
                          **(env or {})})
    log_path = tmp / f"gateway-{http_port}.log"
    with open(log_path, "wb") as log_file:  # the child keeps its own descriptor
        proc = subprocess.Popen(cmd, env=full_env, stdout=log_file, stderr=subprocess.STDOUT,
                                cwd=ROOT)
    gw = GatewayProcess(proc, http_port, grpc_port, log_path)
    if wait is not None:
        try:
            wait_http(gw.http_url + wait, 30, proc)
        except Exception as exc:
            gw.stop()
            raise RuntimeError(f"gateway did not become ready: {exc}\n{gw.logs()}") from None
    return gw


_G = TypeVar("_G", bound="RunningGateway | GatewayProcess")


def _stopped_after(start: Callable[..., _G]) -> Iterator[Callable[..., _G]]:
    """A fixture's factory over ``start(config, **kwargs)``: every gateway it started is
    stopped when the test ends, and must end cleanly (exit 0)."""
    started: list[_G] = []

    def factory(config: str | None = None, **kwargs: object) -> _G:
        gw = start(config, **kwargs)
        started.append(gw)
        return gw

    yield factory
    for gw in started:
        code = gw.stop()
        assert code == 0, f"gateway ended with {code}:\n{gw.logs()}"


@pytest.fixture
def gateway_factory() -> Iterator[Callable[..., InProcessGateway]]:
    """Start gateways in this process for one test (``start_in_process``: config text,
    ``env=``, ``only=``, ``grpc_target=``, ``wait=``); each is stopped gracefully and must
    end cleanly."""
    yield from _stopped_after(start_in_process)


# How the REST facade reaches the core: the in-process channel (the default, `local`), or a
# real gRPC channel to a core served on its own (`split`: --only grpc + --only http).
CORE_CHANNELS = ("local", "split")


def start_over(core_channel: str, config: str | None = None, *,
               env: dict[str, str] | None = None, wait: str | None = "/ready") -> RunningGateway:
    """A gateway in this process whose facade reaches the core over ``core_channel``."""
    if core_channel == "split":
        return start_split(config, env=env, wait=wait)
    return start_in_process(config, env=env, wait=wait)


@pytest.fixture(scope="module", params=CORE_CHANNELS)
def core_channel(request: pytest.FixtureRequest) -> str:
    """Runs a test twice: facade and core in one gateway, then split over gRPC."""
    return str(request.param)


@pytest.fixture
def channel_factory(core_channel: str) -> Iterator[Callable[..., RunningGateway]]:
    """``gateway_factory`` for tests of the REST API that run over both core channels."""
    yield from _stopped_after(functools.partial(start_over, core_channel))


@pytest.fixture
def process_factory(tmp_path: Path) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateway processes for one test (``python -m gateway serve``, ``args=``); each is
    stopped (SIGTERM) and must exit 0. For tests of the process itself."""
    yield from _stopped_after(lambda config, **kwargs: start_gateway(config, tmp_path, **kwargs))


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake  # type: ignore[misc]


@pytest.fixture(scope="module")
def module_tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="gw-test-") as tmp:
        yield Path(tmp)


# The routes the fuzzers and their regression tests use: the mock provider (``mock-1``) and
# the fake OpenAI upstream (``gpt-4o-mini``, its key in ``FAKE_OPENAI_KEY``). The tail of a
# ``str.format`` template: fill ``{base_url}`` with the fake's.
MOCK_AND_FAKE_OPENAI_ROUTES = """
providers:
  mock: {{type: mock, models: [echo]}}
  upstream:
    type: openai
    base_url: "{base_url}/v1"
    api_key: "${{FAKE_OPENAI_KEY}}"
    models: [gpt-4o-mini]
models:
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
  - name: gpt-4o-mini
    targets: [{{provider: upstream, model: gpt-4o-mini}}]
"""


def openai_gateway_config(fake: FakeOpenAI) -> str:
    return f"""
logging: {{level: info, format: json}}
server: {{max_request_body_size: 65536}}
# Protocol tests inject many upstream errors; breakers are tested on their own gateways.
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  upstream:
    type: openai
    base_url: "{fake.base_url}/v1"
    api_key: "${{FAKE_OPENAI_KEY}}"
    models: [gpt-4o-mini]
  mock: {{type: mock, models: [echo]}}
models:
  - name: gpt-4o-mini
    targets: [{{provider: upstream, model: gpt-4o-mini}}]
  - name: mock-1
    targets: [{{provider: mock, model: echo}}]
"""


@pytest.fixture(scope="module")
def gateway(fake_openai: FakeOpenAI) -> Iterator[InProcessGateway]:
    """One gateway for a module: providers `upstream` (the fake OpenAI) and `mock`."""
    gw = start_in_process(openai_gateway_config(fake_openai),
                          env={"FAKE_OPENAI_KEY": FakeOpenAI.api_key})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway ended with an error:\n{gw.logs()}"


@pytest.fixture(scope="module")
def channel_gateway(fake_openai: FakeOpenAI, core_channel: str) -> Iterator[RunningGateway]:
    """``gateway``, served once with the in-process channel and once split over gRPC."""
    gw = start_over(core_channel, openai_gateway_config(fake_openai),
                    env={"FAKE_OPENAI_KEY": FakeOpenAI.api_key})
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway ended with an error:\n{gw.logs()}"


@pytest.fixture(autouse=True)
def _reset_fake(request: pytest.FixtureRequest) -> None:
    if "fake_openai" in request.fixturenames:
        request.getfixturevalue("fake_openai").reset()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh real redis-server for one test."""
    server = RedisServer(tmp_path).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the session; take a database from ``postgres_dsn``.

    A test that stops the server starts its own ``PostgresServer`` instead.
    """
    server = PostgresServer().start()
    yield server
    server.close()


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """The DSN of a fresh, empty database (``CREATE DATABASE``), dropped after the test."""
    name = f"test_{secrets.token_hex(6)}"
    dsn = postgres_server.create_database(name)
    yield dsn
    postgres_server.drop_database(name)
