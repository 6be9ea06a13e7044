"""The Kubernetes manifests under k8s/ (SPEC §11): they render, validate, and keep their promises.

Every kustomization is rendered with ``kubectl kustomize`` and every built-in object is
validated offline against the Kubernetes OpenAPI schemas (``kubernetes-validate``, strict:
unknown fields fail). CRDs (ServiceMonitor, PrometheusRule, ExternalSecret) have no built-in
schema: their structure is checked here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_manifests import (
    K8S,
    RENDER_TARGETS,
    SPEC_METRICS,
    container,
    env_settings,
    find,
    find_configmap,
    find_one,
    gateway_config,
    gateway_metric_names,
    metric_family,
    parse_duration,
    pod_specs,
    promql_metric_names,
    referenced_metric_names,
    render,
    render_text,
)

NAMESPACE = "llm-gateway"
TARGETS = list(RENDER_TARGETS)
#: The oldest Kubernetes the manifests support (native gRPC probes are GA in 1.27) and the
#: newest schema the validator ships.
SCHEMA_VERSIONS = ["1.28", kubernetes_validate.utils.latest_version()]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule", "ExternalSecret"}
GATEWAY_LABELS = {"app.kubernetes.io/name": "llm-gateway", "app.kubernetes.io/component": "gateway"}


def gateway_deployment(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return find_one(objs, "Deployment", "llm-gateway")


def gateway_container(objs: list[dict[str, Any]]) -> dict[str, Any]:
    return container(gateway_deployment(objs), "gateway")


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


# --- rendering and schemas ----------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_renders_every_kind_into_the_namespace(target: str) -> None:
    objs = render(target)
    kinds = {o["kind"] for o in objs}
    expected = {
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ConfigMap",
        "Secret",
        "StatefulSet",
        "Deployment",
        "Service",
        "Ingress",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "PrometheusRule",
    }
    assert expected <= kinds, f"missing kinds: {expected - kinds}"
    if target == "dev":
        assert "HorizontalPodAutoscaler" not in kinds
    else:
        assert "HorizontalPodAutoscaler" in kinds
    find_one(objs, "Namespace", NAMESPACE)
    for o in objs:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == NAMESPACE, o["metadata"]["name"]
    ids = [(o["kind"], o["metadata"]["name"]) for o in objs]
    assert len(ids) == len(set(ids)), "duplicate objects"


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_builtin_objects_validate_against_kubernetes_schemas(target: str, version: str) -> None:
    errors = []
    for obj in render(target):
        if obj["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {e.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("target", TARGETS)
def test_references_between_objects_resolve(target: str) -> None:
    objs = render(target)
    names = {(o["kind"], o["metadata"]["name"]) for o in objs}
    dep = gateway_deployment(objs)
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    assert ("ServiceAccount", spec["serviceAccountName"]) in names
    for src in gateway_container(objs)["envFrom"]:
        ref = src.get("configMapRef") or src.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in src else "Secret"
        assert (kind, ref["name"]) in names, ref
        assert not ref.get("optional"), "a missing ConfigMap/Secret must stop the pod"
    for vol in spec["volumes"]:
        if "configMap" in vol:
            assert ("ConfigMap", vol["configMap"]["name"]) in names
    assert selects(dep["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])

    binding = find_one(objs, "RoleBinding", "llm-gateway")
    assert ("Role", binding["roleRef"]["name"]) in names
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": spec["serviceAccountName"], "namespace": NAMESPACE}
    ]
    for hpa in find(objs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["kind"], ref["name"]) == ("Deployment", "llm-gateway")
    pdb = find_one(objs, "PodDisruptionBudget")
    assert selects(pdb["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
    sts = find_one(objs, "StatefulSet", "redis")
    assert ("Service", sts["spec"]["serviceName"]) in names
    ingress = find_one(objs, "Ingress")
    services = {s["metadata"]["name"]: s for s in find(objs, "Service")}
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            port_names = {p["name"] for p in services[backend["name"]]["spec"]["ports"]}
            assert backend["port"]["name"] in port_names


# --- the gateway Deployment ---------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_is_non_root_read_only_and_confined(target: str) -> None:
    for workload, spec in pod_specs(render(target)):
        name = workload["metadata"]["name"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID") and not spec.get("hostIPC")
        for c in spec["containers"] + spec.get("initContainers", []):
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
            assert sc.get("readOnlyRootFilesystem") is True, (name, c["name"])
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], (name, c["name"])
            assert not sc.get("capabilities", {}).get("add"), (name, c["name"])
            assert not sc.get("privileged"), (name, c["name"])
            assert c.get("resources", {}).get("requests") and c["resources"].get("limits")
            image = c["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), image


@pytest.mark.parametrize("target", TARGETS)
def test_gateway_runs_as_uid_1000_with_tmp_volume(target: str) -> None:
    objs = render(target)
    spec = gateway_deployment(objs)["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["runAsGroup"] == 1000
    c = gateway_container(objs)
    assert c["securityContext"].get("runAsUser", 1000) == 1000
    assert c["image"] != "llm-gateway" and "/" in c["image"], (
        "the kustomize `images:` entry must name the gateway image and its registry"
    )
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp under a read-only root"
    config_volume = volumes[mounts["/etc/llm-gateway"]]
    assert "configMap" in config_volume
    assert c["args"][:1] == ["serve"]
    config_path = c["args"][c["args"].index("--config") + 1]
    assert config_path == "/etc/llm-gateway/config.yaml"
    assert env_settings(objs)["GATEWAY_CONFIG"] == config_path
    assert "config.yaml" in find_configmap(objs, "llm-gateway-config")["data"]


@pytest.mark.parametrize("target", TARGETS)
def test_probes_use_native_grpc_health(target: str) -> None:
    c = gateway_container(render(target))
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8080, "grpc": 50051}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert set(c[probe]) & {"grpc", "httpGet", "exec", "tcpSocket"} == {"grpc"}, probe
        assert c[probe]["grpc"]["port"] == 50051, probe
    assert c["livenessProbe"]["grpc"].get("service", "") == ""
    assert c["readinessProbe"]["grpc"]["service"] == "llmgateway.v1.GatewayService"
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30


@pytest.mark.parametrize("target", TARGETS)
def test_grace_period_outlasts_prestop_drain_and_shutdown(target: str) -> None:
    objs = render(target)
    spec = gateway_deployment(objs)["spec"]["template"]["spec"]
    env = env_settings(objs)
    server = gateway_config(objs).get("server", {})
    drain = int(env["DRAIN_TIMEOUT"])
    shutdown = int(env["SHUTDOWN_TIMEOUT"])
    # The file and the environment must tell the same story (the env wins in the app).
    assert parse_duration(server.get("drain_timeout", "15s")) == drain
    assert parse_duration(server.get("shutdown_timeout", "30s")) == shutdown
    command = gateway_container(objs)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "/bin/sleep" and len(command) == 2, command
    pre_stop = int(command[1])
    assert pre_stop >= 1
    assert spec["terminationGracePeriodSeconds"] > pre_stop + drain + shutdown


@pytest.mark.parametrize("target", TARGETS)
def test_pod_identity_metrics_annotations_and_spread(target: str) -> None:
    objs = render(target)
    template = gateway_deployment(objs)["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8080"
    assert annotations["prometheus.io/path"] == "/metrics"
    env = {e["name"]: e for e in gateway_container(objs)["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    anti = template["spec"]["affinity"]["podAntiAffinity"]
    terms = [
        t["podAffinityTerm"]
        for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])
    ]
    terms += anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    assert any(
        t["topologyKey"] == "kubernetes.io/hostname"
        and selects(t["labelSelector"]["matchLabels"], template["metadata"]["labels"])
        for t in terms
    )


def test_overlays_size_the_deployment() -> None:
    def cpu(q: str) -> float:
        return float(q[:-1]) / 1000 if q.endswith("m") else float(q)

    def mem(q: str) -> float:
        units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
        return float(q[:-2]) * units[q[-2:]]

    sizes = {}
    for target in TARGETS:
        objs = render(target)
        res = gateway_container(objs)["resources"]
        sizes[target] = (
            gateway_deployment(objs)["spec"]["replicas"],
            cpu(res["requests"]["cpu"]),
            mem(res["limits"]["memory"]),
        )
        assert cpu(res["requests"]["cpu"]) <= cpu(res["limits"]["cpu"])
        assert mem(res["requests"]["memory"]) <= mem(res["limits"]["memory"])
    assert sizes["production"][0] == 3 and sizes["dev"][0] == 1 and sizes["base"][0] == 2
    assert sizes["production"][1] > sizes["base"][1] > sizes["dev"][1]
    assert sizes["production"][2] > sizes["base"][2]
    dep = gateway_deployment(render("production"))
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert dep["spec"]["revisionHistoryLimit"] >= 3


# --- Service, Ingress, HPA, PDB -----------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_service_ports_and_app_protocols(target: str) -> None:
    objs = render(target)
    svc = find_one(objs, "Service", "llm-gateway")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert svc["spec"]["selector"] == GATEWAY_LABELS
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert set(ports) == {"http", "grpc"}
    container_ports = {p["name"]: p["containerPort"] for p in gateway_container(objs)["ports"]}
    assert ports["http"]["port"] == 80 and container_ports[ports["http"]["targetPort"]] == 8080
    assert ports["grpc"]["port"] == 50051 and container_ports[ports["grpc"]["targetPort"]] == 50051
    assert ports["http"]["appProtocol"] == "http"
    assert ports["grpc"]["appProtocol"] in {"kubernetes.io/h2c", "grpc"}
    headless = find_one(objs, "Service", "llm-gateway-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == GATEWAY_LABELS


@pytest.mark.parametrize("target", TARGETS)
def test_ingress_terminates_tls_for_the_rest_api(target: str) -> None:
    ingress = find_one(render(target), "Ingress", "llm-gateway")
    tls_hosts = {h for t in ingress["spec"]["tls"] for h in t["hosts"]}
    assert all(t.get("secretName") for t in ingress["spec"]["tls"])
    for rule in ingress["spec"]["rules"]:
        assert rule["host"] in tls_hosts
        paths = {p["path"] for p in rule["http"]["paths"]}
        assert paths == {"/v1"}, "only the OpenAI-compatible API is public"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    body = annotations["nginx.ingress.kubernetes.io/proxy-body-size"]
    limit = gateway_config(render(target))["server"]["max_request_body_size"]
    assert int(body.rstrip("m")) * 2**20 == limit


@pytest.mark.parametrize(
    ("target", "min_replicas", "max_replicas"), [("base", 2, 10), ("production", 3, 20)]
)
def test_hpa_scales_on_cpu_and_memory_and_down_gradually(
    target: str, min_replicas: int, max_replicas: int
) -> None:
    hpa = find_one(render(target), "HorizontalPodAutoscaler", "llm-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    spec = hpa["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (min_replicas, max_replicas)
    targets = {
        m["resource"]["name"]: m["resource"]["target"]["averageUtilization"]
        for m in spec["metrics"]
        if m["type"] == "Resource" and m["resource"]["target"]["type"] == "Utilization"
    }
    assert targets == {"cpu": 70, "memory": 80}
    down = spec["behavior"]["scaleDown"]
    assert down["stabilizationWindowSeconds"] == 300
    assert down["policies"] == [{"type": "Percent", "value": 10, "periodSeconds": 60}]
    up = spec["behavior"]["scaleUp"]
    assert up["stabilizationWindowSeconds"] == 0
    assert all(p["periodSeconds"] <= 30 for p in up["policies"])
    replicas = gateway_deployment(render(target))["spec"]["replicas"]
    assert min_replicas <= replicas <= max_replicas


@pytest.mark.parametrize("target", TARGETS)
def test_pdb_lets_one_pod_go_at_a_time(target: str) -> None:
    pdb = find_one(render(target), "PodDisruptionBudget", "llm-gateway")
    assert pdb["spec"].get("maxUnavailable") == 1 or pdb["spec"].get("minAvailable") == 1


# --- network and access -------------------------------------------------------------------


def _peers_namespaces(rule: dict[str, Any], key: str) -> set[str]:
    return {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule.get(key, [])
        if "kubernetes.io/metadata.name" in peer.get("namespaceSelector", {}).get("matchLabels", {})
    }


@pytest.mark.parametrize("target", TARGETS)
def test_network_policy_allows_only_what_the_gateway_needs(target: str) -> None:
    objs = render(target)
    np = find_one(objs, "NetworkPolicy", "llm-gateway")
    spec = np["spec"]
    assert spec["podSelector"]["matchLabels"] == GATEWAY_LABELS
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    ingress_from: dict[str, set[int]] = {}
    for rule in spec["ingress"]:
        assert rule.get("from"), "no ingress rule may be open to everyone"
        for ns in _peers_namespaces(rule, "from"):
            ingress_from.setdefault(ns, set()).update(p["port"] for p in rule["ports"])
    assert ingress_from.get("ingress-nginx") == {8080}
    assert ingress_from.get("monitoring") == {8080}
    egress_ports = {
        (p["port"], p.get("protocol", "TCP")) for r in spec["egress"] for p in r["ports"]
    }
    assert {(53, "UDP"), (53, "TCP"), (6379, "TCP"), (5432, "TCP"), (443, "TCP")} <= egress_ports
    assert all(r.get("ports") for r in spec["egress"]), "egress is by port, never all ports"

    redis_np = find_one(objs, "NetworkPolicy", "redis")
    (rule,) = redis_np["spec"]["ingress"]
    assert [p["port"] for p in rule["ports"]] == [6379]
    assert [peer["podSelector"]["matchLabels"] for peer in rule["from"]] == [GATEWAY_LABELS]
    assert redis_np["spec"]["egress"] == []


@pytest.mark.parametrize("target", TARGETS)
def test_role_is_least_privilege(target: str) -> None:
    objs = render(target)
    configmaps = {o["metadata"]["name"] for o in find(objs, "ConfigMap")}
    (role,) = find(objs, "Role")
    assert not find(objs, "ClusterRole") and not find(objs, "ClusterRoleBinding")
    for rule in role["rules"]:
        assert rule["apiGroups"] == [""]
        assert rule["resources"] == ["configmaps"]
        assert set(rule["verbs"]) <= {"get", "watch"}
        # kustomize rewrote the names to the generated (hashed) ConfigMaps.
        assert rule["resourceNames"] and set(rule["resourceNames"]) <= configmaps
    sa = find_one(objs, "ServiceAccount", "llm-gateway")
    assert sa.get("automountServiceAccountToken") is False


@pytest.mark.parametrize("target", TARGETS)
def test_namespace_enforces_restricted_pod_security(target: str) -> None:
    labels = find_one(render(target), "Namespace", NAMESPACE)["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


# --- Redis ---------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_redis_statefulset_has_storage_and_headless_service(target: str) -> None:
    objs = render(target)
    sts = find_one(objs, "StatefulSet", "redis")
    svc = find_one(objs, "Service", sts["spec"]["serviceName"])
    assert svc["spec"]["clusterIP"] == "None"
    assert selects(svc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"])
    assert [p["port"] for p in svc["spec"]["ports"]] == [6379]
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(sts, "redis")["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/data"
    assert claim["spec"]["resources"]["requests"]["storage"]
    args = container(sts, "redis")["args"]
    assert args[args.index("--maxmemory") + 1].endswith("mb")
    redis_url = env_settings(objs)["REDIS_URL"]
    assert redis_url.startswith(f"redis://{svc['metadata']['name']}:6379")


# --- configuration ------------------------------------------------------------------------

#: The config shape of SPEC §3: section -> its keys (None: free-form mapping).
SPEC_CONFIG_KEYS: dict[str, set[str] | None] = {
    "server": {
        "address",
        "grpc_address",
        "max_request_body_size",
        "shutdown_timeout",
        "drain_timeout",
        "trusted_proxy_cidrs",
    },
    "logging": {"level", "format"},
    "rate_limit": {"enabled", "requests_per_second", "burst"},
    "observability": {"enabled", "metrics", "tracing"},
    "redis": {"url"},
    "database": {"url"},
    "conversations": {"store", "dsn", "driver", "ttl"},
    "cache": {"enabled", "store", "ttl"},
    "circuit_breaker": {
        "distributed",
        "failure_ratio",
        "min_requests",
        "consecutive_failures",
        "interval",
        "open_timeout",
        "half_open_requests",
    },
    "retry": {"attempts", "backoff", "max_backoff"},
    "auth": {"admin_keys", "api_keys", "oidc"},
    "admin": {"enabled"},
    "providers": None,
    "models": None,
    "default_provider": None,
    "pricing": None,
}
ENV_OVERRIDES = {
    "ADDR",
    "GRPC_ADDR",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "DEFAULT_PROVIDER",
    "USE_DISTRIBUTED_CB",
    "SHUTDOWN_TIMEOUT",
    "DRAIN_TIMEOUT",
    "REDIS_URL",
    "DATABASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GOOGLE_API_KEY",
    "OLLAMA_BASE_URL",
    "ENCRYPTION_KEY",
    "OIDC_ISSUER",
    "OIDC_AUDIENCE",
    "OTLP_ENDPOINT",
    "GATEWAY_ADMIN_KEY",
    "POD_NAME",
    "POD_NAMESPACE",
    "GATEWAY_CONFIG",
}
DURATION_KEYS = {
    "shutdown_timeout",
    "drain_timeout",
    "ttl",
    "interval",
    "open_timeout",
    "backoff",
    "max_backoff",
    "timeout",
    "jwks_refresh",
}


def _walk(node: Any, path: str = "") -> Any:
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("target", TARGETS)
def test_config_yaml_has_the_spec_shape(target: str) -> None:
    objs = render(target)
    config = gateway_config(objs)
    required = {
        "server",
        "logging",
        "rate_limit",
        "observability",
        "redis",
        "conversations",
        "circuit_breaker",
        "providers",
    }
    assert required <= set(config), f"missing sections: {required - set(config)}"
    for section, value in config.items():
        assert section in SPEC_CONFIG_KEYS, f"unknown config section {section!r}"
        allowed = SPEC_CONFIG_KEYS[section]
        if allowed is not None:
            assert isinstance(value, dict), section
            assert set(value) <= allowed, f"{section}: unknown keys {set(value) - allowed}"
    assert config["server"]["address"] == ":8080" and config["server"]["grpc_address"] == ":50051"
    assert config["observability"]["metrics"] == {"enabled": True, "path": "/metrics"}
    for path, value in _walk(config):
        if path.rsplit(".", 1)[-1] in DURATION_KEYS:
            parse_duration(value)  # raises on anything but 30s, 1h, 100ms
    for name, provider in config["providers"].items():
        assert "type" in provider, name
        if "api_key" in provider:
            assert re.fullmatch(r"\$\{[A-Z0-9_]+\}", provider["api_key"]), (
                f"providers.{name}.api_key must come from the environment"
            )
    for path, value in _walk(config):
        for var in re.findall(r"\$\{([A-Za-z0-9_]+)(?::-[^}]*)?\}", str(value)):
            assert var in ENV_OVERRIDES, f"{path} expands ${{{var}}}, which nothing sets"


@pytest.mark.parametrize("target", TARGETS)
def test_env_settings_are_known_overrides(target: str) -> None:
    objs = render(target)
    env = env_settings(objs)
    assert set(env) <= ENV_OVERRIDES, set(env) - ENV_OVERRIDES
    assert env["USE_DISTRIBUTED_CB"] in {"true", "false"}
    assert env["LOG_FORMAT"] == "json"
    assert env["DRAIN_TIMEOUT"].isdigit() and env["SHUTDOWN_TIMEOUT"].isdigit()
    secret = find_one(objs, "Secret", "llm-gateway-secrets")
    assert set(secret.get("stringData", {})) <= ENV_OVERRIDES
    assert not set(env) & set(secret.get("stringData", {})), "one source per variable"


@pytest.mark.parametrize("target", TARGETS)
def test_config_loads_with_gateway_config_check(target: str, tmp_path: Path) -> None:
    """`gateway config check` accepts every shipped config.yaml (skipped until the CLI exists)."""
    import importlib.util

    if importlib.util.find_spec("gateway.cli") is None:
        pytest.skip("gateway.cli is not written yet")
    objs = render(target)
    path = tmp_path / "config.yaml"
    path.write_text(find_configmap(objs, "llm-gateway-config")["data"]["config.yaml"])
    env = {k: v for k, v in os.environ.items() if k not in ENV_OVERRIDES}
    env.update(env_settings(objs))
    env.pop("GATEWAY_CONFIG", None)
    env.update(
        {
            "OPENAI_API_KEY": "placeholder-openai",
            "ANTHROPIC_API_KEY": "placeholder-anthropic",
            "GOOGLE_API_KEY": "placeholder-google",
            "GATEWAY_ADMIN_KEY": "placeholder-admin",
            "POD_NAME": "llm-gateway-0",
            "POD_NAMESPACE": NAMESPACE,
        }
    )
    script = Path(sys.executable).with_name("gateway")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "gateway"]
    proc = subprocess.run(
        [*cmd, "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "placeholder-" not in proc.stdout + proc.stderr, "config check printed a secret"


# --- secrets ------------------------------------------------------------------------------

REAL_LOOKING_SECRETS = [
    re.compile(r"sk-[A-Za-z0-9_\-]{16,}"),  # OpenAI, Anthropic (sk-ant-...)
    re.compile(r"AIza[0-9A-Za-z_\-]{20,}"),  # Google API keys
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub tokens
    re.compile(r"xox[abpr]-[A-Za-z0-9\-]{10,}"),  # Slack tokens
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access keys
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=(?![A-Za-z0-9+/=])"),  # 32 bytes, base64
    re.compile(
        r"(?:postgres(?:ql)?|redis|rediss)://[^:/@\s\"'<]+:(?!\$\{|<)[^@\s\"']+@"
    ),  # URL with a password
]


def _real_looking(text: str) -> list[str]:
    return [m.group(0) for p in REAL_LOOKING_SECRETS for m in p.finditer(text)]


@pytest.mark.parametrize("target", TARGETS)
def test_secret_template_holds_no_real_secrets(target: str) -> None:
    objs = render(target)
    secret = find_one(objs, "Secret", "llm-gateway-secrets")
    assert secret.get("type", "Opaque") == "Opaque"
    assert not secret.get("data"), "the template uses stringData with empty values"
    values = secret["stringData"]
    assert {
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GOOGLE_API_KEY",
        "GATEWAY_ADMIN_KEY",
        "ENCRYPTION_KEY",
        "DATABASE_URL",
    } <= set(values)
    placeholder = re.compile(r"^(|<[^<>]*>|(REPLACE|CHANGE)[_-]?ME)$")
    bad = {k: v for k, v in values.items() if not placeholder.match(str(v))}
    assert not bad, f"the Secret template must hold placeholders only: {sorted(bad)}"
    assert not _real_looking(render_text(target))


def test_no_real_looking_secrets_anywhere_under_k8s() -> None:
    hits = {}
    for path in sorted(K8S.rglob("*")):
        if path.is_file():
            found = _real_looking(path.read_text())
            if found:
                hits[str(path.relative_to(K8S))] = found
    assert not hits, hits


def test_the_secret_detector_detects() -> None:
    assert _real_looking("OPENAI_API_KEY: sk-proj-AbCdEfGhIjKlMnOpQrStUv")
    assert _real_looking("key: 3q2+7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
    assert _real_looking("DATABASE_URL: postgres://app:hunter2@db:5432/x")
    assert not _real_looking('url: "${REDIS_URL:-redis://redis:6379/0}"')


def test_external_secret_component_replaces_the_template(tmp_path: Path) -> None:
    kustomize_dir = tmp_path / "with-eso"
    kustomize_dir.mkdir()
    rel = os.path.relpath(K8S, kustomize_dir)
    (kustomize_dir / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": [f"{rel}/overlays/production"],
                "components": [f"{rel}/components/external-secrets"],
            }
        )
    )
    objs = render(kustomize_dir)
    assert not find(objs, "Secret", "llm-gateway-secrets"), "the template must be dropped"
    es = find_one(objs, "ExternalSecret", "llm-gateway-secrets")
    assert es["apiVersion"] in {"external-secrets.io/v1", "external-secrets.io/v1beta1"}
    assert es["metadata"]["namespace"] == NAMESPACE
    spec = es["spec"]
    parse_duration(spec["refreshInterval"])
    assert spec["secretStoreRef"]["kind"] in {"SecretStore", "ClusterSecretStore"}
    assert spec["secretStoreRef"]["name"]
    assert spec["target"]["name"] == "llm-gateway-secrets"
    template_keys = set(
        find_one(render("production"), "Secret", "llm-gateway-secrets")["stringData"]
    )
    data = spec["data"]
    assert {d["secretKey"] for d in data} == template_keys
    assert all(d["remoteRef"]["key"] for d in data)
    assert not _real_looking(yaml.safe_dump_all(objs))
    # The example is not part of any kustomization's resources: the CRD may be absent.
    for target in TARGETS:
        assert not find(render(target), "ExternalSecret")


# --- monitoring ---------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_service_monitor_scrapes_the_gateway_service(target: str) -> None:
    objs = render(target)
    sm = find_one(objs, "ServiceMonitor", "llm-gateway")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    selector = sm["spec"]["selector"]["matchLabels"]
    selected = [
        s for s in find(objs, "Service") if selects(selector, s["metadata"].get("labels", {}))
    ]
    assert [s["metadata"]["name"] for s in selected] == ["llm-gateway"], "scrape each pod once"
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    known = {
        "port",
        "path",
        "scheme",
        "interval",
        "scrapeTimeout",
        "honorLabels",
        "relabelings",
        "metricRelabelings",
        "targetPort",
        "params",
        "tlsConfig",
    }
    for ep in sm["spec"]["endpoints"]:
        assert set(ep) <= known, set(ep) - known
        assert ep["port"] in port_names and ep["path"] == "/metrics"
        assert parse_duration(ep["scrapeTimeout"]) < parse_duration(ep["interval"])
        for r in ep.get("relabelings", []) + ep.get("metricRelabelings", []):
            assert r.get("action", "replace") in {
                "replace",
                "keep",
                "drop",
                "labeldrop",
                "labelkeep",
                "labelmap",
                "hashmod",
            }
    assert sm["spec"]["jobLabel"] == "app.kubernetes.io/name"
    assert selected[0]["metadata"]["labels"]["app.kubernetes.io/name"] == "llm-gateway"


def _balanced(expr: str) -> bool:
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for ch in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack.pop() != pairs[ch]:
                return False
    return not stack


@pytest.mark.parametrize("target", TARGETS)
def test_prometheus_rule_structure(target: str) -> None:
    rule_obj = find_one(render(target), "PrometheusRule", "llm-gateway")
    assert rule_obj["apiVersion"] == "monitoring.coreos.com/v1"
    alerts: dict[str, dict[str, Any]] = {}
    for group in rule_obj["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert ("alert" in rule) != ("record" in rule)
            assert set(rule) <= {
                "alert",
                "record",
                "expr",
                "for",
                "keep_firing_for",
                "labels",
                "annotations",
            }
            expr = str(rule["expr"])
            assert expr.strip() and _balanced(expr), rule
            assert re.search(r'job="llm-gateway"', expr), "scope every series to the gateway job"
            if "alert" in rule:
                assert rule["alert"] not in alerts, "alert names are unique"
                alerts[rule["alert"]] = rule
                parse_duration(rule["for"])
                assert rule["labels"]["severity"] in {"critical", "warning", "info"}
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    by_metric = {name: promql_metric_names(str(r["expr"])) for name, r in alerts.items()}

    def alert_on(metric: str) -> list[str]:
        return [a for a, names in by_metric.items() if metric in names]

    assert alert_on("gateway_requests_total"), "high error rate"
    assert alert_on("gateway_request_duration_seconds_bucket"), "high p99 latency"
    assert any(
        "histogram_quantile(0.99" in str(alerts[a]["expr"]).replace(" ", "")
        for a in alert_on("gateway_request_duration_seconds_bucket")
    )
    assert alert_on("gateway_circuit_breaker_state"), "circuit breaker open"
    assert alert_on("gateway_rate_limit_hits_total"), "rate-limit surge"
    assert alert_on("up"), "pods down"


def test_alerts_use_only_metrics_the_gateway_exports() -> None:
    names = referenced_metric_names()
    assert "up" in names
    families = {metric_family(n) for n in gateway_metric_names()}
    assert families and families <= SPEC_METRICS, families - SPEC_METRICS
    assert gateway_metric_names() == {
        "gateway_requests_total",
        "gateway_request_duration_seconds_bucket",
        "gateway_circuit_breaker_state",
        "gateway_rate_limit_hits_total",
    }
    for target in TARGETS:  # overlays change nothing in the alerting
        assert referenced_metric_names(render(target)) == names


def test_promql_metric_name_extraction() -> None:
    assert promql_metric_names(
        "histogram_quantile(0.99, sum by (le, provider) "
        '(rate(a_bucket{job="x", s=~"5.."}[5m]))) > 30'
    ) == {"a_bucket"}
    assert promql_metric_names('absent(up{job="x"} == 1) or b offset 1h and on(pod) c') == {
        "up",
        "b",
        "c",
    }
    assert promql_metric_names('{__name__="d_total"} / ignoring(x) group_left(y) e') == {
        "d_total",
        "e",
    }
    assert promql_metric_names("max without (a) (f) > 1e3") == {"f"}


def test_kustomize_tool_is_available() -> None:
    assert shutil.which("kubectl") or shutil.which("kustomize") or Path("/usr/bin/kubectl").exists()
