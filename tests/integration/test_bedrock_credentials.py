"""Where the Bedrock provider's AWS credentials come from, end to end: a real in-process
gateway signs for a fake Bedrock Runtime that verifies every SigV4 signature and session
token, with credentials from each source of botocore's chain: environment variables, a
profile of the shared credentials file, a role assumed through (fake) STS, the container
endpoint (ECS / EKS Pod Identity) and instance metadata (IMDSv2), the last three from fakes
on 127.0.0.1. Each test starts from an environment with no ``AWS_*`` variable and empty AWS
files, instance metadata disabled unless under test: nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import botocore.session
import openai
import pytest
from botocore.exceptions import ClientError, MetadataRetrievalError
from botocore.utils import ContainerMetadataFetcher, InstanceMetadataFetcher

from tests.conftest import RunningGateway
from tests.fakes.aws_metadata import HOUR, FakeContainerCredentials, FakeImds
from tests.fakes.bedrock import REGION, FakeBedrock
from tests.fakes.server import Recorded
from tests.fakes.sts import FakeSts
from tests.inprocess import start_in_process

NOVA = "amazon.nova-lite-v1:0"
ROLE = "arn:aws:iam::123456789012:role/bedrock-invoker"
ADVISORY = 15 * 60  # seconds: botocore refreshes temporary credentials this close to expiry
MARGIN = 3.0  # seconds the first container credentials start outside that window


@dataclass
class AwsFiles:
    config: Path
    credentials: Path


@pytest.fixture
def aws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AwsFiles:
    """No AWS variable from the developer's shell or CI, empty AWS files, no IMDS."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    files = AwsFiles(tmp_path / "aws-config", tmp_path / "aws-credentials")
    files.config.write_text("")
    files.credentials.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(files.config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(files.credentials))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return files


@pytest.fixture
def fake() -> Iterator[FakeBedrock]:
    """A fake Bedrock that takes no key until a test registers one."""
    with FakeBedrock() as server:
        assert isinstance(server, FakeBedrock)
        server.credentials.clear()
        yield server


def _config(fake: FakeBedrock, extra: str = "") -> str:
    # One attempt: a request refused for its signature would fail the test, not be retried.
    return f"""
logging: {{level: debug, format: json}}
retry: {{attempts: 1}}
circuit_breaker: {{consecutive_failures: 1000, min_requests: 1000}}
providers:
  bedrock:
    type: bedrock
    region: {REGION}
    endpoint_url: "{fake.base_url}"
{extra}
models:
  - name: nova
    targets: [{{provider: bedrock, model: "{NOVA}"}}]
"""


@contextlib.contextmanager
def _gateway(fake: FakeBedrock, extra: str = "") -> Iterator[RunningGateway]:
    gw = start_in_process(_config(fake, extra))
    try:
        yield gw
    finally:
        assert gw.stop() == 0, gw.logs()


def _chat(gw: RunningGateway, times: int = 1) -> None:
    """``times`` chat requests, each of which must succeed."""
    with openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client", max_retries=0,
                       timeout=20) as client:
        for _ in range(times):
            answer = client.chat.completions.create(
                model="nova", messages=[{"role": "user", "content": "hi"}])
            assert answer.choices[0].message.content == "Hello from fake-bedrock"


def _header(recorded: Recorded, name: str) -> str | None:
    """A recorded request's header, whatever its case on the wire."""
    return next((v for k, v in recorded.headers.items() if k.lower() == name.lower()), None)


def _assert_no_secrets(gw: RunningGateway, fake: FakeBedrock, *more: str) -> None:
    """No secret key or session token the fake knows, nor ``more``, in the gateway's logs."""
    logs = gw.logs()
    assert "bedrock" in logs  # the logs were captured: the absence below means something
    for secret in [v for pair in fake.credentials.values() for v in pair if v] + list(more):
        assert secret not in logs


# --- the fakes, proven against botocore ------------------------------------------------------


