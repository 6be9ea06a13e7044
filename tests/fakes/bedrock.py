"""A fake Amazon Bedrock Runtime that checks every request's SigV4 signature.

The signature is recomputed with botocore's own signer from the known secret of the
request's access key (the static test key, or keys the fake STS issued) over the path as
received, and compared with the ``Authorization`` header; a mismatch, an unknown key, a
wrong session token or an ``X-Amz-Date`` more than 5 minutes off is a 403
``InvalidSignatureException`` / ``UnrecognizedClientException`` as AWS sends it.

It answers ``Converse``, ``ConverseStream`` (real eventstream frames), ``InvokeModel`` and
``InvokeModelWithResponseStream`` for Claude (Messages JSON; ``chunk`` events of base64
Anthropic events), Titan v2 and Cohere embeddings, and ``CountTokens``. botocore has no
public eventstream encoder, so :func:`frame` writes one here (prelude, string headers,
CRC32s); tests/integration/test_provider_bedrock.py proves it with botocore's decoder and
the botocore client.

Example::

    fake.enqueue(bedrock_error(429, "ThrottlingException", "Too many requests"))
"""

from __future__ import annotations

import base64
import binascii
import datetime
import struct
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.server import FakeServer, Reply

ACCESS_KEY = "AKIAFAKEBEDROCK00001"
SECRET_KEY = "fake/bedrock/secret/key/0123456789abcdefgh"
REGION = "us-east-1"
USAGE = {"inputTokens": 11, "outputTokens": 7, "totalTokens": 23, "cacheReadInputTokens": 3,
         "cacheWriteInputTokens": 2}
SIGNATURE_MISMATCH = ("The request signature we calculated does not match the signature you "
                      "provided. Check your AWS Secret Access Key and signing method. Consult "
                      "the service documentation for details.")


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One eventstream message: total and headers length, prelude CRC, string headers
    (type 7), payload, message CRC (CRC32, big-endian)."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += (struct.pack("!B", len(raw_name)) + raw_name + b"\x07"
                    + struct.pack("!H", len(raw_value)) + raw_value)
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message))


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    return frame({":event-type": event_type, ":content-type": "application/json",
                  ":message-type": "event"}, orjson.dumps(payload))


def exception(exception_type: str, message: str) -> bytes:
    return frame({":exception-type": exception_type, ":content-type": "application/json",
                  ":message-type": "exception"}, orjson.dumps({"message": message}))


def bedrock_error(status: int, type_: str, message: str,
                  headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, json={"message": message}, headers={
        "x-amzn-ErrorType": f"{type_}:http://internal.amazon.com/coral/com.amazon.bedrock/",
        "x-amzn-RequestId": "fake-request-id", **(headers or {})})


def converse_answer(content: list[dict[str, Any]], stop_reason: str = "end_turn",
                    usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop_reason, "usage": usage or USAGE, "metrics": {"latencyMs": 12}}


def text_stream(words: list[str], stop_reason: str = "end_turn") -> list[bytes]:
    """The ConverseStream frames of a text answer."""
    frames = [event("messageStart", {"p": "abc", "role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}})
               for w in words]
    frames += [event("contentBlockStop", {"contentBlockIndex": 0}),
               event("messageStop", {"stopReason": stop_reason}),
               event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 12}})]
    return frames


def tool_stream(name: str, pieces: list[str], tool_id: str = "tooluse_fake1") -> list[bytes]:
    frames = [event("messageStart", {"role": "assistant"}),
              event("contentBlockStart", {"contentBlockIndex": 0, "start": {
                  "toolUse": {"toolUseId": tool_id, "name": name}}})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0,
                                           "delta": {"toolUse": {"input": p}}}) for p in pieces]
    frames += [event("contentBlockStop", {"contentBlockIndex": 0}),
               event("messageStop", {"stopReason": "tool_use"}),
               event("metadata", {"usage": USAGE, "metrics": {"latencyMs": 12}})]
    return frames


def claude_chunks(anthropic_events: list[dict[str, Any]]) -> list[bytes]:
    """InvokeModelWithResponseStream frames carrying Anthropic's stream events."""
    return [event("chunk", {"bytes": base64.b64encode(orjson.dumps(e)).decode(), "p": "ab"})
            for e in anthropic_events]


