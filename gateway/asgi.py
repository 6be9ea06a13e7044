"""ASGI types, and the scope extensions the gateway's HTTP server offers its routes.

Imports nothing from the gateway, so the facade (which writes routes) and the HTTP server
(which serves them) share these names without depending on each other. Under any other
server the extensions are absent and a route falls back to plain ASGI.

Example::

    extension = scope.get("extensions", {}).get(CHUNKS_EXTENSION)
    if extension is not None:
        await extension["send"](send, b"data: ...\\n\\n")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["ASGIApp", "BODY_PASSES_THROUGH", "CHUNKS_EXTENSION", "DISCONNECT_EXTENSION",
           "Message", "Receive", "Scope", "Send"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

DISCONNECT_EXTENSION = "llm_gateway.disconnect"
"""Tells a route by a call, not by a message it must wait for, that its request's
``http.disconnect`` was queued: ``scope["extensions"][DISCONNECT_EXTENSION]["watch"](callback)``
(``None`` stops watching). The server queues that event when the client goes away and when
the response has ended."""

CHUNKS_EXTENSION = "llm_gateway.chunks"
"""Sends a chunk of a streamed response body straight to the connection:
``await scope["extensions"][CHUNKS_EXTENSION]["send"](send, data)``, given the ``send`` the
route was called with, means ``send({"type": "http.response.body", "body": data,
"more_body": True})`` without the server's per-message ASGI dispatch. Only once the response
has started; it falls back to that ``send`` whenever it cannot frame the chunk itself."""

BODY_PASSES_THROUGH = "llm_gateway_body_passes_through"
"""An attribute an ASGI middleware may set on the ``send`` it hands on, naming the ``send``
it wraps, when it passes ``http.response.body`` messages through unchanged: the
:data:`CHUNKS_EXTENSION` then writes past it."""
