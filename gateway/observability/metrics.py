"""Every Prometheus metric of the gateway, defined once (SPEC section 10).

Recording goes through the small functions at the bottom, which cache label
children (no ``.labels()`` lookups on the hot path) and keep label values
bounded: provider names come from the config, statuses from a fixed set, and
model names, which clients choose, take a value of their own only once they have
proved real (a configured name, or one an upstream answered), up to
:data:`MAX_MODEL_LABELS` distinct values; anything else is reported as ``other``,
so a flood of unknown names (404s) cannot use up the room of real models.

With ``--workers N`` the parent sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers
start; prometheus-client then writes per-process files and :func:`render`
aggregates them, so any worker's ``/metrics`` shows the whole pod.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

__all__ = [
    "CONTENT_TYPE_LATEST",
    "render",
]

MAX_MODEL_LABELS = 200
OTHER = "other"  # the model label of unknown names and of names beyond the bound
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)

REQUESTS = Counter("gateway_requests_total", "Requests answered, by outcome.",
                   ["provider", "model", "status"])
DURATION = Histogram("gateway_request_duration_seconds",
                     "Time from request to answer (to the last chunk for streams).",
                     ["provider", "model"], buckets=_LATENCY_BUCKETS)
PROVIDER_ERRORS = Counter("gateway_provider_errors_total",
                          "Failed upstream attempts, by kind of failure.",
                          ["provider", "error_type"])
BREAKER_STATE = Gauge("gateway_circuit_breaker_state",
                      "Circuit breaker state: 0 closed, 1 open, 2 half-open.", ["provider"],
                      multiprocess_mode="livemax")
BREAKER_TRANSITIONS = Counter("gateway_circuit_breaker_transitions_total",
                              "Circuit breaker state changes.", ["provider", "from", "to"])
KEY_STATE = Gauge("gateway_provider_key_state",
                  "State of a key of a provider's key pool: 0 ready, 1 resting, 2 open "
                  "(the key named by its name or index, never its value).",
                  ["provider", "key"], multiprocess_mode="livemax")
KEY_RESTS = Counter("gateway_provider_key_rests_total",
                    "Times a pool key was put to rest by an upstream 429.", ["provider", "key"])
RATE_LIMIT_FAIL_OPEN = Counter("gateway_rate_limit_fail_open_total",
                               "Requests admitted unchecked because Redis could not be reached.")
REQUEST_LOG_DROPPED = Counter(
    "gateway_request_log_dropped_total",
    "Request log rows never written to the database: its queue was full while it was away.")
RATE_LIMIT_HITS = Counter("gateway_rate_limit_hits_total",
                          "Requests refused by a rate limit or quota.", ["scope"])
TOKENS = Counter("gateway_tokens_total", "Tokens processed.", ["provider", "model", "type"])
COST = Counter("gateway_cost_usd_total", "Cost of requests in US dollars.",
               ["provider", "model"])
CACHE = Counter("gateway_cache_requests_total", "Response cache lookups.", ["result"])
HEDGES = Counter("gateway_hedged_attempts_total",
                 "Attempts of hedged requests, by deployment and whether theirs was the answer "
                 "used (won) or was cancelled or dropped (lost).", ["provider", "outcome"])
ACTIVE_STREAMS = Gauge("gateway_active_streams", "Streams being served now.",
                       multiprocess_mode="livesum")
TTFT = Histogram("gateway_time_to_first_token_seconds",
                 "Time from request to the first streamed chunk.", ["provider", "model"],
                 buckets=_LATENCY_BUCKETS)
OVERHEAD = Histogram("gateway_overhead_seconds",
                     "Time the core spent on a request other than waiting on upstreams.",
                     buckets=_OVERHEAD_BUCKETS)
BUDGET_RATIO = Gauge("gateway_budget_usage_ratio",
                     "Share of the tenant's monthly budget spent.", ["tenant"],
                     multiprocess_mode="livemax")
BUDGET_ALERTS = Counter("gateway_budget_alerts_total",
                        "Budgets crossing an alert threshold (once per budget and period), by "
                        "whose budget: tenant, api_key or model (the tenant's on one model).",
                        ["tenant", "scope", "threshold"])
INSTANCE = Gauge("gateway_instance_info", "Constant 1, labelled with what this instance is.",
                 ["version", "pod", "namespace"], multiprocess_mode="livemax")

_models: dict[str, str] = {}
_children: dict[tuple[Any, ...], Any] = {}


def model_label(model: str, admit: bool = True) -> str:
    """``model`` if already admitted, or if ``admit`` (the name is known to be real) and
    there is room; ``other`` otherwise.

    >>> model_label("gpt-4o-mini-typo", admit=False)
    'other'
    """
    label = _models.get(model)
    if label is None:
        if not admit or not model or len(_models) >= MAX_MODEL_LABELS:
            return OTHER  # not remembered: a flood of new names must not grow memory
        label = _models[model] = model
    return label


def _child(metric: Any, *labels: str) -> Any:
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def request_done(provider: str, model: str, status: str, seconds: float, *,
                 admit: bool = True) -> None:
    """One answered request; ``admit`` says whether ``model`` may take a label value."""
    model = model_label(model, admit)
    provider = provider or "none"
    _child(REQUESTS, provider, model, status).inc()
    _child(DURATION, provider, model).observe(seconds)


def provider_error(provider: str, error_type: str) -> None:
    _child(PROVIDER_ERRORS, provider, error_type).inc()


def tokens(provider: str, model: str, prompt: int, completion: int, cost_usd: float, *,
           admit: bool = True) -> None:
    model = model_label(model, admit)
    if prompt:
        _child(TOKENS, provider, model, "prompt").inc(prompt)
    if completion:
        _child(TOKENS, provider, model, "completion").inc(completion)
    if cost_usd:
        _child(COST, provider, model).inc(cost_usd)


def first_token(provider: str, model: str, seconds: float) -> None:
    _child(TTFT, provider, model_label(model)).observe(seconds)


def overhead(seconds: float) -> None:
    OVERHEAD.observe(max(0.0, seconds))


def breaker_state(provider: str, state: int) -> None:
    _child(BREAKER_STATE, provider).set(state)


def breaker_transition(provider: str, before: str, after: str, state: int) -> None:
    _child(BREAKER_TRANSITIONS, provider, before, after).inc()
    breaker_state(provider, state)


def key_state(provider: str, key: str, state: int) -> None:
    """A pool key's state; ``key`` is its name or index (bounded by the config)."""
    _child(KEY_STATE, provider, key).set(state)


def hedged(provider: str, won: bool) -> None:
    _child(HEDGES, provider, "won" if won else "lost").inc()


def key_rested(provider: str, key: str) -> None:
    _child(KEY_RESTS, provider, key).inc()


def rate_limited(scope: str) -> None:
    _child(RATE_LIMIT_HITS, scope).inc()


def rate_limit_fail_open() -> None:
    RATE_LIMIT_FAIL_OPEN.inc()


def request_log_dropped() -> None:
    REQUEST_LOG_DROPPED.inc()


def cache_lookup(hit: bool) -> None:
    _child(CACHE, "hit" if hit else "miss").inc()


def budget_ratio(tenant: str, ratio: float) -> None:
    _child(BUDGET_RATIO, tenant).set(ratio)


def budget_alert(tenant: str, scope: str, threshold: float) -> None:
    _child(BUDGET_ALERTS, tenant, scope, f"{threshold:g}").inc()


def instance(version: str, pod: str, namespace: str) -> None:
    INSTANCE.labels(version, pod or "local", namespace or "none").set(1)


def render() -> bytes:
    """The exposition text: this process's registry, or every worker's in multi-process mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)
