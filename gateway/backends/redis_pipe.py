"""One Redis connection that concurrent callers share, pipelined: :class:`RedisPipe`.

The rate limiter and the shared breakers run a script on every request. On redis-py's client
each call takes a pooled connection, writes under a task of its own and reads under its own
timeout; on a pipe, a call queues its command and a future, one writer task writes whatever
has queued in one write, and one reader task hands each reply to the oldest future (Redis
answers a connection's commands in order). A caller cancelled at any point leaves its
command and future behind, so the replies of the others stay in step and the connection up.

redis-py still connects (AUTH, SELECT, HELLO, TLS from the client's URL) and parses replies;
an error reply goes to its caller alone. Redis unreachable (:mod:`.redis_failures`): every
waiting caller fails with a :data:`~.redis_failures.TRANSPORT_ERRORS` error and the next
call connects again; anything else that breaks the connection (a bug) reaches the callers
as itself.

Example::

    pipe = RedisPipe(redis)           # the app's redis.asyncio.Redis, for its settings
    reply = await pipe.call(pack(b"INCR", b"n"))
    allow = pipe.script(LUA)          # EVALSHA, loaded again if Redis has lost it
    reply = await allow(keys=[b"k"], args=[b"1"])
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from gateway.backends.redis_failures import TRANSPORT_ERRORS, unreachable

__all__ = ["PipedScript", "RedisPipe", "pack"]

log = logging.getLogger("gateway.backends")


def pack(*parts: bytes) -> bytes:
    """One command in RESP, the protocol's array of bulk strings."""
    return b"".join([b"*%d\r\n" % len(parts),
                     *(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)])


