"""GR-RL's demonstration filtering and mirror augmentation (paper grrl), offline, 5 seeds.

Claim (paper grrl): demonstrations are noisy; keeping only transitions that raise a progress function
learned by offline RL on a sparse success reward, and adding morphologically mirrored copies, makes a
cloned policy much better than cloning everything.

Setting: recipes/grrl_pendulum.yaml (Pendulum-v1 medium-expert built in memory, 3000 critic updates,
3000 behaviour-cloning updates, MLP 64-64). Conditions:

    bc              clone every transition (filter off, mirror off)
    filter          drop transitions whose TD progress gain under the sparse-reward critic is < 0
    filter+mirror   the same plus mirrored copies (the full method)
    mirror          mirrored copies without the filter

at two dataset sizes: 20,000 transitions (100 episodes) and 2,000 (10 episodes). Seeds 0-4 change the
networks, minibatches and evaluation, and the dataset. Score: D4RL-normalised return of the final
policy (10 greedy episodes). Run: python experiments/grrl/run.py  (about 10 minutes)
"""

import json
import sys
from pathlib import Path

import numpy as np

from rlx.config import build_config, read_yaml
from rlx.control import grrl
from rlx.evaluation.stats import bootstrap_ci

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SEEDS = [0, 1, 2, 3, 4]
CONDITIONS = {"bc": (False, False), "filter": (True, False), "filter+mirror": (True, True), "mirror": (False, True)}
SIZES = [20_000, 2_000]


def ci(x, d=1):
    m, lo, hi = bootstrap_ci(np.asarray(x, dtype=float), statistic="mean", reps=10_000, seed=0)
    return f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"


def main() -> None:
    base = read_yaml(str(ROOT / "recipes" / "grrl_pendulum.yaml"))
    res: dict = {}
    for size in SIZES:
        for name, (filt, mir) in CONDITIONS.items():
            for seed in SEEDS:
                raw = {**base, "seed": seed, "filter": filt, "mirror": mir,
                       "dataset": {**base["dataset"], "transitions": size, "seed": seed}}
                out = grrl.run(build_config(grrl.Config, raw), None)
                res.setdefault(f"{size}", {}).setdefault(name, []).append(
                    {k: v for k, v in out.items() if k == "eval/normalized_score" or k.startswith("grrl/")})
                print(size, name, seed, round(out["eval/normalized_score"], 1), file=sys.stderr, flush=True)
    (HERE / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# GR-RL filtering and mirroring (paper grrl)", "", __doc__.strip(), "",
             "Mean [95% bootstrap interval] over 5 seeds.", "",
             "| transitions | condition | normalised score | kept fraction | rows cloned | successful episodes |",
             "|---|---|---|---|---|---|"]
    for size, conds in res.items():
        for name, rows in conds.items():
            kept = f"{np.mean([r['grrl/kept_fraction'] for r in rows]):.2f}" if "grrl/kept_fraction" in rows[0] else "1"
            lines.append(f"| {size} | {name} | {ci([r['eval/normalized_score'] for r in rows])} | {kept} | "
                         f"{np.mean([r['grrl/bc_rows'] for r in rows]):.0f} | "
                         f"{np.mean([r['grrl/success_rate'] for r in rows]):.2f} |")
        for a, b in (("filter", "bc"), ("filter+mirror", "filter")):
            d = [x["eval/normalized_score"] - y["eval/normalized_score"] for x, y in zip(conds[a], conds[b])]
            lines.append(f"\n{size} transitions, {a} minus {b}, paired by seed: {ci(d)}")
        lines.append("")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
