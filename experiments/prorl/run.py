"""Prolonged RL with reference resets (paper prorl) vs the same run without reset and without KL.

Conditions (recipes/arith_prorl.yaml: dapo preset, 1000 steps, from assets/arith-base), SEEDS seeds:

    no_kl     objective.kl_coef = 0 (DAPO's choice)
    kl        KL 0.1 to the initial policy for the whole run
    kl_reset  KL 0.1, the reference reset to the current policy every 250 steps (the recipe)

Scored by greedy accuracy and pass@1..16 (16 samples at temperature 1) on all 2430 held-out problems,
the paper's "reasoning boundary" measure. Runs go to runs/prorl.

    python experiments/prorl/run.py
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
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/prorl")
    args = ap.parse_args()
    common = [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=2430"]
    conditions = {"no_kl": [*common, "objective.kl_coef=0", "train.ref_reset_every=0"],
                  "kl": [*common, "train.ref_reset_every=0"],
                  "kl_reset": common}
    code = run_conditions(conditions, "recipes/arith_prorl.yaml", seeds=args.seeds, out=ROOT / args.out, dest=HERE,
                          metrics=["eval/accuracy", "eval/pass@16"], parallel=args.parallel)
    write_table(json.loads((HERE / "summaries.json").read_text()), HERE / "results.md")
    return code


def write_table(summaries: dict, path: Path) -> None:
    keys = ["eval/accuracy", "eval/pass@1", "eval/pass@4", "eval/pass@16"]
    first = next(iter(next(iter(summaries.values())).values()))
    before = {k: first[k.replace("eval/", "eval/before/")] if k != "eval/accuracy" else first["eval/accuracy_before"]
              for k in keys}
    lines = ["| condition | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|",
             "| base (before RL, seed 0 samples) | " + " | ".join(f"{before[k]:.4f}" for k in keys) + " |"]
    for name, seeds in summaries.items():
        lines.append(f"| {name} | " + " | ".join(mean_ci([s[k] for s in seeds.values()]) for k in keys) + " |")
    path.write_text("Produced by `python experiments/prorl/run.py` (all 2430 held-out problems; mean [95% bootstrap "
                    f"interval] over {len(next(iter(summaries.values())))} seeds).\n\n" + "\n".join(lines) + "\n")
    print(path.read_text())


if __name__ == "__main__":
    raise SystemExit(main())
