"""Property-based fuzzing of the gRPC API: hypothesis-generated messages for every
GatewayService and AdminService RPC, sent through the generated stubs.

Messages are built from the descriptors: random and boundary scalars (0, -1, the
extremes, NaN and infinities, empty and 100 KB strings), enums given numbers they do not
define (set through the raw field), huge repeated fields and maps (bounded), JSON text
fields nested up to thousands deep, and request bytes that are no message at all (groups
nested 100,000 deep among them). Names and ids are often real ones (a configured model, a
tenant, a key, a stored response), so that requests get past validation into routing, the
mock provider and a wire-faithful fake OpenAI, stores and tenancy.

Properties: never INTERNAL or UNKNOWN, never a hang (DEADLINE_EXCEEDED), never a
transport failure; afterwards the server still serves, logged no traceback, and its memory
stayed within a bound.

CI runs a few derandomized examples an RPC (about 30 s); ``GATEWAY_LONG_RUNS=1`` runs many
more from a fresh seed, printed (``GATEWAY_FUZZ_SEED=<seed>`` replays it).
"""

from __future__ import annotations

import base64
import dataclasses
import os
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import orjson
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st
from llmgateway.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    chat_pb2,
    gateway_service_pb2,
    gateway_service_pb2_grpc,
)

from tests.conftest import MOCK_AND_FAKE_OPENAI_ROUTES, GatewayProcess, start_gateway
from tests.fakes.openai import FakeOpenAI
from tests.reliability.scorecard import LONG, record, scaled

pytestmark = pytest.mark.fuzz

ADMIN = "adm-grpc-fuzz-key"
METADATA = (("authorization", f"Bearer {ADMIN}"),)
CALL_TIMEOUT = 20.0  # far above any answer here: reaching it means a hang
HUGE = 3000  # items in a "huge" repeated field: past every limit, still fast to send
# After the warm-up the fast run (~1,400 calls) grows RSS by 9-18 MiB on a quiet machine and
# up to ~38 on a loaded one (gRPC's threads allocate in more malloc arenas when scheduled
# differently), the long run (~13,500) by ~30: tracemalloc in the gateway found its Python
# heap flat (a few bytes a call over rounds of the same calls), so that is the allocator's
# high-water mark of the largest messages. Keeping each request would add hundreds of MiB
# here (the huge messages), gigabytes in the long run; tests/reliability/test_soak.py is
# the fine-grained leak check.
RSS_GROWTH_LIMIT_MIB = 64
CONFIG = """
logging: {{level: warning, format: json}}
rate_limit: {{enabled: true, requests_per_second: 100000, burst: 100000}}
auth: {{api_keys: {{enabled: true}}}}
conversations: {{store: memory, ttl: 2s}}  # stored responses expire, so memory can settle
circuit_breaker: {{consecutive_failures: 100000, min_requests: 100000}}
""" + MOCK_AND_FAKE_OPENAI_ROUTES
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN,
             grpc.StatusCode.DEADLINE_EXCEEDED}
# Derandomized in CI so that it never flakes; a fresh seed in the long run.
SEED = int(os.environ.get("GATEWAY_FUZZ_SEED") or random.getrandbits(32)) if LONG else None
FUZZ = settings(max_examples=scaled(50, 500), derandomize=SEED is None, deadline=None,
                database=None, suppress_health_check=list(HealthCheck))
T = TypeVar("T")


def seeded(test: T) -> T:
    return test if SEED is None else seed(SEED)(test)


