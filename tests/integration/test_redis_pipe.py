"""The pipelined Redis connection (gateway/backends/redis_pipe.py) against a real redis-server.

Concurrent callers share one connection and each gets its own reply, whatever the
others do: fail with an error reply, get cancelled, or wait on a blocked connection.
When Redis dies, stops answering, or closes the connection, waiting callers fail with
an error the Redis-backed parts treat as "unreachable", and the next call connects
again. Then the rate limiter's use of it: a cancelled acquire gives its slot back.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import signal
import time
import weakref
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.exceptions import NoScriptError, ResponseError

from gateway.backends.redis_failures import TRANSPORT_ERRORS
from gateway.backends.redis_pipe import RedisPipe, pack
from gateway.tenancy.limits.redis import RedisRateLimiter
from gateway.tenancy.models import Limits
from tests.servers import RedisServer


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_server.url, socket_timeout=0.5, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


@pytest.fixture
async def pipe(redis: Redis) -> AsyncIterator[RedisPipe]:
    pipe = RedisPipe(redis)
    yield pipe
    await pipe.aclose()


def echo(text: str) -> bytes:
    return pack(b"ECHO", text.encode())


async def clients(redis: Redis) -> int:
    return int((await redis.info("clients"))["connected_clients"])


async def test_concurrent_callers_share_one_connection_and_get_their_own_replies(
    pipe: RedisPipe, redis: Redis
) -> None:
    before = await clients(redis)
    replies = await asyncio.gather(*(pipe.call(echo(f"caller {i}")) for i in range(500)))
    assert replies == [f"caller {i}".encode() for i in range(500)]
    assert await clients(redis) == before + 1
    assert await pipe.call(pack(b"INCRBY", b"n", b"5")) == 5


async def test_an_error_reply_goes_to_its_caller_alone(pipe: RedisPipe) -> None:
    first, bad, missing, last = await asyncio.gather(
        pipe.call(echo("a")), pipe.call(pack(b"NOSUCHCOMMAND")),
        pipe.call(pack(b"EVALSHA", b"0" * 40, b"0")), pipe.call(echo("b")),
        return_exceptions=True)
    assert (first, last) == (b"a", b"b")
    assert isinstance(bad, ResponseError) and "unknown command" in str(bad)
    assert isinstance(missing, NoScriptError)
    assert await pipe.call(echo("still in step")) == b"still in step"


async def test_a_command_that_is_not_bytes_fails_its_caller_alone(pipe: RedisPipe) -> None:
    first, bad, last = await asyncio.gather(
        pipe.call(echo("a")), pipe.call("ECHO b"),  # type: ignore[arg-type]
        pipe.call(echo("c")), return_exceptions=True)
    assert (first, last) == (b"a", b"c")
    assert isinstance(bad, TypeError)
    assert await pipe.call(echo("still in step")) == b"still in step"


async def test_a_cancelled_caller_does_not_shift_the_replies(pipe: RedisPipe) -> None:
    blocked = asyncio.create_task(pipe.call(pack(b"BLPOP", b"nothing", b"0.3")))
    await asyncio.sleep(0.05)
    behind = asyncio.create_task(pipe.call(echo("behind the blocked one")))
    await asyncio.sleep(0.05)
    blocked.cancel()
    assert await behind == b"behind the blocked one"  # not the BLPOP's nil
    assert await pipe.call(echo("next")) == b"next"


async def test_redis_killed_fails_waiting_callers_then_reconnects(
    pipe: RedisPipe, redis_server: RedisServer
) -> None:
    assert await pipe.call(echo("up")) == b"up"
    waiting = asyncio.create_task(pipe.call(pack(b"BLPOP", b"nothing", b"5")))
    await asyncio.sleep(0.05)
    started = time.monotonic()
    redis_server.stop()
    with pytest.raises(TRANSPORT_ERRORS):
        await waiting
    assert time.monotonic() - started < 1.0  # the closed socket, not the 5 s BLPOP
    with pytest.raises(TRANSPORT_ERRORS):
        await pipe.call(echo("down"))
    redis_server.start()
    assert await pipe.call(echo("back")) == b"back"


async def test_a_silent_redis_times_out_then_reconnects(
    redis: Redis, redis_server: RedisServer
) -> None:
    pipe = RedisPipe(redis, timeout=0.3)
    try:
        assert await pipe.call(echo("up")) == b"up"
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(TRANSPORT_ERRORS):
                await pipe.call(echo("lost"))
            assert 0.25 < time.monotonic() - started < 1.5
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        assert await pipe.call(echo("back")) == b"back"
    finally:
        await pipe.aclose()


async def test_a_connection_redis_closes_while_idle_is_replaced_quietly(
    pipe: RedisPipe, redis: Redis
) -> None:
    assert await pipe.call(echo("up")) == b"up"
    assert await redis.client_kill_filter(_type="normal", skipme=True) >= 1
    await asyncio.sleep(0.1)  # the reader sees the close while nobody waits
    assert await pipe.call(echo("after")) == b"after"  # no caller pays for it


async def test_closing_fails_waiting_callers_and_later_calls(pipe: RedisPipe) -> None:
    waiting = asyncio.create_task(pipe.call(pack(b"BLPOP", b"nothing", b"5")))
    await asyncio.sleep(0.05)
    await pipe.aclose()
    with pytest.raises(TRANSPORT_ERRORS):
        await waiting
    with pytest.raises(TRANSPORT_ERRORS):
        await pipe.call(echo("closed"))


async def test_a_cancelled_acquire_gives_its_slot_back(
    redis: Redis, redis_server: RedisServer
) -> None:
    limiter = RedisRateLimiter(redis)
    limits = Limits(concurrent_requests=1)
    try:
        held = await limiter.acquire("tenant:x", limits)  # loads the script
        await limiter.release("tenant:x", held.lease)
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)  # the acquire stays on the wire
        try:
            acquiring = asyncio.create_task(limiter.acquire("tenant:x", limits))
            await asyncio.sleep(0.05)
            acquiring.cancel()
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        with pytest.raises(asyncio.CancelledError):
            await acquiring
        for _ in range(50):  # the script leased the slot; the release that follows it frees it
            if await redis.zcard("llmgw:rl:{tenant:x}:c") == 0:
                break
            await asyncio.sleep(0.02)
        assert await redis.zcard("llmgw:rl:{tenant:x}:c") == 0
        assert (await limiter.acquire("tenant:x", limits)).allowed
        assert not limiter.degraded
    finally:
        await limiter.aclose()


async def test_a_script_is_loaded_again_after_redis_loses_it(pipe: RedisPipe, redis: Redis) -> None:
    script = pipe.script("return {ARGV[1], #KEYS}")
    assert await script(keys=[b"a", b"b"], args=[b"first"]) == [b"first", 2]  # loads it
    await redis.script_flush()
    await redis.config_resetstat()
    assert await script(keys=[b"a"], args=[b"again"]) == [b"again", 1]
    stats = await redis.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 2  # NOSCRIPT, then the retry
    assert stats["cmdstat_script|load"]["calls"] == 1


async def test_the_reader_does_not_keep_the_connecting_callers_context(pipe: RedisPipe) -> None:
    class RequestState:
        pass

    state = RequestState()
    gone = weakref.ref(state)
    request: contextvars.ContextVar[RequestState] = contextvars.ContextVar("request")
    context = contextvars.Context()
    context.run(request.set, state)
    connecting = asyncio.create_task(pipe.call(echo("connects")), context=context)
    assert await connecting == b"connects"
    del state, context, connecting
    await asyncio.sleep(0)  # the loop lets go of the handle that woke this test
    gc.collect()
    assert gone() is None  # the reader that lives on did not take the request's context
    assert await pipe.call(echo("still reading")) == b"still reading"


class BreakingConnection(Connection):
    """A real connection whose next reply fails with an error no Redis client expects."""

    break_next_read = False

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        value = await super().read_response(*args, **kwargs)
        if BreakingConnection.break_next_read:
            BreakingConnection.break_next_read = False
            raise ValueError("a parser in a state it should never reach")
        return value


async def test_a_bug_under_the_reader_reaches_the_waiting_callers_as_itself(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Failed, not stranded; and not as Redis being unreachable, which they would fail open on."""
    client = Redis.from_url(redis_server.url, socket_timeout=0.5,
                            connection_class=BreakingConnection)
    pipe = RedisPipe(client)
    try:
        assert await pipe.call(echo("up")) == b"up"
        BreakingConnection.break_next_read = True  # the read the reader is in
        with pytest.raises(ValueError, match="should never reach"):
            await asyncio.wait_for(pipe.call(echo("first")), 2)
        assert any(r.name == "gateway.backends" and r.exc_info for r in caplog.records)
        assert await pipe.call(echo("reconnected")) == b"reconnected"
    finally:
        BreakingConnection.break_next_read = False
        await pipe.aclose()
        await client.aclose()


