"""One-shot RLVR (paper oneshot): which single training problem, and how it compares with the full generator.

Conditions (recipes/arith_oneshot.yaml: GRPO, 150 steps, 8 prompts x 8 samples per step, from
assets/arith-base), SEEDS seeds each:

    first_draw    the recipe: the one problem `pool_seed: 0` draws (80-68)
    max_variance  the one problem, of 500 candidates scored 16 times each by the initial policy, whose
                  pass rate has the largest variance p(1-p) (`difficulty.top_variance: 1`; the paper's
                  selection by reward variance, here measured before training)
    full          no pool: a fresh draw of problems every step (the default recipe for 150 steps)

Scored by greedy accuracy on all 2430 held-out problems. Runs go to runs/oneshot.

    python experiments/oneshot/run.py
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
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/oneshot")
    args = ap.parse_args()
    common = ["train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    conditions = {"first_draw": common,
                  "max_variance": [*common, "task.train_pool=null", "difficulty.candidates=500",
                                   "difficulty.samples=16", "difficulty.top_variance=1"],
                  "full": [*common, "task.train_pool=null"]}
    code = run_conditions(conditions, "recipes/arith_oneshot.yaml", seeds=args.seeds, out=ROOT / args.out,
                          dest=HERE, metrics=["eval/accuracy"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), HERE / "results.md")
    return code


def write_table(summaries: dict, path: Path) -> None:
    first = summaries["first_draw"]
    before = next(iter(first.values()))["eval/accuracy_before"]
    lines = ["| condition | pass rate of the chosen problem before RL | accuracy after | minus first_draw |",
             "|---|---|---|---|"]
    for name, seeds in summaries.items():
        acc = [s["eval/accuracy"] for s in seeds.values()]
        rate = ", ".join(f"{s['difficulty/pool_pass_rate']:.2f}" for s in seeds.values()) \
            if "difficulty/pool_pass_rate" in next(iter(seeds.values())) else "-"
        d = mean_ci([s["eval/accuracy"] - first[k]["eval/accuracy"] for k, s in seeds.items()]) \
            if name != "first_draw" else "0"
        lines.append(f"| {name} | {rate} | {mean_ci(acc)} | {d} |")
    path.write_text("Produced by `python experiments/oneshot/run.py` (greedy accuracy on all 2430 held-out problems, "
                    f"before RL {before:.4f}; mean [95% bootstrap interval] over {len(first)} seeds, differences "
                    "paired by seed).\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
