"""Settings: read once at the entry, validated, frozen, passed down.

The YAML file is expanded (``${VAR}``, ``${VAR:-default}``), built into the
dataclasses below (an unknown key or a wrong type is an error naming its path),
then the environment overrides of SPEC section 3 are applied. This module is the
only one that reads the environment.

Example::

    settings = load_settings("config.yaml")      # or load_settings(None) for zero config
    settings.server.grpc_address                  # ":50051"
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

__all__ = [
    "ConfigError",
    "KeyConfig",
    "ModelConfig",
    "ProviderConfig",
    "Settings",
    "TargetConfig",
    "UiOidcConfig",
    "load_settings",
    "parse_address",
    "parse_duration",
]

# How a model alias orders its targets (gateway/routing/strategies.py).
RoutingStrategy = Literal["weighted", "ordered", "least_latency", "least_busy", "cost"]

PROVIDER_TYPES = ("openai", "openai_compatible", "azure_openai", "anthropic", "azure_anthropic",
                  "google", "ollama", "bedrock", "vertex", "mock")


class ConfigError(Exception):
    """Every problem found in a config, each as ``path: message``."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


# --- the schema ---------------------------------------------------------------------------


class Duration(float):
    """Seconds; written in YAML as ``30s``, ``100ms``, ``1h``, ``1m30s`` or a number."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    address: str = ":8080"
    grpc_address: str = ":50051"
    max_request_body_size: int = 10 * 1024 * 1024
    max_header_size: int = 16 * 1024  # request line + headers; larger is refused
    keep_alive_timeout: Duration = Duration(75)  # idle connections, and slow headers, close
    body_timeout: Duration = Duration(60)  # a request body must arrive within this (408)
    max_concurrent_streams: int = 100  # per HTTP/2 or gRPC connection
    shutdown_timeout: Duration = Duration(30)
    drain_timeout: Duration = Duration(15)
    # A streamed Messages answer whose upstream says nothing this long gets a ``ping``.
    stream_ping_interval: Duration = Duration(10)
    trusted_proxy_cidrs: tuple[str, ...] = ()
    # How the facade reaches the core when both run in one process: direct calls on the
    # servicers through the same interceptor (no socket, no serialization), a Unix socket,
    # or loopback TCP (docs/performance.md measures the three).
    core_transport: Literal["local", "unix", "tcp"] = "local"


@dataclass(frozen=True, slots=True)
class LoggingConfig:
    level: Literal["debug", "info", "warning", "warn", "error"] = "info"
    format: Literal["json", "text"] = "json"


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    enabled: bool = False
    requests_per_second: float = 10
    burst: int = 20


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    enabled: bool = True
    path: str = "/metrics"


@dataclass(frozen=True, slots=True)
class SamplerConfig:
    type: Literal["always", "never", "probability"] = "probability"
    rate: float = 0.1
    # A caller's sampled traceparent decides for its request (probability only): `never`
    # is final whatever a caller says, and false makes the rate final too.
    follow_parent: bool = True


@dataclass(frozen=True, slots=True)
class ExporterConfig:
    type: Literal["otlp", "stdout", "none"] = "otlp"
    endpoint: str = ""
    insecure: bool = True
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TracingConfig:
    enabled: bool = False
    service_name: str = "llm-gateway"
    sampler: SamplerConfig = SamplerConfig()
    exporter: ExporterConfig = ExporterConfig()


@dataclass(frozen=True, slots=True)
class ObservabilityConfig:
    enabled: bool = True
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()


@dataclass(frozen=True, slots=True)
class UrlConfig:
    url: str = dataclasses.field(default="", repr=False)  # may hold a password


@dataclass(frozen=True, slots=True)
class ConversationsConfig:
    store: Literal["memory", "redis", "sql"] = "memory"
    dsn: str = ""
    driver: Literal["", "pgx", "sqlite3"] = ""
    ttl: Duration = Duration(3600)
    # A stored response belongs to the key or token subject that made it; true shares it
    # with every identity of the same tenant.
    share_within_tenant: bool = False
    # Byte bounds: one stored response with its history (past it: 400), all of one owner's
    # (past it: 429 until some expire or are deleted), and the memory store in total (past
    # it the oldest are evicted).
    max_record_bytes: int = 4 * 1024 * 1024
    max_owner_bytes: int = 64 * 1024 * 1024
    max_total_bytes: int = 512 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class CacheConfig:
    enabled: bool = False
    store: Literal["memory", "redis"] = "memory"
    ttl: Duration = Duration(300)


@dataclass(frozen=True, slots=True)
class RequestLogConfig:
    """The request log behind the admin API's ListRequests and GetUsageSeries."""

    enabled: bool = True  # off: nothing recorded, the log and its series answer empty
    memory_records: int = 10_000  # the last N requests kept in memory
    # With database.url: how long PostgreSQL keeps each request, and its minute aggregates.
    retention: Duration = Duration(7 * 86400)
    aggregate_retention: Duration = Duration(90 * 86400)


