#!/usr/bin/env bash
# Installs everything the gateway and its tests need, idempotently:
#   - system servers used by the tests (redis-server, PostgreSQL) and Debian's Chromium (the
#     admin UI's browser tests; Playwright drives it, never downloading a browser of its own)
#     when missing, via apt as root;
#   - the buf CLI from the npm registry into .tools/;
#   - a Python 3.11 virtualenv in .venv with the package and its dev extras, pinned by
#     constraints.txt.
# Usage: bash scripts/setup.sh [--runtime-only]
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_only=false
[[ ${1:-} == --runtime-only ]] && runtime_only=true

pick_python() {
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  echo "error: Python 3.11 is required (python3.11 or python3 on PATH)" >&2
  return 1
}

if [[ ! -x .venv/bin/python ]]; then
  "$(pick_python)" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if $runtime_only; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e .
  exit 0
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  need_apt+=(postgresql)
fi
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
[[ -x /usr/bin/chromium ]] || need_apt+=(chromium)
if ((${#need_apt[@]})); then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need_apt[*]} with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      "${need_apt[@]}" >/dev/null
  else
    echo "error: missing ${need_apt[*]}; install them (e.g. sudo apt-get install ${need_apt[*]})" >&2
    exit 1
  fi
fi

if [[ ! -x .tools/node_modules/.bin/buf ]]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed to install buf" >&2; exit 1; }
  npm install --silent --no-audit --no-fund --prefix .tools @bufbuild/buf@1.75.0 >/dev/null
fi
