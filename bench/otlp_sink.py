"""A trivial OTLP/gRPC trace collector for the bench: accepts ``TraceService/Export`` and drops
the spans undecoded, so the gateway's exporter does its real work (batching, protobuf, a gRPC
call) while the sink costs next to nothing on the load core.

Prints ``LISTENING <port>`` when ready, and ``EXPORTS <calls> <bytes>`` when stopped (SIGTERM
or SIGINT), so the bench can say that spans did arrive.

Example::

    python bench/otlp_sink.py --port 0
"""

from __future__ import annotations

import argparse
import signal
import threading
from concurrent import futures
from typing import Any

import grpc

SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    calls, size, lock = [0], [0], threading.Lock()

    def export(request: bytes, context: Any) -> bytes:
        with lock:
            calls[0] += 1
            size[0] += len(request)
        return b""  # an empty ExportTraceServiceResponse: everything accepted

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    handler = grpc.unary_unary_rpc_method_handler(export)  # bytes in, bytes out
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, {"Export": handler}),)
    )
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    server.start()
    print(f"LISTENING {port}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop(None)
    print(f"EXPORTS {calls[0]} {size[0]}", flush=True)


if __name__ == "__main__":
    main()
