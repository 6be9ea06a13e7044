"""Property-based fuzzing of the REST facade with schemathesis, against its own
/openapi.json: every operation, then the stateful links (tenant -> keys, response ->
get/delete); then JSON bodies nested from 1 to 30,000 levels in every place a body may
nest. The gateway routes to the mock provider and to a wire-faithful fake OpenAI, so that
requests also cross the core's HTTP provider path.

Properties: no 5xx but the upstream-caused 502/503/504; answers match the document
(status codes, content types, schemas); a body that says JSON is JSON; afterwards the
process still serves, logged no traceback, and its memory stayed within a bound.

CI runs a few derandomized examples an operation (about 40 s); ``GATEWAY_LONG_RUNS=1``
runs many more from a fresh seed, printed (``GATEWAY_FUZZ_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, seed, settings
from hypothesis.stateful import run_state_machine_as_test
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from gateway.facade.app import MAX_TIMEOUT
from gateway.facade.openapi import openapi_document
from tests.conftest import MOCK_AND_FAKE_OPENAI_ROUTES, GatewayProcess, start_gateway
from tests.fakes.openai import FakeOpenAI
from tests.reliability.scorecard import LONG, record, scaled

pytestmark = pytest.mark.fuzz

ADMIN = "adm-rest-fuzz-key"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
MAX_BODY = 262144
# After the warm-up the fast run (~3,200 requests over one connection) grows RSS by ~5 MiB
# and the long run (~8,800) by ~6 (first large bodies, allocator arenas); a leak of 10 KiB
# a request would add 30 MiB more in CI and 85 in the long run.
RSS_GROWTH_LIMIT_MIB = 24.0
CONFIG = """
logging: {{level: warning, format: json}}
server: {{max_request_body_size: {max_body}}}
rate_limit: {{enabled: true, requests_per_second: 100000, burst: 100000}}
auth: {{api_keys: {{enabled: true}}}}
conversations: {{store: memory, ttl: 2s}}  # stored responses expire, so memory can settle
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
""" + MOCK_AND_FAKE_OPENAI_ROUTES
# The configured names: valid requests reach the providers, the stores and the links.
MODELS = ["mock-1", "mock/echo", "gpt-4o-mini"]

# Derandomized in CI so that it never flakes; a fresh seed in the long run.
SEED = int(os.environ.get("GATEWAY_FUZZ_SEED") or random.getrandbits(32)) if LONG else None
FUZZ = settings(max_examples=scaled(12, 200), derandomize=SEED is None, deadline=None,
                database=None, suppress_health_check=list(HealthCheck))
T = TypeVar("T")


def seeded(test: T) -> T:
    return test if SEED is None else seed(SEED)(test)


@dataclass
class Tally:
    """What the module sent and how it was answered, for the scorecard."""

    inputs: int = 0
    served: int = 0  # answered as the contract says (every check passed)
    statuses: Counter[str] = field(default_factory=Counter)

    def answered(self, status: int) -> None:
        self.inputs += 1
        if status >= 300:
            self.statuses[str(status)] += 1


TALLY = Tally()


def counted(ctx: Any, response: Any, case: Any) -> None:
    """Not a property: counts each answer (it runs first, before the checks)."""
    TALLY.answered(response.status_code)


def no_server_error_but_upstream(ctx: Any, response: Any, case: Any) -> None:
    """5xx only as 502/503/504, which name an upstream or the core as the cause."""
    assert response.status_code < 500 or response.status_code in (502, 503, 504), (
        f"{case.method} {case.path} -> {response.status_code}: {response.text[:500]}")


def json_when_it_says_json(ctx: Any, response: Any, case: Any) -> None:
    ctype = (response.headers.get("content-type") or [""])[0]
    if ctype.startswith("application/json"):
        try:
            json.loads(response.content)
        except ValueError:
            raise AssertionError(f"{case.method} {case.path}: not JSON: "
                                 f"{response.content[:200]!r}") from None


CHECKS = [counted, no_server_error_but_upstream, json_when_it_says_json,
          status_code_conformance, content_type_conformance, response_schema_conformance]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def still_serves(gw: GatewayProcess) -> None:
    for model in ("mock-1", "gpt-4o-mini"):
        r = httpx.post(gw.http_url + "/v1/chat/completions", headers=AUTH, timeout=10, json={
            "model": model, "messages": [{"role": "user", "content": "still serving?"}]})
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["message"]["content"]


def delete_tenants(base_url: str) -> None:
    tenants = httpx.get(base_url + "/admin/tenants", headers=AUTH, timeout=10)
    for tenant in tenants.json()["tenants"]:
        httpx.delete(f"{base_url}/admin/tenants/{tenant['id']}", headers=AUTH, timeout=10)


@dataclass
class Fuzzed:
    gateway: GatewayProcess
    upstream: FakeOpenAI
    rss_before_mib: float  # after a warm-up


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    """One keep-alive connection for the whole run (reopened when the server closes it):
    Hypercorn's memory per accepted connection would otherwise blur the RSS figures."""
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def fuzzed(module_tmp: Path, fake_openai: FakeOpenAI,
           pytestconfig: pytest.Config) -> Iterator[Fuzzed]:
    if SEED is not None:  # shown at once, whatever the capture mode
        with pytestconfig.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\nREST fuzz seed {SEED} (GATEWAY_FUZZ_SEED={SEED} replays it)")
    gw = start_gateway(CONFIG.format(max_body=MAX_BODY, base_url=fake_openai.base_url),
                       module_tmp, env={"GATEWAY_ADMIN_KEY": ADMIN,
                                        "FAKE_OPENAI_KEY": FakeOpenAI.api_key})
    for _ in range(20):  # warm-up: imports, caches and pools settle before the baseline
        still_serves(gw)
        httpx.post(gw.http_url + "/v1/responses", headers=AUTH, timeout=10,
                   json={"model": "mock-1", "input": "warm", "stream": True})
        httpx.get(gw.http_url + "/admin/tenants", headers=AUTH, timeout=10)
    yield Fuzzed(gw, fake_openai, rss_mib(gw.proc.pid))
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"
    assert not unexpected_tracebacks(gw.logs())


