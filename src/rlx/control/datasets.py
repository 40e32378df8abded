"""Offline control datasets with D4RL's keys, built locally from scripted policies. Nothing is downloaded.

Format (`.npz`, one array per key, N transitions; the same keys and meaning as D4RL's
`get_dataset()`):

    observations       [N, D] float32   s_t
    actions            [N] int64 (discrete) or [N, A] float32 (continuous)
    rewards            [N] float32
    next_observations  [N, D] float32   true s_{t+1} (also at time-limit truncations)
    terminals          [N] bool         s_{t+1} is terminal (no bootstrap)
    timeouts           [N] bool         the time limit ended the episode (bootstrap from s_{t+1})

plus `meta` (a JSON string: env, kind, policy, episodes, return statistics).

Policies: `expert` is a scripted controller (CartPole: a linear balance rule, 500/500;
Pendulum: energy-pumping swing-up with a PD hold at the top; InvertedPendulum (MuJoCo): linear state
feedback, 1000/1000), `medium` is the expert taking a
uniformly random action with probability `MEDIUM_EPS[env]`, `random` is uniform. Dataset kinds,
named after D4RL's: random, medium, expert, medium-expert (half medium, half expert episodes), and
medium-replay (episodes whose random-action probability falls linearly from 1 to the medium level,
like the replay buffer of an agent trained up to medium performance).

Normalised score (D4RL's): 100 * (return - random) / (expert - random), with the reference
returns `REF_SCORES` measured here by `reference_scores()` (100 episodes each, seed 0).

CLI: rlx make-dataset --env CartPole-v1 --kind medium-replay --transitions 50000 --out data/cp_mr.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from rlx.config import ConfigError
from rlx.control.envs import GymVecEnv

__all__ = ["DatasetKind", "ENVS", "REF_SCORES", "build_dataset", "save_dataset", "load_dataset",
           "normalized_score", "reference_scores", "expert_action", "add_arguments", "main"]

DatasetKind = Literal["random", "medium", "expert", "medium-expert", "medium-replay"]
ENVS = ("CartPole-v1", "Pendulum-v1", "InvertedPendulum-v5")  # the last needs `pip install mujoco imageio`
MEDIUM_EPS = {"CartPole-v1": 0.6, "Pendulum-v1": 0.6, "InvertedPendulum-v5": 0.15}
# measured with reference_scores(100) on gymnasium 1.4 (see experiments/control/datasets/results.md)
REF_SCORES: dict[str, dict[str, float]] = {
    "CartPole-v1": {"random": 22.24, "expert": 500.0},
    "Pendulum-v1": {"random": -1204.24, "expert": -145.44},
    "InvertedPendulum-v5": {"random": 5.02, "expert": 1000.0},  # mujoco 4.0
}


def expert_action(env_id: str, obs: torch.Tensor) -> torch.Tensor:
    """Scripted expert. CartPole: push towards where the pole falls, with small cart-centring terms.
    Pendulum (obs cos, sin, angular velocity): pump energy towards the upright energy, PD-hold near
    the top. InvertedPendulum (obs cart x, pole angle, their velocities; force in [-3, 3]): linear
    feedback a = 2 x + 30 angle + 3 x' + 3 angle' (gains tuned by hand; all positive, as in an LQR
    for a cart-pole: push under the falling pole, and away from the centre to tip it back)."""
    if env_id == "CartPole-v1":
        return ((obs[:, 2] + 0.3 * obs[:, 3] + 0.05 * obs[:, 0] + 0.1 * obs[:, 1]) > 0).long()
    if env_id == "Pendulum-v1":
        c, s, w = obs[:, 0], obs[:, 1], obs[:, 2]
        energy = w.square() / 6 + 5 * (c - 1)  # 0 at rest upright (m = l = 1, g = 10)
        pump = torch.clamp(20.0 * torch.sign(w) * (-energy).clamp(min=0), -2, 2)
        pump = torch.where(w.abs() < 1e-3, torch.full_like(w, 2.0), pump)
        hold = torch.clamp(-10 * torch.atan2(s, c) - 2 * w, -2, 2)
        return torch.where(c > 0.85, hold, pump).unsqueeze(1)
    if env_id == "InvertedPendulum-v5":
        gains = torch.tensor([2.0, 30.0, 3.0, 3.0])
        return torch.clamp(obs @ gains, -3, 3).unsqueeze(1)
    raise ConfigError(f"config error: env = {env_id!r}: datasets support {ENVS}")


def _rollout(env_id: str, eps_fn, seed: int, max_rows: int | None = None, max_episodes: int | None = None,
             num_envs: int = 16) -> dict:
    """Run whole episodes; episode k, started when a fraction `progress` of `max_rows` is filled,
    takes a random action with probability eps_fn(k, progress). New episodes start only while
    fewer than `max_rows` rows and `max_episodes` episodes exist; started episodes always finish."""
    env = GymVecEnv(env_id, num_envs, seed=seed)
    spec = env.spec
    gen = torch.Generator().manual_seed(seed)
    obs = env.reset()
    rows, started = 0, 0
    ep_id = torch.full((num_envs,), -1)
    ep_eps = torch.zeros(num_envs)

    def start(i: int) -> None:
        nonlocal started
        if (max_rows is None or rows < max_rows) and (max_episodes is None or started < max_episodes):
            ep_id[i] = started
            ep_eps[i] = float(eps_fn(started, rows / max_rows if max_rows else started / max_episodes))
            started += 1
        else:
            ep_id[i] = -1

    for i in range(num_envs):
        start(i)
    cols: dict[str, list] = {k: [] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts", "ep")}
    while (ep_id >= 0).any():
        active = ep_id >= 0
        explore = torch.rand(num_envs, generator=gen) < ep_eps
        a = expert_action(env_id, obs)
        if spec.discrete:
            a = torch.where(explore, torch.randint(0, spec.num_actions, (num_envs,), generator=gen), a)
        else:
            rand = torch.rand(num_envs, spec.action_dim, generator=gen) * (spec.action_high - spec.action_low) + spec.action_low
            a = torch.where(explore.unsqueeze(1), rand, a)
        out = env.step(a)
        for k, v in (("observations", obs), ("actions", a), ("rewards", out.reward), ("next_observations", out.final_obs),
                     ("terminals", out.terminated), ("timeouts", out.truncated), ("ep", ep_id)):
            cols[k].append(v[active].clone())
        rows += int(active.sum())
        for i in ((out.terminated | out.truncated) & active).nonzero().flatten().tolist():
            start(i)
        obs = out.obs
    env.close()
    data = {k: torch.cat(v).numpy() for k, v in cols.items()}
    order = np.argsort(data["ep"], kind="stable")  # episodes contiguous, in order
    return {k: v[order] for k, v in data.items()}


def _episode_returns(data: dict) -> np.ndarray:
    return np.bincount(data["ep"], weights=data["rewards"])


def build_dataset(env_id: str, kind: DatasetKind, transitions: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Whole episodes: the first episode end at or after `transitions` rows closes the dataset."""
    if env_id not in ENVS:
        raise ConfigError(f"config error: env = {env_id!r}: datasets support {ENVS}")
    medium = MEDIUM_EPS[env_id]
    eps_fn = {
        "random": lambda k, p: 1.0,
        "medium": lambda k, p: medium,
        "expert": lambda k, p: 0.0,
        "medium-expert": lambda k, p: medium if k % 2 == 0 else 0.0,
        "medium-replay": lambda k, p: 1.0 - (1.0 - medium) * min(1.0, p),  # a learning curve up to medium
    }[kind]
    data = _rollout(env_id, eps_fn, seed, max_rows=transitions)
    # up to 16 episodes run in parallel: keep whole episodes (in start order) up to `transitions`
    ends = np.nonzero(data["terminals"] | data["timeouts"])[0] + 1
    cut = int(ends[min(np.searchsorted(ends, transitions), len(ends) - 1)])
    data = {k: v[:cut] for k, v in data.items()}
    rets = _episode_returns(data)
    meta = {"env": env_id, "kind": kind, "seed": seed, "transitions": int(len(data["ep"])), "episodes": int(len(rets)),
            "return_mean": float(rets.mean()), "return_min": float(rets.min()), "return_max": float(rets.max()),
            "policy": f"scripted expert with random-action probability per episode ({kind})",
            "normalized_score_mean": float(normalized_score(env_id, rets.mean()))}
    out = {k: data[k] for k in ("observations", "actions", "rewards", "next_observations", "terminals", "timeouts")}
    out["observations"] = out["observations"].astype(np.float32)
    out["next_observations"] = out["next_observations"].astype(np.float32)
    out["rewards"] = out["rewards"].astype(np.float32)
    out["meta"] = np.array(json.dumps(meta))
    return out


