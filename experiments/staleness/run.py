"""One-step off-policy rollouts (`rollout.staleness: 1`) against on-policy rollouts on the default recipe.

Each condition is recipes/arith_grpo.yaml (GRPO on arithmetic from assets/arith-base, 500 steps) over
SEEDS seeds, one run at a time so that the staleness-1 run has both cores (its rollouts run on a second
thread during the update):

    on_policy    rollout.staleness 0 (the recipe as shipped)
    staleness_1  rollout.staleness 1: step t+1's batch is sampled by the weights before update t

Compared by held-out greedy accuracy after training (paired by seed) and by training wall-clock seconds.
Run from the repo root:  python experiments/staleness/run.py   (about 15 minutes on 2 CPU cores)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, run_conditions, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    args = sweep_args(__doc__, "runs/staleness", seeds=5)
    conditions = {"on_policy": ["rollout.staleness=0"], "staleness_1": ["rollout.staleness=1"]}
    code = run_conditions(conditions, "recipes/arith_grpo.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=1)
    write_table(json.loads((HERE / "summaries.json").read_text()), HERE / "results.md")
    print((HERE / "results.md").read_text())
    return code


def write_table(summaries: dict, path: Path) -> None:
    """Mean and 95% bootstrap interval over seeds per condition, then the paired differences."""
    keys = ["eval/accuracy_before", "eval/accuracy", "time/train_seconds"]
    lines = ["| condition | seeds | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, seeds in summaries.items():
        cells = [mean_ci([s[k] for s in seeds.values()], 1 if "seconds" in k else 3) for k in keys]
        lines.append(f"| {name} | {len(seeds)} | " + " | ".join(cells) + " |")
    a, b = summaries["on_policy"], summaries["staleness_1"]
    common = sorted(set(a) & set(b))
    d_acc = [b[s]["eval/accuracy"] - a[s]["eval/accuracy"] for s in common]
    speed = [a[s]["time/train_seconds"] / b[s]["time/train_seconds"] for s in common]
    lines += ["", f"Paired by seed ({len(common)} seeds), staleness 1 minus on-policy:", "",
              f"- held-out accuracy: {mean_ci(d_acc, 3)}",
              f"- training speed-up (on-policy seconds / staleness-1 seconds): {mean_ci(speed, 2)}"]
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
