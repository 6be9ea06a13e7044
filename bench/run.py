"""One command, one table: the fake upstream direct vs the gateway's REST facade and gRPC core.

Starts the fake upstream on core 1 and ``gateway serve`` on core 0, then drives each with a
load generator on core 1 (wrk for non-stream REST, ``stream_client.py`` for SSE,
``grpc_client.py`` for gRPC). Prints a markdown table and writes bench/results/latest.json.

Example::

    .venv/bin/python bench/run.py               # ~2 minutes, 10 s per measurement
    .venv/bin/python bench/run.py --quick       # ~30 s smoke check
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PYTHON = sys.executable
GATEWAY = str(Path(PYTHON).parent / "gateway")
SERVER_CORE, LOAD_CORE = "0", "1"
UPSTREAM_MODEL = "gpt-4o-mini"
GATEWAY_MODEL = "bench-model"
CONFIG = """\
logging: {{level: warning, format: json}}
server: {{core_transport: {transport}}}
providers:
  upstream: {{type: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: "sk-bench"}}
models:
  - name: bench-model
    targets: [{{provider: upstream, model: gpt-4o-mini}}]
"""
Result = dict[str, Any]
Rows = dict[str, dict[str, Result | None]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chat_body(model: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "hello bench"}]}
    return json.dumps(body, separators=(",", ":"))


def pinned(core: str, *cmd: str) -> list[str]:
    return ["taskset", "-c", core, *cmd]


def stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


@contextmanager
def background(cmd: list[str], log: Path, **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    """Runs ``cmd`` in its own process group, output to ``log``; always stops it on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kw,
        )
        try:
            yield proc
        finally:
            stop(proc)


