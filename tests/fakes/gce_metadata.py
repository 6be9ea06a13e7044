"""A fake GCE/GKE metadata server, answering what google-auth's Compute Engine credentials
ask of it (google/auth/compute_engine/_metadata.py).

``GET /`` is the ping (google-auth sends it to ``GCE_METADATA_IP``; it needs ``200`` and
``Metadata-Flavor: Google`` back). Under ``/computeMetadata/v1/`` (``GCE_METADATA_HOST``)
every request must carry ``Metadata-Flavor: Google`` and no ``X-Forwarded-For``, else
``403``, as on Google's; then ``project/project-id`` and ``universe/universe-domain`` (text),
``instance/service-accounts/{default|email}/?recursive=true`` (the account's email, aliases
and scopes, JSON) and ``instance/service-accounts/{default|email}/token`` (``{access_token,
expires_in, token_type}``). Every answer carries ``Metadata-Flavor: Google``.

Like Google's (whose docs say it caches a token until five minutes before it expires), it
hands out one token until fewer than ``reissue_below`` of its ``token_lifetime`` seconds
remain, then a new one; ``expires_in`` is what remains, in whole seconds. Each new token goes to
``on_issue(token, lifetime)``, so a fake upstream (:meth:`tests.fakes.vertex.FakeVertex.accept`)
can honour it. ``issued`` lists the tokens in order; ``delay`` slows each token answer, and
``fetches`` holds when each token request came and was answered (``time.monotonic``).

Example::

    with GceMetadata(on_issue=vertex.accept, token_lifetime=2, reissue_below=1) as mds:
        monkeypatch.setenv("GCE_METADATA_HOST", mds.host)  # read by google-auth at import
        monkeypatch.setenv("GCE_METADATA_IP", mds.host)
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from tests.fakes.server import FakeServer

__all__ = ["FLAVOR", "GceMetadata"]

FLAVOR = {"Metadata-Flavor": "Google"}
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_ROOT = "/computeMetadata/v1"


class GceMetadata(FakeServer):
    def __init__(self, on_issue: Callable[[str, float], None] | None = None, *,
                 project: str = "test-project",
                 email: str = "gateway@test-project.iam.gserviceaccount.com",
                 token_lifetime: float = 3600, reissue_below: float = 300,
                 delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.on_issue = on_issue
        self.project = project
        self.email = email
        self.token_lifetime = token_lifetime
        self.reissue_below = reissue_below
        self.issued: list[str] = []
        self.fetches: list[tuple[float, float]] = []  # each token request: came, answered
        self._token = ""
        self._expires = 0.0  # monotonic

    @property
    def host(self) -> str:
        """``host:port``, as ``GCE_METADATA_HOST`` and ``GCE_METADATA_IP`` take it."""
        return f"127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self.ping)
        app.router.add_get(f"{_ROOT}/project/project-id", self.project_id)
        app.router.add_get(f"{_ROOT}/universe/universe-domain", self.universe_domain)
        app.router.add_get(f"{_ROOT}/instance/service-accounts/{{account}}/", self.account)
        app.router.add_get(f"{_ROOT}/instance/service-accounts/{{account}}/token", self.token)
        app.router.add_route("*", f"{_ROOT}/{{tail:.*}}", self.not_found)

    async def ping(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.Response(text="computeMetadata/\n", headers=FLAVOR)

    async def project_id(self, request: web.Request) -> web.StreamResponse:
        return await self._refused(request) or _text(self.project)

    async def universe_domain(self, request: web.Request) -> web.StreamResponse:
        return await self._refused(request) or _text("googleapis.com")

    async def account(self, request: web.Request) -> web.StreamResponse:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        if request.match_info["account"] not in ("default", self.email):
            return _not_found()
        if request.query.get("recursive") != "true":  # a directory listing otherwise
            return _text("aliases\nemail\nidentity\nscopes\ntoken\n")
        return web.json_response({"aliases": ["default"], "email": self.email,
                                  "scopes": [SCOPE]}, headers=FLAVOR)

    async def token(self, request: web.Request) -> web.StreamResponse:
        refused = await self._refused(request)
        if refused is not None:
            return refused
        if request.match_info["account"] not in ("default", self.email):
            return _not_found()
        came = time.monotonic()
        await asyncio.sleep(self.delay)
        now = time.monotonic()
        self.fetches.append((came, now))
        if self._expires - now < self.reissue_below:
            self._token = f"ya29.c.fake-mds-{secrets.token_urlsafe(24)}"
            self._expires = now + self.token_lifetime
            self.issued.append(self._token)
            if self.on_issue is not None:
                self.on_issue(self._token, self.token_lifetime)
        return web.json_response({"access_token": self._token,
                                  "expires_in": math.floor(self._expires - now),
                                  "token_type": "Bearer"}, headers=FLAVOR)

    async def not_found(self, request: web.Request) -> web.StreamResponse:
        refused = await self._refused(request)
        return refused or _not_found()

    async def _refused(self, request: web.Request) -> web.StreamResponse | None:
        await self.record(request)
        if request.headers.get("Metadata-Flavor") != "Google":
            return web.Response(status=403, headers=FLAVOR, text=(
                f"Your client does not have permission to get URL {request.path} from this "
                "server. Missing Metadata-Flavor:Google header."))
        if "X-Forwarded-For" in request.headers:  # what a proxy would add
            return web.Response(status=403, headers=FLAVOR, text="Forbidden")
        return None


def _text(value: str) -> web.Response:
    return web.Response(text=value, content_type="application/text", headers=FLAVOR)


def _not_found() -> web.Response:
    return web.Response(status=404, text="Not Found", headers=FLAVOR)
