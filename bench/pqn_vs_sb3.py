"""Time to a greedy 475 on CartPole-v1: rlx PQN vs Stable-Baselines3 DQN (rl-baselines3-zoo settings).

Both sides: 1 torch thread; a greedy evaluation of 10 episodes on gymnasium's CartPole-v1 every
5,000 env steps (PQN: at the first update boundary at or after each multiple of 5,000), with the
evaluation time excluded from the clock; a run stops at the first evaluation whose mean return is
>= 475. The clock starts when learning starts (network construction excluded on both sides).

SB3 DQN uses the tuned CartPole-v1 entry of rl-baselines3-zoo's hyperparams/dqn.yml:
lr 2.3e-3, batch 64, buffer 100k, learning_starts 1000, gamma 0.99, target_update_interval 10,
train_freq 256, gradient_steps 128, exploration_fraction 0.16, exploration_final_eps 0.04,
net_arch [256, 256], n_timesteps 5e4 (we allow up to --sb3-max-steps so that a slow seed still
gets a time). PQN uses recipes/pqn_cartpole.yaml.

Usage: python bench/pqn_vs_sb3.py [--seeds 3]      (needs `pip install stable-baselines3`)
Prints one line per run, the medians, and last `ratio: N` (SB3 seconds / PQN seconds).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from rlx.config import load_config
from rlx.control import pqn
from rlx.control.common import evaluate

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "pqn_cartpole.yaml"
TARGET, EVERY, EPISODES = 475.0, 5000, 10

ZOO_DQN_CARTPOLE = dict(
    learning_rate=2.3e-3, batch_size=64, buffer_size=100_000, learning_starts=1000, gamma=0.99,
    target_update_interval=10, train_freq=256, gradient_steps=128, exploration_fraction=0.16,
    exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
)
ZOO_N_TIMESTEPS = 50_000


def run_pqn(seed: int) -> tuple[float | None, int | None]:
    cfg = load_config(RECIPE, [f"seed={seed}", f"eval.every_steps={EVERY}", f"eval.episodes={EPISODES}",
                               f"eval.stop_at_return={TARGET}", "eval.backend=gymnasium", "threads=1"], pqn.Config)
    s = pqn.run(cfg, None)
    if "time/seconds_to_target" not in s:
        return None, None
    return s["time/seconds_to_target"], int(s["env/steps_to_target"])


def run_sb3(seed: int, max_steps: int) -> tuple[float | None, int | None]:
    import gymnasium as gym
    from stable_baselines3 import DQN
    from stable_baselines3.common.callbacks import BaseCallback

    class GreedyEval(BaseCallback):
        def __init__(self):
            super().__init__()
            self.eval_seconds = 0.0
            self.hit: int | None = None

        def _on_step(self) -> bool:
            if self.num_timesteps % EVERY != 0:
                return True
            t0 = time.perf_counter()
            policy = self.model.policy

            def act(obs: torch.Tensor) -> torch.Tensor:
                return policy.q_net(obs).argmax(1)

            mean = float(np.mean(evaluate(act, "CartPole-v1", EPISODES, seed)))
            self.eval_seconds += time.perf_counter() - t0
            if mean >= TARGET:
                self.hit = self.num_timesteps
                return False
            return True

    torch.manual_seed(seed)
    model = DQN("MlpPolicy", gym.make("CartPole-v1"), seed=seed, verbose=0, device="cpu", **ZOO_DQN_CARTPOLE)
    cb = GreedyEval()
    t0 = time.perf_counter()
    model.learn(total_timesteps=max_steps, callback=cb)
    seconds = time.perf_counter() - t0 - cb.eval_seconds
    return (seconds, cb.hit) if cb.hit is not None else (None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--sb3-max-steps", type=int, default=2 * ZOO_N_TIMESTEPS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"pqn": [], "sb3_dqn": []}
    for seed in range(args.seeds):
        for name, fn in (("pqn", run_pqn), ("sb3_dqn", lambda s: run_sb3(s, args.sb3_max_steps))):
            sec, steps = fn(seed)
            if sec is None:
                print(f"{name:8s} seed {seed}: did not reach {TARGET:g}", flush=True)
                times[name].append(float("inf"))
            else:
                print(f"{name:8s} seed {seed}: {sec:7.2f} s  {steps:7d} env steps to greedy >= {TARGET:g}", flush=True)
                times[name].append(sec)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"median seconds: pqn {med['pqn']:.2f}  sb3_dqn {med['sb3_dqn']:.2f}")
    print(f"ratio: {med['sb3_dqn'] / med['pqn']:.1f}")


if __name__ == "__main__":
    main()
