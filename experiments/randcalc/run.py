"""Reward-noise study (paper randcalc): does only the accurate reward improve held-out accuracy?

Three conditions on contamination-free arithmetic, each `rlx sweep` of the default recipe
(recipes/arith_grpo.yaml: GRPO from the shipped base checkpoint, whose held-out accuracy is 0.41)
over SEEDS seeds:

    accurate   the verifier's reward
    random     Bernoulli(0.5) reward, unrelated to the answer
    flip       the wrong reward with probability 0.3 (still informative on average)

Then `rlx compare` writes the table with 95% bootstrap intervals, P(A > B) and plots.
Run from the repo root:   python experiments/randcalc/run.py [--seeds 5] [--steps 150]
Runs go to runs/randcalc/ (not committed); the report and every seed's summary.json are copied
here. The accurate condition is the default recipe (periodic eval off, which does not change
training), so its sweep is also the default recipe's multi-seed before -> after result.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent
NOISE = {
    "accurate": [],
    "random": ["task.reward.noise=random", "task.reward.noise_p=0.5"],
    "flip": ["task.reward.noise=flip", "task.reward.noise_p=0.3"],
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/randcalc")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0"]
    conditions = {name: [*extra, *common] for name, extra in NOISE.items()}
    return run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)


if __name__ == "__main__":
    sys.exit(main())