SERVICES = [gateway_service_pb2.DESCRIPTOR.services_by_name["GatewayService"],
            admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"]]
# Those that remove what the others use (the fixture's tenant, key, response) run last.
_LAST = ("RotateApiKey", "RevokeApiKey", "DeleteResponse", "DeleteTenant")
RPCS = sorted(((service.full_name, method) for service in SERVICES
               for method in service.methods),
              key=lambda rpc: _LAST.index(rpc[1].name) if rpc[1].name in _LAST else -1)
RAW = [rpc for rpc in RPCS if rpc[1].name in (
    "CreateChatCompletion", "StreamChatCompletion", "GetModel", "CreateTenant", "GetTenant",
    "ListTenants")]


@dataclass
class Tally:
    """What the module sent and how it was answered, for the scorecard."""

    inputs: int = 0
    served: int = 0  # answered as the contract says
    codes: Counter[str] = dataclasses.field(default_factory=Counter)


TALLY = Tally()


@dataclass
class Fuzzed:
    gateway: GatewayProcess
    upstream: FakeOpenAI
    channel: grpc.Channel
    stubs: dict[str, Any]  # service name -> its generated stub
    ids: dict[str, list[str]]  # field name -> real values to offer
    rss_before_mib: float  # after a warm-up


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def fuzzed(module_tmp: Path, fake_openai: FakeOpenAI,
           pytestconfig: pytest.Config) -> Iterator[Fuzzed]:
    if SEED is not None:  # shown at once, whatever the capture mode
        with pytestconfig.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
            print(f"\ngRPC fuzz seed {SEED} (GATEWAY_FUZZ_SEED={SEED} replays it)")
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    gw = start_gateway(CONFIG.format(base_url=fake_openai.base_url), module_tmp,
                       env={"GATEWAY_ADMIN_KEY": ADMIN, "ENCRYPTION_KEY": key,
                            "FAKE_OPENAI_KEY": FakeOpenAI.api_key})
    with grpc.insecure_channel(gw.grpc_target) as channel:
        admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        tenant = admin.CreateTenant(admin_service_pb2.CreateTenantRequest(
            tenant=admin_service_pb2.TenantSpec(name="fuzz")), metadata=METADATA).tenant
        api_key = admin.CreateApiKey(admin_service_pb2.CreateApiKeyRequest(
            tenant_id=tenant.id, name="fuzz"), metadata=METADATA).api_key
        stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
        response = stub.CreateResponse(gateway_service_pb2.CreateResponseRequest(
            request=gateway_service_pb2.ResponseRequest(model="mock-1", input=[
                chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="remember me")])),
            metadata=METADATA).response
        models = ["mock-1", "mock/echo", "gpt-4o-mini"]
        ids = {"model": models, "model_id": models,
               "tenant_id": [tenant.id], "key_id": [api_key.id],
               "response_id": [response.id], "previous_response_id": [response.id],
               "provider": ["mock"], "default_provider": ["mock"],
               "fallback_providers": ["mock"], "provider_credentials": ["mock"],
               "allowed_models": ["mock-1"], "remove_provider_credentials": ["mock"]}
        stubs = {"llmgateway.v1.GatewayService": stub, "llmgateway.v1.AdminService": admin}
        warm_up(channel)
        yield Fuzzed(gw, fake_openai, channel, stubs, ids, rss_mib(gw.proc.pid))
    code = gw.stop()
    assert code == 0, f"gateway exited {code}:\n{gw.logs()}"
    assert "Traceback" not in gw.logs()


