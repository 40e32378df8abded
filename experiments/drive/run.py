"""Hard-focus curriculum (paper drive) vs a static difficulty band, GRPO on arithmetic.

Conditions (the default recipe, 500 steps, from assets/arith-base, SEEDS seeds each):

    all         no curation
    medium      a static pool: candidates the base model solves 1-7 times of 8 (experiments/simplerl)
    hard_focus  the same pool, and every 50 steps the problems solved more than 75% of the time since
                the last check leave it (easiest first, at least 64 stay): `difficulty.retire_above`

Runs go to runs/simplerl (shared with experiments/simplerl/run.py, so `all` and `medium` are reused
when they exist). Scored by greedy accuracy on all 2430 held-out problems.

    python experiments/drive/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/simplerl")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    medium = [*common, "difficulty.candidates=2000", "difficulty.samples=8", "difficulty.min_pass=0.125",
              "difficulty.max_pass=0.875"]
    conditions = {"all": common, "medium": medium,
                  "hard_focus": [*medium, "difficulty.retire_above=0.75", "difficulty.retire_every=50",
                                 "difficulty.min_pool=64"]}
    out = ROOT / args.out
    code = run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), out, HERE / "results.md")
    return code


def write_table(summaries: dict, out: Path, path: Path) -> None:
    ci = mean_ci
    def last_active(run: Path, summary: dict) -> float:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
        vals = [r["difficulty/active_pool"] for r in rows if "difficulty/active_pool" in r]
        return vals[-1] if vals else summary["difficulty/pool_size"]  # a static pool never shrinks

    base = [s["eval/accuracy"] for s in summaries["all"].values()]
    lines = ["| condition | pool at the end (mean over seeds) | accuracy after | minus all | minus medium |",
             "|---|---|---|---|---|"]
    med = [s["eval/accuracy"] for s in summaries["medium"].values()]
    for name, seeds in summaries.items():
        acc = [s["eval/accuracy"] for s in seeds.values()]
        end = np.mean([last_active(out / name / k, s) for k, s in seeds.items()]) if name != "all" else float("nan")
        pool = f"{end:.0f}" if name != "all" else "- (unfiltered)"
        lines.append(f"| {name} | {pool} | {ci(acc)} | {ci([a - b for a, b in zip(acc, base)]) if name != 'all' else '0'} | "
                     f"{ci([a - b for a, b in zip(acc, med)]) if name != 'medium' else '0'} |")
    path.write_text("Produced by `python experiments/drive/run.py` (greedy accuracy on all 2430 held-out problems, "
                    f"mean [95% bootstrap interval] over {len(base)} seeds, paired by seed).\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