@dataclass(frozen=True, slots=True)
class CircuitBreakerConfig:
    distributed: bool = False
    failure_ratio: float = 0.5
    min_requests: int = 5
    consecutive_failures: int = 5
    interval: Duration = Duration(30)
    open_timeout: Duration = Duration(60)
    half_open_requests: int = 3


@dataclass(frozen=True, slots=True)
class RetryConfig:
    attempts: int = 2
    backoff: Duration = Duration(0.1)
    max_backoff: Duration = Duration(2)


@dataclass(frozen=True, slots=True)
class ApiKeysConfig:
    enabled: bool = False
    keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)


@dataclass(frozen=True, slots=True)
class OidcConfig:
    enabled: bool = False
    issuer: str = ""
    audience: tuple[str, ...] = ()
    jwks_refresh: Duration = Duration(3600)


@dataclass(frozen=True, slots=True)
class AuthConfig:
    admin_keys: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    api_keys: ApiKeysConfig = ApiKeysConfig()
    oidc: OidcConfig = OidcConfig()
    # A client address whose credentials fail this often within the window is refused
    # (429) before its next try; 0 turns the limit off.
    max_failed_attempts: int = 30
    failed_attempts_window: Duration = Duration(60)


@dataclass(frozen=True, slots=True)
class AdminConfig:
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class BudgetsConfig:
    """How budgets behave while Redis (their shared ledger) cannot be reached: ``closed``
    refuses requests that have a budget, their tenant's, key's or model's (503), ``local``
    holds per replica."""

    on_redis_outage: Literal["closed", "local"] = "closed"


@dataclass(frozen=True, slots=True)
class UiOidcConfig:
    """Signing in to the UI through ``auth.oidc``'s issuer (authorization code with PKCE),
    on when ``client_id`` is set. ``client_secret`` empty: a public client (PKCE alone).
    ``redirect_url`` empty: this request's origin + ``/ui/sign-in/oidc/callback``.
    ``name``: the sign-in button says "Sign in with <name>"."""

    client_id: str = ""
    client_secret: str = dataclasses.field(default="", repr=False)
    redirect_url: str = ""
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    name: str = "SSO"


@dataclass(frozen=True, slots=True)
class UiConfig:
    """The admin web UI at ``/ui/`` on the HTTP port (docs/ui.md). ``enabled`` unset
    follows ``admin.enabled`` (:attr:`Settings.ui_enabled`); a session ends after
    ``session_idle`` without a request (one signed in through OIDC, when its access token
    expires, if that comes first)."""

    enabled: bool | None = None
    session_idle: Duration = Duration(8 * 3600)
    oidc: UiOidcConfig = UiOidcConfig()


