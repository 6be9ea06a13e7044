"""Signing in to the admin UI through the OIDC issuer: the authorization code flow with
PKCE (RFC 6749 section 4.1, RFC 7636 with ``S256``, OpenID Connect Core 3.1).

:meth:`OidcSignIn.start` makes a pending sign-in (``state``, ``nonce`` and a PKCE
verifier, kept here under a random id that only the browser's cookie names) and the
issuer's authorization URL. :meth:`OidcSignIn.finish` takes that pending sign-in (once),
checks ``state``, exchanges the code at the token endpoint with the verifier, and verifies
the ID token (signature, ``iss``, ``aud`` = the client id, expiry, ``nonce``, ``azp``)
with the verifier the gateway already uses for bearer tokens. Whether the account is an
admin is left to the admin API, which the access token is then tried on (role ``admin``).

Every failure is a :class:`SignInFailed` whose message is for the person at the page:
never a token, a secret or the issuer's raw answer.

Example::

    flow = OidcSignIn(config.ui.oidc, verifier, http)
    pending_id, url = await flow.start(redirect_uri, next_page="/ui/")
    done = await flow.finish(pending_id, request.args)  # SignedIn(access_token=...)
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp
import orjson

from gateway.config import UiOidcConfig
from gateway.errors import AuthenticationError, GatewayError
from gateway.facade.ui.sessions import new_token, tokens_match

__all__ = ["PENDING_AGE", "IdTokenVerifier", "OidcSignIn", "SignInFailed", "SignedIn",
           "pkce_challenge"]

PENDING_AGE = 600  # seconds a sign-in may spend at the issuer
MAX_PENDING = 10_000  # the oldest pending sign-ins go first past this
TOKEN_TIMEOUT = 10.0
MAX_TOKEN_RESPONSE = 1 << 20
MAX_TOKEN = 16_384
_ERROR_CODE = re.compile(r"[a-z_]{1,64}")  # RFC 6749's error codes; anything else is not shown


class VerifiedToken(Protocol):
    """What the verifier says of a valid ID token."""

    @property
    def subject(self) -> str: ...

    @property
    def expires_at(self) -> float: ...

    @property
    def nonce(self) -> str: ...

    @property
    def authorized_party(self) -> str: ...


class IdTokenVerifier(Protocol):
    """The issuer, as the UI needs it: its discovery document, and ID tokens verified
    for this client (``aud`` must name the client id). Failures are
    :class:`~gateway.errors.GatewayError` (401: not valid; 503: issuer unreachable)."""

    async def metadata(self) -> Mapping[str, Any]: ...

    async def verify(self, token: str) -> VerifiedToken: ...


class SignInFailed(Exception):
    """A sign-in that did not succeed; ``str()`` says why, for the sign-in page."""

    def __init__(self, message: str, next_page: str = "") -> None:
        super().__init__(message)
        self.next_page = next_page


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A finished sign-in: the access token (the session's credential) and how long it
    is good for."""

    access_token: str = field(repr=False)
    subject: str
    lifetime: float
    next_page: str


@dataclass(frozen=True, slots=True)
class _Pending:
    state: str = field(repr=False)
    nonce: str = field(repr=False)
    verifier: str = field(repr=False)
    redirect_uri: str
    next_page: str
    started: float


