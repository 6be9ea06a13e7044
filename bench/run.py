"""One command, one table: the fake upstream direct, the fixed-response ceiling of our HTTP
stack, the gateway's REST facade and gRPC core, the stack's minimal REST and gRPC paths,
LiteLLM when installed, and the gateway with tracing and limits, with Redis limits and with
two workers; the concurrency sweep; memory after a long mixed load.

Servers under test run on core 0, the fake upstream and the load generators on core 1 (wrk
for non-stream REST, ``stream_client.py`` for SSE, ``grpc_client.py`` for gRPC). Prints the
table, the sweep and the issue's targets, writes bench/results/latest.json and an SVG chart.

Example::

    .venv/bin/python bench/run.py                  # the whole matrix, ~10 minutes
    .venv/bin/python bench/run.py --quick          # every phase, short: ~2 minutes
    .venv/bin/python bench/run.py --only rest,grpc --duration 20
    .venv/bin/python bench/run.py --skip memory,litellm --chart
    .venv/bin/python bench/run.py --check          # CI: seconds; fails on gross regressions
    .venv/bin/python bench/run.py --only logcost,pages   # the request log's cost, its pages

``logcost`` and ``pages`` (bench/_logged.py: the request log's cost and its pages' speed
with 100,000 requests in PostgreSQL) run only when named: each takes minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _chart import render
from _check import check
from _loads import (  # noqa: F401 (some re-exported for bench/profile_hot_path.py)
    PYTHON,
    chat_body,
    grpc_load,
    loopback_round_trip,
    streams,
    wrk,
)
from _logged import PHASE_STEPS as LOG_STEPS
from _logged import cost_targets, page_targets, pages_table
from _phases import (
    CURVE,
    PHASES,
    Bench,
    base_gateway,
    direct,
    limits,
    litellm_phase,
    memory,
    minimal_paths,
    say,
    workers,
)
from _procs import (  # noqa: F401  (some re-exported for bench/profile_hot_path.py)
    BENCH,
    LOAD_CORE,
    ROOT,
    SERVER_CORE,
    CpuWatch,
    background,
    busy_percent,
    free_port,
    machine,
    pinned,
    wait_listening,
    wait_ready,
)
from _report import derived, recorded_figures, series, sweep_table, table, targets
from _servers import CONFIG, GATEWAY, GATEWAY_MODEL, upstream  # noqa: F401 (as above)

RECORDED = BENCH / "recorded.json"
DOCS_CHART = ROOT / "docs" / "performance-chart.svg"


OPT_IN = tuple(name for name, _ in LOG_STEPS)  # only when named in --only


def _phases(only: str, skip: str) -> set[str]:
    chosen = set(PHASES)
    if only:
        chosen = {p.strip() for p in only.split(",") if p.strip()}
    chosen -= {p.strip() for p in skip.split(",") if p.strip()}
    if unknown := chosen - set(PHASES) - set(OPT_IN):
        raise SystemExit(f"unknown phase(s) {sorted(unknown)}; phases: "
                         f"{', '.join(PHASES + OPT_IN)}")
    return chosen


def run(b: Bench) -> None:
    """Every chosen phase, in an order that keeps each comparison's two sides close in time."""
    with upstream(b.work) as up_port:
        say(f"fake upstream on :{up_port} (core {LOAD_CORE})")
        steps = [
            ({"direct"}, direct),
            ({"ceiling", "rest", "grpc"}, base_gateway),
            ({"minimal"}, minimal_paths),
            ({"litellm"}, litellm_phase),
            ({"observed", "redis"}, limits),
            ({"workers"}, workers),
            ({"memory"}, memory),
            *(({name}, step) for name, step in LOG_STEPS),
        ]
        for phases, step in steps:
            if phases & b.phases:
                started = time.monotonic()
                try:
                    step(b, up_port)
                except RuntimeError as e:  # a server that did not start; the rest still run
                    b.note(f"{step.__name__} failed: {e}")
                b.facts.setdefault("phase_seconds", {})[step.__name__] = round(
                    time.monotonic() - started, 1)
    for row, runs in b.rows.items():
        for name, r in runs.items():
            if isinstance(r, dict) and r.get("failed"):
                b.notes.append(f"{row} {name} failed: {r['failed'][:500]}")
            elif isinstance(r, dict) and r.get("errors"):
                extra = r.get("last_error") or r.get("error_kinds") or ""
                b.notes.append(f"{row} {name}: {r['errors']} errors {extra}".rstrip())


