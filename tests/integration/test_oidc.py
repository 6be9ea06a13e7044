"""OIDC verification against a real local issuer (discovery + JWKS over HTTP): good RS256 and
ES256 tokens, every way a token can be bad, key rotation, floods of unknown kids, an issuer
that goes away, and the verified-token cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config import Duration, OidcConfig
from gateway.errors import AuthenticationError, UnavailableError
from gateway.tenancy.oidc import Claims, OidcVerifier, looks_like_jwt
from tests.fakes.oidc import DEFAULT_AUDIENCE, FakeIssuer, SigningKey, b64url
from tests.fakes.server import Reply


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def config(issuer: FakeIssuer, audience: tuple[str, ...] = (DEFAULT_AUDIENCE,),
           refresh: float = 3600) -> OidcConfig:
    return OidcConfig(enabled=True, issuer=issuer.issuer, audience=audience,
                      jwks_refresh=Duration(refresh))


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with FakeIssuer() as fake:
        yield fake


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def verifier(issuer: FakeIssuer, clock: Clock) -> AsyncIterator[OidcVerifier]:
    async with OidcVerifier(config(issuer), clock=clock) as v:
        yield v


async def rejected(verifier: OidcVerifier, token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        await verifier.verify(token)
    message = caught.value.message
    assert (not token or token not in message) and len(message) < 60
    return message


# --- good tokens ---------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_good_token_gives_its_claims(issuer: FakeIssuer, verifier: OidcVerifier,
                                             clock: Clock, alg: str) -> None:
    token = issuer.mint({"sub": "alice", "org_id": "acme", "role": "admin",
                         "roles": ["reader", "admin"], "groups": ["eng"]}, alg=alg, now=clock())
    claims = await verifier.verify(token)
    assert claims == Claims(subject="alice", tenant="acme", roles=("admin", "reader", "eng"),
                            issuer=issuer.issuer, expires_at=float(int(clock() + 300)))
    assert issuer.discovery_fetches == 1 and issuer.jwks_fetches == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(("extra", "tenant"), [
    ({"org_id": "org", "tenant_id": "ten", "tid": "t"}, "org"),
    ({"tenant_id": "ten", "tid": "t"}, "ten"),
    ({"tid": "t"}, "t"),
    ({"org_id": "", "tid": "t"}, "t"),
    ({}, ""),
])
async def test_tenant_comes_from_org_id_then_tenant_id_then_tid(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock, extra: dict[str, str], tenant: str,
) -> None:
    claims = await verifier.verify(issuer.mint(extra, now=clock()))
    assert claims.tenant == tenant and claims.roles == ()


@pytest.mark.asyncio
async def test_audience_may_be_a_list_and_one_match_is_enough(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    token = issuer.mint({"aud": ["other", DEFAULT_AUDIENCE]}, now=clock())
    assert (await verifier.verify(token)).subject == "user-1"


@pytest.mark.asyncio
async def test_without_a_configured_audience_any_audience_is_accepted(
    issuer: FakeIssuer, clock: Clock,
) -> None:
    async with OidcVerifier(config(issuer, audience=()), clock=clock) as verifier:
        await verifier.verify(issuer.mint({"aud": "someone-else"}, now=clock()))
        await verifier.verify(issuer.mint({"aud": None}, now=clock()))


@pytest.mark.asyncio
async def test_times_are_honoured_with_30s_leeway(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    now = clock()
    await verifier.verify(issuer.mint({"exp": int(now) - 20}, now=now))
    await verifier.verify(issuer.mint({"nbf": int(now) + 20, "iat": int(now) + 20}, now=now))


@pytest.mark.asyncio
async def test_a_token_without_kid_is_accepted_only_from_a_single_key_jwks(
    issuer: FakeIssuer, clock: Clock,
) -> None:
    token = issuer.mint(kid=None, now=clock())
    async with OidcVerifier(config(issuer), clock=clock) as verifier:
        assert await rejected(verifier, token) == "token has no key id"
    issuer.published = [issuer.rsa]
    async with OidcVerifier(config(issuer), clock=clock) as verifier:
        assert (await verifier.verify(token)).subject == "user-1"


@pytest.mark.asyncio
async def test_only_rsa_and_p256_keys_are_taken_from_the_jwks(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    secret = b"a-shared-secret-of-at-least-32-bytes!"
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key().public_numbers()
    issuer.extra_jwks = [
        {"kty": "oct", "kid": "hmac", "k": b64url(secret)},
        {"kty": "oct", "kid": "hmac-rs", "alg": "RS256", "k": b64url(secret)},
        {"kty": "EC", "kid": "p384", "crv": "P-384", "alg": "ES256",
         "x": b64url(p384.x.to_bytes(48, "big")), "y": b64url(p384.y.to_bytes(48, "big"))},
        {**issuer.rsa.jwk(), "kid": "enc", "use": "enc"},
    ]
    issuer.rotate("RS256", keep_old=True)  # so the verifier fetches the list above
    await verifier.verify(issuer.mint(now=clock()))
    assert issuer.jwks_fetches == 2
    for kid in ("hmac", "hmac-rs", "p384", "enc"):
        for alg in ("HS256", "RS256"):
            token = issuer.mint(alg=alg, key=secret if alg == "HS256" else None, kid=kid,
                                now=clock())
            await rejected(verifier, token)
    assert issuer.jwks_fetches == 2


# --- bad tokens ----------------------------------------------------------------------------


def _bad_tokens(issuer: FakeIssuer, now: float) -> dict[str, str]:
    rsa = issuer.rsa
    return {
        "expired": issuer.mint({"exp": int(now) - 31, "iat": int(now) - 400}, now=now),
        "nbf in the future": issuer.mint({"nbf": int(now) + 60}, now=now),
        "iat in the future": issuer.mint({"iat": int(now) + 60}, now=now),
        "wrong iss": issuer.mint({"iss": "https://evil.example"}, now=now),
        "wrong aud": issuer.mint({"aud": "other"}, now=now),
        "wrong aud list": issuer.mint({"aud": ["other", "another"]}, now=now),
        "no aud": issuer.mint({"aud": None}, now=now),
        "no exp": issuer.mint({"exp": None}, now=now),
        "string exp": issuer.mint({"exp": str(int(now) + 60)}, now=now),
        "no sub": issuer.mint({"sub": None}, now=now),
        "empty sub": issuer.mint({"sub": ""}, now=now),
        "no iss": issuer.mint({"iss": None}, now=now),
        "alg none": issuer.mint(alg="none", now=now),
        "alg none with kid": issuer.mint(alg="none", kid=rsa.kid, now=now),
        "HS256 keyed with the RSA public key": issuer.mint(
            alg="HS256", key=rsa.public_pem(), kid=rsa.kid, now=now),
        "HS256 without kid": issuer.mint(alg="HS256", key=rsa.public_pem(), kid=None, now=now),
        "RS512": issuer.mint(header={"alg": "RS512"}, now=now),
        "ES256 header on the RSA key": issuer.mint(key=rsa, header={"alg": "ES256"}, now=now),
        "RS256 header on the EC key": issuer.mint(alg="ES256", header={"alg": "RS256"}, now=now),
        "signed by an unpublished key under a known kid": issuer.mint(
            key=SigningKey.generate("RS256"), kid=rsa.kid, now=now),
        "payload altered": _tamper(issuer.mint(now=now)),
    }


def _tamper(token: str) -> str:
    header, _, signature = token.split(".")
    payload = b64url(b'{"iss":"x","sub":"admin","exp":9999999999,"aud":"llm-gateway"}')
    return f"{header}.{payload}.{signature}"


BAD = ["expired", "nbf in the future", "iat in the future", "wrong iss", "wrong aud",
       "wrong aud list", "no aud", "no exp", "string exp", "no sub", "empty sub", "no iss",
       "alg none", "alg none with kid", "HS256 keyed with the RSA public key",
       "HS256 without kid", "RS512", "ES256 header on the RSA key",
       "RS256 header on the EC key", "signed by an unpublished key under a known kid",
       "payload altered"]


@pytest.mark.asyncio
@pytest.mark.parametrize("case", BAD)
async def test_bad_tokens_are_rejected(issuer: FakeIssuer, verifier: OidcVerifier,
                                       clock: Clock, case: str) -> None:
    await rejected(verifier, _bad_tokens(issuer, clock())[case])
    assert issuer.jwks_fetches <= 1  # a bad token is no reason to refetch keys


@pytest.mark.asyncio
async def test_rejections_say_why(issuer: FakeIssuer, verifier: OidcVerifier,
                                  clock: Clock) -> None:
    tokens = _bad_tokens(issuer, clock())
    assert await rejected(verifier, tokens["expired"]) == "token expired"
    assert await rejected(verifier, tokens["nbf in the future"]) == "token not yet valid"
    assert await rejected(verifier, tokens["wrong iss"]) == "token issuer not accepted"
    assert await rejected(verifier, tokens["wrong aud"]) == "token audience not accepted"
    assert await rejected(verifier, tokens["no exp"]) == "token has no exp"
    assert await rejected(verifier, tokens["alg none"]) == "unsupported token algorithm"
    hs256 = tokens["HS256 keyed with the RSA public key"]
    assert await rejected(verifier, hs256) == "unsupported token algorithm"
    mismatch = tokens["ES256 header on the RSA key"]
    assert await rejected(verifier, mismatch) == "token algorithm does not match its key"
    assert await rejected(verifier, tokens["payload altered"]) == "token signature invalid"


@pytest.mark.asyncio
@pytest.mark.parametrize("token", [
    "", "garbage", "sk-abc123", "a.b", "a.b.c.d", "!!!.@@@.###", "e30.e30", "e30.e30.",
    b64url(b"[1]") + ".e30.sig", b64url(b"not json") + ".e30.sig",
    b64url(b'{"alg":"RS256","kid":7}') + ".e30.sig",
    b64url(b'{"alg":"RS256"}') + "." + b64url(b"[]") + ".c2ln", "tok\u00e9n.a.b",
])
async def test_malformed_tokens_are_rejected(issuer: FakeIssuer, verifier: OidcVerifier,
                                             token: str) -> None:
    await rejected(verifier, token)


# --- keys: rotation, floods, refresh -------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unknown_kid_refetches_the_jwks_once_and_then_verifies(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    old_token = issuer.mint(now=clock())
    await verifier.verify(old_token)
    assert issuer.jwks_fetches == 1
    new = issuer.rotate("RS256")
    claims = await verifier.verify(issuer.mint(key=new, now=clock()))
    assert claims.subject == "user-1" and issuer.jwks_fetches == 2
    await verifier.verify(issuer.mint(key=new, now=clock()))
    assert issuer.jwks_fetches == 2
    # the old key is gone from the JWKS: a fresh token under it no longer verifies
    assert await rejected(verifier, issuer.mint(key=issuer.rsa, now=clock() + 1)) == (
        "unknown token signing key")
    assert issuer.jwks_fetches == 2


@pytest.mark.asyncio
async def test_a_flood_of_unknown_kids_costs_at_most_one_fetch(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    await verifier.verify(issuer.mint(now=clock()))
    stranger = SigningKey.generate("RS256")
    tokens = [issuer.mint(key=stranger, kid=f"made-up-{i}", now=clock()) for i in range(100)]
    results = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    for token in tokens:  # and again, one after another
        await rejected(verifier, token)
    assert issuer.jwks_fetches == 2
    clock.advance(11)  # the next window allows one more
    for token in tokens:
        await rejected(verifier, token)
    assert issuer.jwks_fetches == 3


@pytest.mark.asyncio
async def test_a_cold_flood_costs_one_fetch(issuer: FakeIssuer, clock: Clock) -> None:
    stranger = SigningKey.generate("ES256")
    tokens = [issuer.mint(alg="ES256", key=stranger, kid=f"x{i}", now=clock()) for i in range(100)]
    tokens.append(issuer.mint(now=clock()))
    verifier = OidcVerifier(config(issuer), clock=clock)  # not started: keys load lazily
    try:
        results = await asyncio.gather(*(verifier.verify(t) for t in tokens),
                                       return_exceptions=True)
    finally:
        await verifier.aclose()
    assert all(isinstance(r, AuthenticationError) for r in results[:-1])
    assert isinstance(results[-1], Claims)
    assert issuer.discovery_fetches == 1 and issuer.jwks_fetches == 1


@pytest.mark.asyncio
async def test_keys_are_refreshed_every_jwks_refresh(issuer: FakeIssuer, clock: Clock) -> None:
    async with OidcVerifier(config(issuer, refresh=60), clock=clock) as verifier:
        await verifier.verify(issuer.mint(now=clock()))
        assert issuer.jwks_fetches == 1
        clock.advance(61)
        await verifier.verify(issuer.mint(now=clock()))  # served now, refreshed behind it
        for _ in range(100):
            if issuer.jwks_fetches == 2:
                break
            await asyncio.sleep(0.01)
        assert issuer.jwks_fetches == 2
        await verifier.verify(issuer.mint({"sub": "u2"}, now=clock()))
        assert issuer.jwks_fetches == 2


# --- the issuer failing --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_an_unreachable_issuer_is_unavailable_but_cached_keys_still_verify(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    await verifier.verify(issuer.mint(now=clock()))
    issuer.stop()
    # a new token (not in the verified-token cache) under a cached key: fine
    claims = await verifier.verify(issuer.mint({"sub": "bob"}, alg="ES256", now=clock()))
    assert claims.subject == "bob"
    # a key only the issuer could name: 503, not 401
    with pytest.raises(UnavailableError, match="identity provider unreachable"):
        await verifier.verify(issuer.mint(key=SigningKey.generate("RS256"), now=clock()))
    # the keys are due for refresh and the issuer is gone: the cached ones still serve
    clock.advance(3601)
    assert (await verifier.verify(issuer.mint({"sub": "carol"}, now=clock()))).subject == "carol"


@pytest.mark.asyncio
async def test_a_cold_verifier_with_the_issuer_down_is_unavailable(issuer: FakeIssuer,
                                                                   clock: Clock) -> None:
    token = issuer.mint(now=clock())
    issuer.stop()
    async with OidcVerifier(config(issuer), clock=clock) as verifier:
        for _ in range(3):
            with pytest.raises(UnavailableError):
                await verifier.verify(token)


def discovery(issuer: FakeIssuer) -> Reply:
    return Reply(json={"issuer": issuer.issuer, "jwks_uri": f"{issuer.base_url}/jwks"})


BROKEN: dict[str, list[Reply]] = {
    "discovery 500": [Reply(status=500, json={"error": "boom"})],
    "discovery not json": [Reply(body=b"<html>")],
    "discovery reset": [Reply(reset=True)] * 2,  # aiohttp retries a GET once,
    "jwks 503": [Reply(status=503, json={})],
    "jwks without keys": [Reply(json={"keys": "none"})],
    "jwks with only an HMAC key": [Reply(json={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})],
    "jwks reset": [Reply(reset=True)] * 2,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("case", list(BROKEN))
async def test_a_broken_issuer_is_unavailable_then_retried(issuer: FakeIssuer, clock: Clock,
                                                           case: str) -> None:
    if case.startswith("jwks"):
        issuer.enqueue(discovery(issuer))
    issuer.enqueue(*BROKEN[case])
    verifier = OidcVerifier(config(issuer), clock=clock)  # not started: keys load lazily
    try:
        with pytest.raises(UnavailableError, match="identity provider unreachable"):
            await verifier.verify(issuer.mint(now=clock()))
        clock.advance(2)
        assert (await verifier.verify(issuer.mint(now=clock()))).subject == "user-1"
    finally:
        await verifier.aclose()


@pytest.mark.asyncio
async def test_discovery_naming_another_issuer_is_refused(issuer: FakeIssuer,
                                                          clock: Clock) -> None:
    issuer.discovery_issuer = issuer.issuer + "/"
    async with OidcVerifier(config(issuer), clock=clock) as verifier:
        with pytest.raises(UnavailableError):
            await verifier.verify(issuer.mint(now=clock()))
    assert issuer.jwks_fetches == 0


# --- the verified-token cache --------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_verified_token_is_served_from_cache_in_microseconds(
    issuer: FakeIssuer, verifier: OidcVerifier, clock: Clock,
) -> None:
    token = issuer.mint({"org_id": "acme"}, now=clock())
    first = await verifier.verify(token)
    issuer.stop()  # the cache needs nobody
    n = 10_000
    started = time.perf_counter()
    for _ in range(n):
        assert await verifier.verify(token) is first
    per_call = (time.perf_counter() - started) / n
    assert per_call < 50e-6, f"{per_call * 1e6:.1f} us per cached verify"
    assert issuer.jwks_fetches == 1


@pytest.mark.asyncio
async def test_the_cache_respects_exp(issuer: FakeIssuer, verifier: OidcVerifier,
                                      clock: Clock) -> None:
    token = issuer.mint(now=clock(), lifetime=5)
    await verifier.verify(token)
    clock.advance(33)  # within exp + leeway
    await verifier.verify(token)
    clock.advance(3)
    assert await rejected(verifier, token) == "token expired"
    assert issuer.jwks_fetches == 1


# --- telling a JWT from an API key ---------------------------------------------------------


def test_looks_like_jwt(issuer: FakeIssuer) -> None:
    assert looks_like_jwt(issuer.mint())
    assert looks_like_jwt(issuer.mint(alg="ES256"))
    assert looks_like_jwt(issuer.mint(alg="none"))  # a JWT, to be refused as one
    for token in ["sk-abc123", "sk-a.b.c", "", "a.b", "e30.e30.e30", "!!!.@@@.###",
                  b64url(b'{"alg":"RS256"}') + "..sig", "eyJhbGciOiJSUzI1NiJ9.e30.a.b"]:
        assert not looks_like_jwt(token), token
