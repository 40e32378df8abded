"""HL-Gauss vs MSE value loss inside PQN on CartPole-v1 (5 seeds, 100k env steps).

Claim (paper: hlgauss): training value functions by classification with the HL-Gauss histogram
loss (sigma = 0.75 bin width) improves on MSE regression. Metric: greedy return (10 episodes)
after 100k env steps, and the mean of the greedy evaluations every 20k steps (area under the
learning curve). Same network, optimiser and schedule; only the value head and loss change
(51 bins over [0, 100]).
Run: python experiments/control/hlgauss_vs_mse/run.py
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import CI_METHOD, fmt, write  # noqa: E402

from rlx.config import build_config  # noqa: E402
from rlx.control import pqn  # noqa: E402
from rlx.rundir import RunDir  # noqa: E402

import tempfile  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
rows = []
for loss in ("mse", "hl_gauss"):
    finals, aucs = [], []
    for s in SEEDS:
        cfg = build_config(pqn.Config, {"kind": "pqn", "seed": s, "env": {"id": "CartPole-v1", "num_envs": 64, "backend": "torch"},
                                        "net": {"value_loss": loss, "v_min": 0.0, "v_max": 100.0, "num_bins": 51},
                                        "total_steps": 100_000, "num_steps": 16, "eval": {"every_steps": 20_000, "episodes": 10}})
        with tempfile.TemporaryDirectory() as d:
            run = RunDir(d, "")
            out = pqn.run(cfg, run)
            evals = [r["eval/return_mean"] for r in run.metrics() if "eval/return_mean" in r]
            run.close()
        finals.append(out["eval/return_mean"])
        aucs.append(float(np.mean(evals)))
        print(f"  {loss} seed {s}: final {finals[-1]:.1f} auc {aucs[-1]:.1f}", file=sys.stderr, flush=True)
    rows.append((loss, fmt(finals), fmt(aucs), finals))

lines = ["# HL-Gauss vs MSE (paper: hlgauss)", "", __doc__.strip(), "",
         f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}.", "",
         "| value loss | greedy return at 100k | mean greedy return over evals (AUC) | per-seed final |", "|---|---|---|---|"]
lines += [f"| {m} | {f} | {a} | {', '.join(f'{v:.0f}' for v in vals)} |" for m, f, a, vals in rows]
write(Path(__file__).with_name("results.md"), "\n".join(lines) + "\n")