def test_fake_sts_assume_role_answers_botocore(fake: FakeBedrock) -> None:
    base = ("AKIAFAKEBASE00000001", "base/secret/0123456789abcdefghijklmn")
    with FakeSts(fake, ttl=900, callers={base[0]: (base[1], None)}) as sts:
        assert isinstance(sts, FakeSts)

        def assume(key: str, secret: str) -> dict[str, object]:
            client = botocore.session.get_session().create_client(
                "sts", region_name=REGION, endpoint_url=sts.base_url,
                aws_access_key_id=key, aws_secret_access_key=secret)
            try:
                answer: dict[str, object] = client.assume_role(
                    RoleArn=ROLE, RoleSessionName="check")
                return answer
            finally:
                client.close()

        answer = assume(*base)
        credentials = answer["Credentials"]
        assert isinstance(credentials, dict)
        assert credentials["AccessKeyId"] == sts.issued[0]
        assert fake.credentials[sts.issued[0]] == (credentials["SecretAccessKey"],
                                                   credentials["SessionToken"])
        left = credentials["Expiration"].timestamp() - time.time()
        assert 850 < left <= 900
        assert answer["AssumedRoleUser"] == {
            "Arn": "arn:aws:sts::123456789012:assumed-role/bedrock-invoker/check",
            "AssumedRoleId": "AROAFAKEROLE:check"}
        assert sts.assumed == [(base[0], ROLE, "check")]
        with pytest.raises(ClientError) as wrong_secret:
            assume(base[0], "not/the/secret")
        assert wrong_secret.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
        with pytest.raises(ClientError) as unknown:
            assume("AKIAFAKEUNKNOWN00001", base[1])
        assert unknown.value.response["Error"]["Code"] == "InvalidClientTokenId"
        assert len(sts.issued) == 1


def test_fake_container_endpoint_answers_botocore(fake: FakeBedrock) -> None:
    with FakeContainerCredentials(fake, auth_token="pod-identity-token") as container:
        assert isinstance(container, FakeContainerCredentials)
        fetcher = ContainerMetadataFetcher(sleep=lambda _: None)
        answer = fetcher.retrieve_full_uri(container.url,
                                           headers={"Authorization": "pod-identity-token"})
        assert answer["AccessKeyId"] == container.issued[0]
        assert fake.credentials[container.issued[0]] == (answer["SecretAccessKey"],
                                                         answer["Token"])
        with pytest.raises(MetadataRetrievalError):
            fetcher.retrieve_full_uri(container.url, headers={"Authorization": "wrong"})
        assert len(container.issued) == 1


def test_fake_imds_answers_botocore(fake: FakeBedrock) -> None:
    with FakeImds(fake, role="gateway-instance-role") as imds:
        assert isinstance(imds, FakeImds)
        fetcher = InstanceMetadataFetcher(
            env={}, config={"ec2_metadata_service_endpoint": imds.base_url})
        answer = fetcher.retrieve_iam_role_credentials()
        assert answer["role_name"] == "gateway-instance-role"
        assert answer["access_key"] == imds.issued[0]
        assert fake.credentials[imds.issued[0]] == (answer["secret_key"], answer["token"])
        assert imds.ttls == ["21600"]  # botocore asks for a 6-hour session token
        assert [(r.method, r.path) for r in imds.requests] == [
            ("PUT", "/latest/api/token"),
            ("GET", "/latest/meta-data/iam/security-credentials/"),
            ("GET", "/latest/meta-data/iam/security-credentials/gateway-instance-role")]
        # IMDSv1 (no session token) is refused, as on an instance that requires IMDSv2.
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(imds.base_url + imds.CREDENTIALS, timeout=5)
        refused.value.close()
        assert refused.value.code == 401


# --- the gateway, one credential source at a time ------------------------------------------


