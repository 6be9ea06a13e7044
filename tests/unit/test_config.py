"""Settings: durations, ``${VAR}`` expansion, errors that name their path, environment
overrides, zero config, and secrets kept out of ``repr``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import (
    ConfigError,
    ModelConfig,
    Settings,
    TargetConfig,
    expand_env,
    load_settings,
    parse_address,
    parse_duration,
)

# SPEC section 3, verbatim. `memory|redis|sql` and `pgx|sqlite3` there mean "one of".
SPEC_EXAMPLE = '''
server:   {address: ":8080", grpc_address: ":50051", max_request_body_size: 10485760,
           shutdown_timeout: 30s, drain_timeout: 15s, trusted_proxy_cidrs: []}
logging:  {level: info, format: json}
rate_limit: {enabled: true, requests_per_second: 10, burst: 20}      # per identity, see §8
observability:
  enabled: true
  metrics: {enabled: true, path: /metrics}
  tracing: {enabled: true, service_name: llm-gateway, sampler: {type: probability, rate: 0.1},
            exporter: {type: otlp, endpoint: "tempo:4317", insecure: true, headers: {}}}
redis:    {url: "redis://redis:6379/0"}              # shared state when set
database: {url: "postgres://user:pass@postgres:5432/llm_gateway"}   # tenants, usage
conversations: {store: memory|redis|sql, dsn: "...", driver: pgx|sqlite3, ttl: 1h}
               # redis without dsn uses redis.url; sql+pgx: dsn postgres://...; sql+sqlite3: dsn a file path
cache:    {enabled: false, store: memory|redis, ttl: 5m}
circuit_breaker: {distributed: false, failure_ratio: 0.5, min_requests: 5,
                  consecutive_failures: 5, interval: 30s, open_timeout: 60s, half_open_requests: 3}
retry:    {attempts: 2, backoff: 100ms, max_backoff: 2s}
auth:     {admin_keys: ["${GATEWAY_ADMIN_KEY}"],   # may use AdminService and /admin; also valid API keys
           api_keys: {enabled: false, keys: ["sk-static-..."]},   # static keys of tenant "default"
           oidc: {enabled: false, issuer: "", audience: [], jwks_refresh: 1h}}
admin:    {enabled: true}
providers:
  openai:    {type: openai,    api_key: "${OPENAI_API_KEY}",    base_url: "https://api.openai.com/v1"}
  anthropic: {type: anthropic, api_key: "${ANTHROPIC_API_KEY}", base_url: "https://api.anthropic.com"}
  google:    {type: google,    api_key: "${GOOGLE_API_KEY}",    base_url: "https://generativelanguage.googleapis.com"}
  ollama:    {type: ollama,    base_url: "http://ollama:11434"}
  azure:     {type: azure_openai, api_key: "${AZURE_OPENAI_API_KEY}",
              base_url: "https://my-resource.openai.azure.com", api_version: "2024-10-21"}
  # also: openai_compatible (vLLM, Groq, ...), bedrock, vertex, azure_anthropic (§15), mock
models:
  - name: gpt-4o-mini                    # what clients ask for
    targets:                             # weighted deployments
      - {provider: openai, model: gpt-4o-mini, weight: 3}
      - {provider: azure,  model: my-deployment, weight: 1}
    fallbacks: [claude-haiku]            # other model names, tried in order
    timeout: 60s
  - name: claude-haiku
    targets: [{provider: anthropic, model: claude-haiku-4-5}]
default_provider: ollama                 # where an unknown bare model name goes, if set
pricing: {gpt-4o-mini: {input_per_mtok: 0.15, output_per_mtok: 0.60}}
'''  # noqa: E501

SPEC_ENV = {
    "OPENAI_API_KEY": "sk-openai-test",
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "GOOGLE_API_KEY": "google-test",
    "AZURE_OPENAI_API_KEY": "sk-azure-test",
    "GATEWAY_ADMIN_KEY": "admin-test",
}


def load_text(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> Settings:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env={} if env is None else env)


def problems(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(tmp_path, text, env)
    assert str(caught.value) == "\n".join(caught.value.problems)
    return caught.value.problems


def resolve_spec_choices(text: str, store: str = "memory", driver: str = "pgx",
                         cache: str = "memory") -> str:
    return (text.replace("store: memory|redis|sql", f"store: {store}")
            .replace("driver: pgx|sqlite3", f"driver: {driver}")
            .replace("store: memory|redis", f"store: {cache}"))


# --- durations and addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("100ms", 0.1), ("1m30s", 90), ("1h", 3600), ("5m", 300), ("1.5h", 5400),
     ("2d", 172800), ("1h2m3s", 3723), ("250us", 0.00025), (" 15s ", 15), ("45", 45),
     ("0", 0), (7, 7), (2.5, 2.5), (0, 0)],
)
def test_parse_duration(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert isinstance(parse_duration(text), float)


@pytest.mark.parametrize(
    "text", ["", "soon", "10x", "s", "1m30", "30 s", "-5s", "-1", "ms100", "1h-5m", -1, True,
             None, [1], {"s": 1}],
)
def test_parse_duration_rejects(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("address", "expected"),
    [(":8080", ("0.0.0.0", 8080)), ("127.0.0.1:9", ("127.0.0.1", 9)),
     ("[::1]:50051", ("::1", 50051))],
)
def test_parse_address(address: str, expected: tuple[str, int]) -> None:
    assert parse_address(address) == expected


@pytest.mark.parametrize("address", ["8080", "host:", "host:http", ":70000", ""])
def test_parse_address_rejects(address: str) -> None:
    with pytest.raises(ValueError):
        parse_address(address)


def test_durations_in_the_file(tmp_path: Path) -> None:
    settings = load_text(tmp_path, """