@dataclass(frozen=True, slots=True)
class KeyConfig:
    """One key of a provider's pool (``api_keys``). In YAML a bare string is ``{key: it}``.
    ``rpm`` / ``tpm``: the key's own requests and tokens per minute (0: no limit); ``name``
    is what metrics, logs and the admin API call it (default: its index, ``#0``)."""

    SHORTHAND: typing.ClassVar[str] = "key"  # the field a bare scalar fills

    key: str = dataclasses.field(default="", repr=False)
    weight: float = 1
    rpm: int = 0
    tpm: int = 0
    name: str = ""


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    """One upstream deployment. ``models`` lists what ListModels advertises for it."""

    type: str
    api_key: str = dataclasses.field(default="", repr=False)
    # Several keys, requests spread over them (gateway/providers/keypool.py); not with api_key.
    api_keys: tuple[KeyConfig, ...] = dataclasses.field(default=(), repr=False)
    base_url: str = ""
    api_version: str = ""
    deployment: str = ""
    models: tuple[str, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout: Duration = Duration(600)
    max_connections: int = 512
    latency: Duration = Duration(0)  # mock only: delay before answering
    chunk_delay: Duration = Duration(0)  # mock only: delay between streamed words
    # bedrock: the region, an endpoint override (VPC endpoint, tests), and credentials; none
    # set means the AWS chain (environment, shared files and profile, web identity, metadata).
    region: str = ""
    endpoint_url: str = ""
    access_key_id: str = dataclasses.field(default="", repr=False)
    secret_access_key: str = dataclasses.field(default="", repr=False)
    session_token: str = dataclasses.field(default="", repr=False)
    profile: str = ""
    role_arn: str = ""
    sts_endpoint_url: str = ""
    # vertex: the project and location, and a service-account file (else Application Default
    # Credentials or the metadata server).
    project: str = ""
    location: str = ""
    credentials_file: str = ""


@dataclass(frozen=True, slots=True)
class TargetConfig:
    provider: str
    model: str
    weight: float = 1


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    """With no answer (or first chunk) ``after`` this long, try the next target as well."""

    after: Duration


@dataclass(frozen=True, slots=True)
class ModelConfig:
    name: str
    targets: tuple[TargetConfig, ...]
    fallbacks: tuple[str, ...] = ()
    timeout: Duration | None = None
    strategy: RoutingStrategy = "weighted"  # how the targets are ordered: docs/routing.md
    hedge: HedgeConfig | None = None


@dataclass(frozen=True, slots=True)
class PriceConfig:
    input_per_mtok: float = 0
    output_per_mtok: float = 0
    cached_input_per_mtok: float | None = None  # prompt-cache reads; unset: the input price
    cache_write_per_mtok: float | None = None  # prompt-cache writes; unset: the input price
    # The model's longest answer: a budget reservation's output when a request sets no
    # max_tokens (unset: 1024 tokens, the documented settlement slack).
    max_output_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class InstanceConfig:
    """Facts about where this process runs; from the environment only."""

    pod_name: str = ""
    pod_namespace: str = ""
    encryption_key: str = dataclasses.field(default="", repr=False)


@dataclass(frozen=True, slots=True)
class Settings:
    server: ServerConfig = ServerConfig()
    logging: LoggingConfig = LoggingConfig()
    rate_limit: RateLimitConfig = RateLimitConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    redis: UrlConfig = UrlConfig()
    database: UrlConfig = UrlConfig()
    conversations: ConversationsConfig = ConversationsConfig()
    cache: CacheConfig = CacheConfig()
    request_log: RequestLogConfig = RequestLogConfig()
    circuit_breaker: CircuitBreakerConfig = CircuitBreakerConfig()
    retry: RetryConfig = RetryConfig()
    auth: AuthConfig = AuthConfig()
    admin: AdminConfig = AdminConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    ui: UiConfig = UiConfig()
    providers: Mapping[str, ProviderConfig] = field(default_factory=dict)
    models: tuple[ModelConfig, ...] = ()
    default_provider: str = ""
    pricing: Mapping[str, PriceConfig] = field(default_factory=dict)
    instance: InstanceConfig = InstanceConfig()
    # What the loader decided on its own, for the start-up log (e.g. zero config).
    notes: tuple[str, ...] = ()

    @property
    def ui_enabled(self) -> bool:
        """Whether ``/ui/`` is served: ``ui.enabled``, else what ``admin.enabled`` says."""
        return self.admin.enabled if self.ui.enabled is None else self.ui.enabled


# --- parsing helpers ----------------------------------------------------------------------

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|s|m|h|d)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                 "h": 3600.0, "d": 86400.0}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_duration(value: object) -> float:
    """``"1m30s"`` -> 90.0; a bare number is seconds. Raises ValueError."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, got a boolean")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as 30s, got {type(value).__name__}")
    text = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError("not a duration (use e.g. 500ms, 30s, 5m, 1h)")
    return total


def parse_address(address: str, default_host: str = "0.0.0.0") -> tuple[str, int]:
    """``":8080"`` -> ``("0.0.0.0", 8080)``; ``"[::1]:9"`` -> ``("::1", 9)``."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError("not HOST:PORT")
    host = host.strip("[]") or default_host
    return host, int(port)


def expand_env(text: str, env: Mapping[str, str]) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}``; an unset VAR without default is empty."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name, "")
        if value == "" and default is not None:
            return default
        return value

    return _VAR.sub(sub, text)


class _Unquoted(str):
    """A plain (unquoted) YAML scalar that held a ``${VAR}`` reference."""


