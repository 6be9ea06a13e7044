"""Fake AWS credential endpoints on 127.0.0.1, for botocore's credential chain: the container
endpoint (ECS task roles, EKS Pod Identity) and the EC2 instance metadata service (IMDSv2).

Each hands out fresh temporary credentials per fetch and registers them with a
:class:`tests.fakes.bedrock.FakeBedrock`, so requests signed with them are accepted there.
``lifetimes`` says how long each handed-out set is valid, in order (the last one repeats),
so a test can hand out credentials that expire soon and then a longer-lived set.

The protocols are botocore's (``botocore/utils.py``): ``ContainerMetadataFetcher`` GETs
``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with ``Authorization:
<AWS_CONTAINER_AUTHORIZATION_TOKEN>`` and reads ``AccessKeyId``, ``SecretAccessKey``,
``Token``, ``Expiration``; ``InstanceMetadataFetcher`` PUTs ``/latest/api/token`` with
``X-aws-ec2-metadata-token-ttl-seconds``, then GETs
``/latest/meta-data/iam/security-credentials/`` (the role name) and
``.../security-credentials/<role>`` with ``X-aws-ec2-metadata-token``.

Example::

    with FakeContainerCredentials(bedrock, auth_token="pod-token") as container:
        env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = container.url
        container.issued  # access keys handed out, in order
"""

from __future__ import annotations

import datetime
import itertools
import secrets

import orjson
from aiohttp import web

from tests.fakes.bedrock import FakeBedrock
from tests.fakes.server import FakeServer

__all__ = ["HOUR", "FakeContainerCredentials", "FakeImds"]

_serial = itertools.count(1)
HOUR = 3600.0


def _stamp(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Issuer(FakeServer):
    """Hands out credentials registered with ``bedrock``, ``lifetimes`` seconds long."""

    prefix = "ASIAFAKE"

    def __init__(self, bedrock: FakeBedrock, lifetimes: tuple[float, ...] = (6 * HOUR,)) -> None:
        super().__init__()
        self.bedrock = bedrock
        self.lifetimes = lifetimes
        self.issued: list[str] = []  # access keys handed out, in order
        self.secrets: list[str] = []  # their secret keys and session tokens

    def issue(self) -> dict[str, str]:
        n = next(_serial)
        lifetime = self.lifetimes[min(len(self.issued), len(self.lifetimes) - 1)]
        key = f"{self.prefix}{n:08d}"
        secret, token = f"metadata-secret-{n:04d}-{secrets.token_hex(8)}", f"tok-{n}-{key}"
        self.bedrock.credentials[key] = (secret, token)
        self.issued.append(key)
        self.secrets += [secret, token]
        now = datetime.datetime.now(datetime.UTC)
        return {"AccessKeyId": key, "SecretAccessKey": secret, "Token": token,
                "Expiration": _stamp(now + datetime.timedelta(seconds=lifetime))}


class FakeContainerCredentials(_Issuer):
    """The container credentials endpoint at ``url`` (``/v1/credentials``, the path of EKS Pod
    Identity's agent); a request without ``Authorization: <auth_token>`` is a 401."""

    prefix = "ASIAFAKECTR"
    PATH = "/v1/credentials"

    def __init__(self, bedrock: FakeBedrock, auth_token: str,
                 lifetimes: tuple[float, ...] = (6 * HOUR,)) -> None:
        super().__init__(bedrock, lifetimes)
        self.auth_token = auth_token

    @property
    def url(self) -> str:
        return self.base_url + self.PATH

    def routes(self, app: web.Application) -> None:
        app.router.add_get(self.PATH, self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        await self.record(request)
        if request.headers.get("Authorization") != self.auth_token:
            return web.json_response({"Message": "invalid Authorization token"}, status=401)
        answer = {**self.issue(), "AccountId": "123456789012",
                  "RoleArn": "arn:aws:iam::123456789012:role/gateway"}
        return web.Response(body=orjson.dumps(answer), content_type="application/json")


class FakeImds(_Issuer):
    """IMDSv2 at ``base_url`` with one instance role, ``role``. Without a session token from
    ``PUT /latest/api/token`` (TTL header 1..21600 seconds, else a 400) a metadata GET is a
    401, as on an instance that requires IMDSv2."""

    prefix = "ASIAFAKEIMDS"
    CREDENTIALS = "/latest/meta-data/iam/security-credentials/"

    def __init__(self, bedrock: FakeBedrock, role: str = "gateway-instance-role",
                 lifetimes: tuple[float, ...] = (6 * HOUR,)) -> None:
        super().__init__(bedrock, lifetimes)
        self.role = role
        self.tokens: list[str] = []  # session tokens handed out, in order
        self.ttls: list[str] = []  # the TTL header of each token request

    def routes(self, app: web.Application) -> None:
        app.router.add_put("/latest/api/token", self.token)
        app.router.add_get(self.CREDENTIALS, self.roles)
        app.router.add_get(self.CREDENTIALS + "{role}", self.credentials)

    async def token(self, request: web.Request) -> web.Response:
        await self.record(request)
        ttl = request.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        self.ttls.append(ttl)
        if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
            return web.Response(status=400)
        token = f"imds-session-{secrets.token_urlsafe(24)}"
        self.tokens.append(token)
        return web.Response(text=token, headers={"X-aws-ec2-metadata-token-ttl-seconds": ttl})

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("X-aws-ec2-metadata-token") in self.tokens

    async def roles(self, request: web.Request) -> web.Response:
        await self.record(request)
        if not self._authorized(request):
            return web.Response(status=401)
        return web.Response(text=self.role)

    async def credentials(self, request: web.Request) -> web.Response:
        await self.record(request)
        if not self._authorized(request):
            return web.Response(status=401)
        if request.match_info["role"] != self.role:
            return web.Response(status=404)
        answer = {"Code": "Success", "LastUpdated": _stamp(datetime.datetime.now(datetime.UTC)),
                  "Type": "AWS-HMAC", **self.issue()}
        return web.Response(body=orjson.dumps(answer), content_type="text/plain")