server: {drain_timeout: 1m30s, shutdown_timeout: 100ms}
retry: {backoff: 250ms, max_backoff: 2s}
cache: {ttl: 5m}
conversations: {ttl: 1h}
request_log: {retention: 2d, aggregate_retention: 30d}
""")
    assert settings.server.drain_timeout == 90
    assert settings.server.shutdown_timeout == pytest.approx(0.1)
    assert settings.retry.backoff == pytest.approx(0.25)
    assert settings.retry.max_backoff == 2
    assert settings.cache.ttl == 300
    assert settings.conversations.ttl == 3600
    assert settings.request_log.retention == 2 * 86400
    assert settings.request_log.aggregate_retention == 30 * 86400


# --- ${VAR} expansion ----------------------------------------------------------------------


def test_expand_env() -> None:
    env = {"A": "alpha", "EMPTY": ""}
    assert expand_env("${A}", env) == "alpha"
    assert expand_env("x-${A}-y", env) == "x-alpha-y"
    assert expand_env("${MISSING}", env) == ""
    assert expand_env("${MISSING:-fallback}", env) == "fallback"
    assert expand_env("${EMPTY:-fallback}", env) == "fallback"
    assert expand_env("${A:-fallback}", env) == "alpha"
    assert expand_env("${MISSING:-}", env) == ""
    assert expand_env("${A}${A}", env) == "alphaalpha"
    assert expand_env("$A and ${not valid}", env) == "$A and ${not valid}"


def test_expansion_in_the_file(tmp_path: Path) -> None:
    settings = load_text(tmp_path, """
server: {address: "${HTTP_HOST:-127.0.0.1}:${HTTP_PORT}", drain_timeout: "${DRAIN:-20s}"}
providers:
  up: {type: openai_compatible, base_url: "${UP_URL}", api_key: "${UP_KEY}"}
  other: {type: openai, api_key: "${UNSET_KEY}"}
