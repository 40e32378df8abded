"""Reward-noise study (paper randcalc): does only the accurate reward improve held-out accuracy?

Three conditions on contamination-free arithmetic, each `rlx sweep` of the default recipe
(recipes/arith_grpo.yaml, GRPO from the shipped base checkpoint) over SEEDS seeds:

    accurate   the verifier's reward
    random     Bernoulli(0.5) reward, unrelated to the answer
    flip       the wrong reward with probability 0.3 (so the reward is still informative)

Then `rlx compare` writes the table with 95% bootstrap intervals, P(A > B) and plots.
Run from the repo root:   python experiments/randcalc/run.py [--seeds 5] [--steps 150]
Runs go to runs/randcalc/ (not committed); the report is copied to experiments/randcalc/report/.
The accurate condition is the default recipe, so its sweep is also the default recipe's
multi-seed before -> after result.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONDITIONS = {
    "accurate": [],
    "random": ["task.reward.noise=random", "task.reward.noise_p=0.5"],
    "flip": ["task.reward.noise=flip", "task.reward.noise_p=0.3"],
}


def rlx(*args: str) -> int:
    cmd = [sys.executable, "-m", "rlx.cli", *args]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/randcalc")
    ap.add_argument("--only", nargs="*", default=list(CONDITIONS))
    args = ap.parse_args()
    out = ROOT / args.out
    for name in args.only:
        extra = CONDITIONS[name] + [f"train.steps={args.steps}", "train.checkpoint_every=0", "eval.every=0"]
        rlx("sweep", "recipes/arith_grpo.yaml", *extra, "--seeds", str(args.seeds), "--out", str(out / name),
            "--parallel", str(args.parallel), "--skip-done")
    report = out / "report"
    code = rlx("compare", *(str(out / n) for n in CONDITIONS), "--names", *CONDITIONS,
               "--metric", "eval/accuracy", "--metric", "eval/accuracy_before", "--out", str(report))
    # keep what is small and readable in the repo: the report and each seed's summary
    dest = HERE / "report"
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(report, dest)
    summaries = {n: {p.parent.name: json.loads(p.read_text()) for p in sorted((out / n).glob("seed_*/summary.json"))}
                 for n in CONDITIONS}
    (HERE / "summaries.json").write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