def wait_listening(proc: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> int:
    """Waits for the fake upstream's ``LISTENING <port>`` line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log.read_text().splitlines():
            if line.startswith("LISTENING "):
                return int(line.split()[1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"fake upstream did not start:\n{log.read_text()[-2000:]}")


def wait_ready(proc: subprocess.Popen[bytes], url: str, log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"gateway exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}: {e.read()[:300]!r}"
        except OSError as e:
            last = repr(e)
        time.sleep(0.2)
    raise RuntimeError(
        f"gateway not ready after {timeout:.0f} s ({last}):\n"
        f"{log.read_text(errors='replace')[-3000:]}"
    )


def check_chat(url: str, body: str) -> str:
    """One request by hand: returns '' when it answers 200 with a completion, else the problem."""
    req = urllib.request.Request(
        url, body.encode(), {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            data = json.loads(resp.read())
            if not data.get("choices"):
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


def wrk(url: str, body: str, conns: int, duration: float) -> Result:
    cmd = pinned(
        LOAD_CORE, "wrk", "-t1", f"-c{conns}", f"-d{max(1, round(duration))}s",
        "--timeout", "10s", "-s", str(BENCH / "post.lua"), url,
    )  # fmt: skip
    result = _tagged(cmd, "WRK_RESULT", duration + 30, {**os.environ, "BENCH_BODY": body})
    result["errors"] = result["non_2xx"] + result["socket_errors"]
    return result


def streams(url: str, model: str, conns: int, duration: float, warmup: float) -> Result:
    cmd = pinned(
        LOAD_CORE, PYTHON, str(BENCH / "stream_client.py"), "--url", url, "--model", model,
        "-c", str(conns), "-d", str(duration), "--warmup", str(warmup),
    )  # fmt: skip
    return _tagged(cmd, "STREAM_RESULT", duration + warmup + 30)


def grpc_load(target: str, conns: int, duration: float, warmup: float, stream: bool) -> Result:
    cmd = pinned(
        LOAD_CORE, PYTHON, str(BENCH / "grpc_client.py"), "--target", target,
        "--model", GATEWAY_MODEL, "-c", str(conns), "-d", str(duration), "--warmup", str(warmup),
    )  # fmt: skip
    return _tagged(cmd + ["--stream"] * stream, "GRPC_RESULT", duration + warmup + 30)


def warm_up(url: str, body: str, seconds: float) -> None:
    """Untimed load first (connection pools, caches); a failure shows in the measurement."""
    try:
        wrk(url, body, 64, seconds)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired):
        pass


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system, all threads) the process has used so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, fn: Any, *args: Any, server_pid: int | None = None) -> Result:
    """One load run. With ``server_pid``, also the server's CPU per request: steadier than
    throughput on a noisy machine, since another process's load slows it but does not
    add to it."""
    print(f"  {name} ...", end="", flush=True, file=sys.stderr)
    cpu = process_cpu_s(server_pid) if server_pid else 0.0
    try:
        result: Result = fn(*args)
    except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
        print(f" FAILED: {e}", file=sys.stderr)
        return {"failed": str(e)[:2000]}
    served = result.get("requests") or result.get("streams")
    if server_pid and served:
        result["cpu_ms_per_req"] = round(1000 * (process_cpu_s(server_pid) - cpu) / served, 3)
    summary = {
        k: result[k]
        for k in ("rps", "streams_per_s", "p50_ms", "p99_ms", "ttfb_p50_ms", "errors",
                  "cpu_ms_per_req")
        if k in result
    }
    print(f" {summary}", file=sys.stderr)
    return result


def _cell(result: Result | None, key: str, digits: int) -> str:
    if not result or key not in result:
        return "-"
    value = float(result[key])
    return f"{value:,.{digits}f}"


def table(rows: Rows) -> str:
    head = (
        "| path | c=1 req/s | c=1 p50 ms | c=1 p99 ms | c=64 req/s | c=64 p99 ms "
        "| c=16 streams/s | TTFB p50 ms | CPU ms/req c=64 | CPU ms/stream |"
    )
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        c1, c64, st = r.get("c1"), r.get("c64"), r.get("stream")
        cells = [
            _cell(c1, "rps", 0),
            _cell(c1, "p50_ms", 2),
            _cell(c1, "p99_ms", 2),
            _cell(c64, "rps", 0),
            _cell(c64, "p99_ms", 2),
            _cell(st, "streams_per_s", 0),
            _cell(st, "ttfb_p50_ms", 2),
            _cell(c64, "cpu_ms_per_req", 3),
            _cell(st, "cpu_ms_per_req", 3),
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def derived(rows: Rows) -> dict[str, float]:
    def get(row: str, run: str, key: str) -> float | None:
        r = rows.get(row, {}).get(run)
        return float(r[key]) if r and key in r else None

    out: dict[str, float] = {}
    for row, tag in (("gateway REST", "rest"), ("gateway gRPC", "grpc")):
        gw, direct = get(row, "c1", "p50_ms"), get("direct", "c1", "p50_ms")
        if gw is not None and direct is not None:
            out[f"{tag}_added_p50_ms_c1"] = round(gw - direct, 3)
        for run, key in (("c1", "rps"), ("c64", "rps"), ("stream", "streams_per_s")):
            gw, direct = get(row, run, key), get("direct", run, key)
            if gw is not None and direct:
                out[f"{tag}_throughput_ratio_{run}"] = round(gw / direct, 4)
    return out


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _jiffies() -> list[int]:
    """Whole-machine CPU ticks: user nice system idle iowait irq softirq steal."""
    try:
        return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return [0] * 8


def _our_cpu_s() -> float:
    """CPU seconds of this script and its waited-for children (servers, load generators)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """What disturbed a run: CPU stolen by the hypervisor, and CPU used by processes not ours."""

    def __init__(self) -> None:
        self.jiffies, self.ours = _jiffies(), _our_cpu_s()

    def report(self) -> dict[str, float]:
        delta = [a - b for a, b in zip(_jiffies(), self.jiffies, strict=True)]
        total = sum(delta)
        if total <= 0:
            return {}
        tick = os.sysconf("SC_CLK_TCK")
        busy_s = (total - delta[3] - delta[4] - delta[7]) / tick
        other_s = max(0.0, busy_s - (_our_cpu_s() - self.ours))
        return {
            "steal_percent": round(100 * delta[7] / total, 1),
            "other_processes_percent": round(100 * other_s * tick / total, 1),
        }


def busy_percent(seconds: float = 1.0) -> float:
    """How busy the machine is before we start (other people's tests skew everything)."""
    before = _jiffies()
    time.sleep(seconds)
    delta = [a - b for a, b in zip(_jiffies(), before, strict=True)]
    return round(100 * (1 - (delta[3] + delta[4]) / sum(delta)), 1) if sum(delta) else 0.0


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_rev": rev or "uncommitted",
    }