""", env={"HTTP_PORT": "9001", "UP_URL": "http://vllm:8000/v1", "UP_KEY": "k-123"})
    assert settings.server.address == "127.0.0.1:9001"
    assert settings.server.drain_timeout == 20
    assert settings.providers["up"].base_url == "http://vllm:8000/v1"
    assert settings.providers["up"].api_key == "k-123"
    assert settings.providers["other"].api_key == ""


SECRET = 'sk-"q}{u:o#te\'-canary'  # quotes, braces, a colon and a hash: YAML syntax


def test_a_secret_with_yaml_syntax_is_expanded_after_parsing(tmp_path: Path) -> None:
    # Was expanded into the text before parsing: such a secret broke the YAML, and the
    # parse error quoted it.
    settings = load_text(tmp_path, """
providers:
  up: {type: openai_compatible, base_url: "http://u:8000/v1", api_key: "${UP_KEY}"}
  other: {type: openai, api_key: ${UP_KEY}}
server: {max_request_body_size: ${BODY}, keep_alive_timeout: ${KEEP:-5s}}
circuit_breaker: {distributed: ${DIST:-false}}
""", env={"UP_KEY": SECRET, "BODY": "1024"})
    assert settings.providers["up"].api_key == SECRET
    assert settings.providers["other"].api_key == SECRET
    assert settings.server.max_request_body_size == 1024
    assert settings.server.keep_alive_timeout == 5
    assert settings.circuit_breaker.distributed is False


@pytest.mark.parametrize("text", [
    "providers: {up: {type: openai, api_key: '${K}'}}\nserver: {address: [unclosed",
    "server: {max_request_body_size: ${K}}",
    "server: {drain_timeout: ${K}}",
    "logging: {level: ${K}}",
    "circuit_breaker: {distributed: ${K}}",
    "server: {address: '${K}'}",
])
def test_no_problem_echoes_a_value(tmp_path: Path, text: str) -> None:
    found = problems(tmp_path, text, env={"K": SECRET})
    assert found and SECRET not in "\n".join(found) and "canary" not in "\n".join(found)


def test_no_environment_problem_echoes_a_value(tmp_path: Path) -> None:
    found = problems(tmp_path, "{}", env={"SHUTDOWN_TIMEOUT": SECRET, "ADDR": SECRET})
    assert len(found) == 2 and "canary" not in "\n".join(found)


def test_config_check_masks_url_credentials(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("providers: {up: {type: openai_compatible, "
                    "base_url: 'https://user:pa55-canary@vllm:8000/v1'}}")
    assert main(["config", "check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "canary" not in out and "https://***@vllm:8000/v1" in out


# --- errors name their path ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("server: {drain_timeout: soon}", "server.drain_timeout", "not a duration"),
        ("server: {drain_timeout: [1]}", "server.drain_timeout", "duration"),
        ("server: {bogus: 1}", "server.bogus", "unknown key"),
        ("bogus_section: {a: 1}", "bogus_section", "unknown key"),
        ("server: {max_request_body_size: big}", "server.max_request_body_size", "integer"),
        ("server: {max_request_body_size: 1.5}", "server.max_request_body_size", "integer"),
        ("server: 5", "server", "mapping"),
        ("rate_limit: {enabled: maybe}", "rate_limit.enabled", "true or false"),
        ("rate_limit: {requests_per_second: fast}", "rate_limit.requests_per_second", "number"),
        ("logging: {level: loud}", "logging.level", "must be one of"),
        ("observability: {tracing: {sampler: {rate: high}}}",
         "observability.tracing.sampler.rate", "number"),
        ("auth: {api_keys: {keys: {a: 1}}}", "auth.api_keys.keys", "list"),
        ("providers: {p: {type: openai, bogus: 1}}", "providers.p.bogus", "unknown key"),
        ("providers: {p: {type: openai, api_key: [x]}}", "providers.p.api_key", "string"),
        ("providers: {p: {base_url: 'http://x'}}", "providers.p.type", "required"),
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: [p], model: x}]}]",
         "models[0].targets[0].provider", "string"),
        ("providers: {p: {type: openai}}\nmodels: [{name: m, targets: [{model: x}]}]",
         "models[0].targets[0].provider", "required"),
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: p, model: x, weight: heavy}]}]",
         "models[0].targets[0].weight", "number"),
        ("providers: {p: {type: openai}}\nmodels: [{targets: [{provider: p, model: x}]}]",
         "models[0].name", "required"),
        ("models: {name: m}", "models", "list"),
    ],
)
def test_type_errors_name_their_path(tmp_path: Path, text: str, path: str, words: str) -> None:
    found = problems(tmp_path, text)
    matching = [p for p in found if p.startswith(f"{path}:")]
    assert matching, found
    assert words in matching[0], matching[0]


@pytest.mark.parametrize(
    ("text", "path", "words"),
    [
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: nope, model: x}]}]",
         "models[0].targets[0].provider", "unknown provider 'nope'"),
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: p, model: x, weight: 0}]}]",
         "models[0].targets[0].weight", "positive"),
        ("providers: {p: {type: openai}}\nmodels: [{name: m, targets: []}]",
         "models[0].targets", "at least one"),
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: p, model: x}]},"
         " {name: m, targets: [{provider: p, model: y}]}]",
         "models[1].name", "duplicate"),
        ("providers: {p: {type: openai}}\n"
         "models: [{name: m, targets: [{provider: p, model: x}], fallbacks: [ghost]}]",
         "models[0].fallbacks[0]", "unknown model 'ghost'"),
        ("providers: {p: {type: azure}}", "providers.p.type", "must be one of"),
        ("providers: {p: {type: ollama}}", "providers.p.base_url", "required"),
        ("providers: {p: {type: openai, base_url: 'ftp://x'}}", "providers.p.base_url", "http"),
        ("providers: {'a/b': {type: mock}}", "providers.a/b", "'/'"),
        ("providers: {p: {type: mock}}\ndefault_provider: nope", "default_provider", "unknown"),
        ("server: {address: 'localhost'}", "server.address", "HOST:PORT"),
        ("server: {max_request_body_size: 0}", "server.max_request_body_size", "positive"),
        ("request_log: {retention: 0}", "request_log.retention", "positive"),
        ("request_log: {aggregate_retention: 0s}", "request_log.aggregate_retention",
         "positive"),
        ("admin: {enabled: false}\nui: {enabled: true}", "ui.enabled", "admin.enabled"),
        ("ui: {session_idle: 0s}", "ui.session_idle", "positive"),
    ],
)
def test_cross_check_errors_name_their_path(tmp_path: Path, text: str, path: str,
                                            words: str) -> None:
    found = problems(tmp_path, text)
    matching = [p for p in found if p.startswith(f"{path}:")]
    assert matching, found
    assert words in matching[0], matching[0]


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(tmp_path, """
server: {drain_timeout: soon, bogus: 1}
logging: {level: loud}
retry: {attempts: many}
""")
    assert {p.split(":")[0] for p in found} == {
        "server.drain_timeout", "server.bogus", "logging.level", "retry.attempts"}


def test_valid_nested_paths_fields_and_defaults(tmp_path: Path) -> None:
    settings = load_text(tmp_path, """