class _Loader(yaml.SafeLoader):
    """YAML's safe loader, telling unquoted references apart from quoted ones."""


_HELD = re.compile(r"zz_gateway_ref_(\d+)_zz")  # a reference's stand-in while YAML parses


def _construct_str(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    return _Unquoted(value) if node.style is None and _HELD.search(value) else str(value)


_Loader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def _parse(text: str, env: Mapping[str, str]) -> Any:
    """The YAML in ``text`` with ``${VAR}`` expanded in its values after parsing, never in its
    text: a value (a secret with a quote, a brace or a colon) cannot change the parse or
    reach a parse error. While YAML parses, each reference stands as a plain word, so it may
    stand anywhere a value may, quoted or not, flow style included. An unquoted reference
    is then read as YAML reads a plain scalar in its place (a number, a boolean, nothing);
    a quoted one stays a string."""
    refs: list[str] = []

    def hold(match: re.Match[str]) -> str:
        refs.append(match.group(0))
        return f"zz_gateway_ref_{len(refs) - 1}_zz"

    data = yaml.load(_VAR.sub(hold, text), Loader=_Loader)  # _Loader is a SafeLoader

    def expand(value: Any) -> Any:
        if isinstance(value, dict):
            return {expand(key): expand(item) for key, item in value.items()}
        if isinstance(value, list):
            return [expand(item) for item in value]
        if not isinstance(value, str) or not _HELD.search(value):
            return value
        expanded = expand_env(_HELD.sub(lambda m: refs[int(m.group(1))], value), env)
        if not isinstance(value, _Unquoted):
            return expanded
        try:
            scalar = yaml.safe_load(expanded)
        except yaml.YAMLError:
            return expanded
        return scalar if scalar is None or isinstance(scalar, bool | int | float) else expanded

    return expand(data)


def _kind(value: Any) -> str:
    """What a wrong value is, without the value (it may be a misplaced secret)."""
    if isinstance(value, str):
        return "a string"
    return "nothing" if value is None else type(value).__name__


def mask_url(url: str) -> str:
    """``url`` with any user and password replaced by ``***`` (for output)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    if "@" not in authority:
        return url
    return f"{scheme}://***@{authority.rpartition('@')[2]}{slash}{tail}"


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is Duration:
        return "duration"
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (tuple, list):
        return "list"
    if origin in (dict, Mapping) or tp is Mapping:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _build(tp: Any, value: Any, path: str, problems: list[str]) -> Any:
    """Build ``value`` into type ``tp``; append ``path: message`` problems."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _build(args[0], value, path, problems)
    if tp is Duration:
        try:
            return Duration(parse_duration(value))
        except ValueError as exc:
            problems.append(f"{path}: {exc}")
            return None
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            choices = ", ".join(map(repr, allowed))
            problems.append(f"{path}: must be one of {choices}")
        return value
    if dataclasses.is_dataclass(tp):
        shorthand = getattr(tp, "SHORTHAND", None)
        if shorthand is not None and isinstance(value, str | int | float) and not isinstance(
                value, bool):
            value = {shorthand: value}  # e.g. a pool key written as a bare string
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return None
        return _build_dataclass(tp, value, path, problems)
    if origin in (tuple, list):
        (item_tp, *_) = typing.get_args(tp)
        if isinstance(value, str) and item_tp is str:
            value = [value]  # a single string where a list is allowed (e.g. oidc.audience)
        if not isinstance(value, list):
            problems.append(f"{path}: expected a list, got {type(value).__name__}")
            return ()
        return tuple(_build(item_tp, v, f"{path}[{i}]", problems) for i, v in enumerate(value))
    if origin in (dict, Mapping) or origin is typing.get_origin(Mapping[str, str]):
        _, val_tp = typing.get_args(tp)
        if value is None:
            return types.MappingProxyType({})
        if not isinstance(value, dict):
            problems.append(f"{path}: expected a mapping, got {type(value).__name__}")
            return types.MappingProxyType({})
        return types.MappingProxyType(
            {str(k): _build(val_tp, v, f"{path}.{k}", problems) for k, v in value.items()}
        )
    if tp is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
        if not isinstance(value, bool):
            problems.append(f"{path}: expected true or false, got {_kind(value)}")
        return value
    if tp is int:
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: expected an integer, got {_kind(value)}")
        return value
    if tp is float:
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: expected a number, got {_kind(value)}")
            return value
        return float(value)
    if tp is str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problems.append(f"{path}: expected a string, got {type(value).__name__}")
        return "" if value is None else str(value)
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a bug in this module


def _build_dataclass(cls: Any, data: dict[str, Any], path: str, problems: list[str]) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in ("notes", "instance")}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        where = f"{path}.{key}" if path else str(key)
        if key not in fields:
            problems.append(f"{where}: unknown key (known: {', '.join(sorted(fields))})")
            continue
        if value is None and fields[key].default is not dataclasses.MISSING:
            continue  # an empty YAML value means the default
        kwargs[key] = _build(hints[key], value, where, problems)
    missing = [
        name for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        and name not in kwargs
    ]
    for name in missing:
        problems.append(f"{path + '.' if path else ''}{name}: required")
    return None if missing else cls(**kwargs)


