"""The servers a bench phase runs: the fake upstream, ``gateway serve`` in one of its bench
configurations, the stack's minimal paths, an OTLP sink, redis-server and the LiteLLM proxy.
Each is a context manager that waits until its server answers and always stops it.

Placement: servers under test on the server core (``--workers 2``: both cores); the fake
upstream, the sink, Redis and the load generators on the load core. Every server listens on
127.0.0.1 only and is pointed at loopback only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _procs import (
    BENCH,
    LOAD_CORE,
    ROOT,
    SERVER_CORE,
    background,
    children,
    free_port,
    pinned,
    rss_mb,
    wait_listening,
    wait_ready,
)

PYTHON = sys.executable
GATEWAY = str(Path(PYTHON).parent / "gateway")
LITELLM = BENCH / ".litellm-venv" / "bin" / "litellm"
UPSTREAM_MODEL = "gpt-4o-mini"
GATEWAY_MODEL = "bench-model"
MESSAGES_MODEL = "bench-messages"  # Anthropic's Messages API, passed through

# The base configuration: an openai provider and an anthropic one, both the fake upstream,
# one alias each; metrics on (the default), no auth, no rate limit, no tracing, no cache;
# logs at warning.
CONFIG = """\
logging: {{level: warning, format: json}}
server: {{core_transport: {transport}}}
providers:
  upstream: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: "sk-bench"}}
  upstream-anthropic: {{type: anthropic, base_url: "http://127.0.0.1:{port}",
                        api_key: "sk-ant-bench"}}
models:
  - name: bench-model
    targets: [{{provider: upstream, model: gpt-4o-mini}}]
  - name: bench-messages
    targets: [{{provider: upstream-anthropic, model: claude-3-5-haiku-20241022}}]
"""
# What production turns on: tracing sampled at 0.1 to a collector, and a per-identity rate
# limit generous enough never to refuse (every request still pays for its check).
OBSERVED = """\
observability:
  metrics: {{enabled: true}}
  tracing:
    enabled: true
    sampler: {{type: probability, rate: 0.1}}
    exporter: {{type: otlp, endpoint: "127.0.0.1:{sink_port}", insecure: true}}
