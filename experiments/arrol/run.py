"""Online rollout pruning (paper arrol) vs plain GRPO, on arithmetic from the shipped base checkpoint.

Conditions (the default recipe, 500 steps, 8 prompts per step, SEEDS seeds each):

    grpo8           8 rollouts per prompt (the default recipe)
    arrol           16 rollouts per prompt, pruned to 8 after 2 tokens by the online quality head
                    (recipes/arith_arrol.yaml: rule diverse, target 0.5, 20 warm-up steps)
    arrol_extremes  the same with `prune.rule=extremes` (k likeliest + G-k least likely, duplicates ignored)
    grpo16          16 rollouts per prompt, all kept (the same candidates, twice the update)

Scored by greedy accuracy on all 2430 held-out problems. Also reported, averaged over steps: groups
with tied rewards (no group-relative signal), the rollout stage's and the whole step's seconds, and
the quality head's Brier score after warm-up.

    python experiments/arrol/run.py
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
    ap.add_argument("--out", default="runs/arrol")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    conditions = {"grpo8": [*common, "prune.candidates=0"],
                  "arrol": common,
                  "arrol_extremes": [*common, "prune.rule=extremes"],
                  "grpo16": [*common, "prune.candidates=0", "rollout.group_size=16"]}
    out = ROOT / args.out
    code = run_conditions(conditions, "recipes/arith_arrol.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), out, HERE / "results.md")
    return code


def step_means(run: Path, warmup: int = 20) -> dict[str, float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "rollout/zero_variance_groups" in r]
    late = [r for r in rows if r["step"] > warmup]
    out = {k: float(np.mean([r[k] for r in rows])) for k in
           ("rollout/zero_variance_groups", "rollout/groups_generated", "time/rollout", "time/step")}
    out["brier"] = float(np.mean([r["prune/head_brier"] for r in late])) if "prune/head_brier" in late[0] else float("nan")
    out["base_rate"] = float(np.mean([r["prune/survivor_accuracy"] for r in late])) if "prune/head_brier" in late[0] else float("nan")
    return out


def write_table(summaries: dict, out: Path, path: Path) -> None:
    base = [s["eval/accuracy"] for s in summaries["grpo8"].values()]
    before = [s["eval/accuracy_before"] for seeds in summaries.values() for s in seeds.values()]
    lines = ["| condition | accuracy after | minus grpo8 | tied groups per step (of 8) | rollout s/step | step s/step | head Brier (survivors' base rate) |",
             "|---|---|---|---|---|---|---|"]
    for name, seeds in summaries.items():
        acc = [s["eval/accuracy"] for s in seeds.values()]
        m = [step_means(out / name / k) for k in seeds]
        avg = {k: float(np.mean([x[k] for x in m])) for k in m[0]}
        brier = f"{avg['brier']:.3f} ({avg['base_rate']:.2f})" if not np.isnan(avg["brier"]) else "-"
        diff = mean_ci([a - b for a, b in zip(acc, base)]) if name != "grpo8" else "0"
        lines.append(f"| {name} | {mean_ci(acc)} | {diff} | {avg['rollout/zero_variance_groups']:.2f} | "
                     f"{avg['time/rollout']:.4f} | {avg['time/step']:.4f} | {brier} |")
    path.write_text("Produced by `python experiments/arrol/run.py` (greedy accuracy on all 2430 held-out problems, "
                    f"mean [95% bootstrap interval] over {len(base)} seeds, paired by seed; before training: "
                    f"{np.mean(before):.3f}). Seconds are means over steps and seeds on a shared 2-core machine whose load "
                    "changed between conditions (skipped conditions keep their earlier runs); bench/prune_speed.py "
                    "times them side by side.\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