# --- environment and cross-checks ---------------------------------------------------------

_AUTO_PROVIDERS = (
    ("OPENAI_API_KEY", "openai", "openai", "api_key"),
    ("ANTHROPIC_API_KEY", "anthropic", "anthropic", "api_key"),
    ("GOOGLE_API_KEY", "google", "google", "api_key"),
    ("OLLAMA_BASE_URL", "ollama", "ollama", "base_url"),
)


def _apply_env(settings: Settings, env: Mapping[str, str], problems: list[str]) -> Settings:
    def get(name: str) -> str | None:
        value = env.get(name)
        return value if value else None

    replace = dataclasses.replace
    server, log, cb = settings.server, settings.logging, settings.circuit_breaker
    if (v := get("ADDR")) is not None:
        server = replace(server, address=v)
    if (v := get("GRPC_ADDR")) is not None:
        server = replace(server, grpc_address=v)
    for var, attr in (("SHUTDOWN_TIMEOUT", "shutdown_timeout"), ("DRAIN_TIMEOUT", "drain_timeout")):
        if (v := get(var)) is not None:
            try:
                server = replace(server, **{attr: Duration(parse_duration(v))})
            except ValueError as exc:
                problems.append(f"{var}: {exc}")
    log_types = typing.get_type_hints(LoggingConfig)
    if (v := get("LOG_LEVEL")) is not None:
        log = replace(log, level=_build(log_types["level"], v.lower(), "LOG_LEVEL", problems))
    if (v := get("LOG_FORMAT")) is not None:
        log = replace(log, format=_build(log_types["format"], v.lower(), "LOG_FORMAT", problems))
    if (v := get("USE_DISTRIBUTED_CB")) is not None:
        cb = replace(cb, distributed=_build(bool, v, "USE_DISTRIBUTED_CB", problems))

    obs = settings.observability
    if (v := get("OTLP_ENDPOINT")) is not None:
        tracing = obs.tracing
        tracing = replace(tracing, exporter=replace(tracing.exporter, endpoint=v))
        obs = replace(obs, tracing=tracing)

    auth = settings.auth
    if (v := get("GATEWAY_ADMIN_KEY")) is not None:
        auth = replace(auth, admin_keys=tuple(dict.fromkeys((*auth.admin_keys, v))))
    oidc = auth.oidc
    if (v := get("OIDC_ISSUER")) is not None:
        oidc = replace(oidc, issuer=v, enabled=True)
    if (v := get("OIDC_AUDIENCE")) is not None:
        oidc = replace(oidc, audience=tuple(a.strip() for a in v.split(",") if a.strip()))
    auth = replace(auth, oidc=oidc, admin_keys=tuple(k for k in auth.admin_keys if k))

    providers = dict(settings.providers)
    notes = list(settings.notes)
    for var, name, ptype, attr in _AUTO_PROVIDERS:
        value = get(var)
        if value is None:
            continue
        current = providers.get(name)
        if current is None:
            current = ProviderConfig(type=ptype)
            notes.append(f"registered provider '{name}' from {var}")
        if attr == "api_key":  # the environment beats the file (a pool included)
            providers[name] = replace(current, api_key=value, api_keys=())
        else:
            providers[name] = replace(current, base_url=value)
    if (v := get("OPENAI_BASE_URL")) is not None and "openai" in providers:
        providers["openai"] = replace(providers["openai"], base_url=v)

    return replace(
        settings,
        server=server,
        logging=log,
        circuit_breaker=cb,
        observability=obs,
        auth=auth,
        providers=types.MappingProxyType(providers),
        notes=tuple(notes),
        default_provider=get("DEFAULT_PROVIDER") or settings.default_provider,
        redis=UrlConfig(get("REDIS_URL") or settings.redis.url),
        database=UrlConfig(get("DATABASE_URL") or settings.database.url),
        instance=InstanceConfig(
            pod_name=get("POD_NAME") or "",
            pod_namespace=get("POD_NAMESPACE") or "",
            encryption_key=get("ENCRYPTION_KEY") or "",
        ),
    )


