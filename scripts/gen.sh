#!/usr/bin/env bash
# Regenerates gen/llmgateway/v1 from proto/ (the one documented command).
#   bash scripts/gen.sh            write into gen/
#   bash scripts/gen.sh --check    fail when gen/ is stale
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=gen
if [[ ${1:-} == --check ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out/llmgateway/v1"
"$PY" -m grpc_tools.protoc -I proto \
  --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/llmgateway/v1/*.proto
printf '"""Generated protobuf package; see proto/ and scripts/gen.sh."""\n' > "$out/llmgateway/__init__.py"
printf '"""Generated from proto/llmgateway/v1; never edit by hand."""\n' > "$out/llmgateway/v1/__init__.py"
touch "$out/llmgateway/py.typed"
if [[ ${1:-} == --check ]]; then
  if ! diff -r -q -x __pycache__ gen "$out" >/dev/null; then
    diff -r -x __pycache__ gen "$out" | head -40
    echo "gen/ is stale: run 'bash scripts/gen.sh' and commit the result" >&2
    exit 1
  fi
  echo "gen/ is up to date"
fi
