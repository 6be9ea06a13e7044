#!/usr/bin/env bash
# The one test command: installs everything, then checks and tests the whole project.
#   bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "== generated code is up to date"
bash scripts/gen.sh --check
echo "== buf lint"
.tools/node_modules/.bin/buf lint
echo "== ruff"
.venv/bin/ruff check gateway tests $( [[ -d bench ]] && echo bench )
echo "== mypy (strict)"
.venv/bin/mypy
echo "== import layers (import-linter)"
.venv/bin/lint-imports --no-cache
echo "== pytest"
.venv/bin/python -m pytest -p no:cacheprovider "$@"
echo "== bench check (gross regressions only)"
.venv/bin/python bench/run.py --check