_ZERO_CONFIG_ALIAS = ModelConfig(name="mock-1", targets=(TargetConfig("mock", "echo"),))


def _zero_config(settings: Settings) -> Settings:
    """With no provider at all, serve the mock provider and its alias ``mock-1``."""
    if settings.providers:
        return settings
    return dataclasses.replace(
        settings,
        providers=types.MappingProxyType({"mock": ProviderConfig(type="mock", models=("echo",))}),
        models=(*settings.models, _ZERO_CONFIG_ALIAS),
        notes=(*settings.notes,
               "no provider configured: serving the mock provider (mock/echo, mock-1)"),
    )


def _check_pool(provider: ProviderConfig, where: str, problems: list[str]) -> None:
    """``api_keys``: not with ``api_key``, each key set, weights positive, limits not
    negative, names unique. Messages name keys by index or name, never by value."""
    if not provider.api_keys:
        return
    if provider.api_key:
        problems.append(f"{where}: set api_key or api_keys, not both")
    if provider.type in ("mock", "vertex"):
        problems.append(f"{where}.api_keys: the {provider.type} provider takes no keys")
    names: set[str] = set()
    for i, key in enumerate(provider.api_keys):
        at = f"{where}.api_keys[{i}]"
        if not key.key:
            problems.append(f"{at}.key: empty (is its environment variable set?)")
        if key.weight <= 0:
            problems.append(f"{at}.weight: must be positive")
        for attr in ("rpm", "tpm"):
            if getattr(key, attr) < 0:
                problems.append(f"{at}.{attr}: cannot be negative (0 means no limit)")
        label = key.name or f"#{i}"
        if label in names:
            problems.append(f"{at}.name: duplicate key name {label!r}")
        names.add(label)


def _check_bedrock(where: str, provider: ProviderConfig, problems: list[str]) -> None:
    if not provider.region:
        problems.append(f"{where}.region: required for type bedrock (it is part of the "
                        f"signature)")
    for attr in ("endpoint_url", "sts_endpoint_url"):
        value = getattr(provider, attr)
        if value and not re.match(r"https?://", value):
            problems.append(f"{where}.{attr}: must start with http:// or https://")
    if bool(provider.access_key_id) != bool(provider.secret_access_key):
        problems.append(f"{where}: access_key_id and secret_access_key go together")
    if provider.session_token and not provider.access_key_id:
        problems.append(f"{where}.session_token: needs access_key_id and secret_access_key")


