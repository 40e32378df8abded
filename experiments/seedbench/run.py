"""SFT versus RL on the same questions, scored at three generalisation levels (paper seedbench).

Post-training data: 2-operand 2-digit additions and subtractions (task.operators=+-), from
assets/arith-base (pre-trained on '+-*'). Conditions, SEEDS seeds each, 500 updates on 8 questions
each (4000 questions):

    grpo          recipes/arith_grpo.yaml: 8 samples per question, verifier reward, lr 1e-5
    sft_lr1e-5    recipes/arith_sft_continue.yaml: the reference answer as target, lr 1e-5
    sft_lr1e-4    the same at lr 1e-4

Each final model is scored greedily by
    rlx eval MODEL --task arithmetic task.operators=+- --split generalization --n 1000 --samples 0
(in_distribution: held-out '+-'; harder: three 3-digit operands; new_composition: every problem uses
'/', unseen in any training) and on held-out '*' problems (800: the 2-digit product space holds 825),
seen in pre-training but not in post-training: the SEED-Bench-R1 "cross-task" level.
Runs go to runs/seedbench.     python experiments/seedbench/run.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent
LEVELS = ["in_distribution", "harder", "new_composition"]


def _eval(model: Path, out: Path) -> dict[str, float]:
    split, cross = out / "split_eval.json", out / "cross_task_eval.json"
    if not split.exists():
        rlx("eval", str(model), "--task", "arithmetic", "task.operators=+-", "--split", "generalization",
            "--n", "1000", "--samples", "0", "--json", str(split))
    if not cross.exists():
        rlx("eval", str(model), "--task", "arithmetic", "task.operators=*", "--n", "800", "--samples", "0",
            "--json", str(cross))
    s, c = json.loads(split.read_text()), json.loads(cross.read_text())
    return {**{lvl: s[f"eval/{lvl}/accuracy"] for lvl in LEVELS}, "cross_task": c["eval/accuracy"]}


def main() -> int:
    args = sweep_args(__doc__, "runs/seedbench")
    out = ROOT / args.out
    common = ["task.operators=+-", "train.steps=500", "train.checkpoint_every=0", "eval.every=0", "eval.n=500"]
    conditions = {"grpo": ("recipes/arith_grpo.yaml", common),
                  "sft_lr1e-5": ("recipes/arith_sft_continue.yaml", common),
                  "sft_lr1e-4": ("recipes/arith_sft_continue.yaml", [*common, "train.optim.lr=1e-4"])}
    for name, (recipe, overrides) in conditions.items():
        rlx("sweep", recipe, *overrides, "--seeds", str(args.seeds), "--out", str(out / name),
            "--parallel", str(args.parallel), "--skip-done")
    base_dir = out / "base"
    base_dir.mkdir(parents=True, exist_ok=True)
    scores = {"base": {"-": _eval(ROOT / "assets/arith-base", base_dir)}}
    for name in conditions:
        scores[name] = {run.name: _eval(run / "model", run) for run in sorted((out / name).glob("seed_*"))}
    (HERE / "scores.json").write_text(json.dumps(scores, indent=2, sort_keys=True) + "\n")
    cols = [*LEVELS, "cross_task"]
    lines = ["| condition | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    base = scores["base"]["-"]
    lines.append("| base (assets/arith-base) | " + " | ".join(f"{base[c]:.4f}" for c in cols) + " |")
    for name in conditions:
        runs = list(scores[name].values())
        lines.append(f"| {name} ({len(runs)} seeds) | " + " | ".join(mean_ci([r[c] for r in runs]) for c in cols) + " |")
    diffs = []
    for sft in ("sft_lr1e-5", "sft_lr1e-4"):
        pairs = [(scores["grpo"][s], scores[sft][s]) for s in scores["grpo"] if s in scores[sft]]
        diffs.append(f"| grpo minus {sft} (paired by seed) | "
                     + " | ".join(mean_ci([g[c] - f[c] for g, f in pairs], digits=4) for c in cols) + " |")
    text = ("Produced by `python experiments/seedbench/run.py`: greedy accuracy, mean [95% bootstrap interval] over "
            f"{args.seeds} seeds; in_distribution / harder / new_composition on up to 1000 held-out problems each, "
            "cross_task on 800 held-out '*' problems.\n\n" + "\n".join(lines + diffs) + "\n")
    (HERE / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
