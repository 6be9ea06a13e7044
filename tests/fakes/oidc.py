"""A fake OIDC issuer on 127.0.0.1: discovery, a JWKS, a mint for any token, and the
authorization code flow with PKCE for registered clients.

Tokens are built and signed here by hand (not through PyJWT), so tests can make the tokens
PyJWT would refuse to make: ``alg: none``, HS256 keyed with an RSA public key, a header
that lies about its key. Scripted :class:`Reply` objects, when queued, answer the next
discovery or JWKS request instead (a 500, a reset).

``/authorize`` approves :attr:`FakeIssuer.user` at once (or, with :attr:`consent`, once
its form is sent, as a real issuer's login page would be) or answers
:attr:`FakeIssuer.deny` as an error, redirecting to the client; ``/token`` checks what
RFC 6749 4.1.3 and RFC 7636 4.6 ask: the client (HTTP Basic or ``client_secret_post``, or
``client_id`` alone for a public one), a code used once, issued to that client, for that
``redirect_uri``, and ``BASE64URL(SHA256(code_verifier)) == code_challenge``. Why each
token request was refused is kept in :attr:`FakeIssuer.refusals`.

Example::

    with FakeIssuer() as issuer:
        token = issuer.mint({"org_id": "acme"}, alg="ES256")
        new = issuer.rotate("RS256")          # publishes a new kid, drops the old one
        issuer.jwks_fetches                    # how often the JWKS was fetched
        issuer.register("ui", "http://127.0.0.1:8080/ui/sign-in/oidc/callback", "secret")
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import html
import itertools
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus, urlencode

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.fakes.server import FakeServer

DEFAULT_AUDIENCE = "llm-gateway"
ADMIN_USER = {"sub": "ada", "name": "Ada Admin", "roles": ["admin"]}
CODE_LIFETIME = 60.0
_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 4.1
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")  # an unpadded base64url SHA-256
_kids = itertools.count(1)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, size: int) -> str:
    return b64url(value.to_bytes(size, "big"))


@dataclass
class SigningKey:
    """A private key the issuer can sign with and, when published, lists in its JWKS."""

    kid: str
    alg: str  # "RS256" or "ES256"
    private: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls, alg: str = "RS256", kid: str | None = None) -> SigningKey:
        kid = kid or f"{alg.lower()}-{next(_kids)}"
        if alg == "RS256":
            return cls(kid, alg, rsa.generate_private_key(public_exponent=65537, key_size=2048))
        if alg == "ES256":
            return cls(kid, alg, ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(f"no keys for {alg}")

    def jwk(self) -> dict[str, str]:
        public = self.private.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": self.alg,
                    "n": _uint(numbers.n, (numbers.n.bit_length() + 7) // 8),
                    "e": _uint(numbers.e, (numbers.e.bit_length() + 7) // 8)}
        point = public.public_numbers()
        return {"kty": "EC", "kid": self.kid, "use": "sig", "alg": self.alg, "crv": "P-256",
                "x": _uint(point.x, 32), "y": _uint(point.y, 32)}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)

    def sign(self, message: bytes) -> bytes:
        if isinstance(self.private, rsa.RSAPrivateKey):
            return self.private.sign(message, padding.PKCS1v15(), hashes.SHA256())
        r, s = decode_dss_signature(self.private.sign(message, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # JWS wants raw r || s


def encode(header: Mapping[str, Any], payload: Mapping[str, Any],
           sign: Any = None) -> str:
    """A compact JWS; ``sign`` maps the signing input to the signature (None: unsigned)."""
    signing_input = f"{b64url(orjson.dumps(header))}.{b64url(orjson.dumps(payload))}"
    signature = sign(signing_input.encode()) if sign is not None else b""
    return f"{signing_input}.{b64url(signature)}"


@functools.cache
def _first_keys() -> tuple[SigningKey, SigningKey]:
    """The keys every issuer starts with, made once: RSA key generation is slow."""
    return SigningKey.generate("RS256", "rsa-first"), SigningKey.generate("ES256", "ec-first")


@dataclass
class Client:
    """A client registered at the issuer; ``secret`` None: a public client."""

    client_id: str
    redirect_uris: tuple[str, ...]
    secret: str | None = None


@dataclass
class Grant:
    """An authorization code and what it was issued for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scope: str
    user: dict[str, Any]
    issued: float
    used: bool = False


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


