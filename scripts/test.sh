#!/usr/bin/env bash
# The one test command: installs everything, then checks and tests the whole project.
#   bash scripts/test.sh [pytest args...]    (passed to both pytest passes; not -m)
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
# Two passes that together run every test: the tests marked `serial` (they load the machine
# or time a gateway tightly) alone in one process, after the rest on two workers (xdist).
# Both always run; status 5 ("no test selected") is accepted from one pass, not from both.
failed=0
ran=0
pytest_pass() {
  local status=0
  .venv/bin/python -m pytest -p no:cacheprovider "$@" || status=$?
  [[ $status == 0 ]] && ran=1
  [[ $status == 0 || $status == 5 ]] || failed=$status
}
echo "== pytest: all but serial, two workers"
pytest_pass -m "not serial" -n 2 "$@"
echo "== pytest: serial, one process"
pytest_pass -m serial "$@"
((failed == 0)) || exit "$failed"
((ran == 1)) || { echo "error: no test ran" >&2; exit 5; }
echo "== bench check (gross regressions only)"
.venv/bin/python bench/run.py --check
