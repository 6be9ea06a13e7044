"""Where a request's time goes: py-spy samples the gateway under load, by layer.

Starts the fake upstream and ``gateway serve`` (pinned as in ``run.py``), drives
non-stream chat (wrk, c=64) or streams (c=16), samples the gateway with py-spy, and
prints the share of samples per layer (by the file of the innermost frame: self time),
plus the top functions. Writes the collapsed stacks next to the output for flame graphs.

Example::

    .venv/bin/python bench/profile_hot_path.py                 # non-stream, 10 s
    .venv/bin/python bench/profile_hot_path.py --stream -d 10  # streams
    .venv/bin/python bench/profile_hot_path.py --grpc          # gRPC clients on the core
    .venv/bin/python bench/profile_hot_path.py -c 1            # one client at a time
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (  # noqa: E402  (a script beside its sibling, not a package)
    BENCH,
    CONFIG,
    GATEWAY,
    GATEWAY_MODEL,
    LOAD_CORE,
    PYTHON,
    SERVER_CORE,
    background,
    chat_body,
    free_port,
    grpc_load,
    pinned,
    streams,
    wait_listening,
    wait_ready,
    wrk,
)

# First match wins: (layer, substrings of a frame's file path).
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP server (hypercorn, h11, h2)", ("hypercorn/", "h11/", "h2/", "hpack/")),
    ("Quart and werkzeug", ("quart/", "werkzeug/", "blinker/", "flask/")),
    ("facade (routes, translation, SSE framing)", ("gateway/facade/",)),
    ("proto conversions", ("gateway/proto.py", "google/protobuf/", "_pb2")),
    ("core hop (in-process channel / grpc)", ("gateway/service/local_channel", "grpc/")),
    ("core (interceptor, auth, admission, router, pipeline)", (
        "gateway/service/", "gateway/routing/", "gateway/resilience/", "gateway/tenancy/",
        "gateway/state/", "gateway/errors.py", "gateway/domain.py", "gateway/lifecycle.py")),
    ("providers (codecs, transport)", ("gateway/providers/",)),
    ("upstream client (aiohttp, yarl, multidict)", ("aiohttp/", "yarl/", "multidict/",
                                                    "propcache/", "aiohappyeyeballs/")),
    ("metrics, logs, traces", ("prometheus_client/", "gateway/observability/",
                               "opentelemetry/", "logging/")),
    ("JSON (orjson, json)", ("orjson", "json/")),
    ("event loop (uvloop, asyncio)", ("uvloop/", "asyncio/", "selectors.py")),
)


def layer_of(frame: str) -> str:
    """The layer of a py-spy frame, ``function (package/module.py:line)``."""
    frame = "(" + frame.partition(" (")[2]
    for name, needles in LAYERS:
        if any(n in frame for n in needles):
            return name
    return "other (stdlib, interpreter)"


def summarize(collapsed: Path) -> str:
    """Self-time shares by layer and the top functions, from py-spy's collapsed stacks."""
    layers: collections.Counter[str] = collections.Counter()
    functions: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        leaf = stack.split(";")[-1]
        layers[layer_of(leaf)] += count
        functions[leaf] += count
        total += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", "| layer | share of samples |", "|---|---:|"]
    for name, count in layers.most_common():
        lines.append(f"| {name} | {100 * count / total:.1f}% |")
    lines += ["", "top functions (self):"]
    for name, count in functions.most_common(25):
        lines.append(f"  {100 * count / total:5.1f}%  {name}")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-d", "--duration", type=float, default=10.0)
    ap.add_argument("--stream", action="store_true", help="streams at c=16 instead of c=64")
    ap.add_argument("--grpc", action="store_true", help="gRPC clients on the core, not REST")
    ap.add_argument("-c", "--concurrency", type=int, default=0,
                    help="clients at once (default: 64, or 16 for streams)")
    ap.add_argument("--config-extra", default="", help="YAML appended to the bench config")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "profile.txt")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(Path(PYTHON).parent / "py-spy")
    if not Path(spy).exists():
        print("py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="profile-") as tmp:
        work = Path(tmp)
        up_cmd = pinned(LOAD_CORE, PYTHON, str(BENCH / "fake_upstream.py"), "--port", "0")
        with background(up_cmd, work / "upstream.log") as upstream:
            up_port = wait_listening(upstream, work / "upstream.log")
            http_port, grpc_port = free_port(), free_port()
            config = work / "gateway.yaml"
            config.write_text(CONFIG.format(port=up_port, transport="local")
                              + args.config_extra)
            env = {"ADDR": f"127.0.0.1:{http_port}", "GRPC_ADDR": f"127.0.0.1:{grpc_port}"}
            gw_cmd = pinned(SERVER_CORE, GATEWAY, "serve", "--config", str(config))
            with background(gw_cmd, work / "gateway.log", env={**os.environ, **env}) as gw:
                wait_ready(gw, f"http://127.0.0.1:{http_port}/ready", work / "gateway.log")
                url = f"http://127.0.0.1:{http_port}/v1/chat/completions"
                body = chat_body(GATEWAY_MODEL)
                clients = args.concurrency or (16 if args.stream else 64)
                wrk(url, body, clients, 2)  # warm
                collapsed = work / "stacks.txt"
                sampler = subprocess.Popen(
                    [spy, "record", "--pid", str(gw.pid), "--format", "raw", "--rate", "250",
                     "--duration", str(round(args.duration)), "--output", str(collapsed),
                     "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(0.5)
                if args.grpc:
                    result = grpc_load(f"127.0.0.1:{grpc_port}", clients, args.duration, 0.5,
                                       args.stream)
                elif args.stream:
                    result = streams(url, GATEWAY_MODEL, clients, args.duration, 0.5)
                else:
                    result = wrk(url, body, clients, args.duration)
                sampler.wait(args.duration + 30)
                summary = summarize(collapsed)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(collapsed, args.out.with_suffix(".collapsed"))
        keys = ("rps", "streams_per_s", "p50_ms", "p99_ms", "ttfb_p50_ms", "errors")
        text = (f"load: {({k: result[k] for k in keys if k in result})}\n\n{summary}\n")
        args.out.write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
