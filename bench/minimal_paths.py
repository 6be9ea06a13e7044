"""The minimal paths of the gateway's stack, for the bench's reference rows: what the fixed
parts cost before any gateway work, measured in the same run as the gateway.

``--rest``: a raw ASGI app on the gateway's HTTP server (gateway/edge, as the ceiling row's
server), that forwards each POST body to the upstream over one shared aiohttp
session and answers the upstream's bytes; a body asking for a stream is answered chunk by
chunk as the upstream's bytes arrive. No parsing, no translation, no core.

``--grpc``: a grpc.aio ``GatewayService`` whose ``CreateChatCompletion`` sends the request's
messages upstream as JSON over one shared aiohttp session and builds the response message
from the JSON answer. No interceptor, no routing, no limits, no metrics.

Both on uvloop, like ``gateway serve``. The process prints ``LISTENING <port>`` when it
accepts connections (``--port 0`` picks a free one).

Example::

    python bench/minimal_paths.py --rest --port 0 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import uvloop

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "gen")]

from llmgateway.v1 import (  # noqa: E402
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

CHAT = "/v1/chat/completions"
HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}
ROLES = {chat_pb2.CHAT_ROLE_USER: "user", chat_pb2.CHAT_ROLE_SYSTEM: "system",
         chat_pb2.CHAT_ROLE_ASSISTANT: "assistant"}


def _listening(port: int) -> None:
    print(f"LISTENING {port}", flush=True)


async def _body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def serve_rest(port: int, upstream: str) -> None:
    import asyncio

    from hypercorn.config import Config

    from gateway.edge import serve
    url = upstream + CHAT
    session: aiohttp.ClientSession | None = None

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while (await receive())["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await _body(receive)
        if session is None:
            session = aiohttp.ClientSession()
        async with session.post(url, data=body, headers=HEADERS) as response:
            if b'"stream":true' in body:
                await send({"type": "http.response.start", "status": response.status,
                            "headers": [(b"content-type", b"text/event-stream")]})
                async for chunk in response.content.iter_any():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                return
            status, data = response.status, await response.read()
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})

    # Bound and listening before the line is printed: connections wait in the backlog.
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    port = listener.getsockname()[1]
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # Hypercorn's to close
    config.accesslog = config.errorlog = None
    _listening(port)
    await serve(app, config, shutdown_trigger=asyncio.Event().wait)


class _Servicer(gateway_service_pb2_grpc.GatewayServiceServicer):
    def __init__(self, upstream: str):
        self._url = upstream + CHAT
        self._session: aiohttp.ClientSession | None = None

    async def CreateChatCompletion(
        self, request: gateway_service_pb2.CreateChatCompletionRequest, context: Any
    ) -> gateway_service_pb2.CreateChatCompletionResponse:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        chat = request.request
        body = orjson.dumps({"model": "gpt-4o-mini", "messages": [
            {"role": ROLES.get(m.role, "user"), "content": m.content} for m in chat.messages]})
        async with self._session.post(self._url, data=body, headers=HEADERS) as response:
            answer = orjson.loads(await response.read())
        choices = [chat_pb2.ChatChoice(index=c["index"], message=chat_pb2.ChatMessage(
            role=chat_pb2.CHAT_ROLE_ASSISTANT, content=c["message"]["content"] or ""))
            for c in answer["choices"]]
        return gateway_service_pb2.CreateChatCompletionResponse(completion=chat_pb2.ChatCompletion(
            id=answer["id"], model=answer["model"], created=answer["created"], choices=choices))


async def serve_grpc(port: int, upstream: str) -> None:
    from grpc import aio

    server = aio.server()
    gateway_service_pb2_grpc.add_GatewayServiceServicer_to_server(  # type: ignore[no-untyped-call]
        _Servicer(upstream), server)
    port = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    _listening(port)
    await server.wait_for_termination()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    kind = ap.add_mutually_exclusive_group(required=True)
    kind.add_argument("--rest", action="store_true")
    kind.add_argument("--grpc", action="store_true")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--upstream", required=True, help="the fake upstream's base URL")
    args = ap.parse_args()
    serve = serve_rest if args.rest else serve_grpc
    uvloop.run(serve(args.port, args.upstream.rstrip("/")))


if __name__ == "__main__":
    main()
