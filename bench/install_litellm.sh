#!/usr/bin/env bash
# Installs the LiteLLM proxy into its own virtualenv, bench/.litellm-venv, for the LiteLLM row
# of bench/run.py. Kept apart from .venv: LiteLLM pins versions of packages the gateway uses too.
#   bash bench/install_litellm.sh
# The version is pinned; 1.107.0 was a compromised release (withdrawn from PyPI), so pick a
# newer one only after checking it.
set -euo pipefail
cd "$(dirname "$0")"
version=1.106.0
python=python3.11
command -v "$python" >/dev/null 2>&1 || python=python3
if [[ ! -x .litellm-venv/bin/python ]]; then
  "$python" -m venv .litellm-venv
fi
# A venv of its own that git never sees (Python 3.11's venv writes no .gitignore of its own).
echo '*' > .litellm-venv/.gitignore
.litellm-venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.litellm-venv/bin/python -m pip install -q --disable-pip-version-check "litellm[proxy]==$version"
.litellm-venv/bin/litellm --version 2>/dev/null || .litellm-venv/bin/python -c \
  'import importlib.metadata as m; print("litellm", m.version("litellm"))'
