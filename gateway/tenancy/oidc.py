"""OIDC bearer tokens: verify a JWT against the keys its issuer publishes.

The issuer is found by discovery (``{issuer}/.well-known/openid-configuration``, whose
``issuer`` must equal the configured one exactly); its ``jwks_uri`` is fetched and cached,
refreshed in the background every ``jwks_refresh``, and at once when a token names a ``kid``
the cache lacks -- at most once per :data:`UNKNOWN_KID_REFETCH` seconds, so a flood of made-up
kids costs one fetch. Only RS256 and ES256 are accepted, each only with a key of its own type
(RSA; EC P-256), so ``none``, HMAC and "HS256 signed with the public key" never reach a
signature check.

Claims: ``iss`` must equal the issuer; ``sub`` and ``exp`` are required; ``nbf`` and ``iat``
are honoured; all times with :data:`LEEWAY` seconds of skew. ``aud`` (a string or a list) must
name one of the configured audiences; with no audience configured any ``aud``, or none, is
accepted -- configure one whenever the issuer serves more than one client. Tenant: the first
non-empty string of ``org_id``, ``tenant_id``, ``tid``. Roles: ``role``, ``roles`` and
``groups`` (strings or lists of strings), merged in that order.

An ID token's ``nonce`` and ``azp`` are in its :class:`Claims` too, and
:meth:`OidcVerifier.metadata` gives the discovery document: the admin UI's OIDC sign-in
verifies its ID tokens with a verifier of its own (audience: its client id) and reads the
issuer's endpoints there.

Verified tokens are remembered by SHA-256 (never in clear) for at most :data:`CACHE_TTL`
seconds and never past their expiry, so the hot path is a hash and a dict lookup, not an RSA
verification. An unreachable issuer is :class:`UnavailableError` (503), not a 401: the token
may well be good. Keys already cached keep verifying while the issuer is down.

Example::

    async with OidcVerifier(config.auth.oidc) as verifier:
        claims = await verifier.verify(token)  # Claims(subject="u-1", tenant="acme", ...)
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt
import orjson
from jwt.exceptions import InvalidSubjectError

from gateway.config import OidcConfig
from gateway.errors import AuthenticationError, UnavailableError
from gateway.providers.transport import new_session
from gateway.tenancy.jose import jose_header as _header
from gateway.tenancy.jose import looks_like_jwt

__all__ = ["Claims", "OidcVerifier", "looks_like_jwt"]

log = logging.getLogger("gateway.tenancy")

# alg -> (kty, crv) of the only keys it may be verified with
ALGORITHMS: dict[str, tuple[str, str | None]] = {"RS256": ("RSA", None), "ES256": ("EC", "P-256")}
LEEWAY = 30.0
UNKNOWN_KID_REFETCH = 10.0  # at most one JWKS fetch per this many seconds for unknown kids
RETRY_COLD_AFTER = 1.0  # with no keys at all, a failed fetch is retried after this long
CACHE_SIZE = 1024
CACHE_TTL = 60.0
FETCH_TIMEOUT = 5.0
MAX_DOCUMENT = 1 << 20
TENANT_CLAIMS = ("org_id", "tenant_id", "tid")
ROLE_CLAIMS = ("role", "roles", "groups")


@dataclass(frozen=True, slots=True)
class Claims:
    """Who a verified token says the caller is."""

    subject: str
    tenant: str
    roles: tuple[str, ...]
    issuer: str
    expires_at: float
    nonce: str = ""  # an ID token's: the one its sign-in sent (OpenID Connect Core 3.1.3.7)
    authorized_party: str = ""  # ``azp``


class OidcVerifier:
    """Verifies OIDC JWTs for one issuer; an async context manager owning its session."""

    def __init__(
        self,
        config: OidcConfig,
        *,
        session_factory: Callable[[], aiohttp.ClientSession] = lambda: new_session(4),
        clock: Callable[[], float] = time.time,
        fetch_timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.issuer = config.issuer
        self._audience = list(config.audience)
        self._refresh_every = float(config.jwks_refresh)
        self._session_factory = session_factory
        self._session: aiohttp.ClientSession | None = None
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout)
        self._jwks_uri: str | None = None
        self._discovery: dict[str, Any] | None = None
        self._keys: tuple[jwt.PyJWK, ...] = ()
        self._by_kid: dict[str, jwt.PyJWK] = {}
        self._loaded = False
        self._loaded_at = 0.0
        self._lock = asyncio.Lock()
        self._fetches = 0  # fetches ended
        self._last_attempt = -math.inf
        self._last_forced = -math.inf
        self._failed = False
        self._background: asyncio.Task[None] | None = None
        self._cache: OrderedDict[bytes, tuple[Claims, float]] = OrderedDict()

    async def __aenter__(self) -> OidcVerifier:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Load the keys now rather than on the first token; an unreachable issuer is only
        logged (tokens then get 503 until it answers)."""
        try:
            await self._refresh()
        except UnavailableError:
            pass

    async def aclose(self) -> None:
        if self._background is not None:
            self._background.cancel()
            await asyncio.gather(self._background, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def metadata(self) -> dict[str, Any]:
        """The issuer's discovery document (fetched with the keys, and again when they
        are); :class:`UnavailableError` while the issuer cannot be reached."""
        if self._discovery is None:
            if self._failed and self._clock() < self._last_attempt + RETRY_COLD_AFTER:
                raise UnavailableError("identity provider unreachable")
            await self._refresh()
        if self._discovery is None:
            raise UnavailableError("identity provider unreachable")
        return self._discovery

    async def verify(self, token: str) -> Claims:
        """The token's claims, or :class:`AuthenticationError` (401) saying briefly why not;
        :class:`UnavailableError` (503) when only the unreachable issuer could tell."""
        if not token.isascii():
            raise AuthenticationError("malformed token")
        now = self._clock()
        digest = hashlib.sha256(token.encode()).digest()
        hit = self._cache.get(digest)
        if hit is not None:
            if now < hit[1]:
                self._cache.move_to_end(digest)
                return hit[0]
            del self._cache[digest]
        claims = await self._verify(token, now)
        self._cache[digest] = (claims, min(claims.expires_at + LEEWAY, now + CACHE_TTL))
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return claims

    async def _verify(self, token: str, now: float) -> Claims:
        header = _header(token)
        if header is None:
            raise AuthenticationError("malformed token")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALGORITHMS:
            raise AuthenticationError("unsupported token algorithm")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("malformed token")
        key = await self._key(kid, now)
        if key.key_type != ALGORITHMS[alg][0] or key.algorithm_name != alg:
            raise AuthenticationError("token algorithm does not match its key")
        try:
            payload = jwt.decode(
                token, key.key, algorithms=[alg], issuer=self.issuer,
                audience=self._audience or None,
                options={"require": ["iss", "sub", "exp"], "verify_aud": bool(self._audience),
                         "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                         "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise AuthenticationError(_reason(exc)) from None
        return _claims(payload, self.issuer, now)

    async def _key(self, kid: str | None, now: float) -> jwt.PyJWK:
        key = self._select(kid) if self._loaded else None
        if key is not None:
            if now >= self._loaded_at + self._refresh_every:
                self._refresh_in_background(now)
            return key
        if not self._loaded:
            if self._failed and now < self._last_attempt + RETRY_COLD_AFTER:
                raise UnavailableError("identity provider unreachable")
            await self._refresh()
        elif now >= self._last_forced + UNKNOWN_KID_REFETCH:
            self._last_forced = now
            await self._refresh()
        else:
            async with self._lock:  # a fetch under way may bring this kid
                pass
            if self._failed:
                raise UnavailableError("identity provider unreachable")
        key = self._select(kid)
        if key is None:
            raise AuthenticationError("unknown token signing key")
        return key

    def _select(self, kid: str | None) -> jwt.PyJWK | None:
        if kid is not None:
            return self._by_kid.get(kid)
        if len(self._keys) > 1:
            raise AuthenticationError("token has no key id")
        return self._keys[0] if self._keys else None

    def _refresh_in_background(self, now: float) -> None:
        if self._background is not None and not self._background.done():
            return
        if now >= self._last_attempt + UNKNOWN_KID_REFETCH:  # back off while the issuer fails
            self._background = asyncio.create_task(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        try:
            await self._refresh()
        except UnavailableError:
            pass  # logged by _fetch; the cached keys stay in use
        except Exception:
            log.exception("OIDC key refresh failed")

    async def _refresh(self) -> None:
        """Fetch the JWKS; callers queued behind a fetch share its outcome."""
        seen = self._fetches
        async with self._lock:
            if self._fetches != seen:  # a fetch ended while we queued: its outcome is ours
                if self._failed:
                    raise UnavailableError("identity provider unreachable")
                return
            self._last_attempt = self._clock()
            try:
                keys = await self._fetch()
            except UnavailableError:
                self._failed = True
                raise
            finally:
                self._fetches += 1
            self._failed = False
            self._keys = tuple(keys)
            self._by_kid = {}
            for key in keys:
                if key.key_id is not None:
                    self._by_kid.setdefault(key.key_id, key)
            self._loaded, self._loaded_at = True, self._clock()

    async def _fetch(self) -> list[jwt.PyJWK]:
        if self._session is None:
            self._session = self._session_factory()
        try:
            if self._jwks_uri is None:
                document = await self._get_json(
                    self.issuer.rstrip("/") + "/.well-known/openid-configuration")
                if document.get("issuer") != self.issuer:
                    raise ValueError(f"discovery names issuer {document.get('issuer')!r}")
                uri = document.get("jwks_uri")
                if not isinstance(uri, str) or not uri.startswith(("https://", "http://")):
                    raise ValueError("discovery has no jwks_uri")
                self._jwks_uri = uri
                self._discovery = document
            keys = _parse_jwks(await self._get_json(self._jwks_uri))
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            self._jwks_uri = None  # discover again next time: the keys may have moved
            log.warning("OIDC issuer %s: %s", self.issuer, str(exc) or type(exc).__name__)
            raise UnavailableError("identity provider unreachable") from None
        log.info("OIDC issuer %s: %d signing keys loaded", self.issuer, len(keys))
        return keys

    async def _get_json(self, url: str) -> dict[str, Any]:
        assert self._session is not None
        async with self._session.get(url, timeout=self._timeout) as response:
            if response.status != 200:
                raise ValueError(f"HTTP {response.status} from {url}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(1 << 16):
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    raise ValueError(f"{url} is larger than {MAX_DOCUMENT} bytes")
        document = orjson.loads(body)
        if not isinstance(document, dict):
            raise ValueError(f"{url} is not a JSON object")
        return document


def _parse_jwks(document: dict[str, Any]) -> list[jwt.PyJWK]:
    """The usable signing keys of a JWKS: RSA and EC P-256 only, so no HMAC secret or
    other key type can ever be picked for a token."""
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no keys")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        fits = [alg for alg, (kty, crv) in ALGORITHMS.items()
                if entry.get("kty") == kty and (crv is None or entry.get("crv") == crv)]
        alg = entry.get("alg", fits[0] if fits else None)
        if alg not in fits or not isinstance(entry.get("kid", ""), str):
            continue
        try:
            keys.append(jwt.PyJWK(entry, algorithm=alg))
        except jwt.PyJWTError:
            log.warning("OIDC: skipping a malformed %s key", alg)
    if not keys:
        raise ValueError("JWKS has no RS256 or ES256 signing keys")
    return keys


def _claims(payload: dict[str, Any], issuer: str, now: float) -> Claims:
    exp = _time(payload, "exp")
    if now >= exp + LEEWAY:
        raise AuthenticationError("token expired")
    for name in ("nbf", "iat"):
        if name in payload and _time(payload, name) > now + LEEWAY:
            raise AuthenticationError("token not yet valid")
    subject = payload["sub"]
    if not subject:
        raise AuthenticationError("token has an empty sub")
    tenant = next((value for name in TENANT_CLAIMS
                   if isinstance(value := payload.get(name), str) and value), "")
    roles = dict.fromkeys(role for name in ROLE_CLAIMS for role in _strings(payload.get(name)))
    nonce, azp = payload.get("nonce"), payload.get("azp")
    return Claims(subject=subject, tenant=tenant, roles=tuple(roles), issuer=issuer,
                  expires_at=exp, nonce=nonce if isinstance(nonce, str) else "",
                  authorized_party=azp if isinstance(azp, str) else "")


def _strings(value: Any) -> list[str]:
    """A claim that is a string or a list of strings, as a list (other items dropped)."""
    items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, str) and item]


def _time(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise AuthenticationError(f"token has an invalid {name}")
    return float(value)


def _reason(exc: jwt.PyJWTError) -> str:
    """A short, fixed message per failure: PyJWT's own text is not echoed."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token has no {exc.claim}"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature invalid"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token issuer not accepted"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token audience not accepted"
    if isinstance(exc, InvalidSubjectError):
        return "token has an invalid sub"
    if isinstance(exc, jwt.InvalidKeyError):
        return "token signing key not accepted"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"
