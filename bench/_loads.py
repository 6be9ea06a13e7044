"""The load generators, each pinned to the load core and reporting one ``TAG {json}`` line:
wrk for non-stream REST (and the fixed-response GET), ``stream_client.py`` for SSE,
``grpc_client.py`` for gRPC. :func:`measure` runs one of them and adds the server's CPU
per request.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from _procs import BENCH, LOAD_CORE, ROOT, SERVER_CORE, pinned, process_cpu_s

PYTHON = sys.executable
Result = dict[str, Any]
LOAD_ERRORS = (RuntimeError, ValueError, subprocess.TimeoutExpired)


def chat_body(model: str, stream: bool = False) -> str:
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user",
                                                          "content": "hello bench"}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


# What an Anthropic SDK sends besides the body (its key goes in Authorization here, as wrk's
# other requests: the base gateway has no auth).
ANTHROPIC_VERSION = "2023-06-01"
MESSAGES_HEADERS = {"anthropic-version": ANTHROPIC_VERSION}


def messages_body(model: str, stream: bool = False) -> str:
    """An Anthropic Messages request asking what :func:`chat_body` asks."""
    body: dict[str, Any] = {"model": model, "max_tokens": 256,
                            "messages": [{"role": "user", "content": "hello bench"}]}
    if stream:
        body["stream"] = True
    return json.dumps(body, separators=(",", ":"))


def check_chat(url: str, body: str, *, messages: bool = False) -> str:
    """One request by hand: returns '' when it answers 200 with a completion (``messages``:
    with a ``message`` object holding text), else the problem."""
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench",
               **(MESSAGES_HEADERS if messages else {})}
    req = urllib.request.Request(url, body.encode(), headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
            if messages and (data.get("type") != "message" or not data.get("content")):
                return f"200 without a message: {json.dumps(data)[:300]}"
            if not messages and not data.get("choices"):
                return f"200 without choices: {json.dumps(data)[:300]}"
            return ""
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}: {e.read()[:300]!r}"
    except (OSError, ValueError) as e:
        return repr(e)


def _tagged(cmd: list[str], tag: str, timeout: float, env: dict[str, str] | None = None) -> Result:
    """Runs a load generator and parses its ``TAG {json}`` line."""
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    for line in proc.stdout.splitlines():
        if line.startswith(tag + " "):
            result: Result = json.loads(line[len(tag) + 1 :])
            return result
    raise RuntimeError(
        f"{cmd[3]} printed no {tag} (rc {proc.returncode}):\n"
        f"{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}"
    )


def wrk(url: str, body: str, conns: int, duration: float, *, method: str = "POST",
        stream_body: str = "", stream_every: int = 0, limit: int = 0,
        headers: dict[str, str] | None = None) -> Result:
    """wrk with ``post.lua``: POST ``body`` (or GET ``url``) on ``conns`` connections.

    With ``limit``, it stops after that many responses and ``duration`` is only a bound; with
    ``stream_every`` k, every k-th request sends ``stream_body`` (the memory phase's mix);
    ``headers`` are sent besides Authorization and Content-Type.
    """
    cmd = pinned(
        LOAD_CORE, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s",
        "--timeout", "10s", "-s", str(BENCH / "post.lua"), url,
    )  # fmt: skip
    env = {**os.environ, "BENCH_BODY": body, "BENCH_METHOD": method,
           "BENCH_STREAM_BODY": stream_body, "BENCH_STREAM_EVERY": str(stream_every),
           "BENCH_LIMIT": str(limit),
           "BENCH_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items())}
    result = _tagged(cmd, "WRK_RESULT", duration + 30, env)
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    # wrk counts error responses as requests; a broken server answering 500s fast is not fast.
    ok = max(0, result["requests"] - result["non_2xx"])
    result["ok_rps"] = round(ok / max(1e-9, result["duration_us"] / 1e6), 1)
    return result


def wrk_get(url: str, conns: int, duration: float) -> Result:
    return wrk(url, "", conns, duration, method="GET")


def streams(url: str, model: str, conns: int, duration: float, warmup: float,
            rate: float = 0.0, api: str = "chat") -> Result:
    """``stream_client.py``: back to back on ``conns`` connections, or ``rate`` streams/s;
    ``api`` "chat" (``url`` a chat completions route) or "messages" (Anthropic's)."""
    cmd = pinned(
        LOAD_CORE, PYTHON, str(BENCH / "stream_client.py"), "--url", url, "--model", model,
        "-c", str(conns), "-d", str(duration), "--warmup", str(warmup), "--rate", str(rate),
        "--api", api,
    )  # fmt: skip
    return _tagged(cmd, "STREAM_RESULT", duration + warmup + 30)


def grpc_load(target: str, conns: int, duration: float, warmup: float, stream: bool, *,
              model: str = "bench-model", requests: int = 0, stream_every: int = 0,
              channels: int = 1) -> Result:
    """``grpc_client.py``: unary calls (or streams); with ``requests``, that many calls and
    ``duration`` is only a bound; with ``stream_every`` k, every k-th call is a stream;
    ``channels`` connections (one per worker is not guaranteed: the kernel picks)."""
    cmd = pinned(
        LOAD_CORE, PYTHON, str(BENCH / "grpc_client.py"), "--target", target,
        "--model", model, "-c", str(conns), "-d", str(duration), "--warmup", str(warmup),
        "--requests", str(requests), "--stream-every", str(stream_every),
        "--channels", str(channels),
    )  # fmt: skip
    return _tagged(cmd + ["--stream"] * stream, "GRPC_RESULT", duration + warmup + 30)


def loopback_round_trip(samples: int = 2000) -> Result:
    """``wake_probe.py``: a loopback round trip across the server and load cores and on one
    core. Empty when the probe fails: it explains figures, it is not one."""
    cmd = [PYTHON, str(BENCH / "wake_probe.py"), "--cores", f"{SERVER_CORE},{LOAD_CORE}",
           "--samples", str(samples)]
    try:
        return _tagged(cmd, "WAKE_RESULT", 60)
    except LOAD_ERRORS:
        return {}


def warm_up(url: str, body: str, seconds: float,
            headers: dict[str, str] | None = None) -> None:
    """Untimed load first (connection pools, caches); a failure shows in the measurement."""
    try:
        wrk(url, body, 64, seconds, headers=headers)
    except LOAD_ERRORS:
        pass


def measure(name: str, fn: Callable[..., Result], *args: Any,
            server_pids: Callable[[], Sequence[int]] | None = None) -> Result:
    """One load run. With ``server_pids``, also the servers' CPU per request: steadier than
    throughput on a noisy machine, since another process's load slows it but does not
    add to it."""
    print(f"  {name} ...", end="", flush=True, file=sys.stderr)
    pids = list(server_pids()) if server_pids else []
    cpu = sum(process_cpu_s(pid) for pid in pids)
    try:
        result: Result = fn(*args)
    except LOAD_ERRORS as e:
        print(f" FAILED: {e}", file=sys.stderr)
        return {"failed": str(e)[:2000]}
    # Every call the server answered while its CPU was counted, the client's warm-up included
    # (wrk has none: its ``requests`` are all of them).
    served = result.get("calls") or result.get("requests") or result.get("streams")
    if pids and served:
        used = sum(process_cpu_s(pid) for pid in pids) - cpu
        result["cpu_ms_per_req"] = round(1000 * used / served, 3)
    summary = {
        k: result[k]
        for k in ("rps", "streams_per_s", "p50_ms", "p99_ms", "ttfb_p50_ms", "errors",
                  "cpu_ms_per_req")
        if k in result
    }
    print(f" {summary}", file=sys.stderr)
    return result
