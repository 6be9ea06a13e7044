"""The vertex provider without ``credentials_file``: a real gateway gets its access tokens
through Application Default Credentials, from ``GOOGLE_APPLICATION_CREDENTIALS`` (a
service-account file whose JWT grant the fake Vertex verifies) and from the GCE/GKE
metadata server (:mod:`tests.fakes.gce_metadata`, proved first against google-auth itself),
whose short-lived tokens it renews without a failed request. No token or key reaches the
logs.

google-auth's environment is that of a machine with no Google credentials (no gcloud
files, no metadata server) but for what each test adds, and every name lookup and
connection made through Python's socket module (google-auth's, through urllib3) is
checked: nothing here leaves 127.0.0.1."""

from __future__ import annotations

import datetime
import importlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth
import httpx
import openai
import pytest
from google.auth import compute_engine
from google.auth.compute_engine import _metadata
from google.auth.transport.requests import Request

from tests.fakes.gce_metadata import GceMetadata
from tests.fakes.server import Recorded
from tests.fakes.vertex import SCOPE, FakeVertex, ServiceAccount
from tests.inprocess import InProcessGateway, start_in_process

GEMINI = "gemini-2.5-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
ROOT = "/v1/projects/test-project/locations/us-east5/publishers"
HI: Any = [{"role": "user", "content": "hi"}]
LOOPBACK = ("127.0.0.1", "::1", "localhost")
NOWHERE = "127.0.0.1:1"  # nothing listens there


def _config(vertex: FakeVertex) -> str:
    # test_provider_vertex.py's, at debug level (LOG_LEVEL too, which wins), and no
    # credentials_file: ADC it is.
    return f"""
logging: {{level: debug, format: json}}
retry: {{attempts: 2, backoff: 10ms, max_backoff: 50ms}}
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
providers:
  vertex:
    type: vertex
    project: test-project
    location: us-east5
    base_url: "{vertex.base_url}"
models:
  - name: gemini-flash
    targets: [{{provider: vertex, model: {GEMINI}}}]
  - name: claude-sonnet
    targets: [{{provider: vertex, model: "{CLAUDE}"}}]
"""


def _metadata_at(env: pytest.MonkeyPatch, host: str, *, check: bool) -> None:
    """Point google-auth at the metadata server on ``host``. It reads ``GCE_METADATA_HOST``
    and ``NO_GCE_CHECK`` once, when ``_metadata`` is imported, so the module is read again
    under the new environment, as a process started with it would read it."""
    env.setenv("GCE_METADATA_HOST", host)  # the /computeMetadata/v1/ calls
    env.setenv("GCE_METADATA_IP", host)  # the ping (read at each call)
    if check:
        env.delenv("NO_GCE_CHECK", raising=False)
    else:
        env.setenv("NO_GCE_CHECK", "true")
    importlib.reload(_metadata)


def _loopback_only(env: pytest.MonkeyPatch, strays: list[str]) -> None:
    """Refuse, and note, every name lookup or connection beyond loopback (google-auth's go
    through urllib3, which uses both)."""
    real_lookup, real_connect = socket.getaddrinfo, socket.socket.connect

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and (host.decode() if isinstance(host, bytes) else host
                                 ) not in LOOPBACK:
            strays.append(f"lookup {host!r}")
            raise socket.gaierror(socket.EAI_NONAME, "not in this test")
        return real_lookup(host, *args, **kwargs)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in LOOPBACK:
            strays.append(f"connect {address!r}")
            raise ConnectionRefusedError("not in this test")
        real_connect(sock, address)

    env.setattr(socket, "getaddrinfo", lookup)
    env.setattr(socket.socket, "connect", connect)


