"""``gateway tenants ...`` and ``gateway keys ...``: the AdminService from a shell.

They talk to a running gateway's gRPC port (``--grpc-target``, default
``127.0.0.1:50051``) with an admin key (``--admin-key``, default
``$GATEWAY_ADMIN_KEY``) and print JSON.

::

    gateway tenants create acme --rpm 600 --tpm 200000 --budget 500 --model gpt-4o-mini \
        --model-budget gpt-4o=50
    gateway keys create ten_1234 --name ci --budget 5 --period daily
    gateway keys rotate ten_1234
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format
from google.protobuf.message import Message
from llmgateway.v1 import admin_service_pb2 as pb
from llmgateway.v1 import admin_service_pb2_grpc, budgets_pb2

__all__ = ["add_admin_commands", "run_admin_command"]

_LIMIT_FLAGS = (
    ("rps", "requests_per_second", float), ("burst", "burst", int),
    ("rpm", "requests_per_minute", int), ("tpm", "tokens_per_minute", int),
    ("concurrency", "concurrent_requests", int), ("daily_tokens", "daily_token_quota", int),
)


_PERIODS = {"monthly": budgets_pb2.BUDGET_PERIOD_MONTHLY, "daily": budgets_pb2.BUDGET_PERIOD_DAILY}


def _connection(parser: argparse.ArgumentParser, admin_key: str) -> None:
    parser.add_argument("--grpc-target", default="127.0.0.1:50051",
                        help="the gateway's gRPC HOST:PORT")
    parser.add_argument("--admin-key", default=admin_key,
                        help="an admin key (default: $GATEWAY_ADMIN_KEY)")


def _tenant_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", dest="models", default=None,
                        help="an allowed model (repeat; none means all)")
    for flag, _, kind in _LIMIT_FLAGS:
        parser.add_argument(f"--{flag.replace('_', '-')}", dest=flag, type=kind)
    parser.add_argument("--budget", type=float,
                        help="budget in USD per period (monthly unless --period daily)")
    parser.add_argument("--period", choices=sorted(_PERIODS),
                        help="the period of --budget and --model-budget (default: monthly)")
    parser.add_argument("--model-budget", action="append", default=[], metavar="MODEL=USD",
                        help="a budget for one model, on top of the tenant's (repeat; "
                             "USD 'none' removes it)")
    parser.add_argument("--default-provider")
    parser.add_argument("--fallback-provider", action="append", dest="fallback_providers")
    parser.add_argument("--provider-key", action="append", default=[], metavar="PROVIDER=KEY",
                        help="the tenant's own key for a provider (stored encrypted)")
    parser.add_argument("--disabled", action=argparse.BooleanOptionalAction, default=None)


def add_admin_commands(commands: Any, admin_key: str) -> None:
    tenants = commands.add_parser("tenants", help="manage tenants (admin API)")
    t = tenants.add_subparsers(dest="admin_command", required=True)
    create = t.add_parser("create", help="create a tenant")
    create.add_argument("name")
    _tenant_flags(create)
    t.add_parser("list", help="list tenants")
    for verb in ("get", "delete"):
        t.add_parser(verb, help=f"{verb} a tenant").add_argument("tenant_id")
    update = t.add_parser("update", help="change a tenant (unnamed settings are kept)")
    update.add_argument("tenant_id")
    update.add_argument("--name")
    update.add_argument("--remove-provider-key", action="append", default=[])
    _tenant_flags(update)

    keys = commands.add_parser("keys", help="manage API keys (admin API)")
    k = keys.add_subparsers(dest="admin_command", required=True)
    key_create = k.add_parser("create", help="create a key (its secret is shown once)")
    key_create.add_argument("tenant_id")
    key_create.add_argument("--name", default="")
    key_create.add_argument("--ttl", type=int, default=0, help="lifetime in seconds")
    key_create.add_argument("--budget", type=float,
                            help="the key's own budget in USD per period, on top of its "
                                 "tenant's")
    key_create.add_argument("--period", choices=sorted(_PERIODS), default="monthly",
                            help="the period of --budget (default: monthly)")
    k.add_parser("list", help="list a tenant's keys").add_argument("tenant_id")
    k.add_parser("revoke", help="revoke a key").add_argument("key_id")
    rotate = k.add_parser("rotate", help="issue a new key and revoke the old one(s)")
    rotate.add_argument("tenant_id")
    rotate.add_argument("--key", default="", help="the key to replace (default: all)")
    rotate.add_argument("--name", default="")
    for parser in (create, update, key_create, rotate, *t.choices.values(),
                   *k.choices.values()):
        if not any(a.dest == "grpc_target" for a in parser._actions):
            _connection(parser, admin_key)


def _spec(args: argparse.Namespace, base: pb.Tenant | None) -> pb.TenantSpec:
    spec = pb.TenantSpec(name=args.name or (base.name if base else ""))
    if base is not None:  # start from what the tenant has
        spec.allowed_models.extend(base.allowed_models)
        spec.limits.CopyFrom(base.limits)
        if base.HasField("monthly_budget_usd"):
            spec.monthly_budget_usd = base.monthly_budget_usd
        spec.default_provider = base.default_provider
        spec.fallback_providers.extend(base.fallback_providers)
        spec.disabled = base.disabled
        spec.model_budgets.update(base.model_budgets)
        spec.budget_period = base.budget_period
    if args.models is not None:
        del spec.allowed_models[:]
        spec.allowed_models.extend(args.models)
    for flag, field, _ in _LIMIT_FLAGS:
        value = getattr(args, flag)
        if value is not None:
            setattr(spec.limits, field, value)
    if args.budget is not None:
        spec.monthly_budget_usd = args.budget
    if args.period is not None:
        spec.budget_period = _PERIODS[args.period]
    for item in args.model_budget:
        model, sep, usd = item.rpartition("=")
        if not sep or not model:
            raise SystemExit("--model-budget takes MODEL=USD")
        if usd == "none":
            spec.model_budgets.pop(model, None)
            continue
        try:
            spec.model_budgets[model] = float(usd)
        except ValueError:
            raise SystemExit(f"--model-budget {model}=: '{usd}' is not an amount") from None
    if args.default_provider is not None:
        spec.default_provider = args.default_provider
    if args.fallback_providers is not None:
        del spec.fallback_providers[:]
        spec.fallback_providers.extend(args.fallback_providers)
    if args.disabled is not None:
        spec.disabled = args.disabled
    for item in args.provider_key:
        provider, sep, key = item.partition("=")
        if not sep or not provider or not key:
            raise SystemExit("--provider-key takes PROVIDER=KEY")
        spec.provider_credentials[provider] = key
    return spec


def run_admin_command(args: argparse.Namespace) -> int:
    if not args.admin_key:
        print("an admin key is needed: --admin-key or $GATEWAY_ADMIN_KEY", file=sys.stderr)
        return 2
    metadata = (("authorization", f"Bearer {args.admin_key}"),)
    with grpc.insecure_channel(args.grpc_target) as channel:
        stub = admin_service_pb2_grpc.AdminServiceStub(channel)

        def call(method: Callable[..., Message], request: Message) -> Any:
            return method(request, metadata=metadata, timeout=30)

        try:
            result = _dispatch(args, stub, call)
        except grpc.RpcError as exc:
            code = exc.code()
            print(f"error: {code.name}: {exc.details()}", file=sys.stderr)
            return 1
    print(json.dumps(json_format.MessageToDict(result, preserving_proto_field_name=True),
                     indent=2))
    return 0


def _dispatch(args: argparse.Namespace, stub: Any, call: Callable[..., Any]) -> Any:
    group, verb = args.command, args.admin_command
    if group == "tenants":
        if verb == "create":
            return call(stub.CreateTenant, pb.CreateTenantRequest(tenant=_spec(args, None)))
        if verb == "list":
            return call(stub.ListTenants, pb.ListTenantsRequest())
        if verb == "get":
            return call(stub.GetTenant, pb.GetTenantRequest(tenant_id=args.tenant_id))
        if verb == "delete":
            return call(stub.DeleteTenant, pb.DeleteTenantRequest(tenant_id=args.tenant_id))
        current = call(stub.GetTenant, pb.GetTenantRequest(tenant_id=args.tenant_id)).tenant
        return call(stub.UpdateTenant, pb.UpdateTenantRequest(
            tenant_id=args.tenant_id, tenant=_spec(args, current),
            remove_provider_credentials=args.remove_provider_key))
    if verb == "create":
        request = pb.CreateApiKeyRequest(tenant_id=args.tenant_id, name=args.name,
                                         ttl_seconds=args.ttl,
                                         budget_period=_PERIODS[args.period])
        if args.budget is not None:
            request.monthly_budget_usd = args.budget
        return call(stub.CreateApiKey, request)
    if verb == "list":
        return call(stub.ListApiKeys, pb.ListApiKeysRequest(tenant_id=args.tenant_id))
    if verb == "revoke":
        return call(stub.RevokeApiKey, pb.RevokeApiKeyRequest(key_id=args.key_id))
    return call(stub.RotateApiKey, pb.RotateApiKeyRequest(
        tenant_id=args.tenant_id, key_id=args.key, name=args.name))
