#!/usr/bin/env bash
# Command 1 of the quick start: set up .venv and run the default recipe on the CPU.
# Trains GRPO on arithmetic from the shipped base checkpoint and prints held-out accuracy before -> after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out="${RLX_OUT:-runs/quickstart-$(date +%Y%m%d-%H%M%S)}"
exec .venv/bin/rlx train recipes/arith_grpo.yaml --out "$out" "$@"
