"""A fake Google Vertex AI with its own OAuth2 token endpoint, faithful to the wire.

``POST /token`` takes what google-auth's service-account credentials send (grant_type
``urn:ietf:params:oauth:grant-type:jwt-bearer`` and a signed ``assertion``), verifies the
assertion -- RS256 under the public key of the :class:`ServiceAccount` registered with
:meth:`FakeVertex.trust`, ``iss`` that account, ``aud`` this endpoint, ``exp`` in the future,
the cloud-platform ``scope`` -- and issues an access token that lives ``token_lifetime``
seconds; anything else gets Google's ``400 invalid_grant``.

The Vertex endpoints under ``/v1/projects/{project}/locations/{location}/publishers/...``
refuse a missing, unknown or expired token with Google's ``401 UNAUTHENTICATED``, then
answer: ``google`` models as the Gemini API does (``generateContent``,
``streamGenerateContent?alt=sse``; :mod:`tests.fakes.gemini`) and ``predict`` for text
embeddings; ``anthropic`` models ``rawPredict`` / ``streamRawPredict`` with Anthropic's
message objects and named SSE events (:mod:`tests.fakes.anthropic`), after checking the
body as Vertex does (``anthropic_version`` ``vertex-2023-10-16``, no ``model``), and
``count-tokens:rawPredict`` (the model in the body). Scripted :class:`Reply` objects answer
the next Vertex call; ``grants`` records the verified assertions' claims. Tokens issued
elsewhere (a metadata server's, :mod:`tests.fakes.gce_metadata`) are honoured once
registered with :meth:`FakeVertex.accept`.

Example::

    account = ServiceAccount.generate()
    with FakeVertex(token_lifetime=2) as fake:
        fake.trust(account)
        path = account.write(tmp_path, fake.token_uri)  # a service-account JSON file
"""

from __future__ import annotations

import functools
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import orjson
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.anthropic import message, text_events, tool_events
from tests.fakes.gemini import candidate, gemini_error, response, stream_events
from tests.fakes.server import FakeServer, Reply

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
VERSION = "vertex-2023-10-16"
AUDIENCE = "https://oauth2.googleapis.com/token"


@dataclass(frozen=True)
class ServiceAccount:
    """A test service account: its RSA key and the JSON file Google would hand out."""

    client_email: str
    private_key_id: str
    key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, email: str = "gateway@test-project.iam.gserviceaccount.com"
                 ) -> ServiceAccount:
        return cls(email, secrets.token_hex(20), _rsa_key(email))

    def info(self, token_uri: str, project: str = "test-project") -> dict[str, str]:
        pem = self.key.private_bytes(serialization.Encoding.PEM,
                                     serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {"type": "service_account", "project_id": project,
                "private_key_id": self.private_key_id, "private_key": pem,
                "client_email": self.client_email, "client_id": "1234567890",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri, "universe_domain": "googleapis.com"}

    def write(self, folder: Path, token_uri: str, name: str = "sa.json") -> Path:
        path = folder / name
        path.write_bytes(orjson.dumps(self.info(token_uri)))
        return path


@functools.cache
def _rsa_key(_email: str) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)  # slow: made once


def unauthenticated() -> Reply:
    return gemini_error(401, "Request had invalid authentication credentials. Expected OAuth "
                        "2 access token, login cookie or other valid authentication "
                        "credential.", "UNAUTHENTICATED")


def _invalid_grant(description: str) -> web.Response:
    return web.json_response({"error": "invalid_grant", "error_description": description},
                             status=400)


def _claude_error(message_: str) -> Reply:
    return Reply(status=400, json={"type": "error", "error": {
        "type": "invalid_request_error", "message": message_}})


