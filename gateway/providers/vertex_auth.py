"""OAuth2 access tokens for Vertex AI, added to each request as ``Authorization: Bearer``.

The tokens come from google-auth (the ``vertex`` extra): a service-account JSON file (a
signed JWT grant posted to the file's ``token_uri``), else Application Default Credentials
(``GOOGLE_APPLICATION_CREDENTIALS``, gcloud's file, workload identity, the metadata server).
google-auth blocks, so each fetch runs in a thread; a token is refreshed in the background
ahead of its expiry, and only a request that finds no usable token (the first, or after a
long quiet spell) waits, sharing one fetch with every other such request. Tokens are never
logged and never put in error text.

Example::

    signer = token_signer("vertex", config)
    wire = await signer.sign(wire)  # wire.headers["Authorization"] == "Bearer ya29...."
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from gateway.config import ProviderConfig
from gateway.providers.base import UpstreamRequest

__all__ = ["EXPIRY_MARGIN", "INSTALL_HINT", "REFRESH_AHEAD", "SCOPES", "GoogleTokenSource",
           "TokenSigner", "TokenSource", "token_signer"]

log = logging.getLogger("gateway.providers")

SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
INSTALL_HINT = "pip install 'llm-gateway[vertex]'"
REFRESH_AHEAD = 300.0  # seconds before expiry a token is renewed in the background
EXPIRY_MARGIN = 10.0  # seconds before expiry a token is no longer sent (it may expire en route)
DEFAULT_LIFETIME = 3600.0  # when the credentials do not say (Google's tokens last an hour)


class TokenSource(Protocol):
    """Where tokens come from; ``fetch`` blocks (it is called in a thread)."""

    def fetch(self) -> tuple[str, float]:
        """A new access token and the seconds it stays valid."""
        ...

    def close(self) -> None: ...


class GoogleTokenSource:
    """Tokens from google-auth: a service-account file, else Application Default
    Credentials. The file is read here, so a missing or broken one fails at start; ADC is
    resolved on the first fetch, in a thread, since it may probe the metadata server."""

    def __init__(self, credentials_file: str = ""):
        try:
            import google.auth.transport.requests
            from google.oauth2 import service_account
        except ImportError:
            raise ValueError(f"the vertex provider needs google-auth: {INSTALL_HINT}") from None
        self._credentials: Any = None
        if credentials_file:  # google-auth leaves this classmethod unannotated
            self._credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                credentials_file, scopes=list(SCOPES))
        self._request = google.auth.transport.requests.Request()  # one session, reused

    def fetch(self) -> tuple[str, float]:
        if self._credentials is None:
            import google.auth

            self._credentials, _ = google.auth.default(scopes=list(SCOPES))
        self._credentials.refresh(self._request)
        token = str(self._credentials.token or "")
        if not token:
            raise RuntimeError("the credentials gave no access token")
        expiry = self._credentials.expiry  # naive UTC, as google-auth keeps it
        if expiry is None:
            return token, DEFAULT_LIFETIME
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        return token, max(0.0, (expiry - now).total_seconds())

    def close(self) -> None:
        self._request.session.close()


class TokenSigner:
    """A :class:`~gateway.providers.base.RequestSigner` holding one cached access token.

    A token is fresh until ``REFRESH_AHEAD`` before its expiry (half its lifetime, for short
    ones); after that requests still use it while one background fetch renews it, until
    ``EXPIRY_MARGIN`` before expiry, when they wait for the fetch instead.
    """

    def __init__(self, name: str, source: TokenSource,
                 clock: Callable[[], float] = time.monotonic):
        self.name = name
        self._source = source
        self._clock = clock
        self._token = ""
        self._stale_at = 0.0  # renew in the background from here on
        self._expires_at = 0.0  # stop sending it from here on
        self._fetch: asyncio.Task[None] | None = None

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        token = await self.token()
        return dataclasses.replace(
            request, headers={**request.headers, "Authorization": f"Bearer {token}"})

    async def token(self) -> str:
        """A usable token; waits only when there is none."""
        now = self._clock()
        if now < self._stale_at:
            return self._token
        if now < self._expires_at:
            self._refresh()  # this request keeps the current token
            return self._token
        # Shielded: a caller that gives up does not cancel the fetch others wait on.
        await asyncio.shield(self._refresh())
        if self._clock() >= self._expires_at:  # pragma: no cover - a token born expired
            raise RuntimeError("the access token expired as it arrived")
        return self._token

    def _refresh(self) -> asyncio.Task[None]:
        if self._fetch is None or self._fetch.done():
            self._fetch = asyncio.create_task(self._renew())
            # A background fetch may fail with nobody awaiting it: mark it seen.
            self._fetch.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._fetch

    async def _renew(self) -> None:
        started = self._clock()
        try:
            token, lifetime = await asyncio.to_thread(self._source.fetch)
        except Exception as exc:
            log.warning("%s: could not obtain an access token (%s)", self.name,
                        type(exc).__name__)
            raise
        self._token = token
        self._stale_at = started + lifetime - min(REFRESH_AHEAD, lifetime / 2)
        self._expires_at = started + lifetime - min(EXPIRY_MARGIN, lifetime / 10)

    async def aclose(self) -> None:
        if self._fetch is not None and not self._fetch.done():
            self._fetch.cancel()
        await asyncio.to_thread(self._source.close)


def token_signer(name: str, config: ProviderConfig) -> TokenSigner:
    """The signer for a ``vertex`` provider; raises ValueError (the gateway does not start)
    without google-auth or with an unreadable service-account file."""
    try:
        source = GoogleTokenSource(config.credentials_file)
    except (OSError, ValueError, KeyError) as exc:
        what = str(exc) if isinstance(exc, ValueError) and INSTALL_HINT in str(exc) else (
            f"credentials_file cannot be used ({type(exc).__name__}: {exc})")
        raise ValueError(f"providers.{name}: {what}") from None
    return TokenSigner(name, source)