def still_serves(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                       timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    for model in ("mock-1", "gpt-4o-mini"):
        answer = gateway_service_pb2_grpc.GatewayServiceStub(channel).CreateChatCompletion(
            gateway_service_pb2.CreateChatCompletionRequest(request=chat_pb2.ChatRequest(
                model=model, messages=[chat_pb2.ChatMessage(
                    role=chat_pb2.CHAT_ROLE_USER, content="still serving?")])),
            metadata=METADATA, timeout=10)
        assert answer.completion.choices[0].message.content


def warm_up(channel: grpc.Channel) -> None:
    """Imports, caches and pools settle, and the allocator reaches the high-water mark of
    the largest requests the fuzzer makes, before the RSS baseline: what grows after is
    kept memory, not the heap's first growth."""
    stub = gateway_service_pb2_grpc.GatewayServiceStub(channel)
    admin = admin_service_pb2_grpc.AdminServiceStub(channel)
    many = [chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="w" * 200)] * HUGE
    long = [chat_pb2.ChatMessage(role=chat_pb2.CHAT_ROLE_USER, content="w" * 100_000)] * 3
    for _ in range(3):
        for model in ("mock-1", "gpt-4o-mini"):
            for messages in (many, long):
                chat = chat_pb2.ChatRequest(model=model, messages=messages)
                stub.CreateChatCompletion(gateway_service_pb2.CreateChatCompletionRequest(
                    request=chat), metadata=METADATA, timeout=CALL_TIMEOUT)
                list(stub.StreamChatCompletion(gateway_service_pb2.StreamChatCompletionRequest(
                    request=chat), metadata=METADATA, timeout=CALL_TIMEOUT))
                response = gateway_service_pb2.ResponseRequest(model=model, input=messages)
                stub.CreateResponse(gateway_service_pb2.CreateResponseRequest(
                    request=response), metadata=METADATA, timeout=CALL_TIMEOUT)
                list(stub.StreamResponse(gateway_service_pb2.StreamResponseRequest(
                    request=response), metadata=METADATA, timeout=CALL_TIMEOUT))
        tenant = admin.CreateTenant(admin_service_pb2.CreateTenantRequest(
            tenant=admin_service_pb2.TenantSpec(name="warm", allowed_models=["w" * 200] * HUGE)),
            metadata=METADATA, timeout=CALL_TIMEOUT).tenant
        admin.DeleteTenant(admin_service_pb2.DeleteTenantRequest(tenant_id=tenant.id),
                           metadata=METADATA, timeout=CALL_TIMEOUT)
        for _ in range(10):
            still_serves(channel)


# --- strategies, from the descriptors -------------------------------------------------------

def _ints(bits: int, signed: bool) -> st.SearchStrategy[int]:
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    edges = [0, 1, low, high] + ([-1] if signed else [])
    small = st.integers(1, 16)  # plausible counts and limits, twice as likely
    return st.one_of(small, small, st.sampled_from(edges), st.integers(low, high))


# JSON nested around the limits: the gateway's (128), what orjson writes (254) and reads
# (1024), and deeper.
DEEP_JSON = st.builds(lambda depth, pair: pair[0] * depth + "1" + pair[1] * depth,
                      st.sampled_from([64, 128, 129, 254, 300, 1000, 5000]),
                      st.sampled_from([("[", "]"), ('{"a":', "}")]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                  max_size=3),
    max_leaves=12)
TEXT = st.one_of(st.text(max_size=24), st.text(max_size=24),
                 st.sampled_from(["", " ", "\x00", "\u202e", "😀" * 3]),
                 st.builds(lambda n, c: c * n, st.sampled_from([10_000, 100_000]),
                           st.sampled_from(["x", "é"])))
SCALARS: dict[int, st.SearchStrategy[Any]] = {
    FieldDescriptor.TYPE_INT32: _ints(32, True), FieldDescriptor.TYPE_SINT32: _ints(32, True),
    FieldDescriptor.TYPE_SFIXED32: _ints(32, True), FieldDescriptor.TYPE_INT64: _ints(64, True),
    FieldDescriptor.TYPE_SINT64: _ints(64, True), FieldDescriptor.TYPE_SFIXED64: _ints(64, True),
    FieldDescriptor.TYPE_UINT32: _ints(32, False), FieldDescriptor.TYPE_FIXED32: _ints(32, False),
    FieldDescriptor.TYPE_UINT64: _ints(64, False), FieldDescriptor.TYPE_FIXED64: _ints(64, False),
    FieldDescriptor.TYPE_DOUBLE: st.one_of(st.floats(0, 1), st.floats(0, 1), st.floats()),
    FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
    FieldDescriptor.TYPE_BOOL: st.booleans(), FieldDescriptor.TYPE_BYTES: st.binary(max_size=64),
}


def _enum_values(field: FieldDescriptor) -> st.SearchStrategy[int]:
    """Defined numbers mostly; numbers the enum does not define too (proto3 enums are open,
    so the raw field takes any int32)."""
    defined = [v.number for v in field.enum_type.values if v.number]
    undefined = [0, -1, max(defined) + 1, 99, 2**31 - 1, -(2**31)]
    valid = st.sampled_from(defined)
    return st.one_of(valid, valid, valid, st.sampled_from(undefined))


