#!/usr/bin/env bash
# The README's default recipe over 5 seeds: held-out accuracy before -> after with a 95% bootstrap interval.
# Run from the repo root: bash experiments/default_recipe/run.sh   (about 2-3 minutes on 2 CPU cores)
set -euo pipefail
[ -d .venv/bin ] && PATH="$PWD/.venv/bin:$PATH"  # right after the quick start, without activating the venv
out=${1:-runs/default5}
rlx sweep recipes/arith_grpo.yaml --seeds 5 --out "$out"
rlx compare "$out" --metric eval/accuracy --names default --out experiments/default_recipe/report
python - "$out" <<'PY' > experiments/default_recipe/seeds.md
import json, sys
from pathlib import Path
print("| seed | accuracy before | accuracy after | training seconds |")
print("| --- | --- | --- | --- |")
for f in sorted(Path(sys.argv[1]).glob("seed_*/summary.json")):
    s = json.loads(f.read_text())
    print(f"| {f.parent.name} | {s['eval/accuracy_before']:.3f} | {s['eval/accuracy']:.3f} | {s['time/train_seconds']:.1f} |")
PY
cat experiments/default_recipe/seeds.md
