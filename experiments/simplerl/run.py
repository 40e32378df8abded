"""Query difficulty vs the policy (papers simplerl, drive): GRPO on easy, medium, hard or unfiltered prompts.

Each condition is the default recipe (GRPO, 500 steps, from assets/arith-base) over SEEDS seeds; the
curated conditions first sample 2000 candidate training problems 8 times with the base model
(`difficulty:` in the recipe, `rlx.sampling.difficulty`) and train only on those whose pass rate
lies in the band:

    all      no curation (the default recipe)
    easy     pass rate in [0.875, 1]      (solved 7-8 times of 8)
    medium   pass rate in [0.125, 0.875]  (1-7 of 8; recipes/arith_difficulty.yaml)
    hard     pass rate in [0, 0.125]      (0-1 of 8)

Scored by greedy accuracy on all 2430 held-out problems. Run from the repo root:

    python experiments/simplerl/run.py        # ~15 min on 2 cores; runs go to runs/simplerl
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent
BANDS = {"easy": (0.875, 1.0), "medium": (0.125, 0.875), "hard": (0.0, 0.125)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/simplerl")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    curated = ["difficulty.candidates=2000", "difficulty.samples=8"]
    conditions = {"all": common}
    for name, (lo, hi) in BANDS.items():
        conditions[name] = [*common, *curated, f"difficulty.min_pass={lo}", f"difficulty.max_pass={hi}"]
    out = ROOT / args.out
    code = run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), out, HERE / "results.md")
    return code


def write_table(summaries: dict, out: Path, path: Path) -> None:
    """Mean [95% bootstrap interval over seeds] per condition, and each condition minus `all` per seed."""
    ci = mean_ci
    base = [s["eval/accuracy"] for s in summaries["all"].values()]
    before = next(iter(summaries["all"].values()))["eval/accuracy_before"]
    lines = [f"Held-out greedy accuracy on all 2430 problems, before RL {before:.4f}; mean [95% bootstrap interval] "
             f"over {len(base)} seeds.", "",
             "| condition | pool (of 2000, seed 0) | pool pass rate | accuracy after | minus all |",
             "|---|---|---|---|---|"]
    for name, seeds in summaries.items():
        acc = [s["eval/accuracy"] for s in seeds.values()]
        first = next(iter(seeds.values()))
        pool = f"{first['difficulty/pool_size']:.0f}" if "difficulty/pool_size" in first else "- (unfiltered)"
        rate = f"{first['difficulty/pool_pass_rate']:.3f}" if "difficulty/pool_pass_rate" in first else \
            f"{next(iter(summaries['medium'].values()))['difficulty/candidate_pass_rate']:.3f}"
        diff = ci([a - b for a, b in zip(acc, base)]) if name != "all" else "0"
        lines.append(f"| {name} | {pool} | {rate} | {ci(acc)} | {diff} |")
    path.write_text("Produced by `python experiments/simplerl/run.py`.\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
