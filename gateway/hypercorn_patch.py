"""Close a connection as soon as its client does (a fix for Hypercorn's asyncio server).

Hypercorn 0.17 and 0.18 run each connection's reader inside a task group that also holds
the keep-alive idle timer. When the client closes the connection, reading ends but the
group waits for that timer (``server.keep_alive_timeout``, 75 s by default) before the
socket is closed. Each connection a client closed therefore kept a file descriptor, a
CLOSE-WAIT socket and its server objects for that long, so descriptors and memory grew
with the rate of new connections (health probes, curl, SDKs dropping pooled
connections, clients that stop reading a stream at ``[DONE]``), not with the work
actually in progress. The soak test found it (tests/reliability/test_soak.py;
regression: tests/reliability/test_fault_regressions.py).

:func:`apply` stops the idle timer once reading has ended, which is what Hypercorn's own
close path does a moment later; nothing else changes. It is applied by ``gateway serve``
before the server starts, and is a no-op on a Hypercorn without that timer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from hypercorn.asyncio import tcp_server

__all__ = ["apply"]

_MARK = "_llm_gateway_closes_on_eof"


def apply() -> None:
    """Patch :class:`hypercorn.asyncio.tcp_server.TCPServer` once (idempotent)."""
    server = tcp_server.TCPServer
    read: Callable[[Any], Awaitable[None]] | None = getattr(server, "_read_data", None)
    if read is None or getattr(server, _MARK, False):
        return

    async def read_then_stop_idle_timer(self: Any) -> None:
        try:
            await read(self)
        finally:
            idle = getattr(self, "idle_task", None)
            if idle is not None:
                await idle.stop()

    setattr(server, "_read_data", read_then_stop_idle_timer)  # noqa: B010
    setattr(server, _MARK, True)  # noqa: B010
