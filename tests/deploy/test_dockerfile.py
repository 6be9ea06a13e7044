"""The Dockerfile and .dockerignore, checked with hadolint-style rules written in Python.

No Docker engine runs here, so the image is never built by the tests; what can be checked
without one is: the instructions (pinned base, multi-stage, non-root, no compilers or secrets
in the runtime stage, HEALTHCHECK, ports, entrypoint), the build context the .dockerignore
leaves, and the HEALTHCHECK command itself, run against a real gRPC health server.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import pytest
from deploy_manifests import REPO
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON array of an exec-form CMD/ENTRYPOINT/RUN, or None for shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        return value if isinstance(value, list) and all(isinstance(v, str) for v in value) else None


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def parse_dockerfile(text: str) -> Dockerfile:
    """Logical instructions (continuations joined, comments dropped), grouped by stage."""
    instructions: list[Instruction] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1] + " "
            continue
        buffer += stripped
        keyword, _, args = buffer.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
        buffer = ""
    assert not buffer, "the Dockerfile ends inside a continued line"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            words = [w for w in ins.args.split() if not w.startswith("--")]
            image = re.sub(
                r"\$\{?(\w+)\}?", lambda m: global_args.get(m.group(1), m.group(0)), words[0]
            )
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages:
            assert ins.keyword == "ARG", f"line {ins.line}: only ARG may precede FROM"
            key, _, value = ins.args.partition("=")
            global_args[key.strip()] = value.strip().strip('"')
        else:
            stages[-1].instructions.append(ins)
    return Dockerfile(global_args, stages)


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    return parse_dockerfile(DOCKERFILE.read_text())


def env_pairs(ins: Instruction) -> dict[str, str]:
    """ENV/ARG/LABEL key=value pairs (the legacy `ENV key value` form too)."""
    words = shlex.split(ins.args)
    if ins.keyword == "ENV" and len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return {k: v for k, _, v in (w.partition("=") for w in words)}


# --- base images --------------------------------------------------------------------------


def test_base_images_are_pinned_python_311_slim(dockerfile: Dockerfile) -> None:
    stage_names = {s.name for s in dockerfile.stages if s.name}
    for stage in dockerfile.stages:
        image = stage.image
        if image in stage_names:
            continue
        assert "$" not in image, f"unresolved base image {image}"
        repo, _, tag = image.partition("@")[0].rpartition(":")
        assert repo and tag, f"{image}: no tag (DL3006)"
        assert tag != "latest", f"{image}: latest is not a version (DL3007)"
        assert re.fullmatch(r"3\.11\.\d+-slim(-bookworm|-trixie)?", tag), (
            f"{image}: expected python:3.11.<patch>-slim-<debian>"
        )
        assert repo.rsplit("/", 1)[-1] == "python"
        if "@" in image:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", image.partition("@")[2])


def test_multi_stage_build_ships_wheels_only(dockerfile: Dockerfile) -> None:
    assert len(dockerfile.stages) >= 2
    builder = next(s for s in dockerfile.stages if s.name == "builder")
    assert any(re.search(r"\bpip wheel '\.\[bedrock,vertex\]' -w /wheels\b", r.args)
               for r in builder.all("RUN")), (
        "the builder builds every wheel, the cloud extras' too, into /wheels"
    )
    final = dockerfile.final
    assert final is not builder and final.image == builder.image, "one base for both stages"
    takes_wheels = [
        i
        for i in final.instructions
        if re.search(r"(--|,)from=builder\b", i.args) and "/wheels" in i.args
    ]
    assert takes_wheels, "the runtime stage takes the wheels from the builder"
    installs = [r for r in final.all("RUN") if re.search(r"\bpip install\b", r.args)]
    assert installs and all("--no-index" in r.args for r in installs), "wheels only, no index"
    assert any("'llm-gateway[bedrock,vertex]'" in r.args for r in installs), (
        "the image installs the Bedrock and Vertex extras")
    for copy in final.all("COPY") + final.all("ADD"):
        assert "--from=" in copy.args, f"line {copy.line}: the runtime stage copies no source"


def test_runtime_stage_has_no_compilers(dockerfile: Dockerfile) -> None:
    compilers = re.compile(
        r"\b(build-essential|gcc|g\+\+|clang|cpp|make|cmake|libc6-dev|python3?-dev|"
        r"[\w.+-]+-dev)\b"
    )
    for run in dockerfile.final.all("RUN"):
        assert not compilers.search(run.args), f"line {run.line}: {run.args}"
        assert "apt-get install" not in run.args and "apk add" not in run.args


def test_apt_hygiene_in_every_stage(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            if "apt-get install" in run.args:
                assert "--no-install-recommends" in run.args, f"line {run.line} (DL3015)"
                assert re.search(r"\s-y\b|--yes\b", run.args), f"line {run.line} (DL3014)"
                assert "rm -rf /var/lib/apt/lists" in run.args, f"line {run.line} (DL3009)"
                assert "apt-get update" in run.args, f"line {run.line} (DL3059: same layer)"
            assert not re.search(r"(^|&&|;)\s*cd\s", run.args), f"line {run.line}: WORKDIR (DL3003)"
            assert "sudo " not in run.args, f"line {run.line} (DL3004)"
            if re.search(r"\bpip install\b|\bpip wheel\b", run.args):
                env = {k: v for e in stage.all("ENV") for k, v in env_pairs(e).items()}
                assert "--no-cache-dir" in run.args or env.get("PIP_NO_CACHE_DIR") in {
                    "1",
                    "true",
                }, f"line {run.line} (DL3042)"
        assert not stage.all("ADD"), "COPY, not ADD (DL3020)"
        assert not stage.all("MAINTAINER"), "DL4000"
        for workdir in stage.all("WORKDIR"):
            assert workdir.args.startswith("/"), "absolute WORKDIR (DL3000)"


# --- runtime properties -------------------------------------------------------------------


def test_runs_as_uid_1000(dockerfile: Dockerfile) -> None:
    users = dockerfile.final.all("USER")
    assert users, "the runtime stage sets USER"
    assert users[-1].args in {"1000", "1000:1000"}, "numeric, so runAsNonRoot can verify it"
    accounts = " ".join(r.args for r in dockerfile.final.all("RUN"))
    assert re.search(r"--uid 1000\b", accounts) and re.search(r"--gid 1000\b", accounts)


def test_works_with_a_read_only_root_filesystem(dockerfile: Dockerfile) -> None:
    env: dict[str, str] = {}
    for ins in dockerfile.final.all("ENV"):
        env.update(env_pairs(ins))
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("PYTHONUNBUFFERED") == "1"
    for var in ("HOME", "TMPDIR"):
        assert env.get(var, "/tmp").startswith("/tmp"), f"{var} must be on the /tmp volume"
    for volume in dockerfile.final.all("VOLUME"):
        assert volume.args.strip('[]" ') == "/tmp"
    # The bytecode is compiled at build time, before PYTHONDONTWRITEBYTECODE is set.
    keywords = [(i.keyword, i.args) for i in dockerfile.final.instructions]
    install = next(n for n, (k, a) in enumerate(keywords) if k == "RUN" and "pip install" in a)
    no_bytecode = next(
        n for n, (k, a) in enumerate(keywords) if k == "ENV" and "PYTHONDONTWRITEBYTECODE" in a
    )
    assert install < no_bytecode
    assert "--no-compile" not in keywords[install][1]


def test_exposes_http_and_grpc(dockerfile: Dockerfile) -> None:
    ports = {p.split("/")[0] for e in dockerfile.final.all("EXPOSE") for p in e.args.split()}
    assert {"8080", "50051"} <= ports


def test_entrypoint_and_cmd(dockerfile: Dockerfile) -> None:
    (entrypoint,) = dockerfile.final.all("ENTRYPOINT")
    (cmd,) = dockerfile.final.all("CMD")
    assert entrypoint.exec_form() == ["gateway"], "exec form, so SIGTERM reaches the gateway"
    assert cmd.exec_form() == ["serve"]
    stop = dockerfile.final.all("STOPSIGNAL")
    assert not stop or stop[-1].args == "SIGTERM"


def _healthcheck_code(dockerfile: Dockerfile) -> str:
    (check,) = dockerfile.final.all("HEALTHCHECK")
    options, _, command = check.args.partition("CMD ")
    assert command, "HEALTHCHECK CMD ..."
    for option in ("--interval", "--timeout", "--start-period", "--retries"):
        assert option in options
    argv = json.loads(command)
    assert argv[:2] == ["python", "-c"], "exec form, no shell needed"
    return str(argv[2])


def test_healthcheck_uses_grpc_health_on_50051(dockerfile: Dockerfile) -> None:
    code = _healthcheck_code(dockerfile)
    assert "grpc_health.v1" in code and "HealthStub" in code
    assert "127.0.0.1:50051" in code and "timeout=" in code


@pytest.fixture(scope="module")
def health_server() -> Iterator[tuple[health.HealthServicer, int]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(None).wait()


@pytest.mark.parametrize(
    ("status", "exit_code"),
    [(health_pb2.HealthCheckResponse.SERVING, 0), (health_pb2.HealthCheckResponse.NOT_SERVING, 1)],
)
def test_healthcheck_command_against_a_real_health_server(
    dockerfile: Dockerfile,
    health_server: tuple[health.HealthServicer, int],
    status: int,
    exit_code: int,
) -> None:
    servicer, port = health_server
    servicer.set("", status)
    code = _healthcheck_code(dockerfile).replace("127.0.0.1:50051", f"127.0.0.1:{port}")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == exit_code, proc.stderr


def test_healthcheck_fails_when_nothing_listens(dockerfile: Dockerfile) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connection refused
        code = _healthcheck_code(dockerfile).replace("127.0.0.1:50051", f"127.0.0.1:{port}")
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
        )
    assert proc.returncode != 0


# --- secrets ------------------------------------------------------------------------------

SECRET_NAME = re.compile(
    r"(API_?KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|"
    r"ENCRYPTION_KEY|DATABASE_URL|ADMIN_KEY)",
    re.IGNORECASE,
)


def test_no_secrets_in_env_arg_or_label(dockerfile: Dockerfile) -> None:
    declared = dict(dockerfile.global_args)
    for stage in dockerfile.stages:
        for ins in stage.all("ENV") + stage.all("ARG") + stage.all("LABEL"):
            declared.update(env_pairs(ins))
    leaked = {k: v for k, v in declared.items() if SECRET_NAME.search(k) and v.strip('"')}
    assert not leaked, f"secrets belong in the runtime environment, not the image: {sorted(leaked)}"
    text = DOCKERFILE.read_text()
    assert not re.search(r"sk-[A-Za-z0-9_\-]{16,}|AIza[0-9A-Za-z_\-]{20,}", text)
    for stage in dockerfile.stages:
        for copy in stage.all("COPY"):
            assert not re.search(r"(^|\s)\.env\b|\.pem\b|id_rsa", copy.args), copy.args


def test_no_secret_rule_catches_one() -> None:
    bad = parse_dockerfile("FROM python:3.11.9-slim\nENV OPENAI_API_KEY=abc \\\n    X=1\n")
    pairs = env_pairs(bad.final.all("ENV")[0])
    assert {k for k, v in pairs.items() if SECRET_NAME.search(k) and v} == {"OPENAI_API_KEY"}


# --- build context ------------------------------------------------------------------------


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes; a dir covers its files."""
    excluded = False
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        pattern = pattern.strip().rstrip("/").lstrip("/")
        if pattern.startswith("**/"):
            matched = any(fnmatch.fnmatch(p, pattern[3:]) for p in parts) or any(
                fnmatch.fnmatch(p, pattern) for p in prefixes
            )
        else:
            matched = any(fnmatch.fnmatchcase(p, pattern) for p in prefixes)
        if matched:
            excluded = not negate
    return excluded


