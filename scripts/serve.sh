#!/usr/bin/env bash
# The one run command: installs the gateway, then serves it.
# With no config and no provider key in the environment it serves the mock provider.
#   bash scripts/serve.sh [--config FILE] [other `gateway serve` flags]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --runtime-only
exec .venv/bin/gateway serve "$@"
