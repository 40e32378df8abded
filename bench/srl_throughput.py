"""Environment frames per second: SRL's dataflow vs the same PQN in one process vs Stable-Baselines3.

Paper: srl. Every condition steps 64 copies of gymnasium's CartPole-v1 (sync vector envs, the real
Python environment, not rlx's torch-batched one) with a 2x64 Q-network, 1 torch thread per process:

  collect (no learning): frames of epsilon-greedy acting per second
    srl ring=2     2 actor processes x 2 env groups x 16 envs, 1 policy worker, trainer only reads segments
    srl ring=1     2 actor processes x 1 group x 32 envs (no overlap of env stepping and inference)
    rlx 1-proc     `collect_rollout` on one 64-env vector env, network call and env step in turn
    sb3 dqn        SB3 DQN.learn on a 64-env DummyVecEnv with gradient_steps=0 (acting + replay inserts)
  collect, slow env: the same, with every env copy's step also waiting LATENCY_MS (time.sleep, no CPU):
    a stand-in for environments that wait on a simulator or a server; srl and rlx 1-proc only
  train (PQN's work per frame: 2 epochs x 4 minibatches of 256 per 1024 frames)
    srl ring=2 / ring=1   `rlx train recipes/srl_cartpole.yaml` (kind srl), time/train_seconds
    rlx 1-proc     `rlx.control.pqn` with env.backend=gymnasium, num_envs=64, num_steps=16
    sb3 dqn        SB3 DQN, 64 envs, train_freq 16 vector steps, 8 gradient steps of batch 256, [64, 64]
                   (the same gradient work per frame; SB3 has no PQN)

"collect" rows are steady state (SRL's clock starts at the first segment, after process start-up;
SB3's at learn()); "train" rows are time/train_seconds of the trainers, start-up included.
Evaluation is excluded (one greedy evaluation at the end, outside the clock). Rounds interleave
the conditions so that load from other processes on the machine hits them alike; the table gives
the median over rounds and each condition's ratio to rlx 1-proc.

Usage: python bench/srl_throughput.py [--frames 16384] [--rounds 3]   (needs stable-baselines3)
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from rlx.config import load_config
from rlx.control import pqn
from rlx.control.common import QNetConfig
from rlx.control.envs import make_vec_env
from rlx.control.online import collect_rollout
from rlx.distributed.srl import trainer as srl
from rlx.distributed.srl.actor import EnvFactory
from rlx.distributed.srl.params import ParameterService, num_params
from rlx.distributed.srl.policy import EpsilonSchedule, NetSpec
from rlx.distributed.srl.system import DataflowConfig, SRLSystem

ROOT = Path(__file__).resolve().parents[1]
LATENCY_MS = 0.2  # per env copy per step, in the "slow env" rows
EPS = EpsilonSchedule(total_steps=10**9, start=0.5, end=0.5, fraction=1.0)  # constant 0.5 while collecting
RING = {"srl ring=2": ["dataflow.ring=2", "dataflow.envs_per_group=16"],
        "srl ring=1": ["dataflow.ring=1", "dataflow.envs_per_group=32"]}
NO_EVAL = ["eval.every_steps=100000000", "eval.episodes=2", "eval.stop_at_return=null", "threads=1"]


class SlowEnv:
    """A gymnasium vector env whose step also sleeps LATENCY_MS per env copy (bench only)."""

    def __init__(self, num_envs: int, seed: int):
        self.env = make_vec_env("CartPole-v1", num_envs, seed, "gymnasium")
        self.num_envs, self.spec = num_envs, self.env.spec

    def reset(self, seed=None):
        return self.env.reset(seed)

    def step(self, actions):
        time.sleep(LATENCY_MS * 1e-3 * self.num_envs)
        return self.env.step(actions)

    def close(self):
        self.env.close()


class SlowFactory:
    def __init__(self, num_envs: int):
        self.num_envs = num_envs

    def __call__(self, seed: int) -> SlowEnv:
        return SlowEnv(self.num_envs, seed)


def collect_srl(frames: int, ring: int, slow: bool = False) -> float:
    df = DataflowConfig(actors=2, ring=ring, envs_per_group=32 // ring, num_steps=16)
    spec = NetSpec(4, 2, QNetConfig())
    net = spec.build()
    service = ParameterService(num_params(net))
    service.push(net)
    factory = SlowFactory(df.envs_per_group) if slow else EnvFactory("CartPole-v1", df.envs_per_group, "gymnasium")
    with SRLSystem(df, factory, spec, service, EPS, seed=0) as s:
        s.next_segment()  # steady state: process start-up is not counted
        t0, n = time.perf_counter(), 0
        while n < frames:
            n += s.next_segment().frames
        return n / (time.perf_counter() - t0)


def collect_rlx(frames: int, slow: bool = False) -> float:
    net = pqn.build_q_network(4, 2, QNetConfig())
    env = SlowEnv(64, 0) if slow else make_vec_env("CartPole-v1", 64, 0, "gymnasium")
    obs = env.reset()
    t0 = time.perf_counter()

    def behave(o: torch.Tensor) -> torch.Tensor:
        explore = torch.rand(o.shape[0]) < 0.5
        return torch.where(explore, torch.randint(0, 2, (o.shape[0],)), net.q(o).argmax(1))

    n = 0
    with torch.no_grad():
        while n < frames:
            _, obs = collect_rollout(env, obs, behave, 16)
            n += 16 * 64
    env.close()
    return n / (time.perf_counter() - t0)


def sb3(frames: int, learn: bool) -> float:
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_vec_env as sb3_vec_env

    env = sb3_vec_env("CartPole-v1", n_envs=64, seed=0)
    model = DQN("MlpPolicy", env, seed=0, device="cpu", learning_starts=0, buffer_size=100_000, batch_size=256,
                train_freq=16, gradient_steps=8 if learn else 0, target_update_interval=1024, learning_rate=1e-3,
                exploration_fraction=0.2, policy_kwargs=dict(net_arch=[64, 64]), verbose=0)
    t0 = time.perf_counter()
    model.learn(total_timesteps=frames)
    return model.num_timesteps / (time.perf_counter() - t0)


def train_srl(frames: int, name: str) -> float:
    cfg = load_config(ROOT / "recipes" / "srl_cartpole.yaml", [f"total_steps={frames}", *NO_EVAL, *RING[name]], srl.Config)
    s = srl.run(cfg, None)
    return s["env/steps"] / s["time/train_seconds"]


def train_rlx(frames: int) -> float:
    cfg = load_config(ROOT / "recipes" / "pqn_cartpole.yaml", [f"total_steps={frames}", "env.backend=gymnasium",
                                                               "env.num_envs=64", "num_steps=16", *NO_EVAL], pqn.Config)
    s = pqn.run(cfg, None)
    return s["env/steps"] / s["time/train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=16384)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    f = args.frames
    conditions = {
        ("collect", "srl ring=2"): lambda: collect_srl(f, 2), ("collect", "srl ring=1"): lambda: collect_srl(f, 1),
        ("collect", "rlx 1-proc"): lambda: collect_rlx(f), ("collect", "sb3 dqn"): lambda: sb3(f, learn=False),
        ("slow env", "srl ring=2"): lambda: collect_srl(f, 2, True), ("slow env", "srl ring=1"): lambda: collect_srl(f, 1, True),
        ("slow env", "rlx 1-proc"): lambda: collect_rlx(f, True),
        ("train", "srl ring=2"): lambda: train_srl(f, "srl ring=2"), ("train", "srl ring=1"): lambda: train_srl(f, "srl ring=1"),
        ("train", "rlx 1-proc"): lambda: train_rlx(f), ("train", "sb3 dqn"): lambda: sb3(f, learn=True),
    }
    print(f"{f} frames per run, {args.rounds} rounds, CPUs {os.cpu_count()}, load average at start "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    fps: dict[tuple[str, str], list[float]] = {k: [] for k in conditions}
    for r in range(args.rounds):
        for key, fn in conditions.items():
            fps[key].append(fn())
            print(f"round {r}  {key[0]:8s} {key[1]:11s} {fps[key][-1]:8.0f} frames/s", flush=True)
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    print(f"\n| mode | condition | frames/s (median of {args.rounds}) | min | max | ratio to rlx 1-proc |")
    print("|---|---|---|---|---|---|")
    for (mode, name), xs in fps.items():
        base = statistics.median(fps[(mode, "rlx 1-proc")])
        print(f"| {mode} | {name} | {statistics.median(xs):.0f} | {min(xs):.0f} | {max(xs):.0f} | "
              f"{statistics.median(xs) / base:.2f} |")


if __name__ == "__main__":
    main()