def _cross_check(settings: Settings, problems: list[str]) -> None:
    for name, provider in settings.providers.items():
        where = f"providers.{name}"
        if "/" in name:
            problems.append(f"{where}: a provider name cannot contain '/'")
        if provider.type not in PROVIDER_TYPES:
            problems.append(f"{where}.type: must be one of {', '.join(PROVIDER_TYPES)}, "
                            f"got {provider.type!r}")
        if provider.type in ("openai_compatible", "azure_openai", "azure_anthropic",
                             "ollama") and not (
            provider.base_url
        ):
            problems.append(f"{where}.base_url: required for type {provider.type}")
        if provider.type == "vertex":
            problems.extend(f"{where}.{attr}: required for type vertex"
                            for attr in ("project", "location") if not getattr(provider, attr))
        if provider.base_url and not re.match(r"https?://", provider.base_url):
            problems.append(f"{where}.base_url: must start with http:// or https://")
        _check_pool(provider, where, problems)
        if provider.type == "bedrock":
            _check_bedrock(where, provider, problems)
    names = set()
    for i, model in enumerate(settings.models):
        where = f"models[{i}]"
        if model.name in names:
            problems.append(f"{where}.name: duplicate model name {model.name!r}")
        names.add(model.name)
        if not model.targets:
            problems.append(f"{where}.targets: at least one target is required")
        for j, target in enumerate(model.targets):
            if target.provider not in settings.providers:
                problems.append(f"{where}.targets[{j}].provider: unknown provider "
                                f"{target.provider!r}")
            if target.weight <= 0:
                problems.append(f"{where}.targets[{j}].weight: must be positive")
    for i, model in enumerate(settings.models):
        for j, fallback in enumerate(model.fallbacks):
            prefix, slash, _ = fallback.partition("/")
            routable = (fallback in names or (slash and prefix in settings.providers)
                        or (not slash and settings.default_provider))
            if not routable:
                problems.append(f"models[{i}].fallbacks[{j}]: unknown model {fallback!r}")
    if settings.default_provider and settings.default_provider not in settings.providers:
        problems.append(f"default_provider: unknown provider {settings.default_provider!r}")
    for attr, value in (("server.address", settings.server.address),
                        ("server.grpc_address", settings.server.grpc_address)):
        try:
            parse_address(value)
        except ValueError as exc:
            problems.append(f"{attr}: {exc}")
    if not settings.redis.url:
        needs = [("circuit_breaker.distributed", settings.circuit_breaker.distributed),
                 ("cache.store", settings.cache.enabled and settings.cache.store == "redis"),
                 ("conversations.store", settings.conversations.store == "redis"
                  and not settings.conversations.dsn)]
        for key, needed in needs:
            if needed:
                problems.append(f"{key}: needs redis.url (or REDIS_URL)")
    for key in ("max_request_body_size", "max_header_size", "max_concurrent_streams"):
        if getattr(settings.server, key) <= 0:
            problems.append(f"server.{key}: must be positive")
    if not 0 < settings.request_log.memory_records <= 10_000_000:
        problems.append("request_log.memory_records: must be 1 to 10,000,000")
    for key in ("retention", "aggregate_retention"):
        if getattr(settings.request_log, key) <= 0:
            problems.append(f"request_log.{key}: must be positive")
    if settings.ui.enabled and not settings.admin.enabled:
        problems.append("ui.enabled: the UI is a client of the admin API, which "
                        "admin.enabled: false turns off")
    if settings.ui.session_idle <= 0:
        problems.append("ui.session_idle: must be positive")
    _check_ui_oidc(settings, problems)


OIDC_CALLBACK_PATH = "/ui/sign-in/oidc/callback"


def _check_ui_oidc(settings: Settings, problems: list[str]) -> None:
    """``ui.oidc``: a client of ``auth.oidc``'s issuer, whose tokens the admin API must
    accept; the callback at its one path; the ``openid`` scope."""
    ui = settings.ui.oidc
    if not ui.client_id:
        if ui.client_secret:
            problems.append("ui.oidc.client_secret: needs ui.oidc.client_id")
        return
    if not settings.auth.oidc.enabled or not settings.auth.oidc.issuer:
        problems.append("ui.oidc.client_id: needs auth.oidc.enabled and auth.oidc.issuer "
                        "(the admin API must accept the issuer's tokens)")
    if not settings.ui_enabled:
        problems.append("ui.oidc.client_id: the UI is off (ui.enabled / admin.enabled)")
    url = ui.redirect_url
    if url and (not re.match(r"https?://[^/?#]+/", url)
                or url.split("://", 1)[1].partition("/")[2].split("?")[0]
                != OIDC_CALLBACK_PATH[1:]):
        problems.append(f"ui.oidc.redirect_url: must be http(s)://HOST{OIDC_CALLBACK_PATH}")
    if "openid" not in ui.scopes:
        problems.append("ui.oidc.scopes: must include openid")
    if any(not scope or " " in scope for scope in ui.scopes):
        problems.append("ui.oidc.scopes: each scope is one word")
    if not ui.name.strip():
        problems.append("ui.oidc.name: must not be empty")


def load_settings(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read, expand, validate and override; raise :class:`ConfigError` listing every problem.

    ``path`` None means no file (zero config, or the environment alone).
    """
    env = os.environ if env is None else env
    problems: list[str] = []
    data: Any = {}
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read: {exc}"]) from None
        try:
            data = _parse(text, env) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([f"{path}: not valid YAML: {exc}"]) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{path}: the top level must be a mapping"])
    settings = _build_dataclass(Settings, data, "", problems)
    if settings is None or problems:
        raise ConfigError(problems)
    settings = _apply_env(settings, env, problems)
    settings = _zero_config(settings)
    _cross_check(settings, problems)
    if problems:
        raise ConfigError(problems)
    return settings
