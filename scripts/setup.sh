#!/usr/bin/env bash
# Creates .venv and installs the project with every extra, plus the CDK CLI for infra/.
# Idempotent: re-runs only when pyproject.toml / infra/package.json changed (stamp file).
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
stamp=.s2s-setup-stamp
inputs=(pyproject.toml scripts/constraints.txt)
for f in infra/package.json infra/package-lock.json; do [ -f "$f" ] && inputs+=("$f"); done
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

echo "== setting up .venv (first run takes a few minutes)"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to a CPU build: a bare 'torch>=2.4' would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q "torch==2.13.0"
# scripts/constraints.txt pins the versions the test suite was last run with (no resolver backtracking)
.venv/bin/python -m pip install -q -c scripts/constraints.txt -e ".[algorithm,local,infra,dev]"

if [ -f infra/package.json ] && command -v npm >/dev/null 2>&1; then
  echo "== installing the CDK CLI (infra/node_modules)"
  if [ -f infra/package-lock.json ]; then
    (cd infra && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd infra && npm install --no-audit --no-fund --loglevel=error)
  fi
fi
echo "$want" > "$stamp"
echo "== setup done"
