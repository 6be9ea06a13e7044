"""Render the kustomize trees under ``k8s/`` and read things out of them, for tests.

The rendering goes through ``kubectl kustomize`` (or ``kustomize build``), exactly what
``kubectl apply -k`` would send, so the tests see the hashed ConfigMap names, the namespace
and the overlay patches as the cluster would.

Metric names, for a test that checks the alerts against a running gateway::

    from tests.deploy.deploy_manifests import gateway_metric_names, missing_metrics

    text = httpx.get(f"{gateway.http_url}/metrics").text
    assert not missing_metrics(text), "alerts use metrics the gateway does not export"

``gateway_metric_names()`` is the set of series the PrometheusRule and ServiceMonitor use,
less Prometheus' own (``up``); ``missing_metrics`` parses a /metrics body and counts a
declared family with no sample yet (a labelled metric never observed) as exported. The test
modules beside this file import it as ``deploy_manifests`` (pytest puts this folder on
``sys.path``); from elsewhere use ``tests.deploy.deploy_manifests``.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "K8S",
    "RENDER_TARGETS",
    "REPO",
    "SPEC_METRICS",
    "SYNTHETIC_SERIES",
    "container",
    "env_settings",
    "exposition_names",
    "find",
    "find_configmap",
    "find_one",
    "gateway_config",
    "gateway_metric_names",
    "metric_family",
    "missing_metrics",
    "parse_duration",
    "pod_specs",
    "promql_metric_names",
    "referenced_metric_names",
    "render",
    "render_text",
]

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "k8s"

#: What CI renders: the base and every overlay, by a short name.
RENDER_TARGETS: dict[str, Path] = {
    "base": K8S / "base",
    "dev": K8S / "overlays" / "dev",
    "production": K8S / "overlays" / "production",
}

#: The metric families of SPEC §10, as the gateway exports them.
SPEC_METRICS: frozenset[str] = frozenset(
    {
        "gateway_requests_total",
        "gateway_request_duration_seconds",
        "gateway_provider_errors_total",
        "gateway_circuit_breaker_state",
        "gateway_circuit_breaker_transitions_total",
        "gateway_rate_limit_hits_total",
        "gateway_tokens_total",
        "gateway_cost_usd_total",
        "gateway_cache_requests_total",
        "gateway_active_streams",
        "gateway_time_to_first_token_seconds",
        "gateway_overhead_seconds",
        "gateway_budget_usage_ratio",
        "gateway_instance_info",
    }
)

#: Series that Prometheus itself writes for every target or rule; no /metrics has them.
SYNTHETIC_SERIES: frozenset[str] = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)

_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count", "_created")


def _kustomize_command(path: Path) -> list[str]:
    kubectl = shutil.which("kubectl") or (
        "/usr/bin/kubectl" if Path("/usr/bin/kubectl").exists() else None
    )
    if kubectl:
        return [kubectl, "kustomize", str(path)]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build", str(path)]
    raise RuntimeError("neither kubectl nor kustomize is installed: cannot render k8s/")


@functools.cache
def _render_text(path: str) -> str:
    proc = subprocess.run(
        _kustomize_command(Path(path)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize failed for {path}:\n{proc.stderr}")
    return proc.stdout


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@functools.cache
def _render_objects(path: str) -> tuple[dict[str, Any], ...]:
    return tuple(d for d in yaml.load_all(_render_text(path), Loader=_Loader) if d)


def render(target: str | Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize`` renders for a target name or a directory.

    Each call returns fresh copies, so a test may change them.
    """
    path = RENDER_TARGETS.get(str(target), Path(target))
    return copy.deepcopy(list(_render_objects(str(Path(path).resolve()))))


def render_text(target: str | Path) -> str:
    path = RENDER_TARGETS.get(str(target), Path(target))
    return _render_text(str(Path(path).resolve()))


def find(
    objs: Iterable[dict[str, Any]], kind: str, name: str | None = None
) -> list[dict[str, Any]]:
    return [
        o for o in objs if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)
    ]