def _scalar(field: FieldDescriptor, ids: dict[str, list[str]]) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum_values(field)
    if field.type != FieldDescriptor.TYPE_STRING:
        return SCALARS[field.type]
    if field.name.endswith("_json"):  # JSON documents: valid, nested deep, or broken
        return st.one_of(JSON_VALUES.map(lambda v: orjson.dumps(v).decode()),
                         DEEP_JSON, TEXT)
    if field.name in ids:
        return st.one_of(st.sampled_from(ids[field.name]), TEXT)
    return TEXT


def _size(item: Any) -> int:
    return item.ByteSize() if isinstance(item, Message) else len(str(item))


def _values(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A repeated field's items: a few, or one small item repeated past every limit (a
    large one stays single, so that a request stays within a few megabytes)."""
    return st.one_of(st.lists(element, max_size=3), st.lists(element, max_size=3),
                     element.map(lambda item: [item] * (HUGE if _size(item) <= 256 else 1)))


# Fields most requests need to get anywhere: set nine times in ten, the others four.
ESSENTIAL = frozenset({"request", "model", "messages", "role", "content", "input", "tenant",
                       "name", "tenant_id", "key_id", "response_id", "model_id", "provider",
                       "inputs", "text"})


def messages(descriptor: Descriptor, ids: dict[str, list[str]], depth: int = 0,
             sparse: bool = False) -> st.SearchStrategy[Message]:
    """Messages of ``descriptor``; ``sparse`` ones set a field in ten (to vary a valid
    request a little rather than build a new one)."""
    cls = message_factory.GetMessageClass(descriptor)
    fields = list(descriptor.fields)

    @st.composite
    def build(draw: st.DrawFn) -> Message:
        msg = cls()
        for field in fields:
            odds = 1 if sparse else 9 if field.name in ESSENTIAL else 4
            if not draw(st.integers(0, 9)) < odds:
                continue  # unset (for proto3 optional fields: absent)
            target = getattr(msg, field.name) if field.is_repeated else None
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                key_f, value_f = entry.fields_by_name["key"], entry.fields_by_name["value"]
                size = draw(st.sampled_from([1, 2, 3, HUGE // 10]))
                key_values = (st.one_of(st.sampled_from(ids[field.name]), TEXT)
                              if field.name in ids else _scalar(key_f, ids))
                keys = draw(st.lists(key_values, min_size=1, max_size=size, unique=True)
                            ) if size < 10 else [str(i) for i in range(size)]
                for k in keys:
                    if value_f.message_type is not None:
                        target[k].CopyFrom(draw(messages(value_f.message_type, ids,
                                                         depth + 1, sparse)))
                    else:
                        target[k] = draw(_scalar(value_f, ids))
            elif entry is not None:
                sub = messages(entry, ids, depth + 1, sparse) if depth < 6 else st.just(
                    message_factory.GetMessageClass(entry)())
                if target is not None:
                    target.extend(draw(_values(sub)))
                else:
                    getattr(msg, field.name).CopyFrom(draw(sub))
            elif target is not None:
                target.extend(draw(_values(_scalar(field, ids))))
            else:
                setattr(msg, field.name, draw(_scalar(field, ids)))
        return msg

    return build()


# --- the properties ---------------------------------------------------------------------------

def _call(rpc: Any, method: Any, payload: Any) -> None:
    """One call, a stream read to its end."""
    answer = rpc(payload, metadata=METADATA, timeout=CALL_TIMEOUT)
    if method.server_streaming:
        for _ in answer:
            pass


def _raw(channel: grpc.Channel, service: str, method: Any) -> Any:
    """The method without a request serializer: it sends the bytes it is given."""
    path = f"/{service}/{method.name}"
    reply = message_factory.GetMessageClass(method.output_type).FromString
    if method.server_streaming:
        return channel.unary_stream(path, response_deserializer=reply)
    return channel.unary_unary(path, response_deserializer=reply)


def _bases(ids: dict[str, list[str]]) -> dict[str, Message]:
    """A valid request for each RPC that needs more than ids."""
    chat = chat_pb2.ChatRequest(model="mock-1", messages=[chat_pb2.ChatMessage(
        role=chat_pb2.CHAT_ROLE_USER, content="fuzzing along")])
    response = gateway_service_pb2.ResponseRequest(model="mock-1", input=chat.messages)
    spec = admin_service_pb2.TenantSpec(name="fuzzed", allowed_models=["mock-1"])
    g, a = gateway_service_pb2, admin_service_pb2
    return {
        "CreateChatCompletion": g.CreateChatCompletionRequest(request=chat),
        "StreamChatCompletion": g.StreamChatCompletionRequest(request=chat, include_usage=True),
        "CreateEmbeddings": g.CreateEmbeddingsRequest(model="mock-1", inputs=["fuzz"]),
        "CreateResponse": g.CreateResponseRequest(request=response),
        "StreamResponse": g.StreamResponseRequest(request=response),
        "CreateTenant": a.CreateTenantRequest(tenant=spec),
        "UpdateTenant": a.UpdateTenantRequest(tenant_id=ids["tenant_id"][0], tenant=spec),
        "CreateApiKey": a.CreateApiKeyRequest(tenant_id=ids["tenant_id"][0], name="k"),
        "RotateApiKey": a.RotateApiKeyRequest(tenant_id=ids["tenant_id"][0]),
    }


def _merged(base: Message, change: Message) -> Message:
    out = type(base)()
    out.CopyFrom(base)
    out.MergeFrom(change)  # scalars replaced, repeated fields and maps added to
    return out


def _check(call: Callable[[], None], what: str) -> None:
    TALLY.inputs += 1
    try:
        call()
    except grpc.RpcError as err:
        assert isinstance(err, grpc.Call)
        code = err.code()
        TALLY.codes[code.name] += 1
        assert code not in FORBIDDEN, f"{what}: {code.name}: {err.details()}"
        if code == grpc.StatusCode.UNAVAILABLE:  # ours carry ErrorInfo; a dead server none
            details = dict(err.trailing_metadata() or ()).get("grpc-status-details-bin")
            assert details and status_pb2.Status.FromString(details).details, (
                f"{what}: transport failure: {err.details()}")
    TALLY.served += 1


@pytest.mark.parametrize(("service", "method"), RPCS,
                         ids=[f"{s.rsplit('.', 1)[1]}.{m.name}" for s, m in RPCS])
@seeded
@FUZZ
@given(data=st.data())
def test_generated_messages(fuzzed: Fuzzed, service: str, method: Any,
                            data: st.DataObject) -> None:
    fuzzed.upstream.reset()  # it records every request: keep the test process small
    strategy = messages(method.input_type, fuzzed.ids)
    base = _bases(fuzzed.ids).get(method.name)
    if base is not None:  # half the time: a valid request with a few fields changed
        strategy = st.one_of(strategy, messages(method.input_type, fuzzed.ids, sparse=True)
                             .map(lambda change: _merged(base, change)))
    request = data.draw(strategy, label="request")
    rpc = getattr(fuzzed.stubs[service], method.name)
    _check(lambda: _call(rpc, method, request), f"{method.name}({str(request)[:300]})")


# JSON text, valid or not, nested deep or not: the fields that hold it get it far more
# often here than among all the fields of a generated message.
JSON_TEXT = st.one_of(JSON_VALUES.map(lambda v: orjson.dumps(v).decode()), DEEP_JSON,
                      DEEP_JSON.map(lambda text: '{"a":' + text + "}"), TEXT)
JSON_FIELDS = ("parameters_json", "schema_json", "extra_json", "arguments")
JSON_RPCS = [rpc for rpc in RPCS if rpc[1].name in (
    "CreateChatCompletion", "StreamChatCompletion", "CreateResponse", "StreamResponse")]


def _with_json(request: Message, where: str, text: str) -> None:
    """Puts ``text`` in the chat or response request's JSON text field ``where``."""
    inner: Any = request.request  # type: ignore[attr-defined]
    if where == "parameters_json":
        inner.tools.add(name="f", parameters_json=text)
    elif where == "schema_json":
        fmt = inner.response_format if isinstance(inner, chat_pb2.ChatRequest) else (
            inner.text_format)
        fmt.type = chat_pb2.RESPONSE_FORMAT_TYPE_JSON_SCHEMA
        fmt.json_schema.name = "n"
        fmt.json_schema.schema_json = text
    elif where == "extra_json":
        inner.extra_json = text
    else:  # a tool call's arguments in the history, and its answer
        messages = inner.messages if isinstance(inner, chat_pb2.ChatRequest) else inner.input
        messages.add(role=chat_pb2.CHAT_ROLE_ASSISTANT).tool_calls.add(
            id="c", name="f", arguments=text)
        messages.add(role=chat_pb2.CHAT_ROLE_TOOL, tool_call_id="c", content=text)
        messages.add(role=chat_pb2.CHAT_ROLE_USER, content="and now?")


