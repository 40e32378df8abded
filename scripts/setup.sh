#!/usr/bin/env bash
# Create .venv (if missing) and install rlx with the given extras, e.g. `scripts/setup.sh test`.
# Idempotent: a stamp records what was installed; a second run with the same pyproject is instant.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=".venv/.rlx-stamp-${extras:-base}"
want="$(cat pyproject.toml | sha1sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  echo "[setup] installing PyTorch (CPU build 2.13.0 where available)"
  .venv/bin/pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || .venv/bin/pip install -q torch
fi
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
echo "[setup] installing rlx${extras:+ [$extras]}"
.venv/bin/pip install -q -e "$spec" 2>&1 | grep -v -e "^WARNING: Location" -e "^ *!!" -e "corresp(" || true
.venv/bin/python -c "import rlx, torch, transformers" 
echo "$want" > "$stamp"
