"""QARL vs RARL vs plain PQN on CartPole with a pushing adversary (paper: qarl), 5 seeds.

Claim (paper qarl): training the protagonist against an adversary whose rationality grows from random
(high quantal-response temperature) to fully rational (alpha = 0) gives a protagonist that is both
better and more robust than RARL's, which faces the rational adversary from the start.

Setting: recipes/qarl_cartpole.yaml (PQN protagonist and adversary, 64 envs, 300k env steps, pushes
of -5/0/+5 N against the protagonist's 10 N; qarl cools alpha 10 -> 0 over the first 75% of training;
qarl-paced lowers alpha one of 100 steps after each update whose training episodes averaged >= 200).
Every run ends with rlx.robust.qarl.robust_report on the greedy protagonist (20 episodes each):
nominal return, mean and worst cell of a 3x3 grid of pole masses {0.1, 0.5, 1.0} x half-lengths
{0.25, 0.5, 1.0}, random +-5 N pushes, and a best-response adversary trained for 100k steps
against the frozen protagonist.
Run: python experiments/qarl/run.py   (about 10 minutes on 2 cores; writes results.json, results.md)
"""

import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "control"))
from _common import CI_METHOD, ci, fmt, write  # noqa: E402

from rlx.config import build_config, read_yaml  # noqa: E402
from rlx.robust import qarl  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [0, 1, 2, 3, 4]
CONDITIONS = {
    "none (PQN)": {"mode": "none"},
    "rarl": {"mode": "rarl"},
    "qarl (linear)": {"mode": "qarl", "schedule": "linear"},
    "qarl (paced)": {"mode": "qarl", "schedule": "paced"},
}
KEYS = ["robust/nominal", "robust/physics_grid", "robust/physics_worst", "robust/random_push", "robust/best_response"]


def job(args):
    name, seed = args
    data = read_yaml(str(ROOT / "recipes" / "qarl_cartpole.yaml"))
    data["adversary"] = {**data["adversary"], **CONDITIONS[name]}
    data["seed"] = seed
    cfg = build_config(qarl.Config, data)
    t0 = time.perf_counter()
    out = qarl.run(cfg, None)
    out["wall_seconds"] = time.perf_counter() - t0
    print(f"  {name} seed {seed}: " + ", ".join(f"{k[7:]} {out[k]:.0f}" for k in KEYS)
          + f" ({out['wall_seconds']:.0f} s)", file=sys.stderr, flush=True)
    return name, seed, out


def main() -> None:
    jobs = [(name, s) for s in SEEDS for name in CONDITIONS]
    with ProcessPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(job, jobs))
    res = {name: {s: out for n, s, out in results if n == name} for name in CONDITIONS}
    here = Path(__file__).parent
    (here / "results.json").write_text(json.dumps(res, indent=1, sort_keys=True) + "\n")
    lines = ["# QARL vs RARL vs PQN on CartPole with a pushing adversary (paper: qarl)", "", __doc__.strip(), "",
             f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}; differences are paired by seed.", "",
             "| condition | " + " | ".join(k[7:] for k in KEYS) + " | train s |", "|---" * (len(KEYS) + 2) + "|"]
    for name in CONDITIONS:
        vals = [[res[name][s][k] for s in SEEDS] for k in KEYS]
        secs = np.mean([res[name][s]["time/train_seconds"] for s in SEEDS])
        lines.append(f"| {name} | " + " | ".join(fmt(v, 0) for v in vals) + f" | {secs:.0f} |")
    lines += ["", "Paired differences (condition minus rarl, and rarl minus none):", "",
              "| difference | " + " | ".join(k[7:] for k in KEYS) + " |", "|---" * (len(KEYS) + 1) + "|"]
    for a, b in (("qarl (linear)", "rarl"), ("qarl (paced)", "rarl"), ("rarl", "none (PQN)")):
        cells = []
        for k in KEYS:
            m, lo, hi = ci([res[a][s][k] - res[b][s][k] for s in SEEDS])
            cells.append(f"{m:+.0f} [{lo:+.0f}, {hi:+.0f}]")
        lines.append(f"| {a} - {b} | " + " | ".join(cells) + " |")
    write(here / "results.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
