#!/usr/bin/env bash
# The reliability scorecard: run the fuzz, fault, security, hostile-client and soak tests,
# then render what they recorded (tests/reliability/scorecard.py) into the table between
# <!-- scorecard:begin --> and <!-- scorecard:end --> in docs/reliability.md.
#   bash scripts/scorecard.sh            # the long runs (GATEWAY_LONG_RUNS=1), ~16 min on 2 cores
#   bash scripts/scorecard.sh --fast     # the CI-sized runs, ~6 min on 2 cores
#   bash scripts/scorecard.sh --dry-run  # print the table, leave docs/reliability.md alone
# Other arguments go to pytest (e.g. -x, -k soak). Exits with pytest's status; the table is
# rendered either way, and says how pytest ended.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=long
render_args=()
pytest_args=()
for arg in "$@"; do
  case $arg in
    --fast) mode=fast ;;
    --dry-run) render_args+=(--dry-run) ;;
    *) pytest_args+=("$arg") ;;
  esac
done

[[ -x .venv/bin/python ]] || bash scripts/setup.sh

work=$(mktemp -d -t gateway-scorecard-XXXXXX)
trap 'rm -rf "$work"' EXIT
export SCORECARD_FILE="$work/scorecard.jsonl"
if [[ $mode == long ]]; then export GATEWAY_LONG_RUNS=1; else unset GATEWAY_LONG_RUNS; fi

paths=()
for path in tests/fuzz tests/reliability tests/integration/test_hostile_clients.py; do
  [[ -e $path ]] && paths+=("$path")
done

echo "== scorecard ($mode): pytest ${paths[*]}"
set +e
.venv/bin/python -m pytest "${paths[@]}" -p no:cacheprovider "${pytest_args[@]}" 2>&1 |
  tee "$work/pytest.log"
status=${PIPESTATUS[0]}
set -e

summary=$(grep -E '^=+ .*(passed|failed|error|no tests ran).* =+$' "$work/pytest.log" | tail -1 |
          sed -E 's/^=+ //; s/ =+$//')
.venv/bin/python scripts/render_scorecard.py "$SCORECARD_FILE" --doc docs/reliability.md \
  --mode "$mode" --pytest "${summary:-pytest ended with status $status}" "${render_args[@]}"
exit "$status"