class RedisPipe:
    """Commands from any number of tasks on one pipelined connection to ``redis``'s server.

    ``timeout`` bounds the wait for each reply (default: the client's socket timeout,
    else 5 s); connecting is bounded by the client's connect timeout.
    """

    def __init__(self, redis: Redis, *, timeout: float | None = None):
        pool = redis.connection_pool
        kwargs = dict(pool.connection_kwargs)
        self.timeout: float = timeout or kwargs.get("socket_timeout") or 5.0
        # Writes never wait under a timeout (a task each, in redis-py); reads wait under
        # the reader's. No health-check PING either: the reader sees a closed socket.
        kwargs.update(socket_timeout=None, health_check_interval=0)
        self._connection_class: type[AbstractConnection] = pool.connection_class
        self._connection_kwargs = kwargs
        self._conn: AbstractConnection | None = None
        self._connecting: asyncio.Future[AbstractConnection] | None = None
        # One future per command sent or queued, in the order of the commands on the socket.
        self._waiting: deque[asyncio.Future[Any]] = deque()
        self._outbox: list[bytes] = []  # the commands the writer has yet to write
        self._wake: asyncio.Future[None] | None = None  # the writer's, while the outbox is empty
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._deadline: asyncio.Timeout | None = None  # the reader's, while it reads
        self._closing: set[asyncio.Task[None]] = set()
        self._closed = False

    async def call(self, command: bytes) -> Any:
        """Send one packed command (:func:`pack`) and return its reply.

        Raises the command's error reply (a ``ResponseError``), or a
        :data:`~gateway.backends.redis_failures.TRANSPORT_ERRORS` error when Redis cannot be
        reached.
        """
        if not isinstance(command, bytes):  # on the shared socket, it would fail every caller
            raise TypeError(f"a packed command is bytes, not {type(command).__name__}")
        conn = self._conn
        if conn is None or not conn.is_connected:
            if conn is not None:  # closed under us: its reader and waiters go with it
                self._broken(conn, RedisConnectionError("the connection to Redis was closed"))
            conn = await self._connect()
            if conn is not self._conn:  # broken again while this caller waited to resume
                raise RedisConnectionError("the connection to Redis was lost")
        loop = asyncio.get_running_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        waiting = self._waiting
        if not waiting and self._deadline is not None:
            self._deadline.reschedule(loop.time() + self.timeout)
        # The caller never writes: a cancellation from here on leaves the command to be
        # written and its reply to be dropped, never the socket half-written.
        waiting.append(reply)
        self._outbox.append(command)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)
        return await reply

    def script(self, source: str) -> PipedScript:
        return PipedScript(self, source)

    async def _connect(self) -> AbstractConnection:
        """The open connection, or a new one (one attempt shared by concurrent callers)."""
        if self._closed:
            raise RedisConnectionError("the Redis pipe is closed")
        connecting = self._connecting
        if connecting is None:
            # A context of its own, not the request's that happens to connect: the socket's
            # callbacks and the reader task keep the context they start in for as long as
            # the connection lives, and with it that request's ids and trace.
            connecting = self._connecting = asyncio.get_running_loop().create_task(
                self._open(), context=contextvars.Context())
            connecting.add_done_callback(self._connected)
        return await asyncio.shield(connecting)

    def _connected(self, connecting: asyncio.Future[AbstractConnection]) -> None:
        if self._connecting is connecting:
            self._connecting = None
        if not connecting.cancelled():
            connecting.exception()  # retrieved here when every caller has gone

    async def _open(self) -> AbstractConnection:
        conn = self._connection_class(**self._connection_kwargs)
        await conn.connect()  # type: ignore[no-untyped-call]
        if self._closed:
            await conn.disconnect(nowait=True)
            raise RedisConnectionError("the Redis pipe is closed")
        self._conn = conn
        self._reader = asyncio.create_task(self._read(conn), name="redis-pipe-reader")
        self._writer = asyncio.create_task(self._write(conn), name="redis-pipe-writer")
        return conn

    async def _write(self, conn: AbstractConnection) -> None:
        """Write the queued commands on ``conn``, in order, until ``conn`` breaks.

        Its own task because redis-py closes a connection when anything interrupts a write
        (a full socket buffer makes it wait), a caller's cancellation included.
        """
        loop = asyncio.get_running_loop()
        try:
            while True:
                commands = self._outbox
                if not commands:
                    wake = self._wake = loop.create_future()
                    await wake
                    continue
                self._outbox = []
                if not conn.is_connected:  # redis-py would connect it again, with no reader
                    raise RedisConnectionError("the connection to Redis was closed")
                await conn.send_packed_command(commands, check_health=False)
        except asyncio.CancelledError:
            if self._conn is conn and not self._closed:
                raise  # not ours: the loop is shutting down
        except Exception as exc:
            self._broken(conn, self._failure(conn, exc))

    async def _read(self, conn: AbstractConnection) -> None:
        """Hand each reply on ``conn`` to the oldest waiting caller, until ``conn`` breaks.

        Always reading, so a connection Redis closes while idle is noticed at once; the
        deadline runs only while a caller waits (:meth:`call` starts it).
        """
        waiting = self._waiting
        loop = asyncio.get_running_loop()
        deadline = self._deadline = asyncio.timeout(None)
        try:
            async with deadline:
                if waiting:
                    deadline.reschedule(loop.time() + self.timeout)
                while True:
                    try:
                        value: Any = await conn.read_response(disconnect_on_error=False)
                    except ResponseError as exc:
                        value = exc
                    if not waiting:
                        raise RedisConnectionError("Redis sent a reply nobody asked for")
                    reply = waiting.popleft()
                    deadline.reschedule(loop.time() + self.timeout if waiting else None)
                    if reply.done():  # its caller was cancelled
                        continue
                    if isinstance(value, ResponseError):
                        reply.set_exception(value)
                    else:
                        reply.set_result(value)
        except asyncio.CancelledError:
            if self._conn is conn and not self._closed:
                raise  # not ours: the loop is shutting down
        except Exception as exc:
            if isinstance(exc, TimeoutError):  # the deadline: Redis is silent
                exc = RedisConnectionError(f"no reply from Redis within {self.timeout}s")
            self._broken(conn, self._failure(conn, exc))
        finally:
            if self._deadline is deadline:
                self._deadline = None

    def _failure(self, conn: AbstractConnection, exc: Exception) -> Exception:
        """What the waiting callers get when ``exc`` ends the reader or the writer."""
        if isinstance(exc, TRANSPORT_ERRORS):
            return exc
        if unreachable(exc) or not conn.is_connected:  # e.g. a connection redis-py closed
            return RedisConnectionError(f"the connection to Redis failed: {type(exc).__name__}")
        # A bug, not an outage: the callers see it as it is, and so does the log when
        # nobody is waiting.
        log.error("the Redis pipe's connection failed", exc_info=exc)
        return exc

    def _broken(self, conn: AbstractConnection, exc: Exception) -> None:
        """Fail every waiting caller and close ``conn``; the next call connects anew."""
        if self._conn is not conn:
            return
        self._conn = None
        self._deadline = None
        waiting, self._waiting = self._waiting, deque()
        self._outbox = []
        self._wake = None
        for reply in waiting:
            if not reply.done():
                reply.set_exception(exc)
        this = asyncio.current_task()
        for task in (self._reader, self._writer):
            if task is not None and task is not this:
                task.cancel()
        self._reader = self._writer = None
        closing = asyncio.ensure_future(conn.disconnect(nowait=True))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        self._closed = True
        conn, tasks = self._conn, (self._reader, self._writer)
        if conn is not None:
            self._broken(conn, RedisConnectionError("the Redis pipe is closed"))
        await asyncio.gather(*(t for t in (*tasks, *self._closing) if t is not None),
                             return_exceptions=True)


class PipedScript:
    """A Lua script run by ``EVALSHA`` on a pipe; after a Redis restart or ``SCRIPT FLUSH``
    (``NOSCRIPT``), it is loaded and run again."""

    def __init__(self, pipe: RedisPipe, source: str):
        self._pipe = pipe
        self._source = source.encode()
        self.sha = hashlib.sha1(self._source).hexdigest().encode()

    async def __call__(self, keys: Sequence[bytes], args: Sequence[bytes]) -> Any:
        command = pack(b"EVALSHA", self.sha, b"%d" % len(keys), *keys, *args)
        try:
            return await self._pipe.call(command)
        except NoScriptError:
            await self._pipe.call(pack(b"SCRIPT", b"LOAD", self._source))
            return await self._pipe.call(command)