class FakeIssuer(FakeServer):
    """Serves ``/.well-known/openid-configuration`` and ``/jwks``; one RSA and one EC key
    are published at first. ``discovery_issuer`` overrides the ``issuer`` discovery names."""

    def __init__(self) -> None:
        super().__init__()
        self.rsa, self.ec = _first_keys()
        self.published: list[SigningKey] = [self.rsa, self.ec]
        self.extra_jwks: list[dict[str, Any]] = []  # raw entries served after the keys
        self.discovery_issuer: str | None = None
        self.discovery_fetches = 0
        self.jwks_fetches = 0
        self.clients: dict[str, Client] = {}
        self.user: dict[str, Any] = dict(ADMIN_USER)  # whom /authorize approves
        self.deny: str | None = None  # an error code /authorize answers instead
        self.consent = False  # True: /authorize shows a form the person sends first
        self.token_lifetime = 300.0  # negative: tokens expired when issued
        self.auth_methods = ["client_secret_basic", "client_secret_post"]
        self.grants: dict[str, Grant] = {}
        self.refusals: list[str] = []  # why each refused token request was refused
        self.issued: list[dict[str, Any]] = []  # each token answer given

    @property
    def issuer(self) -> str:
        return self.base_url

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)
        app.router.add_get("/authorize", self.authorize)
        app.router.add_post("/authorize", self.authorize)  # the consent form, submitted
        app.router.add_post("/token", self.token)

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        self.discovery_fetches += 1
        await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        return web.json_response({
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": f"{self.base_url}/jwks",
            "authorization_endpoint": f"{self.base_url}/authorize",
            "token_endpoint": f"{self.base_url}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": self.auth_methods,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })

    def register(self, client_id: str, redirect_uri: str, secret: str | None = None) -> Client:
        client = Client(client_id, (redirect_uri,), secret)
        self.clients[client_id] = client
        return client

    # --- the authorization code flow ---------------------------------------------------

    async def authorize(self, request: web.Request) -> web.StreamResponse:
        """RFC 6749 4.1.1 / OpenID Connect Core 3.1.2.1: an unknown client or
        redirect_uri is answered here (never redirected to); other errors go back to the
        client with its ``state``."""
        await self.record(request)
        query = request.query if request.method == "GET" else await request.post()
        client = self.clients.get(str(query.get("client_id", "")))
        redirect_uri = str(query.get("redirect_uri", ""))
        if client is None or redirect_uri not in client.redirect_uris:
            return web.Response(status=400, text="unknown client_id or redirect_uri")
        state = query.get("state")
        assert state is None or isinstance(state, str)

        def back(**params: str) -> web.StreamResponse:
            if state is not None:
                params["state"] = state
            return web.Response(status=302,
                                headers={"Location": f"{redirect_uri}?{urlencode(params)}"})

        if query.get("response_type") != "code":
            return back(error="unsupported_response_type")
        scope = str(query.get("scope", ""))
        if "openid" not in scope.split():
            return back(error="invalid_scope", error_description="openid is required")
        challenge = str(query.get("code_challenge", ""))
        if query.get("code_challenge_method") != "S256" or not _CHALLENGE.fullmatch(challenge):
            return back(error="invalid_request", error_description="PKCE S256 is required")
        if self.consent and request.method == "GET":
            return self._consent_page(query)
        if self.deny:
            return back(error=self.deny, error_description="The user said no <b>thanks</b>")
        code = secrets.token_urlsafe(24)
        nonce = query.get("nonce")
        self.grants[code] = Grant(client.client_id, redirect_uri, challenge,
                                  nonce if isinstance(nonce, str) else None, scope,
                                  dict(self.user), time.time())
        return back(code=code)

    async def token(self, request: web.Request) -> web.StreamResponse:
        """RFC 6749 4.1.3 and 5.2, RFC 7636 4.5-4.6."""
        await self.record(request)
        form = dict(await request.post())
        client, problem = self._client(request, form)
        if client is None:
            return self._refuse(problem, "invalid_client", 401)
        if form.get("grant_type") != "authorization_code":
            return self._refuse("grant_type", "unsupported_grant_type")
        grant = self.grants.get(str(form.get("code", "")))
        if grant is None:
            return self._refuse("unknown code", "invalid_grant")
        if grant.used:
            return self._refuse("code already used", "invalid_grant")
        grant.used = True  # once, whatever comes of it
        if time.time() > grant.issued + CODE_LIFETIME:
            return self._refuse("code expired", "invalid_grant")
        if grant.client_id != client.client_id:
            return self._refuse("code of another client", "invalid_grant")
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._refuse("redirect_uri differs", "invalid_grant")
        verifier = str(form.get("code_verifier", ""))
        if not _VERIFIER.fullmatch(verifier):
            return self._refuse("code_verifier missing or malformed", "invalid_request")
        if not hmac.compare_digest(s256(verifier), grant.challenge):
            return self._refuse("code_verifier does not match", "invalid_grant")
        now = time.time()
        user = grant.user
        id_claims = {**user, "aud": client.client_id, "azp": client.client_id,
                     "auth_time": int(now)}
        if grant.nonce is not None:
            id_claims["nonce"] = grant.nonce
        access_claims = {**user, "aud": DEFAULT_AUDIENCE, "scope": grant.scope,
                         "client_id": client.client_id}
        answer = {"access_token": self.mint(access_claims, now=now,
                                            lifetime=self.token_lifetime),
                  "token_type": "Bearer", "expires_in": int(self.token_lifetime),
                  "id_token": self.mint(id_claims, now=now, lifetime=self.token_lifetime),
                  "scope": grant.scope}
        self.issued.append(answer)
        return web.json_response(answer, headers={"Cache-Control": "no-store",
                                                  "Pragma": "no-cache"})

    def _consent_page(self, query: Mapping[str, Any]) -> web.Response:
        """What a real issuer shows: a page of its own whose form, sent by the person,
        redirects back to the client (so that navigation starts on the issuer's site)."""
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" '
                         f'value="{html.escape(str(v))}">' for k, v in query.items())
        who = html.escape(str(self.user.get("name") or self.user.get("sub")))
        return web.Response(content_type="text/html", text=(
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Fake issuer'
            f'</title></head><body><form method="post" action="/authorize">{fields}'
            f'<button type="submit">Continue as {who}</button></form></body></html>'))

    def _client(self, request: web.Request, form: dict[str, Any]
                ) -> tuple[Client | None, str]:
        """The client authenticated by HTTP Basic (both parts form-urlencoded, RFC 6749
        2.3.1) or by ``client_id``/``client_secret`` in the body; a public client by
        ``client_id`` alone."""
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                pair = base64.b64decode(header[6:], validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return None, "malformed Basic credentials"
            client_id, _, secret = (unquote_plus(part) for part in pair.partition(":"))
            if "client_secret_basic" not in self.auth_methods:
                return None, "client_secret_basic not allowed"
        else:
            client_id = str(form.get("client_id", ""))
            secret = form.get("client_secret")
            if secret is not None and "client_secret_post" not in self.auth_methods:
                return None, "client_secret_post not allowed"
        client = self.clients.get(client_id)
        if client is None:
            return None, "unknown client"
        if client.secret is None:
            return (client, "") if secret is None else (None, "a public client has no secret")
        if not isinstance(secret, str) or not hmac.compare_digest(secret, client.secret):
            return None, "wrong client secret"
        return client, ""

    def _refuse(self, why: str, error: str, status: int = 400) -> web.Response:
        self.refusals.append(why)
        return web.json_response({"error": error, "error_description": why}, status=status,
                                 headers={"Cache-Control": "no-store"})

    async def jwks(self, request: web.Request) -> web.StreamResponse:
        self.jwks_fetches += 1
        await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        keys = [key.jwk() for key in self.published] + self.extra_jwks
        return web.json_response({"keys": keys})

    def key(self, alg: str) -> SigningKey:
        """The newest published key for ``alg``."""
        return next(k for k in reversed(self.published) if k.alg == alg)

    def rotate(self, alg: str = "RS256", *, keep_old: bool = False) -> SigningKey:
        """Publish a new key (a new kid) for ``alg``; drop the old ones unless ``keep_old``."""
        new = SigningKey.generate(alg)
        if not keep_old:
            self.published = [k for k in self.published if k.alg != alg]
        self.published.append(new)
        return new

    def claims(self, claims: Mapping[str, Any] | None = None, *, now: float | None = None,
               lifetime: float = 300) -> dict[str, Any]:
        """Good default claims updated by ``claims``; a value of None removes that claim."""
        now = time.time() if now is None else now
        payload: dict[str, Any] = {"iss": self.issuer, "sub": "user-1", "aud": DEFAULT_AUDIENCE,
                                   "iat": int(now), "exp": int(now + lifetime)}
        payload.update(claims or {})
        return {name: value for name, value in payload.items() if value is not None}

    def mint(self, claims: Mapping[str, Any] | None = None, *, alg: str = "RS256",
             key: SigningKey | bytes | None = None, kid: str | None = "", now: float | None = None,
             lifetime: float = 300, header: Mapping[str, Any] | None = None) -> str:
        """A token. ``key``: a :class:`SigningKey` (default: the published one for ``alg``),
        or bytes as an HMAC secret for ``HS256``; ``alg="none"`` leaves it unsigned. ``kid``:
        "" for the key's own, None for no kid, or any string. ``header`` adds fields."""
        payload = self.claims(claims, now=now, lifetime=lifetime)
        sign: Any = None
        if alg.startswith("HS"):
            assert isinstance(key, bytes), "HMAC tokens need bytes as the key"
            digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
            secret = key
            sign = lambda message: hmac.new(secret, message, digest[alg]).digest()  # noqa: E731
        elif alg != "none":
            signer = key if isinstance(key, SigningKey) else self.key(alg)
            sign = signer.sign
            kid = signer.kid if kid == "" else kid
        full: dict[str, Any] = {"alg": alg, "typ": "JWT"}
        if kid:
            full["kid"] = kid
        full.update(header or {})
        return encode(full, payload, sign)

    def __enter__(self) -> FakeIssuer:
        self.start()
        return self