def test_environment_variables(aws: AwsFiles, fake: FakeBedrock,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret, token = ("ASIAFAKEENV000000001", "env/secret/0123456789abcdefghijklmnop",
                          "env-session-token-0123456789")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", token)
    # The environment comes before the shared files in the chain.
    aws.credentials.write_text("[default]\naws_access_key_id = AKIAFAKEDEFAULT00001\n"
                               "aws_secret_access_key = default/secret/0123456789abcdef\n")
    fake.credentials[key] = (secret, token)
    fake.credentials["AKIAFAKEDEFAULT00001"] = ("default/secret/0123456789abcdef", None)
    with _gateway(fake) as gw:
        _chat(gw, 3)
        assert fake.signed_with == [key] * 3
        assert {r.headers["X-Amz-Security-Token"] for r in fake.requests} == {token}
        _assert_no_secrets(gw, fake)


def test_a_profile_of_the_shared_credentials_file(aws: AwsFiles, fake: FakeBedrock,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    default = ("AKIAFAKEDEFAULT00001", "default/secret/0123456789abcdef")
    prod = ("AKIAFAKEPROD00000001", "prod/secret/0123456789abcdefghijkl")
    aws.credentials.write_text(
        f"[default]\naws_access_key_id = {default[0]}\naws_secret_access_key = {default[1]}\n\n"
        f"[bedrock-prod]\naws_access_key_id = {prod[0]}\naws_secret_access_key = {prod[1]}\n")
    # A named profile wins over keys in the environment (botocore ignores them then).
    env = ("AKIAFAKEENV000000002", "env/secret/0123456789abcdefghijk")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", env[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", env[1])
    for key, secret in (default, prod, env):  # all taken: the log says which was used
        fake.credentials[key] = (secret, None)
    with _gateway(fake, "    profile: bedrock-prod") as gw:
        _chat(gw, 3)
        assert fake.signed_with == [prod[0]] * 3
        assert all("X-Amz-Security-Token" not in r.headers for r in fake.requests)
        _assert_no_secrets(gw, fake)


def test_role_arn_is_assumed_with_the_base_credentials(aws: AwsFiles, fake: FakeBedrock,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    base = ("AKIAFAKEBASE00000001", "base/secret/0123456789abcdefghijklmn")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", base[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", base[1])
    # Bedrock does not take the base key: only the role's credentials can succeed.
    with FakeSts(fake, ttl=HOUR, callers={base[0]: (base[1], None)}) as sts:
        assert isinstance(sts, FakeSts)
        extra = f'    role_arn: "{ROLE}"\n    sts_endpoint_url: "{sts.base_url}"'
        with _gateway(fake, extra) as gw:
            _chat(gw, 3)
            assert sts.assumed == [(base[0], ROLE, "llm-gateway")]  # once, signed by the base
            assert fake.signed_with == [sts.issued[0]] * 3
            _assert_no_secrets(gw, fake, base[1])


def test_container_credentials_are_used_and_refreshed(aws: AwsFiles, fake: FakeBedrock,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The first credentials expire just outside botocore's 15-minute advisory window, so they
    sign the first request; once inside it, a request starts a refresh in the background
    and is signed with what is at hand; later ones use the second set. No request fails."""
    auth = "pod-identity-authorization-token-0123456789"
    with FakeContainerCredentials(fake, auth_token=auth,
                                  lifetimes=(ADVISORY + MARGIN, 6 * HOUR)) as container:
        assert isinstance(container, FakeContainerCredentials)
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", container.url)
        monkeypatch.setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", auth)
        with _gateway(fake) as gw:
            _chat(gw)
            assert fake.signed_with == container.issued == container.issued[:1]
            time.sleep(MARGIN + 0.5)  # now the first set is within the advisory window
            deadline = time.monotonic() + 10
            sent = 1
            while fake.signed_with[-1] == container.issued[0]:
                assert time.monotonic() < deadline, "the credentials were never refreshed"
                _chat(gw)
                sent += 1
                time.sleep(0.05)
            _chat(gw, 3)
            sent += 3
            first, second = container.issued
            assert len(fake.requests) == len(fake.signed_with) == sent
            used = fake.signed_with
            assert used == [first] * used.count(first) + [second] * used.count(second)
            assert used.count(first) >= 2  # the refresh did not hold up the request it began
            assert [_header(r, "Authorization") for r in container.requests] == [auth] * 2
            _assert_no_secrets(gw, fake, auth)


def test_instance_metadata_imdsv2(aws: AwsFiles, fake: FakeBedrock,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeImds(fake, role="gateway-instance-role") as imds:
        assert isinstance(imds, FakeImds)
        monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.base_url)
        with _gateway(fake) as gw:
            _chat(gw, 3)
            assert fake.signed_with == imds.issued * 3
            assert [(r.method, r.path) for r in imds.requests] == [
                ("PUT", "/latest/api/token"),
                ("GET", "/latest/meta-data/iam/security-credentials/"),
                ("GET", "/latest/meta-data/iam/security-credentials/gateway-instance-role")]
            assert [_header(r, "X-aws-ec2-metadata-token") for r in imds.requests[1:]] == [
                imds.tokens[0]] * 2
            _assert_no_secrets(gw, fake, *imds.tokens)