@pytest.mark.parametrize(("service", "method"), JSON_RPCS,
                         ids=[f"{s.rsplit('.', 1)[1]}.{m.name}" for s, m in JSON_RPCS])
@seeded
@FUZZ
@given(where=st.sampled_from(JSON_FIELDS), text=JSON_TEXT,
       model=st.sampled_from(["mock-1", "gpt-4o-mini"]))
def test_json_text_fields(fuzzed: Fuzzed, service: str, method: Any, where: str, text: str,
                          model: str) -> None:
    fuzzed.upstream.reset()
    request = _bases(fuzzed.ids)[method.name]  # built anew at each call
    request.request.model = model  # type: ignore[attr-defined]
    _with_json(request, where, text)
    rpc = getattr(fuzzed.stubs[service], method.name)
    _check(lambda: _call(rpc, method, request), f"{method.name}({where}={text[:200]!r})")


@pytest.mark.parametrize(("service", "method"), RAW,
                         ids=[f"{s.rsplit('.', 1)[1]}.{m.name}" for s, m in RAW])
@seeded
@FUZZ
@given(raw=st.one_of(
    st.binary(max_size=64),
    st.builds(lambda body: b"\x0a" + bytes([len(body)]) + body,
              st.binary(min_size=1, max_size=40)),
    # Unknown field 15 as groups nested past the parser's recursion limit (100).
    st.builds(lambda depth: b"\x7b" * depth + b"\x7c" * depth,
              st.sampled_from([99, 100, 101, 10_000, 100_000]))))