def measure_direct(rows: Rows, up_port: int, duration: float, warmup: float) -> None:
    url = f"http://127.0.0.1:{up_port}/v1/chat/completions"
    body = chat_body(UPSTREAM_MODEL)
    warm_up(url, body, 1)
    rows["direct"]["c1"] = measure("direct c=1", wrk, url, body, 1, duration)
    rows["direct"]["c64"] = measure("direct c=64", wrk, url, body, 64, duration)
    rows["direct"]["stream"] = measure(
        "direct streams c=16", streams, url, UPSTREAM_MODEL, 16, duration, warmup
    )


def measure_gateway(rows: Rows, notes: list[str], http_port: int, grpc_port: int,
                    duration: float, warmup: float, pid: int) -> None:
    url = f"http://127.0.0.1:{http_port}/v1/chat/completions"
    body = chat_body(GATEWAY_MODEL)
    if problem := check_chat(url, body):
        notes.append(f"gateway REST sanity request failed: {problem}")
        print(notes[-1], file=sys.stderr)
    rest, rpc = rows["gateway REST"], rows["gateway gRPC"]
    warm_up(url, body, warmup)
    rest["c1"] = measure("gateway REST c=1", wrk, url, body, 1, duration, server_pid=pid)
    rest["c64"] = measure("gateway REST c=64", wrk, url, body, 64, duration, server_pid=pid)
    rest["stream"] = measure("gateway streams c=16", streams, url, GATEWAY_MODEL, 16, duration,
                             warmup, server_pid=pid)
    target = f"127.0.0.1:{grpc_port}"
    rpc["c1"] = measure("gateway gRPC c=1", grpc_load, target, 1, duration, warmup, False,
                        server_pid=pid)
    rpc["c64"] = measure("gateway gRPC c=64", grpc_load, target, 64, duration, warmup, False,
                         server_pid=pid)
    rpc["stream"] = measure("gateway gRPC streams c=16", grpc_load, target, 16, duration,
                            warmup, True, server_pid=pid)


def error_notes(rows: Rows) -> list[str]:
    notes = []
    for row, runs in rows.items():
        for name, r in runs.items():
            if r and r.get("failed"):
                notes.append(f"{row} {name} failed: {r['failed'][:500]}")
            elif r and r.get("errors"):
                extra = r.get("last_error") or r.get("error_kinds") or ""
                notes.append(f"{row} {name}: {r['errors']} errors {extra}".rstrip())
    return notes