providers:
  a: {type: openai, base_url: "http://a/v1", models: [m1, m2], headers: {X-Org: acme}}
  b: {type: mock, latency: 10ms}
models:
  - name: fast
    targets:
      - {provider: a, model: m1, weight: 3}
      - {provider: b, model: echo}
    fallbacks: [b/echo]
    timeout: 30s
default_provider: a
pricing: {m1: {input_per_mtok: 1.5, output_per_mtok: 2}}
""")
    assert settings.models == (ModelConfig(
        name="fast",
        targets=(TargetConfig("a", "m1", 3.0), TargetConfig("b", "echo", 1)),
        fallbacks=("b/echo",),
        timeout=30.0,
    ),)
    assert settings.providers["a"].models == ("m1", "m2")
    assert dict(settings.providers["a"].headers) == {"X-Org": "acme"}
    assert settings.providers["b"].latency == pytest.approx(0.01)
    assert settings.default_provider == "a"
    assert settings.pricing["m1"].output_per_mtok == 2.0
    # Defaults where the file is silent.
    assert settings.server.grpc_address == ":50051"
    assert settings.server.drain_timeout == 15
    assert settings.retry.attempts == 2
    assert settings.circuit_breaker.failure_ratio == 0.5
    assert settings.notes == ()


def test_empty_value_means_default(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "server:\nlogging: {level: }\n")
    assert settings.server == Settings().server
    assert settings.logging.level == "info"


@pytest.mark.parametrize(
    ("text", "words"),
    [("- a\n- b\n", "top level must be a mapping"), ("server: {a: [}\n", "not valid YAML")],
)
def test_unreadable_files(tmp_path: Path, text: str, words: str) -> None:
    found = problems(tmp_path, text)
    assert len(found) == 1 and words in found[0]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(tmp_path / "absent.yaml", env={})
    assert "cannot read" in caught.value.problems[0]


def test_settings_are_frozen() -> None:
    settings = load_settings(None, env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.server.address = ":1"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.providers["x"] = settings.providers["mock"]  # type: ignore[index]


# --- the SPEC example ----------------------------------------------------------------------


def test_spec_example_loads_unchanged(tmp_path: Path) -> None:
    """The SPEC block loads as written, every section of it."""
    settings = load_text(tmp_path, resolve_spec_choices(SPEC_EXAMPLE), env=SPEC_ENV)
    assert settings.server.address == ":8080"
    assert settings.server.max_request_body_size == 10485760
    assert settings.server.shutdown_timeout == 30
    assert settings.server.drain_timeout == 15
    assert settings.server.trusted_proxy_cidrs == ()
    assert (settings.logging.level, settings.logging.format) == ("info", "json")
    assert settings.rate_limit.enabled is True and settings.rate_limit.burst == 20
    tracing = settings.observability.tracing
    assert tracing.enabled is True and tracing.service_name == "llm-gateway"
    assert (tracing.sampler.type, tracing.sampler.rate) == ("probability", 0.1)
    assert (tracing.exporter.type, tracing.exporter.endpoint) == ("otlp", "tempo:4317")
    assert settings.redis.url == "redis://redis:6379/0"
    assert settings.database.url == "postgres://user:pass@postgres:5432/llm_gateway"
    assert (settings.conversations.store, settings.conversations.ttl) == ("memory", 3600)
    assert settings.cache.ttl == 300
    assert settings.circuit_breaker.open_timeout == 60
    assert settings.circuit_breaker.half_open_requests == 3
    assert settings.retry.backoff == pytest.approx(0.1)
    assert settings.auth.admin_keys == ("admin-test",)
    assert settings.auth.api_keys.keys == ("sk-static-...",)
    assert settings.auth.oidc.jwks_refresh == 3600
    assert {n: p.type for n, p in settings.providers.items()} == {
        "openai": "openai", "anthropic": "anthropic", "google": "google", "ollama": "ollama",
        "azure": "azure_openai"}
    assert settings.providers["openai"].api_key == "sk-openai-test"
    assert settings.providers["google"].base_url == "https://generativelanguage.googleapis.com"
    assert settings.providers["azure"].api_key == "sk-azure-test"
    assert settings.providers["azure"].api_version == "2024-10-21"
    gpt, haiku = settings.models
    assert gpt.name == "gpt-4o-mini" and gpt.timeout == 60
    assert [(t.provider, t.model, t.weight) for t in gpt.targets] == [
        ("openai", "gpt-4o-mini", 3), ("azure", "my-deployment", 1)]
    assert gpt.fallbacks == ("claude-haiku",)
    assert haiku.name == "claude-haiku"
    assert [(t.provider, t.model) for t in haiku.targets] == [("anthropic", "claude-haiku-4-5")]
    assert settings.default_provider == "ollama"
    assert settings.pricing["gpt-4o-mini"].input_per_mtok == pytest.approx(0.15)


@pytest.mark.parametrize(("store", "driver", "cache"),
                         [("memory", "pgx", "memory"), ("redis", "pgx", "redis"),
                          ("sql", "sqlite3", "memory")])
def test_spec_example_choices_load(tmp_path: Path, store: str, driver: str, cache: str) -> None:
    settings = load_text(tmp_path, resolve_spec_choices(SPEC_EXAMPLE, store, driver, cache),
                         env={})
    assert (settings.conversations.store, settings.conversations.driver) == (store, driver)
    assert settings.cache.store == cache
    # Unset variables expand to nothing; an empty admin key is no admin key.
    assert settings.providers["openai"].api_key == ""
    assert settings.auth.admin_keys == ()


def test_bare_fallback_is_routable_through_default_provider(tmp_path: Path) -> None:
    settings = load_text(tmp_path, """