# The document the gateway serves with CONFIG (test_openapi checks served == built); built
# here so that schemathesis can parametrize at collection, before the gateway runs.
DOCUMENT = openapi_document(metrics_path="/metrics", max_body=MAX_BODY,
                            max_timeout=MAX_TIMEOUT)


def _steered(document: dict[str, Any]) -> dict[str, Any]:
    """The document with `model` narrowed to the configured names, so that valid requests
    get past routing (negative cases still try other names)."""
    steered = copy.deepcopy(document)
    schemas = steered["components"]["schemas"]
    for name in ("ChatCompletionRequest", "EmbeddingsRequest", "CreateResponseRequest",
                 "MessagesRequest", "CountMessageTokensRequest"):
        schemas[name]["properties"]["model"] = {"enum": MODELS}
    return steered


def _loaded() -> Any:
    loaded = schemathesis.openapi.from_dict(_steered(DOCUMENT))
    if SEED is not None:
        loaded.config.seed = SEED
    return loaded


schema = _loaded()


def test_the_gateway_serves_the_fuzzed_document(fuzzed: Fuzzed) -> None:
    served = httpx.get(fuzzed.gateway.http_url + "/openapi.json", timeout=10).json()
    assert served == DOCUMENT


@schema.parametrize()
@FUZZ
def test_every_operation(case: Any, fuzzed: Fuzzed, session: requests.Session) -> None:
    fuzzed.upstream.reset()  # it records every request: keep the test process small
    case.call_and_validate(base_url=fuzzed.gateway.http_url, session=session, headers=AUTH,
                           checks=CHECKS, timeout=30)
    TALLY.served += 1


# Per area, so that the links are followed often: (tag, an operation and the status that
# shows a link was followed, i.e. an id taken from an earlier answer was found).
LINKED = [("admin", "POST /admin/tenants/{tenant_id}/keys", 201),
          ("responses", "GET /v1/responses/{response_id}", 200)]


@pytest.mark.parametrize(("tag", "linked", "status"), LINKED, ids=[t for t, _, _ in LINKED])
def test_stateful_links(fuzzed: Fuzzed, session: requests.Session, tag: str, linked: str,
                        status: int) -> None:
    loaded = _loaded()
    loaded.config.phases.stateful.inference.algorithms = []  # the document's links only
    area = loaded.include(tag=tag)
    # Valid requests and our own credentials: here the point is the sequences (wrong
    # input and wrong keys are the per-operation test's business).
    area.config.generation.update(modes=[GenerationMode.POSITIVE],
                                  with_security_parameters=False)
    base_url = fuzzed.gateway.http_url
    seen: set[tuple[str, int]] = set()

    class Links(area.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every scenario starts from no tenants: what hypothesis draws depends on which
            # links can be followed, so it must not depend on earlier scenarios.
            if tag == "admin":
                delete_tenants(base_url)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"base_url": base_url, "session": session, "headers": AUTH, "timeout": 30}

        def after_call(self, response: Any, case: Any) -> None:
            seen.add((f"{case.method} {case.path}", response.status_code))

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=AUTH)
            TALLY.served += 1

    run_state_machine_as_test(seeded(Links), settings=settings(
        FUZZ, max_examples=scaled(20, 150), stateful_step_count=5))
    assert (linked, status) in seen, f"the links were never followed: {sorted(seen)}"


