"""The ``gateway`` command: parse arguments, load the config once, run.

::

    gateway serve [--config FILE] [--workers N] [--only grpc|http] [--grpc-target HOST:PORT]
    gateway config check FILE
    gateway tenants create|list|get|update|delete ...
    gateway keys create|list|revoke|rotate ...
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence

from gateway.admin_cli import add_admin_commands, run_admin_command
from gateway.config import ConfigError, Settings, load_settings, mask_url
from gateway.observability.logging import configure_logging

__all__ = ["main"]

log = logging.getLogger("gateway")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="The llm-gateway server.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC core and the REST facade")
    serve.add_argument("--config", help="YAML config file (default: $GATEWAY_CONFIG, else none)")
    serve.add_argument("--workers", type=int, default=1,
                       help="processes sharing the ports (SO_REUSEPORT)")
    serve.add_argument("--only", choices=("grpc", "http"),
                       help="run only the gRPC core or only the REST facade")
    serve.add_argument("--grpc-target", default="",
                       help="the core's HOST:PORT, with --only http")

    config = commands.add_parser("config", help="configuration tools")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    check = config_commands.add_parser("check", help="validate a config file")
    check.add_argument("file")
    add_admin_commands(commands, os.environ.get("GATEWAY_ADMIN_KEY", ""))
    return parser


def _load(path: str | None) -> Settings:
    return load_settings(path)


def _config_check(path: str) -> int:
    try:
        settings = _load(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} error(s)", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{path}: ok")
    print(f"  http: {settings.server.address}   grpc: {settings.server.grpc_address}")
    print("  providers:")
    for name, provider in settings.providers.items():
        where = mask_url(provider.base_url) if provider.base_url else "(default endpoint)"
        key = "api key set" if provider.api_key else "no api key"
        print(f"    {name}: {provider.type} at {where}, {key}")
    print("  models:")
    for model in settings.models:
        targets = ", ".join(f"{t.provider}/{t.model} (weight {t.weight:g})" for t in model.targets)
        print(f"    {model.name} -> {targets}")
        if model.fallbacks:
            print(f"      fallbacks: {', '.join(model.fallbacks)}")
    if settings.default_provider:
        print(f"  default provider: {settings.default_provider}")
    print(f"  stores: conversations={settings.conversations.store}, "
          f"cache={'on, ' + settings.cache.store if settings.cache.enabled else 'off'}, "
          f"redis={'configured' if settings.redis.url else 'none'}, "
          f"database={'configured' if settings.database.url else 'none'}")
    for note in settings.notes:
        print(f"  note: {note}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    path = args.config or os.environ.get("GATEWAY_CONFIG") or None
    try:
        settings = _load(path)
    except ConfigError as exc:
        print(f"invalid configuration ({path or 'environment'}):", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.logging.level, settings.logging.format)
    log.debug("logging configured", extra={"fields": {"level": settings.logging.level,
                                                      "format": settings.logging.format}})
    for note in settings.notes:
        log.info(note)
    if args.workers > 1:
        from gateway.workers import shared_state_warnings, supervise

        for warning in shared_state_warnings(settings, args.workers):
            log.warning(warning)

        return supervise(args.workers, sys.argv[1:])
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency; stay usable without it
        pass
    from gateway.app import run

    try:
        asyncio.run(run(settings, only=args.only, grpc_target=args.grpc_target))
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    # Printing commands end quietly when their reader does (`gateway ... | head`).
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    if args.command == "config":
        return _config_check(args.file)
    return run_admin_command(args)