@pytest.fixture(autouse=True)
def google_env(tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No Google settings from the machine, an empty gcloud config, no metadata server, and
    loopback only; yields the MonkeyPatch to add to it (undone before google-auth's metadata
    module is read again under the restored environment)."""
    strays: list[str] = []
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in list(os.environ):
                if name.startswith(("GOOGLE_", "GCLOUD_", "CLOUDSDK_", "GCE_", "GAE_")) or (
                        name in ("NO_GCE_CHECK", "APPENGINE_RUNTIME")):
                    env.delenv(name)
            (tmp_path / "gcloud").mkdir()
            env.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
            _metadata_at(env, NOWHERE, check=False)
            _loopback_only(env, strays)
            yield env
    finally:
        importlib.reload(_metadata)
    assert not strays, f"reached beyond 127.0.0.1: {strays}"


@pytest.fixture(scope="module")
def account() -> ServiceAccount:
    return ServiceAccount.generate()


@pytest.fixture(scope="module")
def vertex(account: ServiceAccount) -> Iterator[FakeVertex]:
    with FakeVertex() as server:
        server.trust(account)
        yield server  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _reset(vertex: FakeVertex) -> None:
    vertex.reset()


def _gateway(vertex: FakeVertex) -> InProcessGateway:
    return start_in_process(_config(vertex), env={"LOG_LEVEL": "debug"})


def _client(gw: InProcessGateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.http_url + "/v1", api_key="sk-client", max_retries=0,
                         timeout=20)


def _chat_on_both(client: openai.OpenAI) -> None:
    gemini = client.chat.completions.create(model="gemini-flash", messages=HI)
    assert gemini.choices[0].message.content == "Hello from fake-vertex"
    claude = client.chat.completions.create(model="claude-sonnet", messages=HI, max_tokens=64)
    assert claude.choices[0].message.content == "Hello from claude-on-vertex"


def _bearers(vertex: FakeVertex) -> list[str]:
    """The access token of each call Vertex got, after checking where each went."""
    tokens = []
    for request in vertex.requests:
        assert request.path.startswith(ROOT)
        scheme, _, token = request.headers["Authorization"].partition(" ")
        assert scheme == "Bearer"
        tokens.append(token)
    return tokens


def _header(request: Recorded, name: str) -> str | None:
    return {k.lower(): v for k, v in request.headers.items()}.get(name.lower())


def _stop(gw: InProcessGateway, *secrets: str) -> None:
    """Stop the gateway cleanly, then check its logs name no secret and no token."""
    assert gw.stop() == 0, gw.logs()
    logs = gw.logs()
    assert '"level"' in logs  # there is something to search
    assert "ya29." not in logs
    for secret in secrets:
        assert secret not in logs


# --- the metadata fake, proved against google-auth ------------------------------------------


def test_google_auth_gets_a_token_from_the_metadata_fake(google_env: pytest.MonkeyPatch
                                                         ) -> None:
    with GceMetadata() as mds:
        _metadata_at(google_env, mds.host, check=True)
        request = Request()
        assert _metadata.ping(request)
        credentials = compute_engine.Credentials()  # type: ignore[no-untyped-call]
        credentials.refresh(request)
        assert credentials.token == mds.issued[-1]
        assert credentials.service_account_email == mds.email
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)  # as google-auth's
        assert 3500 < (credentials.expiry - now).total_seconds() <= 3600
        credentials.refresh(request)  # cached on the server, as Google's are
        assert mds.issued == [credentials.token]
        adc, project = google.auth.default(scopes=[SCOPE])
        assert isinstance(adc, compute_engine.Credentials) and project == "test-project"
        assert [(r.path, r.query) for r in mds.requests][-2:] == [
            ("/", {}), ("/computeMetadata/v1/project/project-id", {})]
        token = [r for r in mds.requests if r.path.endswith("/token")][0]
        assert token.path == "/computeMetadata/v1/instance/service-accounts/default/token"
        assert token.query == {"scopes": SCOPE}
        assert all(_header(r, "Metadata-Flavor") == "Google" for r in mds.requests)


def test_the_metadata_fake_refuses_what_google_refuses() -> None:
    with GceMetadata() as mds:
        url = f"{mds.base_url}/computeMetadata/v1/instance/service-accounts/default/token"
        for headers in ({}, {"Metadata-Flavor": "google-ish"},
                        {"Metadata-Flavor": "Google", "X-Forwarded-For": "10.0.0.1"}):
            answer = httpx.get(url, headers=headers)
            assert answer.status_code == 403
            assert answer.headers["Metadata-Flavor"] == "Google"
        answer = httpx.get(url.replace("default", "someone-else@example.com"),
                           headers={"Metadata-Flavor": "Google"})
        assert answer.status_code == 404
        assert mds.issued == []


# --- the gateway ----------------------------------------------------------------------------


def test_without_credentials_nothing_is_sent(vertex: FakeVertex) -> None:
    """The isolation holds: ADC finds nothing on this machine, and the request fails."""
    gw = _gateway(vertex)
    try:
        with _client(gw) as client, pytest.raises(openai.APIStatusError) as info:
            client.chat.completions.create(model="gemini-flash", messages=HI)
        assert info.value.status_code == 502
        assert "vertex" in info.value.message
        assert "could not obtain credentials" in info.value.message
        assert vertex.requests == []
    finally:
        _stop(gw)
    assert "DefaultCredentialsError" in gw.logs()


def test_adc_from_google_application_credentials(
        vertex: FakeVertex, account: ServiceAccount, tmp_path: Path,
        google_env: pytest.MonkeyPatch) -> None:
    path = account.write(tmp_path, vertex.token_uri)
    google_env.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    grants = len(vertex.grants)
    with GceMetadata(on_issue=vertex.accept) as mds:  # there, but the file comes first
        _metadata_at(google_env, mds.host, check=True)
        gw = _gateway(vertex)
        try:
            with _client(gw) as client:
                _chat_on_both(client)
        finally:
            _stop(gw, account.private_key_id,
                  account.info(vertex.token_uri)["private_key"].splitlines()[5])
    assert mds.requests == []
    assert len(vertex.grants) == grants + 1
    claims = vertex.grants[-1]
    assert (claims["iss"], claims["scope"]) == (account.client_email, SCOPE)
    tokens = _bearers(vertex)
    assert len(tokens) == 2 and len(set(tokens)) == 1 and tokens[0] in vertex.tokens


def test_adc_from_the_metadata_server(vertex: FakeVertex,
                                      google_env: pytest.MonkeyPatch) -> None:
    with GceMetadata(on_issue=vertex.accept) as mds:
        _metadata_at(google_env, mds.host, check=True)
        gw = _gateway(vertex)
        try:
            with _client(gw) as client:
                _chat_on_both(client)
                chunks = client.chat.completions.create(model="gemini-flash", messages=HI,
                                                        stream=True)
                assert "".join(c.choices[0].delta.content or "" for c in chunks
                               if c.choices) == "Hello from fake-vertex"
        finally:
            _stop(gw, *mds.issued)
    assert _bearers(vertex) == mds.issued * 3
    asked = [(r.path, r.query) for r in mds.requests]
    assert asked == [
        ("/", {}),  # the ping: is there a metadata server?
        ("/computeMetadata/v1/project/project-id", {}),
        ("/computeMetadata/v1/instance/service-accounts/default/", {"recursive": "true"}),
        ("/computeMetadata/v1/instance/service-accounts/default/token", {"scopes": SCOPE})]
    assert all(_header(r, "Metadata-Flavor") == "Google" for r in mds.requests)


def test_short_lived_metadata_tokens_are_renewed_without_a_failure(
        vertex: FakeVertex, google_env: pytest.MonkeyPatch) -> None:
    # Three-second tokens, a new one once less than two seconds remain, from a metadata
    # server slow to answer. Vertex refuses a token once its time is up, and any refusal
    # would fail a call here; only the first call may wait for a token.
    with GceMetadata(on_issue=vertex.accept, token_lifetime=3, reissue_below=2,
                     delay=0.3) as mds:
        _metadata_at(google_env, mds.host, check=True)
        gw = _gateway(vertex)
        try:
            with _client(gw) as client:
                calls: list[tuple[float, float]] = []  # each call: sent, answered
                deadline = time.monotonic() + 20
                while len(set(_bearers(vertex))) < 3:
                    assert time.monotonic() < deadline, f"tokens: {mds.issued}"
                    model = ("gemini-flash", "claude-sonnet")[len(calls) % 2]
                    sent = time.monotonic()
                    answer = client.chat.completions.create(model=model, messages=HI,
                                                            max_tokens=16)
                    assert answer.choices[0].message.content
                    calls.append((sent, time.monotonic()))
                    time.sleep(0.05)
        finally:
            _stop(gw, *mds.issued)
    used = _bearers(vertex)
    assert len(used) == len(calls)  # one upstream call each: no refusal was retried away
    assert set(used) <= set(mds.issued)
    # Each token is used in one stretch, in the order issued.
    stretches = [t for i, t in enumerate(used) if i == 0 or used[i - 1] != t]
    assert stretches == sorted(set(used), key=mds.issued.index)
    # Every renewal happened in the background: calls went on (with the old token) while
    # the metadata server took its time.
    first, *renewals = mds.fetches
    assert calls[0][1] > first[1]  # the first call waited for the first token
    for came, answered in renewals:
        assert any(came < sent and done < answered for sent, done in calls), (
            f"none of {len(calls)} calls went through during a {answered - came:.2f}s fetch")