providers:
  openai: {type: openai}
  ollama: {type: ollama, base_url: "http://ollama:11434"}
models:
  - name: gpt-4o-mini
    targets: [{provider: openai, model: gpt-4o-mini}]
    fallbacks: [llama3]
default_provider: ollama
""")
    assert settings.models[0].fallbacks == ("llama3",)


# --- environment overrides -----------------------------------------------------------------


FILE_FOR_OVERRIDES = """
server: {address: ":9000", grpc_address: ":9001", drain_timeout: 15s, shutdown_timeout: 30s}
logging: {level: info, format: json}
circuit_breaker: {distributed: false}
redis: {url: "redis://file:6379/0"}
database: {url: "postgres://file/db"}
auth: {admin_keys: [file-admin]}
providers:
  mock: {type: mock}
"""


def test_env_overrides_beat_the_file(tmp_path: Path) -> None:
    settings = load_text(tmp_path, FILE_FOR_OVERRIDES, env={
        "ADDR": "127.0.0.1:8081",
        "GRPC_ADDR": "127.0.0.1:50052",
        "LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "text",
        "DRAIN_TIMEOUT": "5",
        "SHUTDOWN_TIMEOUT": "12",
        "USE_DISTRIBUTED_CB": "true",
        "REDIS_URL": "redis://env:6379/1",
        "DATABASE_URL": "postgres://env/db",
        "GATEWAY_ADMIN_KEY": "env-admin",
        "DEFAULT_PROVIDER": "mock",
        "OTLP_ENDPOINT": "otel:4317",
        "OIDC_ISSUER": "https://issuer.example",
        "OIDC_AUDIENCE": "a, b",
        "POD_NAME": "gw-0",
        "POD_NAMESPACE": "llm-gateway",
    })
    assert settings.server.address == "127.0.0.1:8081"
    assert settings.server.grpc_address == "127.0.0.1:50052"
    assert settings.logging.level == "debug"
    assert settings.logging.format == "text"
    assert settings.server.drain_timeout == 5.0
    assert settings.server.shutdown_timeout == 12.0
    assert settings.circuit_breaker.distributed is True
    assert settings.redis.url == "redis://env:6379/1"
    assert settings.database.url == "postgres://env/db"
    assert settings.auth.admin_keys == ("file-admin", "env-admin")
    assert settings.default_provider == "mock"
    assert settings.observability.tracing.exporter.endpoint == "otel:4317"
    assert settings.auth.oidc.enabled is True
    assert settings.auth.oidc.issuer == "https://issuer.example"
    assert settings.auth.oidc.audience == ("a", "b")
    assert (settings.instance.pod_name, settings.instance.pod_namespace) == (
        "gw-0", "llm-gateway")


def test_without_env_the_file_stands(tmp_path: Path) -> None:
    settings = load_text(tmp_path, FILE_FOR_OVERRIDES, env={"ADDR": "", "LOG_LEVEL": ""})
    assert settings.server.address == ":9000"
    assert settings.logging.level == "info"
    assert settings.server.drain_timeout == 15
    assert settings.circuit_breaker.distributed is False
    assert settings.redis.url == "redis://file:6379/0"
    assert settings.auth.admin_keys == ("file-admin",)


@pytest.mark.parametrize(("value", "expected"),
                         [("true", True), ("1", True), ("false", False), ("0", False),
                          ("TRUE", True)])
def test_use_distributed_cb(value: str, expected: bool) -> None:
    settings = load_settings(None, env={"USE_DISTRIBUTED_CB": value,
                                        "REDIS_URL": "redis://redis:6379/0"})
    assert settings.circuit_breaker.distributed is expected


@pytest.mark.parametrize("text", [
    "circuit_breaker: {distributed: true}",
    "cache: {enabled: true, store: redis}",
    "conversations: {store: redis}",
])
def test_redis_backed_features_need_redis(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_text(tmp_path, text)
    key = text.split(":")[0]
    assert any(p.startswith(f"{key}") and "needs redis.url" in p for p in info.value.problems)
    assert load_text(tmp_path, text + '\nredis: {url: "redis://r:6379/0"}')


@pytest.mark.parametrize(
    ("name", "value"),
    [("DRAIN_TIMEOUT", "soon"), ("SHUTDOWN_TIMEOUT", "-3"), ("LOG_LEVEL", "loud"),
     ("LOG_FORMAT", "xml"), ("USE_DISTRIBUTED_CB", "maybe"), ("ADDR", "nowhere"),
     ("DEFAULT_PROVIDER", "ghost")],
)
def test_bad_env_values_name_the_variable_or_field(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(None, env={name: value})
    text = str(caught.value)
    assert name in text or {"ADDR": "server.address",
                            "DEFAULT_PROVIDER": "default_provider"}[name] in text, text


def test_openai_api_key_registers_the_openai_provider() -> None:
    settings = load_settings(None, env={"OPENAI_API_KEY": "sk-env"})
    assert set(settings.providers) == {"openai"}  # no zero-config mock when a key is set
    openai = settings.providers["openai"]
    assert (openai.type, openai.api_key, openai.base_url) == ("openai", "sk-env", "")
    assert any("openai" in note and "OPENAI_API_KEY" in note for note in settings.notes)


def test_openai_base_url_overrides() -> None:
    settings = load_settings(None, env={"OPENAI_API_KEY": "sk-env",
                                        "OPENAI_BASE_URL": "http://127.0.0.1:9999/v1"})
    assert settings.providers["openai"].base_url == "http://127.0.0.1:9999/v1"


def test_openai_base_url_overrides_the_file(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "providers: {openai: {type: openai, api_key: k,"
                                   " base_url: 'https://api.openai.com/v1'}}",
                         env={"OPENAI_BASE_URL": "http://proxy:8080/v1"})
    assert settings.providers["openai"].base_url == "http://proxy:8080/v1"
    assert settings.providers["openai"].api_key == "k"


def test_openai_base_url_alone_registers_nothing() -> None:
    settings = load_settings(None, env={"OPENAI_BASE_URL": "http://x/v1"})
    assert set(settings.providers) == {"mock"}


def test_openai_api_key_fills_an_empty_key_in_the_file(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "providers: {openai: {type: openai, api_key: '${NOPE}'}}",
                         env={"OPENAI_API_KEY": "sk-env"})
    assert settings.providers["openai"].api_key == "sk-env"


@pytest.mark.parametrize(
    ("text", "env", "field", "expected"),
    [
        ("providers: {openai: {type: openai, api_key: sk-file}}",
         {"OPENAI_API_KEY": "sk-env"}, "api_key", "sk-env"),
        ("providers: {ollama: {type: ollama, base_url: 'http://ollama:11434'}}",
         {"OLLAMA_BASE_URL": "http://10.0.0.5:11434"}, "base_url", "http://10.0.0.5:11434"),
    ],
)
def test_provider_env_overrides_beat_the_file(tmp_path: Path, text: str, env: dict[str, str],
                                              field: str, expected: str) -> None:
    settings = load_text(tmp_path, text, env=env)
    name = next(iter(settings.providers))
    assert getattr(settings.providers[name], field) == expected


@pytest.mark.parametrize(
    ("var", "name", "ptype", "field"),
    [("ANTHROPIC_API_KEY", "anthropic", "anthropic", "api_key"),
     ("GOOGLE_API_KEY", "google", "google", "api_key"),
     ("OLLAMA_BASE_URL", "ollama", "ollama", "base_url")],
)
def test_other_provider_variables_register_providers(var: str, name: str, ptype: str,
                                                     field: str) -> None:
    value = "http://ollama:11434" if field == "base_url" else "secret-value"
    settings = load_settings(None, env={var: value})
    assert set(settings.providers) == {name}
    assert settings.providers[name].type == ptype
    assert getattr(settings.providers[name], field) == value


# --- zero config ---------------------------------------------------------------------------


def test_zero_config_serves_mock() -> None:
    settings = load_settings(None, env={})
    assert set(settings.providers) == {"mock"}
    mock = settings.providers["mock"]
    assert mock.type == "mock"
    assert mock.models == ("echo",)
    assert settings.models == (ModelConfig(name="mock-1",
                                           targets=(TargetConfig("mock", "echo"),)),)
    assert len(settings.notes) == 1 and "mock" in settings.notes[0]
    assert settings.server.address == ":8080"
    assert settings.server.grpc_address == ":50051"
    assert settings.conversations.store == "memory"
    assert settings.redis.url == "" and settings.database.url == ""


def test_a_file_without_providers_is_zero_config_too(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "server: {drain_timeout: 3s}\n")
    assert set(settings.providers) == {"mock"}
    assert [m.name for m in settings.models] == ["mock-1"]
    assert settings.server.drain_timeout == 3


def test_a_file_with_providers_is_not_zero_config(tmp_path: Path) -> None:
    settings = load_text(tmp_path, "providers: {local: {type: mock}}\n")
    assert set(settings.providers) == {"local"}
    assert settings.models == ()
    assert settings.notes == ()


# --- secrets -------------------------------------------------------------------------------


def test_provider_secrets_not_in_repr(tmp_path: Path) -> None:
    settings = load_text(tmp_path, """
