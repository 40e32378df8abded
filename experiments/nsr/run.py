"""Negative-sample reinforcement (paper nsr) and ACE (paper ace) on the arithmetic RLVR loop, vs GRPO.

Conditions (the default recipe recipes/arith_grpo.yaml, 500 steps, from assets/arith-base, SEEDS seeds):

    grpo         the default: group-normalised advantages
    nsr          only incorrect samples get a (negative, -1) advantage: `objective.preset=nsr`
    w_reinforce  correct samples weighted 0.1, incorrect -1: `objective.preset=w_reinforce`
    grpo_ace     GRPO with negative advantages scaled by 1 + softplus(log pi/pi_ref) (alpha 1):
                 overconfident errors pushed down harder, `objective.ace_alpha=1`

Scored by greedy accuracy and pass@1..16 (16 samples at temperature 1) on all 2430 held-out problems:
NSR's claim is that it keeps or widens pass@k at large k while GRPO narrows it. Runs go to runs/nsr.

    python experiments/nsr/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/nsr")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=2430", "eval.samples=16"]
    conditions = {"grpo": common,
                  "nsr": [*common, "objective.preset=nsr"],
                  "w_reinforce": [*common, "objective.preset=w_reinforce"],
                  "grpo_ace": [*common, "objective.ace_alpha=1.0"]}
    code = run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy", "eval/pass@16"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), HERE / "results.md")
    return code


def write_table(summaries: dict, path: Path) -> None:
    keys = ["eval/accuracy", "eval/pass@1", "eval/pass@4", "eval/pass@16"]
    first = next(iter(next(iter(summaries.values())).values()))
    before = {k: first[k.replace("eval/", "eval/before/")] if k != "eval/accuracy" else first["eval/accuracy_before"]
              for k in keys}
    base = summaries["grpo"]
    lines = ["| condition | " + " | ".join(keys) + " | pass@16 minus grpo |", "|---" * (len(keys) + 2) + "|",
             "| base (before RL, seed 0 samples) | " + " | ".join(f"{before[k]:.4f}" for k in keys) + " | |"]
    for name, seeds in summaries.items():
        d = mean_ci([s["eval/pass@16"] - base[k]["eval/pass@16"] for k, s in seeds.items()]) if name != "grpo" else "0"
        lines.append(f"| {name} | " + " | ".join(mean_ci([s[k] for s in seeds.values()]) for k in keys) + f" | {d} |")
    path.write_text("Produced by `python experiments/nsr/run.py` (all 2430 held-out problems; mean [95% bootstrap "
                    f"interval] over {len(base)} seeds, differences paired by seed).\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