def chart(sweep: dict[str, list[dict[str, Any]]], info: dict[str, Any], paths: list[Path]) -> None:
    def pick(key: str) -> dict[str, list[tuple[float, float]]]:
        return {p: [(float(x["c"]), float(x[key])) for x in pts if x.get(key)]
                for p, pts in sweep.items()}

    m = info["machine"]
    svg = render(
        "llm-gateway: one worker against its upstream and its HTTP stack's ceiling",
        f"{m['nproc']} cores, {m['cpu']}, Python {m['python']}, Linux {m['kernel']}\n"
        f"server on core {SERVER_CORE}, fake upstream and load generators on core {LOAD_CORE}; "
        f"{info['when']}, git {m['git_rev']}",
        pick("rps"), pick("p50_ms"), pick("p99_ms"), CURVE)
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(svg)
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    ap.add_argument("--curve-duration", type=float, default=3.0,
                    help="seconds per extra point of the sweep (c=4, 16, 128)")
    ap.add_argument("--memory-requests", default="10000,100000",
                    help="RSS read after the first and after the total count of requests")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 1 s per measurement, no sweep, 1,000/5,000 requests")
    ap.add_argument("--only", default="", help=f"comma-separated phases: {', '.join(PHASES)}; "
                    f"only when named: {', '.join(OPT_IN)}")
    ap.add_argument("--skip", default="", help="comma-separated phases to leave out")
    ap.add_argument("--chart", action="store_true",
                    help=f"also write the chart to {DOCS_CHART.relative_to(ROOT)}")
    ap.add_argument("--record", action="store_true",
                    help=f"write this run's req/s per row to {RECORDED.relative_to(ROOT)}")
    ap.add_argument("--check", action="store_true",
                    help="CI: a short run that fails only below a third of the recorded figures")
    ap.add_argument("--recorded", type=Path, default=RECORDED,
                    help="the figures --check compares with")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "latest.json")
    ap.add_argument("--core-transport", choices=("local", "unix", "tcp"), default="local",
                    help="how the facade reaches the core in one process")
    args = ap.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (apt-get install {tool})", file=sys.stderr)
            return 2
    # A SIGTERM to this script unwinds like Ctrl-C, so every child is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    if args.check:
        with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
            return check(Path(tmp), args.recorded)

    first, total = (int(x) for x in args.memory_requests.split(","))
    phases = _phases(args.only, args.skip)
    if args.quick:
        first, total = 1_000, 5_000
        if not args.only:  # the sweep's extra points only when asked for by name
            phases.discard("curve")
    busy = busy_percent()
    if busy > 15:
        print(f"warning: the machine is {busy}% busy before the run; figures will be low")
    wake = loopback_round_trip()
    started, watch = time.monotonic(), CpuWatch()
    info: dict[str, Any] = {"machine": machine(),
                            "when": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        b = Bench(
            work=Path(tmp), phases=phases,
            duration=1.0 if args.quick else args.duration,
            warmup=0.5 if args.quick else 2.0,
            curve_s=1.0 if args.quick else args.curve_duration,
            memory_requests=(first, total), transport=args.core_transport,
        )
        run(b)
    elapsed = round(time.monotonic() - started, 1)
    disturbance = watch.report()
    rows, extra, sweep = b.rows, derived(b.rows, b.facts), series(b.rows)
    md = table(rows)
    print("\n" + md + "\n")
    if sweep:
        print("concurrency sweep, each cell req/s / p50 ms / p99 ms:\n")
        print(sweep_table(sweep) + "\n")
    if page_md := pages_table(b.facts):
        print(page_md + "\n")
    for key, value in extra.items():
        print(f"{key}: {value}")
    print()
    for line in [*targets(rows, b.facts, extra), *cost_targets(b.facts),
                 *page_targets(b.facts)]:
        print("target: " + line)
    if sink := b.facts.get("otlp_sink"):
        print(f"OTLP sink received {sink.get('calls', 0)} export calls, "
              f"{sink.get('bytes', 0):,} bytes (tracing was on)")
    if "gateway_stop_s" in b.facts:
        print(f"the base gateway stopped {b.facts['gateway_stop_s']} s after SIGTERM")
    print(
        f"machine busy before the run: {busy}%; during it: CPU steal "
        f"{disturbance.get('steal_percent')}%, other processes "
        f"{disturbance.get('other_processes_percent')}% of the machine"
    )
    if wake:
        print(f"loopback round trip before the run: across the two cores p50 "
              f"{wake['across_cores_p50_us']} µs (p90 {wake['across_cores_p90_us']}), on one "
              f"core p50 {wake['one_core_p50_us']} µs (a gateway request at c=1 crosses cores "
              f"four times, the upstream called directly none)")
    for note in b.notes:
        print("note: " + note)
    out = {
        "command": " ".join([".venv/bin/python bench/run.py", *sys.argv[1:]]),
        "when": info["when"],
        "duration_s": b.duration,
        "curve_duration_s": b.curve_s,
        "warmup_s": b.warmup,
        "phases": sorted(b.phases),
        "machine": info["machine"],
        "busy_before_percent": busy,
        "loopback_round_trip": wake,
        "disturbance": disturbance,
        "elapsed_s": elapsed,
        "results": rows,
        "series": sweep,
        "derived": extra,
        "facts": b.facts,
        "targets": [*targets(rows, b.facts, extra), *cost_targets(b.facts),
                    *page_targets(b.facts)],
        "table": md,
        "notes": b.notes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nwrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")
    if sweep:
        chart(sweep, info, [BENCH / "results" / "chart.svg", *([DOCS_CHART] * args.chart)])
    if args.record:
        RECORDED.write_text(json.dumps({
            "about": "req/s (streams/s) per row of one bench/run.py run; bench/run.py --check "
                     "fails when a figure falls below a third of its value here",
            "when": info["when"], "command": out["command"], "machine": info["machine"],
            "rows": recorded_figures(rows),
        }, indent=2) + "\n")
        print(f"wrote {RECORDED.relative_to(ROOT)}")
    print(f"total time {elapsed} s")
    failed = any(isinstance(r, dict) and r.get("failed") for v in rows.values() for r in v.values())
    return 1 if failed or any("failed:" in n or "did not start" in n for n in b.notes) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted: subprocesses stopped", file=sys.stderr)
        sys.exit(130)