def run(duration: float, warmup: float, workdir: Path,
        core_transport: str = "local") -> dict[str, Any]:
    """Starts both servers, measures every row; the report says what failed in its notes."""
    rows: Rows = {"direct": {}, "gateway REST": {}, "gateway gRPC": {}}
    notes: list[str] = []
    report: dict[str, Any] = {"rows": rows, "notes": notes, "gateway_started": False}
    up_log, gw_log = workdir / "upstream.log", workdir / "gateway.log"
    up_cmd = pinned(LOAD_CORE, PYTHON, str(BENCH / "fake_upstream.py"), "--port", "0")
    with background(up_cmd, up_log) as upstream:
        up_port = wait_listening(upstream, up_log)
        print(f"fake upstream on :{up_port} (core {LOAD_CORE})", file=sys.stderr)
        measure_direct(rows, up_port, duration, warmup)

        http_port, grpc_port = free_port(), free_port()
        config = workdir / "gateway.yaml"
        config.write_text(CONFIG.format(port=up_port, transport=core_transport))
        env = {
            **os.environ,
            "ADDR": f"127.0.0.1:{http_port}",
            "GRPC_ADDR": f"127.0.0.1:{grpc_port}",
        }
        gw_cmd = pinned(SERVER_CORE, GATEWAY, "serve", "--config", str(config))
        with background(gw_cmd, gw_log, env=env) as gateway:
            try:
                wait_ready(gateway, f"http://127.0.0.1:{http_port}/ready", gw_log)
            except RuntimeError as e:
                notes.append(f"gateway did not start: {e}")
                print(notes[-1], file=sys.stderr)
                return report
            report["gateway_started"] = True
            print(
                f"gateway on :{http_port}, gRPC :{grpc_port} (core {SERVER_CORE})", file=sys.stderr
            )
            memory = {"idle": rss_mb(gateway.pid)}
            measure_gateway(rows, notes, http_port, grpc_port, duration, warmup, gateway.pid)
            memory["after_load"] = rss_mb(gateway.pid)
            if gateway.poll() is not None:
                notes.append(f"gateway exited during the run with {gateway.returncode}")
            stopping = time.monotonic()
            stop(gateway)
            report["gateway_rss_mb"] = memory
            report["gateway_stop_s"] = round(time.monotonic() - stopping, 2)
        if gw_tail := gw_log.read_text(errors="replace").strip().splitlines()[-20:]:
            notes.append("gateway log tail:\n" + "\n".join(gw_tail))
    notes.extend(error_notes(rows))
    return report


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    ap.add_argument("--quick", action="store_true", help="2 s per measurement (CI smoke check)")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    ap.add_argument("--core-transport", choices=("local", "unix", "tcp"), default="local",
                    help="how the facade reaches the core in one process")
    args = ap.parse_args()
    duration = 2.0 if args.quick else args.duration
    warmup = 0.5 if args.quick else 2.0
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 2
    # A SIGTERM to this script unwinds like Ctrl-C, so every child is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    busy = busy_percent()
    if busy > 15:
        print(
            f"warning: the machine is {busy}% busy before the run; figures will be low",
            file=sys.stderr,
        )
    started, watch = time.monotonic(), CpuWatch()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        report = run(duration, warmup, Path(tmp), args.core_transport)
    disturbance = watch.report()
    rows = report["rows"]
    md = table(rows)
    extra = derived(rows)
    print("\n" + md + "\n")
    if "rest_added_p50_ms_c1" in extra:
        print(
            f"added latency p50 at c=1: REST {extra['rest_added_p50_ms_c1']:+.2f} ms, "
            f"gRPC {extra.get('grpc_added_p50_ms_c1', float('nan')):+.2f} ms"
        )
    for tag, label in (("rest", "REST"), ("grpc", "gRPC")):
        ratios = [
            f"{run} {extra[f'{tag}_throughput_ratio_{key}']:.3f}"
            for key, run in (("c1", "c=1"), ("c64", "c=64"), ("stream", "streams"))
            if f"{tag}_throughput_ratio_{key}" in extra
        ]
        if ratios:
            print(f"throughput ratio gateway {label} / direct: " + ", ".join(ratios))
    if memory := report.get("gateway_rss_mb"):
        print(
            f"gateway RSS: {memory['idle']} MB idle, {memory['after_load']} MB after the load; "
            f"stopped {report['gateway_stop_s']} s after SIGTERM"
        )
    print(
        f"machine busy before the run: {busy}%; during it: CPU steal "
        f"{disturbance.get('steal_percent')}%, other processes "
        f"{disturbance.get('other_processes_percent')}% of the machine"
    )
    for note in report["notes"]:
        print("note: " + note)
    out = {
        "command": " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]]),
        "duration_s": duration,
        "warmup_s": warmup,
        "machine": machine(),
        "busy_before_percent": busy,
        "disturbance": disturbance,
        "elapsed_s": round(time.monotonic() - started, 1),
        "results": rows,
        "derived": extra,
        "gateway_rss_mb": report.get("gateway_rss_mb"),
        "gateway_stop_s": report.get("gateway_stop_s"),
        "table": md,
        "notes": report["notes"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(
        f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}"
        f" in {out['elapsed_s']} s"
    )
    failed = any(r and r.get("failed") for v in rows.values() for r in v.values())
    return 0 if report["gateway_started"] and not failed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: subprocesses stopped", file=sys.stderr)
        sys.exit(130)