def save_dataset(data: dict[str, np.ndarray], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **data)
    tmp.replace(path)
    return path


def load_dataset(path: str | Path) -> dict[str, np.ndarray]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"dataset not found: {p} (build one with `rlx make-dataset`)")
    with np.load(p) as z:
        data = {k: z[k] for k in z.files}
    missing = {"observations", "actions", "rewards", "next_observations", "terminals", "timeouts"} - set(data)
    if missing:
        raise ConfigError(f"config error: dataset {p} lacks keys {sorted(missing)}")
    return data


def normalized_score(env_id: str, ret: float | np.ndarray) -> float | np.ndarray:
    """D4RL's 100 (ret - random) / (expert - random). NaN for an env without reference scores (a dataset of
    any gymnasium env can be trained on; it is logged as null, the raw return is still there)."""
    if env_id not in REF_SCORES:
        return np.full_like(np.asarray(ret, dtype=float), np.nan) if np.ndim(ret) else float("nan")
    ref = REF_SCORES[env_id]
    return 100.0 * (ret - ref["random"]) / (ref["expert"] - ref["random"])


def reference_scores(env_id: str, episodes: int = 100, seed: int = 0) -> dict[str, float]:
    """Mean return of the uniform-random and the scripted expert policy (what REF_SCORES stores)."""
    out = {}
    for name, eps in (("random", 1.0), ("expert", 0.0)):
        data = _rollout(env_id, lambda k, p, e=eps: e, seed, max_episodes=episodes)
        out[name] = round(float(_episode_returns(data).mean()), 2)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="CartPole-v1", help=f"one of {', '.join(ENVS)}")
    parser.add_argument("--kind", default="medium-replay",
                        help="random | medium | expert | medium-expert | medium-replay")
    parser.add_argument("--transitions", type=int, default=50_000, help="at least this many rows (cut at an episode end)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="output .npz path")


def main(args: argparse.Namespace) -> int:
    if args.kind not in DatasetKind.__args__:
        raise ConfigError(f"config error: --kind = {args.kind!r}: expected one of {list(DatasetKind.__args__)}")
    if args.transitions <= 0:
        raise ConfigError(f"config error: --transitions = {args.transitions}: must be > 0")
    data = build_dataset(args.env, args.kind, args.transitions, args.seed)
    path = save_dataset(data, args.out)
    print(f"wrote {path}: {json.loads(str(data['meta']))}")
    return 0
