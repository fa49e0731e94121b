#!/usr/bin/env bash
# Install llm-kb into .venv, build the bank and serve the API + site on http://127.0.0.1:8000/.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
exec .venv/bin/kb serve "$@"
