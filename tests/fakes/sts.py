"""A fake AWS STS answering ``AssumeRoleWithWebIdentity`` and ``AssumeRole`` (query protocol,
XML answers as AWS sends them, shaped as botocore's ``sts`` service model reads them) with
short-lived credentials, which it registers with a :class:`tests.fakes.bedrock.FakeBedrock`
so that requests signed with them are accepted.

It checks the web identity token it gets against ``token``; a wrong one is AWS's 400
``InvalidIdentityToken`` error document. ``AssumeRole`` must be SigV4-signed (service
``sts``) by one of ``callers`` (access key -> secret, session token or None), the signature
recomputed with botocore's signer; an unknown key is a 403 ``InvalidClientTokenId``, a bad
signature a 403 ``SignatureDoesNotMatch``.

Example::

    sts = FakeSts(bedrock, token="eks-token", ttl=60).start()
    sts.issued  # access keys handed out, in order
    sts.assumed  # (caller's access key, RoleArn, RoleSessionName) of each AssumeRole
"""

from __future__ import annotations

import datetime
import itertools
from urllib.parse import parse_qs

from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.fakes.bedrock import REGION, FakeBedrock
from tests.fakes.server import FakeServer

_serial = itertools.count(1)


class FakeSts(FakeServer):
    def __init__(self, bedrock: FakeBedrock, token: str = "", ttl: float = 60,
                 callers: dict[str, tuple[str, str | None]] | None = None) -> None:
        super().__init__()
        self.bedrock = bedrock
        self.token = token
        self.ttl = ttl
        self.callers = dict(callers or {})
        self.issued: list[str] = []
        self.assumed: list[tuple[str, str, str]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        form = {k: v[0] for k, v in parse_qs(recorded.body.decode()).items()}
        action = form.get("Action")
        if action == "AssumeRole":
            caller = self._caller(request, recorded.body)
            if isinstance(caller, web.Response):
                return caller
            self.assumed.append((caller, form.get("RoleArn", ""),
                                 form.get("RoleSessionName", "")))
            return self._assume_role(form)
        if action != "AssumeRoleWithWebIdentity":
            return self._error(400, "InvalidAction", "unsupported action")
        if form.get("WebIdentityToken") != self.token:
            return self._error(400, "InvalidIdentityToken",
                               "Couldn't retrieve verification key from your identity provider")
        n, key, secret, token, expires = self._issue()
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

    def _issue(self) -> tuple[int, str, str, str, str]:
        """New credentials, registered with the fake Bedrock: serial, key, secret, token,
        expiry (ISO 8601, as STS writes it)."""
        n = next(_serial)
        key, secret, token = f"ASIAFAKESTS{n:09d}", f"sts-secret-{n:04d}-abcdefgh", f"tok-{n}"
        self.bedrock.credentials[key] = (secret, token)
        self.issued.append(key)
        expires = (datetime.datetime.now(datetime.UTC)
                   + datetime.timedelta(seconds=self.ttl)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return n, key, secret, token, expires

    def _assume_role(self, form: dict[str, str]) -> web.Response:
        n, key, secret, token, expires = self._issue()
        role = form.get("RoleArn", "")
        session = form.get("RoleSessionName", "")
        assumed = role.replace(":role/", ":assumed-role/").replace("arn:aws:iam", "arn:aws:sts")
        body = f"""<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser>
      <Arn>{assumed}/{session}</Arn>
      <AssumedRoleId>AROAFAKEROLE:{session}</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <AccessKeyId>{key}</AccessKeyId>
      <SecretAccessKey>{secret}</SecretAccessKey>
      <SessionToken>{token}</SessionToken>
      <Expiration>{expires}</Expiration>
    </Credentials>
    <PackedPolicySize>6</PackedPolicySize>
  </AssumeRoleResult>
  <ResponseMetadata>
    <RequestId>fake-sts-{n}</RequestId>
  </ResponseMetadata>
</AssumeRoleResponse>"""
        return web.Response(body=body.encode(), content_type="text/xml")

    def _caller(self, request: web.Request, body: bytes) -> str | web.Response:
        """The access key that signed ``request`` (SigV4, service ``sts``), else STS's 403."""
        invalid = self._error(403, "InvalidClientTokenId",
                              "The security token included in the request is invalid.")
        try:
            scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
            fields = dict(p.strip().split("=", 1) for p in rest.split(","))
            key, date, region, service, _ = fields["Credential"].split("/")
            signed = fields["SignedHeaders"].split(";")
        except (ValueError, KeyError):
            return self._error(400, "IncompleteSignature",
                               "Request must contain a signature that conforms to AWS standards")
        if scheme != "AWS4-HMAC-SHA256" or key not in self.callers:
            return invalid
        secret, token = self.callers[key]
        if token is not None and request.headers.get("X-Amz-Security-Token") != token:
            return invalid
        stamp = request.headers.get("X-Amz-Date", "")
        try:
            when = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(
                tzinfo=datetime.UTC)
        except ValueError:
            return self._error(400, "IncompleteSignature", "X-Amz-Date is missing")
        if abs((datetime.datetime.now(datetime.UTC) - when).total_seconds()) > 300:
            return self._error(403, "SignatureDoesNotMatch", "Signature expired")
        headers = {name: request.headers.get(name, "") for name in signed}
        aws = AWSRequest(method=request.method, url=f"http://{request.host}{request.raw_path}",
                         data=body, headers=headers)
        aws.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(key, secret, token), "sts", REGION)
        expected = signer.signature(signer.string_to_sign(aws, signer.canonical_request(aws)),
                                    aws)
        if (fields.get("Signature") != expected or (region, service) != (REGION, "sts")
                or date != stamp[:8]):
            return self._error(403, "SignatureDoesNotMatch",
                               "The request signature we calculated does not match the "
                               "signature you provided.")
        return key

    @staticmethod
    def _error(status: int, code: str, message: str) -> web.Response:
        body = (f'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error>'
                f"<Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>fake-sts-error</RequestId></ErrorResponse>")
        return web.Response(status=status, body=body.encode(), content_type="text/xml")
