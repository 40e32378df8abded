"""FP8 precision flow in RL (paper jetrl): rollout-only FP8 vs unified FP8 vs full precision.

Each condition is the default recipe (GRPO on arithmetic from assets/arith-base) over SEEDS seeds:

    fp32          no quantization (control)
    fp8_rollout   rollouts with FP8 fake-quant weights/activations, training forward in fp32
    fp8_unified   the training forward uses the same FP8 quantization as the rollouts (STE backward)

Compared by held-out accuracy and by the logged rollout/trainer mismatch (rollout/mismatch_kl,
rollout/max_importance_ratio). Run from the repo root:  python experiments/jetrl/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/jetrl")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0"]
    conditions = {flow: [f"train.precision_flow={p}", *common]
                  for flow, p in (("fp32", "none"), ("fp8_rollout", "fp8_rollout"), ("fp8_unified", "fp8_unified"))}
    code = run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), HERE / "results.md")
    return code


def write_table(summaries: dict, path: Path) -> None:
    """Per-metric mean and 95% bootstrap interval over seeds, one row per condition."""
    import numpy as np

    from rlx.evaluation.stats import bootstrap_ci

    keys = ["eval/accuracy", "rollout/mismatch_kl_mean", "rollout/max_importance_ratio"]
    lines = ["| condition | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
    for name, seeds in summaries.items():
        cells = []
        for k in keys:
            x = np.array([s[k] for s in seeds.values()])
            point, low, high = bootstrap_ci(x, statistic="mean", reps=10_000, seed=0)
            cells.append(f"{point:.4g} [{low:.4g}, {high:.4g}]")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    path.write_text("\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    sys.exit(main())
