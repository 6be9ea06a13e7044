"""REST A/B of source trees in one run: a gateway from each tree up at once on the server
core, one fake upstream, and wrk alternating between them round by round (the order
reversed every other round), so each side meets the same disturbances. Separate bench runs
differ by more than most changes cost (docs/performance.md, change 21).

    git worktree add --detach ../before 7ec933c && ln -s "$PWD/.venv" ../before/.venv
    .venv/bin/python bench/ab_trees.py ../before . --conns 64 --rounds 6

Each tree runs on this venv with ``PYTHONPATH=<tree>:<tree>/gen``; prints each tree's
figure per round (c=1: p50 ms; otherwise: req/s) and their medians.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path

from _loads import chat_body, wrk
from _servers import GATEWAY_MODEL, Server, gateway, gateway_config, upstream


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path, help="source trees (worktrees)")
    ap.add_argument("--conns", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=4.0, help="per tree and round")
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees]
    figure = "p50_ms" if args.conns == 1 else "ok_rps"
    body = chat_body(GATEWAY_MODEL)
    results: dict[Path, list[float]] = {t: [] for t in trees}
    with ExitStack() as stack:
        port = stack.enter_context(upstream(Path(tempfile.mkdtemp(prefix="ab-trees-"))))
        work = Path(tempfile.mkdtemp(prefix="ab-trees-"))
        servers: dict[Path, Server] = {}
        for i, tree in enumerate(trees):
            os.environ["PYTHONPATH"] = f"{tree}:{tree}/gen"  # the gateway's environment
            servers[tree] = stack.enter_context(
                gateway(work, f"tree-{i}", gateway_config(port)))
        for tree in trees:  # warm-up
            wrk(servers[tree].url + "/v1/chat/completions", body, args.conns, 2)
        for r in range(args.rounds):
            for tree in trees if r % 2 == 0 else reversed(trees):
                out = wrk(servers[tree].url + "/v1/chat/completions", body, args.conns,
                          args.seconds)
                results[tree].append(float(out[figure]))
    for tree, values in results.items():
        print(f"{tree}: {figure} {values} median {statistics.median(values):.3f}")


if __name__ == "__main__":
    main()
