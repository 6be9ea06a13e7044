"""Serve an ASGI app on the gateway's own connection classes, over Hypercorn's public
pieces (config, sockets, lifespan, worker context), or on plain Hypercorn when the
installed Hypercorn or h11 is not the version those classes are written against.

Example::

    await serve(app, config, shutdown_trigger=stop.wait)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import metadata
from typing import Any

import hypercorn.asyncio
from hypercorn.asyncio.lifespan import Lifespan
from hypercorn.asyncio.statsd import StatsdLogger
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.typing import AppWrapper, ASGIFramework, LifespanState
from hypercorn.utils import wrap_app

from gateway.edge.connection import GatewayTCPServer, IdleConnections

__all__ = ["PINNED", "serve", "version_mismatch"]

log = logging.getLogger("gateway.edge")

PINNED: Mapping[str, str] = {"hypercorn": "0.18.0", "h11": "0.16.0"}
"""The versions :mod:`gateway.edge`'s subclasses are written against (pinned in
pyproject.toml); on others the gateway serves with plain Hypercorn."""


def version_mismatch(installed: Mapping[str, str] | None = None) -> str:
    """What differs from :data:`PINNED` (``"hypercorn 0.19.0 (pinned 0.18.0)"``), or ``""``."""
    if installed is None:
        installed = {name: metadata.version(name) for name in PINNED}
    return ", ".join(f"{name} {installed.get(name)} (pinned {version})"
                     for name, version in PINNED.items() if installed.get(name) != version)


async def serve(app: ASGIFramework, config: Config, *,
                shutdown_trigger: Callable[[], Awaitable[Any]],
                installed: Mapping[str, str] | None = None) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns, then let the requests in flight
    finish within ``config.graceful_timeout``. ``installed`` overrides the versions read
    from the environment (tests)."""
    mismatch = version_mismatch(installed)
    if mismatch:
        log.warning(f"HTTP server: {mismatch}; serving with plain Hypercorn (correct, slower)")
        await hypercorn.asyncio.serve(app, config, shutdown_trigger=shutdown_trigger,
                                      mode="asgi")
        return
    await _serve(wrap_app(app, config.wsgi_max_body_size, "asgi"), config, shutdown_trigger)


async def _serve(app: AppWrapper, config: Config,
                 shutdown_trigger: Callable[[], Awaitable[Any]]) -> None:
    """Hypercorn's ``worker_serve`` for TCP (plain and TLS), with the gateway's
    connections."""
    config.set_statsd_logger_class(StatsdLogger)
    loop = asyncio.get_running_loop()
    state: LifespanState = {}
    lifespan = Lifespan(app, config, loop, state)
    lifespan_task = loop.create_task(lifespan.handle_lifespan())
    await lifespan.wait_for_startup()
    if lifespan_task.done() and (error := lifespan_task.exception()) is not None:
        raise error

    sockets = config.create_sockets()
    if sockets.quic_sockets:
        raise ValueError("HTTP/3 (quic_bind) is not served by the gateway")
    context = WorkerContext(None)
    idle = IdleConnections()
    connections: set[asyncio.Task[None]] = set()

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            connections.add(task)
            task.add_done_callback(connections.discard)
        await GatewayTCPServer(app, loop, config, context, state, reader, writer, idle)

    ssl = config.create_ssl_context() if config.ssl_enabled else None
    servers = [
        *[await asyncio.start_server(connected, backlog=config.backlog, ssl=ssl, sock=sock,
                                     ssl_handshake_timeout=config.ssl_handshake_timeout)
          for sock in sockets.secure_sockets],
        *[await asyncio.start_server(connected, backlog=config.backlog, sock=sock)
          for sock in sockets.insecure_sockets],
    ]
    try:
        stop = asyncio.ensure_future(shutdown_trigger())
        terminate = asyncio.ensure_future(context.terminate.wait())
        try:
            await asyncio.wait((stop, terminate), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (stop, terminate):
                waiter.cancel()
    finally:
        await context.terminated.set()  # recycled connections close after their request
        idle.close_all()
        for server in servers:
            server.close()
            await server.wait_closed()
        if connections:
            await asyncio.wait(connections, timeout=config.graceful_timeout)
        await lifespan.wait_for_shutdown()
        lifespan_task.cancel()
        try:
            await lifespan_task
        except asyncio.CancelledError:
            pass
