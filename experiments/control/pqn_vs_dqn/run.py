"""PQN vs DQN: env steps and training seconds to a greedy target, CartPole-v1 and Acrobot-v1 (5 seeds).

Claim (paper: pqn): PQN, with no replay buffer and no target network, is competitive with DQN in
sample efficiency while being much faster in wall-clock. Protocol: greedy evaluation (10 episodes)
every 5k env steps, evaluation time excluded from the clock; a run stops at the first evaluation
with mean return >= target (CartPole 475, Acrobot -100) or at its step cap. Runs that never reach
the target count with the cap (steps) and their full training time (seconds) in the means.
PQN: recipes/pqn_cartpole.yaml settings (64 envs x 16 steps, 2x64 LayerNorm MLP, Q(lambda) 0.65,
lr 1e-3), cap 200k (CartPole) / 100k (Acrobot), schedules over the cap. DQN: rl-zoo's CartPole
schedule (lr 2.3e-3, batch 64, train_freq 256, target copy every 10 steps, eps 1 -> 0.04 over 8k
steps, Huber loss) but 32 instead of 128 gradient steps per 256 env steps and a [64, 64] MLP,
cap 50k (CartPole, the zoo's budget) / 30k (Acrobot): all to bound CPU time on a shared machine.
PQN's CartPole runs on the torch-batched env, every DQN run on gymnasium's env (same dynamics).
Run: python experiments/control/pqn_vs_dqn/run.py [TASK ...]   (tasks may run in parallel processes)
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _common import CI_METHOD, fmt, run_seeds, write  # noqa: E402

from rlx.control import dqn, pqn  # noqa: E402

SEEDS = [0, 1, 2, 3, 4]
TASKS = {"CartPole-v1": (475.0, "torch", 50_000, 200_000), "Acrobot-v1": (-100.0, "gymnasium", 30_000, 100_000)}
OUT = Path(__file__).parent
only = sys.argv[1:]  # run a subset of tasks (in parallel processes); rows are cached as JSON
for env_id, (target, backend, dqn_cap, pqn_cap) in TASKS.items():
    if only and env_id not in only:
        continue
    rows = []
    ev = {"every_steps": 5000, "episodes": 10, "stop_at_return": target}
    p = {"kind": "pqn", "env": {"id": env_id, "num_envs": 64, "backend": backend}, "total_steps": pqn_cap,
         "num_steps": 16, "eval": ev, "lr": 1e-3}
    d = {"kind": "dqn", "env": {"id": env_id, "num_envs": 1, "backend": "gymnasium"}, "total_steps": dqn_cap,
         "exploration_fraction": 0.16 * 50_000 / dqn_cap,
         "net": {"hidden": [64, 64], "layer_norm": False, "value_loss": "huber"}, "eval": ev,
         "gradient_steps": 32}
    for name, mod, data in (("PQN", pqn, p), ("DQN", dqn, d)):
        _, sums = run_seeds(mod, data, SEEDS)
        steps = [s.get("env/steps_to_target", s["env/steps"]) for s in sums]
        secs = [s.get("time/seconds_to_target", s["time/train_seconds"]) for s in sums]
        hit = sum("env/steps_to_target" in s for s in sums)
        rows.append((env_id, name, f"{hit}/{len(SEEDS)}", fmt(steps, 0), fmt(secs, 1),
                     fmt([s["eval/return_mean"] for s in sums], 1)))
    (OUT / f"rows_{env_id}.json").write_text(json.dumps(rows))

rows = [r for env_id in TASKS if (OUT / f"rows_{env_id}.json").exists()
        for r in json.loads((OUT / f"rows_{env_id}.json").read_text())]

lines = ["# PQN vs DQN (paper: pqn)", "", __doc__.strip(), "",
         f"Intervals: 95% CI of the mean over {len(SEEDS)} seeds, {CI_METHOD}.",
         "Timings were taken on a shared 2-core machine under load (other jobs running), so seconds are",
         "inflated for both methods; compare them within a row pair.", "",
         "| task | method | reached target | env steps to target | train seconds to target | last greedy return |",
         "|---|---|---|---|---|---|"]
lines += [f"| {' | '.join(r)} |" for r in rows]
write(Path(__file__).with_name("results.md"), "\n".join(lines) + "\n")