class FakeVertex(FakeServer):
    def __init__(self, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self.accounts: dict[str, rsa.RSAPublicKey] = {}
        self.tokens: dict[str, float] = {}  # access token -> when it expires (monotonic)
        self.grants: list[dict[str, Any]] = []

    @property
    def token_uri(self) -> str:
        return f"{self.base_url}/token"

    def trust(self, account: ServiceAccount) -> None:
        self.accounts[account.client_email] = account.key.public_key()

    def accept(self, token: str, lifetime: float) -> None:
        """Honour an access token issued elsewhere (a metadata server's) for ``lifetime``
        seconds from now."""
        self.tokens[token] = time.monotonic() + lifetime

    def reset(self) -> None:
        super().reset()
        self.grants.clear()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/token", self.token)
        app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/"
                            "{publisher}/models/{call}", self.call)

    async def token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if form.get("grant_type") != GRANT_TYPE:
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        assertion = str(form.get("assertion") or "")
        try:
            issuer = jwt.decode(assertion, options={"verify_signature": False})["iss"]
            claims = jwt.decode(assertion, self.accounts[issuer], algorithms=["RS256"],
                                audience=AUDIENCE,
                                options={"require": ["iss", "aud", "exp", "iat", "scope"]})
        except (jwt.InvalidTokenError, KeyError):
            return _invalid_grant("Invalid JWT Signature.")
        if SCOPE not in str(claims["scope"]).split():
            return _invalid_grant("Invalid OAuth scope or ID token audience provided.")
        self.grants.append(claims)
        access = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.tokens[access] = time.monotonic() + self.token_lifetime
        return web.json_response({"access_token": access, "expires_in": self.token_lifetime,
                                  "token_type": "Bearer"})

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        expires = self.tokens.get(token)
        return scheme == "Bearer" and expires is not None and time.monotonic() < expires

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.events is None or reply.reset:
            return await super().play(request, reply)
        claude = request.match_info.get("publisher") == "anthropic"
        stream = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "text/event-stream", **reply.headers})
        await stream.prepare(request)
        for i, item in enumerate(reply.events):
            if reply.cut_after is not None and i >= reply.cut_after:
                await self.cut(request)
                return stream
            data = item if isinstance(item, str) else orjson.dumps(item).decode()
            # Claude's events are named; Gemini's are CRLF-framed with no end marker.
            frame = (f"event: {item['type']}\ndata: {data}\n\n" if claude and isinstance(
                item, dict) else f"data: {data}\r\n\r\n")
            await stream.write(frame.encode())
        await stream.write_eof()
        return stream

    async def call(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if not self._authorized(request):
            return await self.play(request, unauthenticated())
        if self.replies:
            return await self.play(request, self.replies.popleft())
        model, _, method = request.match_info["call"].partition(":")
        body = recorded.json
        if request.match_info["publisher"] == "anthropic":
            return await self._claude(request, model, method, body)
        if method == "predict":
            size = (body.get("parameters") or {}).get("outputDimensionality", 3)
            return web.json_response({"predictions": [
                {"embeddings": {"values": [float(i + 1)] * size,
                                "statistics": {"token_count": 2, "truncated": False}}}
                for i, _ in enumerate(body["instances"])]})
        if method not in ("generateContent", "streamGenerateContent"):
            return await self.play(request, gemini_error(
                400, f"Unknown method {method}", "INVALID_ARGUMENT"))
        streamed = method == "streamGenerateContent"
        config = (body.get("toolConfig") or {}).get("functionCallingConfig") or {}
        if body.get("tools") and config.get("mode") == "ANY":
            name = body["tools"][0]["functionDeclarations"][0]["name"]
            call = {"functionCall": {"name": name, "args": {"city": "Paris"}}}
            answer = response([candidate([call])], model=model)
            return await self.play(request, Reply(events=[answer]) if streamed
                                   else Reply(json=answer))
        if streamed:
            return await self.play(request, Reply(events=stream_events(
                ["Hello", " from", " fake-vertex"], model=model)))
        return await self.play(request, Reply(json=response(
            [candidate([{"text": "Hello from fake-vertex"}])], model=model)))

    async def _claude(self, request: web.Request, model: str, method: str,
                      body: dict[str, Any]) -> web.StreamResponse:
        if body.get("anthropic_version") != VERSION:
            return await self.play(request, _claude_error(
                f"anthropic_version: Input should be '{VERSION}'"))
        if model == "count-tokens" and method == "rawPredict":
            if "model" not in body:
                return await self.play(request, _claude_error("model: Field required"))
            return web.json_response({"input_tokens": len(orjson.dumps(body)) // 10})
        if "model" in body:
            return await self.play(request, _claude_error("model: Extra inputs are not "
                                                          "permitted"))
        if method not in ("rawPredict", "streamRawPredict"):
            return await self.play(request, gemini_error(
                400, f"Unknown method {method}", "INVALID_ARGUMENT"))
        if "max_tokens" not in body:
            return await self.play(request, _claude_error("max_tokens: Field required"))
        streamed = method == "streamRawPredict"
        choice = body.get("tool_choice") or {}
        if body.get("tools") and choice.get("type") in ("any", "tool"):
            name = choice.get("name") or body["tools"][0]["name"]
            if streamed:
                return await self.play(request, Reply(events=tool_events(
                    model, name, ["", '{"city"', ': "Paris"}'])))
            return await self.play(request, Reply(json=message(model, [
                {"type": "tool_use", "id": "toolu_fake1", "name": name,
                 "input": {"city": "Paris"}}], "tool_use")))
        if streamed:
            return await self.play(request, Reply(events=text_events(
                model, ["Hello", " from", " claude-on-vertex"])))
        return await self.play(request, Reply(json=message(model, [
            {"type": "text", "text": "Hello from claude-on-vertex"}])))