rate_limit: {{enabled: true, requests_per_second: 1000000, burst: 1000000}}
"""
REDIS = 'redis: {{url: "{redis_url}"}}\n'

# Environment overrides beat the config file: none may leak in from the caller's shell.
_GATEWAY_ENV_OVERRIDES = (
    "ADDR", "GRPC_ADDR", "LOG_LEVEL", "LOG_FORMAT", "DEFAULT_PROVIDER", "USE_DISTRIBUTED_CB",
    "SHUTDOWN_TIMEOUT", "DRAIN_TIMEOUT", "REDIS_URL", "DATABASE_URL", "OPENAI_API_KEY",
    "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "GOOGLE_API_KEY", "OLLAMA_BASE_URL", "OTLP_ENDPOINT",
    "GATEWAY_ADMIN_KEY", "OIDC_ISSUER", "OIDC_AUDIENCE", "ENCRYPTION_KEY", "POD_NAME",
    "POD_NAMESPACE", "PROMETHEUS_MULTIPROC_DIR",
)  # fmt: skip


def gateway_config(up_port: int, *, sink_port: int = 0, redis_url: str = "",
                   transport: str = "local") -> str:
    text = CONFIG.format(port=up_port, transport=transport)
    if sink_port:
        text += OBSERVED.format(sink_port=sink_port)
    if redis_url:
        text += REDIS.format(redis_url=redis_url)
    return text


@dataclass
class Server:
    """A running server: its process (a supervisor, with ``--workers``), ports and log."""

    name: str
    proc: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path
    supervised: bool = False  # ``--workers N``: the process is a supervisor, its children serve

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def pids(self) -> list[int]:
        """The process and its children: every process whose CPU a request costs."""
        return [self.proc.pid, *children(self.proc.pid)]

    def workers(self) -> list[int]:
        """The processes that serve: the children of a supervisor, else the process itself."""
        return children(self.proc.pid) if self.supervised else [self.proc.pid]

    def rss_mb(self) -> float | None:
        """The largest RSS among the serving processes (per worker, as the targets say)."""
        sizes = [s for pid in self.workers() if (s := rss_mb(pid)) is not None]
        return max(sizes) if sizes else None

    def log_tail(self, lines: int = 20) -> list[str]:
        return self.log.read_text(errors="replace").strip().splitlines()[-lines:]


@contextmanager
def upstream(workdir: Path) -> Iterator[int]:
    """The fake upstream (OpenAI and Anthropic APIs) on the load core; yields its port."""
    log = workdir / "upstream.log"
    cmd = pinned(LOAD_CORE, PYTHON, str(BENCH / "fake_upstream.py"), "--port", "0")
    with background(cmd, log) as proc:
        yield wait_listening(proc, log)


@contextmanager
def minimal(workdir: Path, kind: str, up_port: int) -> Iterator[Server]:
    """``minimal_paths.py --rest`` or ``--grpc`` on the server core, forwarding to the fake
    upstream (the reference rows under the gateway's REST and gRPC rows)."""
    log = workdir / f"minimal-{kind}.log"
    cmd = pinned(SERVER_CORE, PYTHON, str(BENCH / "minimal_paths.py"), f"--{kind}",
                 "--port", "0", "--upstream", f"http://127.0.0.1:{up_port}")
    with background(cmd, log) as proc:
        port = wait_listening(proc, log)
        yield Server(f"minimal {kind} path", proc, port, port, log)


@contextmanager
def otlp_sink(workdir: Path, report: dict[str, int]) -> Iterator[int]:
    """The OTLP sink on the load core; yields its port and, once stopped, fills ``report``
    with the export calls and bytes it received."""
    log = workdir / "otlp_sink.log"
    cmd = pinned(LOAD_CORE, PYTHON, str(BENCH / "otlp_sink.py"), "--port", "0")
    with background(cmd, log) as proc:
        yield wait_listening(proc, log)
    for line in log.read_text().splitlines():
        if line.startswith("EXPORTS "):
            report["calls"], report["bytes"] = (int(x) for x in line.split()[1:3])


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """redis-server as the tests start it (tests/servers.py), moved to the load core."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.servers import RedisServer

    redis = RedisServer(workdir).start()
    try:
        if redis.proc is not None:
            subprocess.run(["taskset", "-pc", LOAD_CORE, str(redis.proc.pid)],
                           check=True, capture_output=True)
        yield redis.url
    finally:
        redis.stop()


@contextmanager
def gateway(workdir: Path, name: str, config: str, *, workers: int = 1) -> Iterator[Server]:
    """``gateway serve`` with ``config`` on the server core (``workers`` > 1: on both cores,
    the only way two workers get a core each here); ready when ``/ready`` answers 200 (with
    workers: when every worker runs and several fresh connections were answered)."""
    http_port, grpc_port = free_port(), free_port()
    path = workdir / f"{name}.yaml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if k not in _GATEWAY_ENV_OVERRIDES}
    env |= {"ADDR": f"127.0.0.1:{http_port}", "GRPC_ADDR": f"127.0.0.1:{grpc_port}"}
    cores = SERVER_CORE if workers == 1 else f"{SERVER_CORE},{LOAD_CORE}"
    cmd = pinned(cores, GATEWAY, "serve", "--config", str(path))
    if workers > 1:
        cmd += ["--workers", str(workers)]
    log = workdir / f"{name}.log"
    with background(cmd, log, env=env) as proc:
        ready = f"http://127.0.0.1:{http_port}/ready"
        wait_ready(proc, ready, log)
        if workers > 1:
            _wait_workers(proc, workers, ready, log)
        yield Server(name, proc, http_port, grpc_port, log, supervised=workers > 1)


def _wait_workers(proc: subprocess.Popen[bytes], count: int, ready: str, log: Path) -> None:
    deadline = time.monotonic() + 30
    while len(children(proc.pid)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    for _ in range(4 * count):  # each a new connection, spread by SO_REUSEPORT
        wait_ready(proc, ready, log, timeout=max(1.0, deadline - time.monotonic()))


def litellm_installed() -> bool:
    return LITELLM.is_file()


LITELLM_CONFIG = """\
model_list:
  - model_name: bench-model
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: "http://127.0.0.1:{port}/v1"
      api_key: sk-bench
litellm_settings:
  telemetry: false
general_settings:
  # No master key and no database: no authentication, like the gateway's bench config.
  dangerously_permit_weak_or_unset_master_key: true
"""


@contextmanager
def litellm(workdir: Path, up_port: int) -> Iterator[Server]:
    """The LiteLLM proxy (bench/install_litellm.sh), one worker on the server core, pointed at
    the fake upstream. A clean environment: no database, no key, the bundled model cost map
    instead of fetching it, no telemetry, no access log (the gateway logs at warning)."""
    port = free_port()
    config = workdir / "litellm.yaml"
    config.write_text(LITELLM_CONFIG.format(port=up_port))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_ADMIN_UI": "True",
        "NO_PROXY": "*",
    }
    cmd = pinned(SERVER_CORE, str(LITELLM), "--config", str(config), "--host", "127.0.0.1",
                 "--port", str(port), "--num_workers", "1")
    log = workdir / "litellm.log"
    with background(cmd, log, env=env, cwd=workdir) as proc:
        wait_ready(proc, f"http://127.0.0.1:{port}/health/liveliness", log, timeout=180)
        yield Server("litellm", proc, port, 0, log)