providers:
  up: {type: openai, api_key: "${UP_KEY}", headers: {X-Secret-Header: hdr-secret-value}}
""", env={"UP_KEY": "sk-file-secret-value", "OPENAI_API_KEY": "sk-env-secret-value",
          "ENCRYPTION_KEY": "enc-secret-value"})
    assert settings.providers["up"].api_key == "sk-file-secret-value"
    assert settings.providers["openai"].api_key == "sk-env-secret-value"
    assert settings.instance.encryption_key == "enc-secret-value"
    for text in (repr(settings), str(settings), repr(settings.providers["up"]),
                 repr(settings.instance)):
        for secret in ("sk-file-secret-value", "sk-env-secret-value", "enc-secret-value",
                       "hdr-secret-value"):
            assert secret not in text
    assert "up" in repr(settings)  # the provider itself is still shown


@pytest.mark.parametrize("secret", ["admin-secret-value", "sk-static-secret-value",
                                    "redis-password-value", "db-password-value"])
def test_auth_and_store_secrets_not_in_repr(tmp_path: Path, secret: str) -> None:
    settings = load_text(tmp_path, """
auth: {api_keys: {enabled: true, keys: [sk-static-secret-value]}}
""", env={"GATEWAY_ADMIN_KEY": "admin-secret-value",
          "REDIS_URL": "redis://:redis-password-value@redis:6379/0",
          "DATABASE_URL": "postgres://user:db-password-value@pg:5432/gw"})
    assert secret not in repr(settings)


@pytest.mark.parametrize(("text", "enabled"), [
    ("", True),
    ("admin: {enabled: false}", False),
    ("ui: {enabled: false}", False),
    ("ui: {enabled: true}", True),
])
def test_the_ui_follows_the_admin_api_unless_set(tmp_path: Path, text: str,
                                                 enabled: bool) -> None:
    settings = load_text(tmp_path, text)
    assert settings.ui_enabled is enabled
    assert settings.ui.session_idle == 8 * 3600
