# syntax=docker/dockerfile:1.7
# llm-gateway image (SPEC §11): multi-stage, non-root 1000:1000, runs with a read-only root
# filesystem (writes only to /tmp), gRPC health as its HEALTHCHECK.
#   docker build -t llm-gateway:dev .
#   docker run --rm -p 8080:8080 -p 50051:50051 --read-only --tmpfs /tmp llm-gateway:dev
# Pin the base by digest too in your registry mirror if you need bit-for-bit rebuilds:
#   --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:...
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---- builder: build the project and every dependency into wheels --------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Compilers stay in this stage: they are only needed for a dependency that has no wheel for
# the target platform, and they never reach the runtime image. (Unpinned on purpose: Debian
# drops old package versions from its mirrors, and nothing built here ships but the wheels.)
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY gen ./gen
# constraints.txt pins every dependency to the versions CI tested. The cloud providers' extras
# (botocore for Bedrock, google-auth for Vertex) are in the image, so every provider works.
RUN pip wheel '.[bedrock,vertex]' -w /wheels -c constraints.txt

# ---- runtime: wheels only, no compilers, no pip cache, no source tree ---------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="llm-gateway" \
      org.opencontainers.image.description="LLM gateway: OpenAI-compatible REST facade and gRPC core" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 1000 gateway \
 && useradd --system --uid 1000 --gid 1000 --home-dir /tmp --no-create-home \
            --shell /usr/sbin/nologin gateway

# The wheels are bind-mounted from the builder, so they add no layer to this image. pip
# compiles the .pyc files here, at build time, so nothing is written at run time.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels 'llm-gateway[bedrock,vertex]' \
 && rm -rf /root/.cache

# Read-only root filesystem: no bytecode writes, HOME and TMPDIR on the /tmp volume.
ENV PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    TMPDIR=/tmp

WORKDIR /app
USER 1000:1000

EXPOSE 8080 50051

# The standard gRPC health protocol, service "" (the Kubernetes probes use it natively).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, grpc; from grpc_health.v1 import health_pb2 as pb, health_pb2_grpc as rpc; ch = grpc.insecure_channel('127.0.0.1:50051'); r = rpc.HealthStub(ch).Check(pb.HealthCheckRequest(service=''), timeout=3); sys.exit(0 if r.status == pb.HealthCheckResponse.SERVING else 1)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["gateway"]
CMD ["serve"]
