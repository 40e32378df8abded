"""SQIRL with k = 1, 2, 3 on short-effective-horizon tasks (5 seeds).

Claim (paper: sqirl): many MDPs are solved by a few steps of value iteration on the random
policy's Q function followed by greedy action; SQIRL (random exploration + k-step fitted-Q
iteration) works when the effective horizon is small. Tasks: CartPole-v1 (small effective
horizon) and Acrobot-v1. 10k random env steps each; Q_1 fitted
to Monte-Carlo returns, then k-1 fitted-Q iterations, each 500 Adam steps on a 2x64 MLP; greedy return over 10
episodes. For reference, the uniform random policy scores ~22 (CartPole) and ~-500 (Acrobot).
Run: python experiments/control/sqirl_k/run.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import CI_METHOD, fmt, run_seeds, write  # noqa: E402

from rlx.control import sqirl  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
rows = []
for env_id in ("CartPole-v1", "Acrobot-v1"):
    for k in (1, 2, 3):
        vals, _ = run_seeds(sqirl, {"kind": "sqirl", "env": env_id, "k": k, "transitions": 10_000, "fit_steps": 500, "hidden": [64, 64],
                                    "gamma": 0.99}, SEEDS)
        rows.append((env_id, k, fmt(vals), vals))

lines = ["# SQIRL: k steps of fitted-Q iteration on random data (paper: sqirl)", "", __doc__.strip(), "",
         f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}.", "",
         "| task | k | greedy return | per-seed |", "|---|---|---|---|"]
lines += [f"| {t} | {k} | {r} | {', '.join(f'{v:.0f}' for v in vals)} |" for t, k, r, vals in rows]
write(Path(__file__).with_name("results.md"), "\n".join(lines) + "\n")