class FakeBedrock(FakeServer):
    """Set ``credentials[access_key] = (secret, session_token or None)`` to accept a key,
    add to ``api_keys`` to accept a Bedrock API key."""

    def __init__(self) -> None:
        super().__init__()
        self.credentials: dict[str, tuple[str, str | None]] = {ACCESS_KEY: (SECRET_KEY, None)}
        self.api_keys: set[str] = set()  # Bedrock API keys it takes (Authorization: Bearer)
        self.signed_with: list[str] = []  # each accepted request's access key or "Bearer <key>"
        self.raw_paths: list[str] = []  # each request's path as sent, escapes kept

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/{operation}", self.handle)

    async def play(self, request: web.Request, reply: Reply) -> web.StreamResponse:
        if reply.events is None or reply.reset:
            return await super().play(request, reply)
        response = web.StreamResponse(status=reply.status, headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "x-amzn-RequestId": "fake-request-id", **reply.headers})
        await response.prepare(request)
        for i, item in enumerate(reply.events):
            if reply.cut_after is not None and i >= reply.cut_after:
                await self.cut(request)
                return response
            await response.write(item)
        await response.write_eof()
        return response

    def check_signature(self, request: web.Request, body: bytes) -> Reply | None:
        """None when the request is signed right, else AWS's refusal."""
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):  # a Bedrock API key instead of a signature
            if auth.removeprefix("Bearer ") not in self.api_keys:
                return bedrock_error(403, "UnrecognizedClientException",
                                     "The security token included in the request is invalid.")
            self.signed_with.append(auth)
            return None
        try:
            scheme, _, rest = auth.partition(" ")
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            key, date, region, service, _ = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            return bedrock_error(403, "IncompleteSignatureException", "Authorization header "
                                 "requires 'Credential', 'Signature' and 'SignedHeaders'")
        if scheme != "AWS4-HMAC-SHA256" or key not in self.credentials:
            return bedrock_error(403, "UnrecognizedClientException",
                                 "The security token included in the request is invalid.")
        secret, token = self.credentials[key]
        if token is not None and request.headers.get("X-Amz-Security-Token") != token:
            return bedrock_error(403, "UnrecognizedClientException",
                                 "The security token included in the request is invalid.")
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC)
        except ValueError:
            return bedrock_error(403, "IncompleteSignatureException", "X-Amz-Date is missing")
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300:
            return bedrock_error(403, "InvalidSignatureException",
                                 "Signature expired: the request time is too skewed.")
        headers = {name: request.headers.get(name, "") for name in signed}
        aws = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}",
                         data=body, headers=headers)
        aws.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(key, secret, token), "bedrock", REGION)
        canonical = signer.canonical_request(aws)
        expected = signer.signature(signer.string_to_sign(aws, canonical), aws)
        if (fields.get("Signature") != expected or (region, service) != (REGION, "bedrock")
                or date != stamp[:8] or ";".join(sorted(signed)) != fields["SignedHeaders"]):
            return bedrock_error(403, "InvalidSignatureException", SIGNATURE_MISMATCH)
        self.signed_with.append(key)
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        self.raw_paths.append(request.raw_path)
        refusal = self.check_signature(request, recorded.body)
        if refusal is not None:
            return await self.play(request, refusal)
        if self.replies:
            return await self.play(request, self.replies.popleft())
        model, operation = request.match_info["model"], request.match_info["operation"]
        body = recorded.json
        if operation == "converse":
            choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
            if "any" in choice or "tool" in choice:
                name = (choice.get("tool") or {}).get("name") or (
                    body["toolConfig"]["tools"][0]["toolSpec"]["name"])
                return await self.play(request, Reply(json=converse_answer([
                    {"toolUse": {"toolUseId": "tooluse_fake1", "name": name,
                                 "input": {"city": "Paris"}}}], "tool_use")))
            return await self.play(request, Reply(json=converse_answer(
                [{"text": "Hello from fake-bedrock"}])))
        if operation == "converse-stream":
            choice = (body.get("toolConfig") or {}).get("toolChoice") or {}
            if "any" in choice or "tool" in choice:
                name = (choice.get("tool") or {}).get("name") or (
                    body["toolConfig"]["tools"][0]["toolSpec"]["name"])
                return await self.play(request, Reply(events=tool_stream(
                    name, ['{"city"', ': "Paris"}'])))
            return await self.play(request, Reply(events=text_stream(
                ["Hello", " from", " fake-bedrock"])))
        if operation == "count-tokens":
            inner = base64.b64decode(body["input"]["invokeModel"]["body"])
            return await self.play(request, Reply(json={"inputTokens": len(inner) // 10}))
        if "titan-embed" in model:
            dims = int(body.get("dimensions") or 4)
            return await self.play(request, Reply(json={
                "embedding": [0.5] * dims, "inputTextTokenCount": 3,
                "embeddingsByType": {"float": [0.5] * dims}}))
        if "cohere.embed" in model:
            return await self.play(request, Reply(json={
                "id": "emb-1", "response_type": "embeddings_floats", "texts": body["texts"],
                "embeddings": [[float(i), 0.25] for i in range(len(body["texts"]))]}))
        if "anthropic" in model:
            from tests.fakes.anthropic import message, text_events

            if operation == "invoke-with-response-stream":
                return await self.play(request, Reply(events=claude_chunks(
                    text_events(model, ["Hello", " from", " bedrock-claude"]))))
            reply = Reply(json=message(model, [{"type": "text",
                                                "text": "Hello from bedrock-claude"}]))
            return await self.play(request, replace(reply))
        return await self.play(request, bedrock_error(
            400, "ValidationException", f"The provided model identifier is invalid: {model}"))

    def reset(self) -> None:
        super().reset()
        self.signed_with.clear()
        self.raw_paths.clear()
