"""Reviving a saturated run: more steps or more rollouts per prompt (paper brorl).

1. Saturate: GRPO (recipes/arith_grpo.yaml, 8 samples per prompt) from assets/arith-base for 1000
   steps, seed 0, held-out accuracy every 100 steps (500 problems) to show the plateau.
2. Continue from that checkpoint with the same number of sampled completions (25,600), SEEDS seeds:

       more_steps   400 more steps at N = 8 rollouts per prompt
       broad        50 more steps at N = 64 rollouts per prompt (BroRL)

   Both keep 8 prompts per step, lr 1e-5 and the loss normalisation (mean over completions), so a
   step of `broad` has the same size and 8x less gradient noise. Scored on all 2430 held-out
   problems (`rlx eval ... --n 2430 --samples 0`).
Runs go to runs/brorl_saturated.     python experiments/brorl/saturated.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent


def _eval(model: Path, path: Path) -> float:
    if not path.exists():
        rlx("eval", str(model), "--task", "arithmetic", "--n", "2430", "--samples", "0", "--json", str(path))
    return json.loads(path.read_text())["eval/accuracy"]


def main() -> int:
    args = sweep_args(__doc__, "runs/brorl_saturated")
    out = ROOT / args.out
    base = out / "saturate"
    if not (base / "summary.json").exists():
        rlx("train", "recipes/arith_grpo.yaml", "train.steps=1000", "train.checkpoint_every=0", "eval.every=100",
            "eval.n=500", "--out", str(base))
    curve = [(row["step"], row["eval/accuracy"]) for row in map(json.loads, (base / "metrics.jsonl").open())
             if "eval/accuracy" in row]
    start = _eval(base / "model", base / "eval_2430.json")
    conditions = {"more_steps": ["train.steps=400"],
                  "broad": ["train.steps=50", "rollout.group_size=64"]}
    scores: dict[str, dict[str, float]] = {}
    for name, extra in conditions.items():
        rlx("sweep", "recipes/arith_grpo.yaml", f"model.path={base / 'model'}", *extra, "train.checkpoint_every=0",
            "eval.every=0", "eval.n=500", "--seeds", str(args.seeds), "--out", str(out / name),
            "--parallel", str(args.parallel), "--skip-done")
        scores[name] = {run.name: _eval(run / "model", run / "eval_2430.json") for run in sorted((out / name).glob("seed_*"))}
    (HERE / "saturated.json").write_text(json.dumps({"curve": curve, "start": start, "scores": scores}, indent=2) + "\n")
    seeds = sorted(set(scores["more_steps"]) & set(scores["broad"]))
    lines = ["| condition | samples | held-out accuracy (2430) | minus the saturated start |", "|---|---|---|---|",
             f"| saturated start (1000 steps, N = 8) | 64,000 | {start:.4f} | |"]
    for name, samples in (("more_steps", "+25,600 (400 steps x 64)"), ("broad", "+25,600 (50 steps x 512)")):
        v = list(scores[name].values())
        lines.append(f"| {name} | {samples} | {mean_ci(v)} | {mean_ci([x - start for x in v])} |")
    lines.append(f"| broad minus more_steps (paired by seed) | | {mean_ci([scores['broad'][s] - scores['more_steps'][s] for s in seeds])} | |")
    text = ("Produced by `python experiments/brorl/saturated.py`: mean [95% bootstrap interval] over "
            f"{args.seeds} seeds.\n\nPlateau of the saturating run (held-out accuracy on 500 problems by step): "
            + ", ".join(f"{s}: {a:.3f}" for s, a in curve) + "\n\n" + "\n".join(lines) + "\n")
    (HERE / "saturated.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