async def test_callers_cancelled_while_writing_leave_the_connection_to_the_others(
    redis: Redis, redis_server: RedisServer
) -> None:
    """redis-py closes a connection when anything interrupts a write, a cancellation included:
    on the shared connection, that would fail every other caller's command with it."""
    pipe = RedisPipe(redis, timeout=10)
    size = 512 * 1024  # 60 of these fill the socket's buffers many times over

    def payload(i: int) -> bytes:
        return b"%d:" % i + b"x" * size

    try:
        connection = await pipe.call(pack(b"CLIENT", b"ID"))
        assert redis_server.proc is not None
        redis_server.proc.send_signal(signal.SIGSTOP)  # reads nothing: writes wait to drain
        try:
            callers = [asyncio.create_task(pipe.call(pack(b"ECHO", payload(i))))
                       for i in range(60)]
            cancelled = set(range(0, 60, 6))  # before their first step
            for i in cancelled:
                callers[i].cancel()
            await asyncio.sleep(0.1)  # the others wrote: waiting to drain, or for the reply
            for i in range(3, 60, 6):
                callers[i].cancel()
                cancelled.add(i)
        finally:
            redis_server.proc.send_signal(signal.SIGCONT)
        results = await asyncio.wait_for(asyncio.gather(*callers, return_exceptions=True), 10)
        for i, result in enumerate(results):
            if i in cancelled:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == payload(i), f"caller {i}: {result!r:.80}"
        assert await pipe.call(pack(b"CLIENT", b"ID")) == connection  # never reconnected
    finally:
        await pipe.aclose()
