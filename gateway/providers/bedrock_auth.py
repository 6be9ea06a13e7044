"""AWS credentials and SigV4 signing for the Bedrock provider, all through botocore.

Credentials come from the config (``access_key_id`` / ``secret_access_key`` /
``session_token``), else from botocore's chain with the configured ``profile``: the
environment, shared files, web identity (``AWS_ROLE_ARN`` + ``AWS_WEB_IDENTITY_TOKEN_FILE``,
as on EKS), container and instance metadata. ``role_arn`` then assumes that role with
those credentials. ``sts_endpoint_url`` points every STS call made here (web identity,
``role_arn``) at another endpoint.

Temporary credentials are refreshed ahead of expiry in a worker thread (botocore's own
windows: from 15 minutes before expiry on), while requests keep being signed with the
credentials at hand; only the very first fetch, or credentials about to expire, make a
request wait. Credentials are never logged nor put into error text.

Example::

    signer = SigV4Signer("bedrock", config)
    signed = await signer.sign(UpstreamRequest("POST", url, headers, body))
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

from gateway.config import ProviderConfig
from gateway.providers.base import UpstreamRequest

__all__ = ["SIGNING_NAME", "SigV4Signer", "load_credentials"]

SIGNING_NAME = "bedrock"  # bedrock-runtime signs as "bedrock" (its service model says so)
EXPIRING = 10.0  # seconds: credentials this close to expiry are refreshed before use

log = logging.getLogger(__name__)


def load_credentials(config: ProviderConfig, clients: list[Any] | None = None) -> Any:
    """botocore ``Credentials`` for ``config`` (blocking: call it off the event loop).

    The STS clients made here are appended to ``clients``; each is used for one fetch
    (fetches are serialized), so the previous ones are closed when a new one is made and
    the owner closes the last."""
    from botocore.credentials import (
        AssumeRoleCredentialFetcher,
        AssumeRoleWithWebIdentityProvider,
        Credentials,
        DeferredRefreshableCredentials,
        create_credential_resolver,
    )
    from botocore.session import Session

    session = Session(profile=config.profile or None)
    region = config.region

    def sts_client(service: str, **kwargs: Any) -> Any:
        options = {"region_name": region, **kwargs}
        if config.sts_endpoint_url:
            options["endpoint_url"] = config.sts_endpoint_url
        client = session.create_client(service, **options)
        if clients is not None:
            while clients:
                clients.pop().close()
            clients.append(client)
        return client

    if config.access_key_id:
        source = Credentials(config.access_key_id, config.secret_access_key,
                             config.session_token or None)
    else:
        resolver = create_credential_resolver(session, region_name=region)
        if config.sts_endpoint_url:
            # The chain's web identity provider, its STS client pointed at the endpoint.
            web = AssumeRoleWithWebIdentityProvider(
                load_config=lambda: session.full_config, client_creator=sts_client,
                profile_name=config.profile or "default", cache={},
                disable_env_vars=bool(config.profile))
            resolver.providers = [web if p.METHOD == web.METHOD else p
                                  for p in resolver.providers]
        source = resolver.load_credentials()
        if source is None:
            raise LookupError("no AWS credentials found in the config or the AWS chain")
    if not config.role_arn:
        return source
    fetcher = AssumeRoleCredentialFetcher(sts_client, source, config.role_arn,
                                          extra_args={"RoleSessionName": "llm-gateway"})
    return DeferredRefreshableCredentials(method="assume-role",
                                          refresh_using=fetcher.fetch_credentials)


class SigV4Signer:
    """A :class:`~gateway.providers.base.RequestSigner` adding SigV4 headers (``Authorization``,
    ``X-Amz-Date``, ``X-Amz-Security-Token``) with botocore's ``SigV4Auth``."""

    def __init__(self, name: str, config: ProviderConfig):
        self._name = name
        self._config = config
        self._credentials: Any = None  # botocore Credentials, maybe refreshable
        self._frozen: Any = None  # the ReadOnlyCredentials requests are signed with
        self._refresh: asyncio.Task[None] | None = None
        self._first = asyncio.Lock()
        self._sts: list[Any] = []  # the STS client of the last fetch, closed at the end

    def _fetch(self) -> None:
        """Load (the first time) and freeze the credentials; botocore refreshes them
        here when they are in its refresh window. Runs in a worker thread."""
        if self._credentials is None:
            self._credentials = load_credentials(self._config, self._sts)
        self._frozen = self._credentials.get_frozen_credentials()

    def _refresh_needed(self, within: float | None = None) -> bool:
        needed = getattr(self._credentials, "refresh_needed", None)
        return bool(needed(within)) if needed is not None else False

    async def _background(self) -> None:
        try:
            await asyncio.to_thread(self._fetch)
        except Exception as exc:  # keep signing with what we have; say so without secrets
            log.warning("%s: refreshing AWS credentials failed (%s)", self._name,
                        type(exc).__name__)
        finally:
            self._refresh = None

    async def credentials(self) -> Any:
        """The frozen credentials to sign with now."""
        if self._frozen is None:
            async with self._first:  # concurrent first requests share one fetch
                if self._frozen is None:
                    await asyncio.to_thread(self._fetch)
        elif self._refresh_needed(EXPIRING):
            await asyncio.to_thread(self._fetch)
        elif self._refresh is None and self._refresh_needed():
            self._refresh = asyncio.create_task(self._background())
        return self._frozen

    async def sign(self, request: UpstreamRequest) -> UpstreamRequest:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        frozen = await self.credentials()
        aws = AWSRequest(method=request.method, url=request.url, data=request.body,
                         headers=dict(request.headers))
        SigV4Auth(frozen, SIGNING_NAME, self._config.region).add_auth(aws)
        return dataclasses.replace(request, headers=dict(aws.headers.items()))

    async def aclose(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
            self._refresh = None
        for client in self._sts:
            client.close()
        self._sts.clear()
