"""A fake OIDC issuer on 127.0.0.1: discovery, a JWKS, and a mint for any token.

Tokens are built and signed here by hand (not through PyJWT), so tests can make the tokens
PyJWT would refuse to make: ``alg: none``, HS256 keyed with an RSA public key, a header
that lies about its key. Scripted :class:`Reply` objects, when queued, answer the next
discovery or JWKS request instead (a 500, a reset).

Example::

    with FakeIssuer() as issuer:
        token = issuer.mint({"org_id": "acme"}, alg="ES256")
        new = issuer.rotate("RS256")          # publishes a new kid, drops the old one
        issuer.jwks_fetches                    # how often the JWKS was fetched
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import itertools
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.fakes.server import FakeServer

DEFAULT_AUDIENCE = "llm-gateway"
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

    @property
    def issuer(self) -> str:
        return self.base_url

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.jwks)

    async def discovery(self, request: web.Request) -> web.StreamResponse:
        self.discovery_fetches += 1
        await self.record(request)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        return web.json_response({
            "issuer": self.discovery_issuer or self.issuer,
            "jwks_uri": f"{self.base_url}/jwks",
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })

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