def pkce_challenge(verifier: str) -> str:
    """The ``S256`` code challenge: BASE64URL(SHA256(ASCII(verifier))), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class OidcSignIn:
    """The UI as a client of the issuer: ``config`` says who it is, ``issuer`` verifies
    ID tokens, ``http`` (owned by the caller) reaches the token endpoint."""

    def __init__(self, config: UiOidcConfig, issuer: IdTokenVerifier,
                 http: aiohttp.ClientSession, *,
                 clock: Callable[[], float] = time.monotonic,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.name = config.name
        self.redirect_url = config.redirect_url
        self._config = config
        self._issuer = issuer
        self._http = http
        self._clock = clock
        self._wall_clock = wall_clock
        self._pending: OrderedDict[str, _Pending] = OrderedDict()

    @property
    def pending(self) -> int:
        """How many sign-ins are under way at the issuer."""
        return len(self._pending)

    async def start(self, redirect_uri: str, next_page: str) -> tuple[str, str]:
        """A new pending sign-in: its id (for the browser's cookie) and the issuer's
        authorization URL to send the browser to."""
        endpoint = _endpoint(await self._metadata(), "authorization_endpoint")
        self._expire()
        while len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        pending = _Pending(state=new_token(), nonce=new_token(),
                           verifier=secrets.token_urlsafe(48),  # 64 characters (43 to 128)
                           redirect_uri=redirect_uri, next_page=next_page,
                           started=self._clock())
        pending_id = new_token()
        self._pending[pending_id] = pending
        query = urlencode({
            "response_type": "code",
            "client_id": self._config.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self._config.scopes),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": pkce_challenge(pending.verifier),
            "code_challenge_method": "S256",
        }, quote_via=quote)
        return pending_id, endpoint + ("&" if "?" in endpoint else "?") + query

    async def finish(self, pending_id: str, args: Mapping[str, str]) -> SignedIn:
        """The issuer's answer at the callback (``args``, its query) checked and turned
        into tokens; :class:`SignInFailed` when it cannot be."""
        pending = self._take(pending_id)
        if pending is None:
            raise SignInFailed(f"The sign-in with {self.name} had expired or was started "
                               "in another browser: try again.")
        back = pending.next_page
        if not tokens_match(pending.state, args.get("state", "")):
            raise SignInFailed(f"The answer from {self.name} did not belong to this sign-in "
                               "(its state did not match): try again.", back)
        if "error" in args:
            code = args["error"] if _ERROR_CODE.fullmatch(args["error"]) else "error"
            if code == "access_denied":
                raise SignInFailed(f"{self.name} refused the sign-in (access_denied).", back)
            raise SignInFailed(f"{self.name} could not sign you in ({code}).", back)
        code = args.get("code", "")
        if not code or len(code) > MAX_TOKEN:
            raise SignInFailed(f"{self.name} sent no authorization code: try again.", back)
        tokens = await self._exchange(pending, code)
        claims = await self._verified(tokens["id_token"], pending)
        now = self._wall_clock()
        lifetime = claims.expires_at - now
        expires_in = tokens.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and (
                math.isfinite(expires_in) and expires_in > 0):
            lifetime = float(expires_in)
        if lifetime <= 0:
            raise SignInFailed(f"The token from {self.name} has already expired: check "
                               "the clocks, then try again.", back)
        return SignedIn(tokens["access_token"], claims.subject, lifetime, back)

    # --- steps -------------------------------------------------------------------------

    async def _metadata(self) -> Mapping[str, Any]:
        try:
            metadata = await self._issuer.metadata()
        except GatewayError:
            raise SignInFailed(f"{self.name} cannot be reached; try again in a "
                               "moment.") from None
        methods = metadata.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise SignInFailed(f"{self.name} does not offer PKCE with S256, which signing "
                               "in needs.")
        return metadata

    def _take(self, pending_id: str) -> _Pending | None:
        self._expire()
        return self._pending.pop(pending_id, None) if pending_id else None

    def _expire(self) -> None:
        cutoff = self._clock() - PENDING_AGE
        while self._pending:
            oldest = next(iter(self._pending.values()))
            if oldest.started > cutoff:
                break
            self._pending.popitem(last=False)

    async def _exchange(self, pending: _Pending, code: str) -> dict[str, Any]:
        """The token request (RFC 6749 4.1.3, with RFC 7636's ``code_verifier``), the
        client authenticated as the issuer prefers (HTTP Basic unless it lists only
        ``client_secret_post``) or, without a secret, named by ``client_id``."""
        back = pending.next_page
        metadata = await self._metadata()
        endpoint = _endpoint(metadata, "token_endpoint")
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": pending.redirect_uri, "code_verifier": pending.verifier}
        headers = {"Accept": "application/json"}
        config = self._config
        if not config.client_secret:
            form["client_id"] = config.client_id
        elif "client_secret_basic" in metadata.get(
                "token_endpoint_auth_methods_supported", ["client_secret_basic"]):
            pair = f"{quote(config.client_id, safe='')}:{quote(config.client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form.update(client_id=config.client_id, client_secret=config.client_secret)
        status = 0
        try:
            async with self._http.post(endpoint, data=form, headers=headers,
                                       allow_redirects=False,
                                       timeout=aiohttp.ClientTimeout(total=TOKEN_TIMEOUT)
                                       ) as response:
                status = response.status
                body = bytearray()
                async for chunk in response.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > MAX_TOKEN_RESPONSE:
                        raise ValueError("token response too large")
            answer = orjson.loads(body) if body else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            if not status:
                raise SignInFailed(f"{self.name} did not answer the token request; try "
                                   "again in a moment.", back) from None
            answer = None  # an answer, but not JSON: judged by its status below
        if not isinstance(answer, dict):
            answer = {}
        if status != 200:
            error = answer.get("error")
            code_name = error if isinstance(error, str) and _ERROR_CODE.fullmatch(error) \
                else f"HTTP {status}"
            raise SignInFailed(f"{self.name} refused to issue tokens ({code_name}): try "
                               "again.", back)
        token_type = answer.get("token_type")
        for name in ("access_token", "id_token"):
            value = answer.get(name)
            if not isinstance(value, str) or not value or len(value) > MAX_TOKEN or (
                    not value.isascii()):
                raise SignInFailed(f"The answer from {self.name} had no usable {name}.", back)
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise SignInFailed(f"The answer from {self.name} was not a bearer token.", back)
        return answer

    async def _verified(self, id_token: str, pending: _Pending) -> VerifiedToken:
        back = pending.next_page
        try:
            claims = await self._issuer.verify(id_token)
        except AuthenticationError as exc:  # its messages are short and fixed
            raise SignInFailed(f"The ID token from {self.name} was not accepted "
                               f"({exc.message}).", back) from None
        except GatewayError:
            raise SignInFailed(f"{self.name} cannot be reached to check the sign-in; "
                               "try again in a moment.", back) from None
        if not tokens_match(pending.nonce, claims.nonce):
            raise SignInFailed(f"The ID token from {self.name} was not made for this "
                               "sign-in (its nonce did not match).", back)
        if claims.authorized_party and claims.authorized_party != self._config.client_id:
            raise SignInFailed(f"The ID token from {self.name} was issued to another "
                               "client (azp).", back)
        return claims


def _endpoint(metadata: Mapping[str, Any], name: str) -> str:
    url = metadata.get(name)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise SignInFailed(f"The identity provider's discovery document has no {name}.")
    return url