# --- nesting ------------------------------------------------------------------------------

# Around each parser's and writer's limit: orjson writes 254 levels and reads 1024.
DEPTHS = (1, 64, 128, 254, 255, 300, 1023, 1024, 1025, 5000, 30_000)
NESTS: dict[str, Callable[[int], str]] = {
    "objects": lambda depth: '{"a":' * depth + "1" + "}" * depth,
    "arrays": lambda depth: "[" * depth + "1" + "]" * depth,
}
_CHAT = '{"model":"%s","messages":[{"role":"user","content":"x"}]'
# (route, where the nested value goes): %s is the model, NEST the value.
PLACES = {
    "/v1/chat/completions": [
        _CHAT + ',"tools":[{"type":"function","function":{"name":"f","parameters":NEST}}]}',
        _CHAT + ',"response_format":{"type":"json_schema","json_schema":{"name":"n",'
        '"schema":NEST}}}',
        _CHAT + ',"x_passed_on":NEST}',
        '{"model":"%s","messages":[{"role":"user","content":NEST}]}',
        '{"model":"%s","messages":NEST}',
    ],
    "/v1/responses": [
        '{"model":"%s","input":"x","tools":[{"type":"function","name":"f",'
        '"parameters":NEST}]}',
        '{"model":"%s","input":"x","text":{"format":{"type":"json_schema","name":"n",'
        '"schema":NEST}}}',
        '{"model":"%s","input":"x","x_passed_on":NEST}',
        '{"model":"%s","input":"x","metadata":NEST}',
        '{"model":"%s","input":[{"type":"function_call_output","call_id":"c",'
        '"output":NEST}]}',
        '{"model":"%s","input":NEST}',
    ],
    "/v1/embeddings": ['{"model":"%s","input":NEST}', '{"model":"%s","input":"x","user":NEST}'],
    "/admin/tenants": ['{"name":"n%s","limits":NEST}', '{"name":"n%s","allowed_models":NEST}'],
}
def _error_json(r: requests.Response) -> bool:
    try:
        return "error" in r.json()
    except ValueError:
        return False


def unexpected_tracebacks(logs: str) -> list[str]:
    """The log lines with a traceback: none is expected."""
    return [line[:2000] for line in logs.splitlines() if "Traceback" in line]


@pytest.mark.parametrize("route", [
    "/v1/chat/completions", "/v1/responses",
    "/v1/embeddings", "/admin/tenants"])
def test_nested_bodies(fuzzed: Fuzzed, session: requests.Session, route: str) -> None:
    # Every place x depth x container x model: few enough to try them all (no sampling).
    url = fuzzed.gateway.http_url + route
    failures = []
    for place in PLACES[route]:
        for depth in DEPTHS:
            for kind, nest in NESTS.items():
                for model in ("mock-1", "gpt-4o-mini"):
                    body = (place % model).replace("NEST", nest(depth)).encode()
                    assert len(body) < MAX_BODY
                    fuzzed.upstream.reset()
                    started = time.monotonic()
                    r = session.post(url, data=body, timeout=30, headers={
                        **AUTH, "Content-Type": "application/json"})
                    TALLY.answered(r.status_code)
                    if (r.status_code >= 500 or time.monotonic() - started > 5
                            or (r.status_code >= 400 and not _error_json(r))):
                        failures.append(f"{place[:60]} {kind} x{depth} {model}: "
                                        f"{r.status_code} {r.text[:200]}")
                    else:
                        TALLY.served += 1
    delete_tenants(fuzzed.gateway.http_url)
    assert not failures, "\n".join(failures[:20])


def test_still_serving_and_memory_flat(fuzzed: Fuzzed) -> None:
    gw = fuzzed.gateway
    delete_tenants(gw.http_url)  # state the API keeps on purpose, not a leak
    time.sleep(3)  # the responses stored during the run expire and are swept
    still_serves(gw)
    assert httpx.get(gw.http_url + "/ready", timeout=10).status_code == 200
    grown = rss_mib(gw.proc.pid) - fuzzed.rss_before_mib
    record("fuzz", "REST facade: schemathesis, every operation and link; nested bodies",
           inputs=TALLY.inputs, served=TALLY.served, errors=dict(TALLY.statuses),
           rss_drift_mib=round(grown, 1), note=f"seed {SEED}" if SEED is not None else
           "derandomized")
    assert grown < RSS_GROWTH_LIMIT_MIB, f"RSS grew {grown:.1f} MiB during the fuzz run"