def find_one(objs: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(objs, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def find_configmap(objs: Iterable[dict[str, Any]], base_name: str) -> dict[str, Any]:
    """A generated ConfigMap by its name before kustomize appended the content hash."""
    pattern = re.compile(rf"^{re.escape(base_name)}(-[a-z0-9]{{10}})?$")
    found = [o for o in find(objs, "ConfigMap") if pattern.match(o["metadata"]["name"])]
    assert len(found) == 1, f"expected one ConfigMap {base_name}, found {len(found)}"
    return found[0]


def pod_specs(objs: Iterable[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, pod spec) for every Deployment, StatefulSet, DaemonSet and Job."""
    for o in objs:
        if o.get("kind") in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield o, o["spec"]["template"]["spec"]


def container(workload: dict[str, Any], name: str) -> dict[str, Any]:
    for c in workload["spec"]["template"]["spec"]["containers"]:
        if c["name"] == name:
            return c
    raise KeyError(name)


def env_settings(objs: list[dict[str, Any]]) -> dict[str, str]:
    """The environment the gateway container gets from its ConfigMap (not the Secret)."""
    return dict(find_configmap(objs, "llm-gateway-env").get("data", {}))


def gateway_config(objs: list[dict[str, Any]]) -> dict[str, Any]:
    """The parsed config.yaml of the ConfigMap llm-gateway-config."""
    data = find_configmap(objs, "llm-gateway-config")["data"]["config.yaml"]
    loaded = yaml.safe_load(data)
    assert isinstance(loaded, dict)
    return loaded


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: str | int | float) -> float:
    """``"30s"``, ``"1h30m"``, ``"100ms"`` or a number of seconds, in seconds."""
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    if not _DURATION.fullmatch(text):
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(text))


# --- metric names -------------------------------------------------------------------------

_PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
        "start",
        "end",
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")


def promql_metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects (functions and keywords left out).

    >>> sorted(promql_metric_names('sum by (le) (rate(x_bucket{a="b"}[5m])) / on(a) y > 1'))
    ['x_bucket', 'y']
    """
    names = set(_NAME_MATCHER.findall(expr))
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\[\]]*\]", " ", text)  # ranges and subqueries
    text = _GROUPING.sub(" ", text)  # by (...), on (...), group_left (...)
    text = re.sub(r"#[^\n]*", " ", text)  # comments
    for match in _IDENT.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS:
            continue
        names.add(word)
    return names


def _relabel_names(relabelings: Iterable[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for r in relabelings or ():
        if r.get("sourceLabels") == ["__name__"] and "regex" in r:
            names |= {p for p in str(r["regex"]).strip("()").split("|") if _METRIC_NAME.match(p)}
    return names


def referenced_metric_names(objs: list[dict[str, Any]] | None = None) -> set[str]:
    """Every series name in the PrometheusRule expressions and ServiceMonitor relabelings.

    Includes Prometheus' own series such as ``up``; :func:`gateway_metric_names` leaves those
    out. ``objs`` defaults to the rendered base.
    """
    objs = render("base") if objs is None else objs
    names: set[str] = set()
    for rule_obj in find(objs, "PrometheusRule"):
        for group in rule_obj["spec"]["groups"]:
            for rule in group["rules"]:
                names |= promql_metric_names(str(rule["expr"]))
    for monitor in find(objs, "ServiceMonitor"):
        for endpoint in monitor["spec"].get("endpoints", []):
            names |= _relabel_names(endpoint.get("metricRelabelings", []))
    return names


def gateway_metric_names(objs: list[dict[str, Any]] | None = None) -> set[str]:
    """The referenced series that the gateway's /metrics itself must expose."""
    return {n for n in referenced_metric_names(objs) if n not in SYNTHETIC_SERIES}


def metric_family(series: str) -> str:
    """``gateway_request_duration_seconds_bucket`` -> ``gateway_request_duration_seconds``."""
    for suffix in _HISTOGRAM_SUFFIXES:
        if series.endswith(suffix):
            return series[: -len(suffix)]
    return series


def exposition_names(text: str) -> set[str]:
    """Every family and series name in a Prometheus text exposition, declared or sampled.

    A labelled metric that has not been observed yet has ``# HELP``/``# TYPE`` lines and no
    sample; it counts as exported.
    """
    from prometheus_client.parser import text_string_to_metric_families

    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type in {"histogram", "gaugehistogram", "summary"}:
            names |= {family.name + s for s in _HISTOGRAM_SUFFIXES}
        names |= {sample.name for sample in family.samples}
    return names


def missing_metrics(exposition_text: str, names: Iterable[str] | None = None) -> set[str]:
    """The referenced gateway series (default: :func:`gateway_metric_names`) absent from
    a /metrics body."""
    wanted = gateway_metric_names() if names is None else set(names)
    exported = exposition_names(exposition_text)
    return {n for n in wanted if n not in exported and metric_family(n) not in exported}
