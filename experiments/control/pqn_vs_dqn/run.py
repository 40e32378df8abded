"""PQN vs DQN at a fixed env-step budget on CartPole-v1 and Acrobot-v1 (5 seeds each).

Claim (paper: pqn): PQN, with no replay buffer and no target network, matches DQN's sample
efficiency while being much faster in wall-clock. Metric: greedy return (10 episodes) at the end
of the budget, and training wall-clock (evaluation excluded). DQN uses the rl-zoo CartPole
schedule (train_freq 256, but 64 instead of 128 gradient steps of batch 64, target copy every 10 steps, lr 2.3e-3) on a
[64, 64] MLP to keep the CPU budget small; PQN uses a 2x64 LayerNorm MLP, 64 envs x 16 steps
(recipes/pqn_cartpole.yaml settings). Budget 50k env steps per run.
Run: python experiments/control/pqn_vs_dqn/run.py
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import CI_METHOD, fmt, run_seeds, write  # noqa: E402

from rlx.control import dqn, pqn  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
TASKS = {"CartPole-v1": 50_000, "Acrobot-v1": 50_000}
rows = []
for env_id, budget in TASKS.items():
    backend = "torch" if env_id == "CartPole-v1" else "gymnasium"
    ev = {"every_steps": budget, "episodes": 10}
    p = {"kind": "pqn", "env": {"id": env_id, "num_envs": 64, "backend": backend}, "total_steps": budget,
         "num_steps": 16, "eval": ev, "lr": 1e-3, "exploration_fraction": 0.2}
    d = {"kind": "dqn", "env": {"id": env_id, "num_envs": 1, "backend": backend}, "total_steps": budget,
         "net": {"hidden": [64, 64], "layer_norm": False, "value_loss": "huber"}, "eval": ev,
         "gradient_steps": 64}
    for name, mod, data in (("PQN", pqn, p), ("DQN", dqn, d)):
        vals, sums = run_seeds(mod, data, SEEDS)
        rows.append((env_id, name, fmt(vals), fmt([s["time/train_seconds"] for s in sums], 1), vals))

lines = ["# PQN vs DQN (paper: pqn)", "", __doc__.strip(), "",
         f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}.", "",
         "| task | method | greedy return at budget | train seconds | per-seed returns |", "|---|---|---|---|---|"]
lines += [f"| {t} | {m} | {r} | {s} | {', '.join(f'{v:.0f}' for v in vals)} |" for t, m, r, s, vals in rows]
write(Path(__file__).with_name("results.md"), "\n".join(lines) + "\n")