def test_bytes_that_are_no_message(fuzzed: Fuzzed, service: str, method: Any,
                                   raw: bytes) -> None:
    # Garbage, truncated fields, strings of invalid UTF-8, deep nesting: what other
    # clients may send.
    _check(lambda: _call(_raw(fuzzed.channel, service, method), method, raw),
           f"{method.name}(raw {raw[:40]!r})")


def test_still_serving_and_memory_flat(fuzzed: Fuzzed) -> None:
    admin = fuzzed.stubs["llmgateway.v1.AdminService"]
    for tenant in admin.ListTenants(admin_service_pb2.ListTenantsRequest(),
                                    metadata=METADATA, timeout=10).tenants:
        admin.DeleteTenant(admin_service_pb2.DeleteTenantRequest(tenant_id=tenant.id),
                           metadata=METADATA, timeout=10)  # state kept on purpose, no leak
    time.sleep(3)  # the responses stored during the run expire and are swept
    still_serves(fuzzed.channel)
    grown = rss_mib(fuzzed.gateway.proc.pid) - fuzzed.rss_before_mib
    record("fuzz", "gRPC API: generated messages and raw bytes for every RPC",
           inputs=TALLY.inputs, served=TALLY.served, errors=dict(TALLY.codes),
           rss_drift_mib=round(grown, 1), note=f"seed {SEED}" if SEED is not None else
           "derandomized")
    assert grown < RSS_GROWTH_LIMIT_MIB, f"RSS grew {grown:.1f} MiB during the fuzz run"
