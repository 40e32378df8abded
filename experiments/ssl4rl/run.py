"""SSL4RL (paper ssl4rl): GRPO on self-supervised pretexts, and whether it transfers to solving arithmetic.

Conditions (recipes/arith_ssl4rl.yaml: GRPO, 500 steps, 8 prompts x 8 samples, from assets/arith-base),
SEEDS seeds each:

    masked_digit   recover the digit hidden by '?' in an unlabeled equation 'a op b=c'
    reversed       say whether the equation text is written backwards
    masked_digit_lr5e-5, reversed_lr5e-5   the same at lr 5e-5 (the pretexts are barely learned at 1e-5)

Each trained model is then scored with `rlx eval MODEL --task arithmetic --n 2430 --samples 0` (greedy
accuracy on all 2430 held-out arithmetic problems; assets/arith-base scores 0.3877, and GRPO on the
arithmetic task itself for the same 500 steps reaches 0.463, experiments/nsr). Runs go to runs/ssl4rl.

    python experiments/ssl4rl/run.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, run_conditions, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> int:
    args = sweep_args(__doc__, "runs/ssl4rl")
    common = ["train.checkpoint_every=0", "eval.every=0", "eval.n=1000"]
    conditions = {"masked_digit": common, "reversed": [*common, "task.pretext=reversed"],
                  "masked_digit_lr5e-5": [*common, "train.optim.lr=5e-5"],
                  "reversed_lr5e-5": [*common, "task.pretext=reversed", "train.optim.lr=5e-5"]}
    out = ROOT / args.out
    code = run_conditions(conditions, "recipes/arith_ssl4rl.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    transfer: dict = {}
    for name in conditions:
        for run in sorted((out / name).glob("seed_*")):
            path = run / "arithmetic_eval.json"
            if not path.exists():
                rlx("eval", str(run / "model"), "--task", "arithmetic", "--n", "2430", "--samples", "0",
                    "--json", str(path))
            transfer.setdefault(name, {})[run.name] = json.loads(path.read_text())["eval/accuracy"]
    (HERE / "transfer.json").write_text(json.dumps(transfer, indent=2, sort_keys=True) + "\n")
    summaries = json.loads((HERE / "summaries.json").read_text())
    lines = ["| pretext | pretext accuracy before | after | arithmetic accuracy after (before: 0.3877) |",
             "|---|---|---|---|"]
    for name, seeds in summaries.items():
        before = next(iter(seeds.values()))["eval/accuracy_before"]
        lines.append(f"| {name} | {before:.4f} | {mean_ci([s['eval/accuracy'] for s in seeds.values()])} | "
                     f"{mean_ci(list(transfer[name].values()))} |")
    (HERE / "results.md").write_text("Produced by `python experiments/ssl4rl/run.py` (pretext accuracy on 1000 "
                                     "held-out pretext problems, arithmetic accuracy on all 2430 held-out problems; "
                                     f"mean [95% bootstrap interval] over {args.seeds} seeds).\n\n"
                                     + "\n".join(lines) + "\n")
    print((HERE / "results.md").read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
