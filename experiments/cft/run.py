"""Critique fine-tuning on one problem (paper cft) vs one-shot SFT, on the arithmetic base model.

Conditions (recipes/arith_cft.yaml: 150 steps of 64 rows, from assets/arith-base; the one problem is
the pool problem of recipes/arith_oneshot.yaml, 80-68), SEEDS seeds each:

    cft           fine-tune on critiques of 256 sampled solutions of the one problem (lr 1e-4)
    cft_lr3e-5    the same at lr 3e-5
    sft_oneshot   plain SFT on the one problem's reference answer (train.cft.problems=0), lr 1e-4

Scored by greedy accuracy on all 2430 held-out problems (the same scoring as experiments/oneshot,
whose one-shot GRPO on this problem is the RL reference). Runs go to runs/cft.

    python experiments/cft/run.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    args = sweep_args(__doc__, "runs/cft")
    common = ["train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    conditions = {"cft": common,
                  "cft_lr3e-5": [*common, "train.optim.lr=3e-5"],
                  "sft_oneshot": [*common, "train.cft.problems=0"]}
    code = run_conditions(conditions, "recipes/arith_cft.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    summaries = json.loads((HERE / "summaries.json").read_text())
    first = next(iter(summaries["cft"].values()))
    lines = ["| condition | held-out greedy accuracy | minus before |", "|---|---|---|",
             f"| before (assets/arith-base) | {first['eval/accuracy_before']:.4f} | |"]
    for name, seeds in summaries.items():
        lines.append(f"| {name} | {mean_ci([s['eval/accuracy'] for s in seeds.values()])} | "
                     f"{mean_ci([s['eval/accuracy'] - s['eval/accuracy_before'] for s in seeds.values()])} |")
    lines.append(f"\nCandidates of the one problem (seed 0): {first['cft/candidates']:.0f} sampled, "
                 f"{first['cft/candidates_correct']:.3f} correct, {first['cft/distinct_candidates']:.0f} distinct.")
    (HERE / "results.md").write_text("Produced by `python experiments/cft/run.py` (all 2430 held-out problems; mean "
                                     f"[95% bootstrap interval] over {args.seeds} seeds).\n\n" + "\n".join(lines) + "\n")
    print((HERE / "results.md").read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
