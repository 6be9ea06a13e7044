"""How the chat route notices a client that left (gateway/facade/hot.py ``_Disconnect``),
through the gateway HTTP server's task group (gateway/edge): told by a callback as the
disconnect is queued (no task waiting on ``receive``), the request's task is cancelled when
the client leaves, also when the disconnect is queued from the request's own failed write,
but not when Hypercorn queues it from inside the response's last send; under a server
without the extension a task waits on ``receive`` instead."""

from __future__ import annotations

import asyncio
from typing import Any

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config

from gateway.asgi import DISCONNECT_EXTENSION
from gateway.edge.protocol import GatewayTaskGroup
from gateway.facade.hot import _Disconnect


class Request:
    """One request's application under the gateway's task group: it waits (as on the
    core's call) until cancelled, or queues its own disconnect first when told to."""

    def __init__(self, *, own_disconnect: bool = False, close_first: bool = False) -> None:
        self.own_disconnect, self.close_first = own_disconnect, close_first
        self.put: Any = None
        self.waiting = asyncio.Event()
        self.gone: bool | None = None
        self.cancelled = False
        self.tasks_during: int | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        before = len(asyncio.all_tasks())
        disconnect = _Disconnect(scope, receive)
        self.tasks_during = len(asyncio.all_tasks()) - before
        try:
            if self.own_disconnect:
                await self.put({"type": "http.disconnect"})  # a write inside this task
                if self.close_first:
                    disconnect.close()  # the response had ended
            self.waiting.set()
            await asyncio.sleep(3)
        except asyncio.CancelledError:
            self.cancelled = True
        finally:
            self.gone = disconnect.gone
            disconnect.close()

    async def serve(self, *, extension: bool = True) -> None:
        scope: dict[str, Any] = {"type": "http", "extensions": {}}
        async with GatewayTaskGroup(asyncio.get_running_loop()) as group:
            if extension:
                self.put = await group.spawn_app(ASGIWrapper(self), Config(), scope,
                                                 _ignore)
                assert DISCONNECT_EXTENSION in scope["extensions"]
            else:
                queue: asyncio.Queue[Any] = asyncio.Queue()
                self.put = queue.put
                group.spawn(self, scope, queue.get, _ignore)
            await asyncio.wait_for(self.waiting.wait(), 2)
            if not self.own_disconnect:
                await self.put({"type": "http.disconnect"})  # the connection's reader


async def _ignore(message: Any) -> None:
    pass


async def test_a_client_leaving_cancels_the_request_without_a_watching_task() -> None:
    request = Request()
    await asyncio.wait_for(request.serve(), 2)
    assert request.cancelled and request.gone
    assert request.tasks_during == 0


async def test_the_end_of_the_response_is_not_a_client_leaving() -> None:
    request = Request(own_disconnect=True, close_first=True)
    serving = asyncio.ensure_future(request.serve())
    await asyncio.wait_for(request.waiting.wait(), 2)
    for _ in range(3):
        await asyncio.sleep(0)
    assert not request.cancelled and request.gone is None  # still waiting, not told to stop
    serving.cancel()  # end the test's request; nothing is left running
    await asyncio.gather(serving, return_exceptions=True)


async def test_a_disconnect_from_the_requests_own_failed_write_cancels_it() -> None:
    request = Request(own_disconnect=True)
    await asyncio.wait_for(request.serve(), 2)
    assert request.cancelled and request.gone


async def test_without_the_extension_a_task_waits_on_receive() -> None:
    request = Request()
    await asyncio.wait_for(request.serve(extension=False), 2)
    assert request.cancelled and request.gone
    assert request.tasks_during == 1
