"""Render the reliability scorecard: JSON lines recorded by the tests into a markdown table.

``scripts/scorecard.sh`` runs the fuzz, fault, security, hostile-client and soak tests
with ``SCORECARD_FILE`` set (each test appends one line per thing it tried, through
``tests/reliability/scorecard.py``), then calls this script, which puts the table, the
totals, the date and the machine between ``<!-- scorecard:begin -->`` and
``<!-- scorecard:end -->`` in docs/reliability.md. Only that span changes: the file is
read right before it is written, so other sections edited meanwhile are kept.

Usage::

    python scripts/render_scorecard.py LINES.jsonl --doc docs/reliability.md \\
        --mode long --pytest "212 passed in 801.2s" [--dry-run]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

BEGIN = "<!-- scorecard:begin -->"
END = "<!-- scorecard:end -->"
SECTIONS = ("fuzz", "hostile", "faults", "security", "soak")
# Error classes worth adding up across rows: HTTP statuses, gRPC status names and the load
# driver's classes (tests/reliability/load.py). Tests may record other tallies per row.
_SUMMABLE = re.compile(r"\d{3}|[A-Z][A-Z_]+|[45]xx|transport|timeout|stream_error|stream_cut")
KEY_WIDTH = 40


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    order = {name: i for i, name in enumerate(SECTIONS)}
    return sorted(rows, key=lambda r: (order.get(r["section"], len(order)), r["at"]))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return (f"{platform.node()}: {cpu_model()}, {os.cpu_count()} cores, "
            f"{platform.system()} {platform.release()}, Python {platform.python_version()}")


def errors_text(errors: dict[str, int]) -> str:
    def key(cls: str) -> str:
        return cls if len(cls) <= KEY_WIDTH else cls[:KEY_WIDTH - 1] + "…"

    return ", ".join(f"{key(cls) or '(empty)'}: {n:,}"
                     for cls, n in sorted(errors.items())) or "none"


def drift(value: float | int | None, unit: str = "") -> str:
    if value is None:
        return ""
    return f"{value:+g}{unit}"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: list[dict[str, Any]], *, mode: str, pytest_summary: str, when: str,
           host: str) -> str:
    lines = [
        f"Generated {when} on {host}, {mode} mode"
        + (" (`GATEWAY_LONG_RUNS=1`)" if mode == "long" else "")
        + f"; pytest: {pytest_summary or 'no summary'}.",
        "",
        "| # | section | what was tried | inputs | served | errors by class | lost "
        "| RSS drift (MiB) | fd drift |",
        "|---:|---|---|---:|---:|---|---:|---:|---:|",
    ]
    totals: Counter[str] = Counter()
    notes = []
    for i, r in enumerate(rows, 1):
        totals.update({k: v for k, v in r["errors"].items() if _SUMMABLE.fullmatch(k)})
        lines.append(
            f"| {i} | {r['section']} | {cell(r['name'])} | {r['inputs']:,} | {r['served']:,} "
            f"| {cell(errors_text(r['errors']))} | {r['lost']} "
            f"| {drift(r['rss_drift_mib'])} | {drift(r['fd_drift'])} |")
        if r.get("note"):
            notes.append(f"row {i}: {r['note']}")
    rss = [r["rss_drift_mib"] for r in rows if r["rss_drift_mib"] is not None]
    fds = [r["fd_drift"] for r in rows if r["fd_drift"] is not None]
    lines.append(
        f"| | **total** | {len(rows)} rows | {sum(r['inputs'] for r in rows):,} "
        f"| {sum(r['served'] for r in rows):,} | {cell(errors_text(dict(totals)))} "
        f"| {sum(r['lost'] for r in rows)} | {drift(max(rss)) if rss else ''} "
        f"| {drift(max(fds)) if fds else ''} |")
    by_section = Counter(r["section"] for r in rows)
    lines += ["", "Rows by section: " + ", ".join(
        f"{s} {by_section[s]}" for s in (*SECTIONS, *sorted(set(by_section) - set(SECTIONS)))
        if by_section[s]) + "."]
    if notes:
        lines += ["", "Notes:", "", *(f"- {n}" for n in notes)]
    return "\n".join(lines)


def replace_span(doc: str, table: str) -> str:
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(doc):
        raise SystemExit(f"the markers {BEGIN} ... {END} are missing from the document")
    return pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", doc, count=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lines", type=Path, help="the SCORECARD_FILE the tests appended to")
    parser.add_argument("--doc", type=Path, default=Path("docs/reliability.md"))
    parser.add_argument("--mode", choices=("fast", "long"), default="long")
    parser.add_argument("--pytest", default="", help="pytest's last summary line")
    parser.add_argument("--dry-run", action="store_true", help="print; leave the doc alone")
    args = parser.parse_args(argv)
    rows = load(args.lines) if args.lines.exists() else []
    if not rows:
        print("no scorecard rows were recorded", file=sys.stderr)
        return 1
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = render(rows, mode=args.mode, pytest_summary=args.pytest, when=when,
                   host=machine())
    if args.dry_run:
        print(table)
        return 0
    doc = args.doc.read_text()  # read right before writing: keep others' edits
    args.doc.write_text(replace_span(doc, table))
    print(f"{args.doc}: scorecard of {len(rows)} rows written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
