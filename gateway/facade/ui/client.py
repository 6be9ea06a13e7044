"""The UI's calls on the admin API: the facade's own :class:`~gateway.facade.calls.Core`,
with the signed-in admin's credential as the call's ``Authorization``. The UI changes
nothing any other way, so the core's interceptor checks every page's calls as it checks
``/admin`` and the CLI (and counts a wrong key against the client's address).

Example::

    api = AdminApi(core, session.credential, request.scope, headers)
    tenants = (await api.call(api.stub.ListTenants, pb.ListTenantsRequest())).tenants
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.facade.calls import Core, Framer, Method
from gateway.facade.errors import ApiError
from gateway.facade.exchange import Request, StreamAnswer

__all__ = ["AdminApi", "explain"]


class AdminApi:
    """Admin calls made for one page request, as the admin holding ``credential``."""

    def __init__(self, core: Core, credential: str, scope: Mapping[str, Any],
                 headers: Mapping[str, str]) -> None:
        self._core = core
        self.stub = core.admin
        self.gateway = core.gateway
        forwarded = {"x-forwarded-for": headers["x-forwarded-for"]} if (
            "x-forwarded-for" in headers) else {}
        request_id = {"x-request-id": headers["x-request-id"]} if (
            "x-request-id" in headers) else {}
        self._request = Request("GET", {"authorization": f"Bearer {credential}",
                                        **forwarded, **request_id},
                                client=(scope.get("client") or ("",))[0])

    async def call(self, method: Method, message: Any) -> Any:
        """``method``'s answer to ``message``; raises :class:`ApiError` as the REST API
        would answer it."""
        response, _ = await self._core.call(method, message, self._request)
        return response

    async def stream(self, method: Method, message: Any, framer: Framer) -> StreamAnswer:
        """``method``'s server stream, framed by ``framer``, once its first message is in
        (the playground's answer); raises :class:`ApiError` when none comes."""
        return await self._core.stream(method, message, self._request, framer)


def explain(error: ApiError) -> str:
    """What a failed admin call means to the person at the page (never its JSON)."""
    if error.status == 401:
        return "The key was not accepted: it is not a valid admin key."
    if error.status == 403:
        if "disabled" in error.message:
            return "The admin API is turned off on this gateway (admin.enabled: false)."
        return "That key is not an admin key: it may not use the admin UI."
    if error.status == 429:
        wait = f" in {error.retry_after} s" if error.retry_after else " later"
        return f"Too many failed attempts from this address: try again{wait}."
    if error.status in (502, 503, 504):
        return "The gateway's core did not answer; try again in a moment."
    if error.status >= 500:
        return "Something went wrong in the gateway (its log has the details)."
    message = error.message.strip() or "The request was refused."
    return message[0].upper() + message[1:] + ("" if message.endswith(".") else ".")
