"""What this machine charges for a loopback round trip between two processes, on two cores and
on one: the floor under every c=1 latency in the table.

A caller sends 64 bytes over loopback TCP (TCP_NODELAY) to an echo process and waits for
them back, ``--samples`` times. Across cores, each leg has to wake the other core; on a
virtual machine whose idle vCPUs halt, that wake is the hypervisor's to schedule and can
cost hundreds of microseconds. A gateway request at c=1 crosses cores four times (client ->
gateway -> upstream -> gateway -> client, with the client and upstream on the load core);
the upstream called directly crosses none. Prints one line ``WAKE_RESULT {json}``.

Example::

    python bench/wake_probe.py --cores 0,1 --samples 2000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import time


def _echo(port: int, core: int) -> None:
    os.sched_setaffinity(0, {core})
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := conn.recv(256):
            conn.sendall(data)


def round_trips(caller_core: int, echo_core: int, samples: int) -> list[float]:
    """Seconds per round trip, sorted; the caller runs in a child pinned to ``caller_core``."""
    reader, writer = os.pipe()
    caller = os.fork()
    if caller:
        os.close(writer)
        with os.fdopen(reader) as results:
            found = json.loads(results.read() or "[]")
        os.waitpid(caller, 0)
        return sorted(found)
    os.close(reader)
    try:
        os.sched_setaffinity(0, {caller_core})
        with socket.create_server(("127.0.0.1", 0)) as server:
            echo = os.fork()
            if not echo:
                _echo(server.getsockname()[1], echo_core)
                os._exit(0)
            conn, _ = server.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message, times = b"x" * 64, []
        for _ in range(samples):
            sent = time.perf_counter()
            conn.sendall(message)
            got = 0
            while got < len(message):
                got += len(conn.recv(256))
            times.append(time.perf_counter() - sent)
        conn.close()
        os.waitpid(echo, 0)
        os.write(writer, json.dumps(times).encode())
    finally:
        os._exit(0)


def _us(ordered: list[float], q: float) -> float:
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1e6, 1) if ordered else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cores", default="0,1", help="the server core and the load core")
    ap.add_argument("--samples", type=int, default=2000)
    args = ap.parse_args()
    server_core, load_core = (int(c) for c in args.cores.split(","))
    across = round_trips(server_core, load_core, args.samples)
    within = round_trips(load_core, load_core, args.samples)
    print("WAKE_RESULT " + json.dumps({
        "samples": args.samples,
        "across_cores_p50_us": _us(across, 0.5), "across_cores_p90_us": _us(across, 0.9),
        "one_core_p50_us": _us(within, 0.5), "one_core_p90_us": _us(within, 0.9),
    }), flush=True)


if __name__ == "__main__":
    main()
