"""A fake AWS STS answering ``AssumeRoleWithWebIdentity`` (query protocol, XML answers as
AWS sends them) with short-lived credentials, which it registers with a
:class:`tests.fakes.bedrock.FakeBedrock` so that requests signed with them are accepted.

It checks the web identity token it gets against ``token``; a wrong one is AWS's 400
``InvalidIdentityToken`` error document.

Example::

    sts = FakeSts(bedrock, token="eks-token", ttl=60).start()
    sts.issued  # access keys handed out, in order
"""

from __future__ import annotations

import datetime
import itertools
from urllib.parse import parse_qs

from aiohttp import web

from tests.fakes.bedrock import FakeBedrock
from tests.fakes.server import FakeServer

_serial = itertools.count(1)


class FakeSts(FakeServer):
    def __init__(self, bedrock: FakeBedrock, token: str, ttl: float = 60) -> None:
        super().__init__()
        self.bedrock = bedrock
        self.token = token
        self.ttl = ttl
        self.issued: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        form = {k: v[0] for k, v in parse_qs(recorded.body.decode()).items()}
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return self._error(400, "InvalidAction", "unsupported action")
        if form.get("WebIdentityToken") != self.token:
            return self._error(400, "InvalidIdentityToken",
                               "Couldn't retrieve verification key from your identity provider")
        n = next(_serial)
        key, secret, token = f"ASIAFAKESTS{n:09d}", f"sts-secret-{n:04d}-abcdefgh", f"tok-{n}"
        self.bedrock.credentials[key] = (secret, token)
        self.issued.append(key)
        expires = (datetime.datetime.now(datetime.UTC)
                   + datetime.timedelta(seconds=self.ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")
        role = form.get("RoleArn", "")
        session = form.get("RoleSessionName", "")
        assumed = role.replace(":role/", ":assumed-role/").replace("arn:aws:iam", "arn:aws:sts")
        body = f"""<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:ai:gateway</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>{assumed}/{session}</Arn>
      <AssumedRoleId>AROAFAKEROLE:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>{token}</SessionToken>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <Expiration>{expires}</Expiration>
      <AccessKeyId>{key}</AccessKeyId>
    </Credentials>
    <Provider>oidc.eks.us-east-1.amazonaws.com/id/FAKE</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>fake-sts-{n}</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>"""
        return web.Response(body=body.encode(), content_type="text/xml")

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>fake-sts-error</RequestId></ErrorResponse>")
        return web.Response(status=status, body=body.encode(), content_type="text/xml")