def test_dockerignore_keeps_what_the_build_copies_and_nothing_else() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    sources = []
    for stage in parse_dockerfile(DOCKERFILE.read_text()).stages:
        for copy in stage.all("COPY"):
            if "--from=" in copy.args:
                continue
            words = [w for w in copy.args.split() if not w.startswith("--")]
            sources += [w.rstrip("/") for w in words[:-1]]
    assert {"pyproject.toml", "gateway", "gen"} <= set(sources)
    for src in sources:
        assert (REPO / src).exists(), f"COPY {src}: missing from the repository"
        assert not dockerignore_excludes(patterns, src), f"COPY {src} but .dockerignore drops it"
    for kept in ("gateway/cli.py", "gen/llmgateway/__init__.py"):
        assert not dockerignore_excludes(patterns, kept), kept
    for dropped in (
        ".git/config",
        ".venv/bin/python",
        "tests/conftest.py",
        "k8s/base",
        "gateway/__pycache__/cli.cpython-311.pyc",
        ".env",
        "docs/deploy.md",
        "llm_gateway.egg-info/PKG-INFO",
        "bench",
    ):
        assert dockerignore_excludes(patterns, dropped), f"{dropped} must stay out of the image"


def test_pyproject_readme_is_in_the_build_context() -> None:
    """`pip wheel .` reads the readme that pyproject.toml names; the builder must COPY it."""
    import tomllib

    readme = tomllib.loads((REPO / "pyproject.toml").read_text())["project"].get("readme")
    if isinstance(readme, dict):
        readme = readme.get("file")
    if readme:
        builder = next(
            s for s in parse_dockerfile(DOCKERFILE.read_text()).stages if s.name == "builder"
        )
        assert any(readme in c.args.split() for c in builder.all("COPY"))
