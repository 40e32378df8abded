"""GR-RL's demonstration filtering and symmetry augmentation, offline.  Paper: grrl

Human demonstrations of precise tasks are noisy: some stretches make the task worse. GR-RL learns a
*progress function* with offline RL on a sparse success reward and keeps only the transitions that
move progress forward, then clones the filtered (and mirrored) data.

1. **Sparse reward** (`sparse_success_rewards`): per episode of length T that succeeded,

       r_t = gamma^(T-1-t)   for the last k steps (t >= T - k),  0 otherwise;  failed episodes: 0

   and every episode end is terminal. Inside the window the return from step t is (T-t) gamma^(T-1-t),
   so Q(s, a) is not a probability: it peaks at k gamma^(k-1) (16.5 at k = 20, gamma = 0.99) at the
   window's first step and falls to 1 at the last; before the window it is that peak discounted.
   Only the sign of the TD advantage matters to the default filter (margin 0); a margin is on this scale.
2. **Progress critic**: IQL's expectile critic (`rlx.control.offline.IQLUpdate.critic_step`) on that
   reward, `critic_steps` updates.
3. **Filter** (`progress_filter`): a transition's progress gain is its TD advantage under the critic,

       delta_t = r_t + gamma (1 - done_t) V(s_{t+1}) - V(s_t)

   and it is kept when delta_t >= -margin (it does not lose progress).
4. **Morphological symmetry** (`mirror`): the environments here are symmetric under reflection:
   CartPole (x, x', theta, theta') -> -(...), action left <-> right; Pendulum (cos, sin, w) ->
   (cos, -sin, -w), torque -> -torque. Mirrored copies of the kept transitions double the data.
5. Behaviour cloning on the result (`rlx.control.offline.BCUpdate`), evaluated like every offline run.

Departures: the paper's critic is distributional TD3+BC over action chunks and its filter threshold
is not public (we have a third-party summary and the abstract); our filter is the TD advantage sign
with a margin. Success here: CartPole survives to the time limit; Pendulum is upright (cos > 0.9)
for the last `success_window` steps. The paper's online stage (a latent-space noise predictor) is
not implemented.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from rlx.config import ConfigError, Section
from rlx.control.offline import (BCUpdate, DatasetConfig, IQLUpdate, OfflineData, OfflineLoop, as_actions, env_spec,
                                 load_raw, sample, train_offline)
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "episode_ids", "episode_success", "sparse_success_rewards", "progress_filter", "mirror", "run"]


def episode_ids(terminals: np.ndarray, timeouts: np.ndarray) -> np.ndarray:
    """[N] episode index of each row (episodes contiguous; an episode ends at a terminal or timeout)."""
    ends = (terminals | timeouts).astype(np.int64)
    return np.concatenate([[0], np.cumsum(ends)[:-1]])


def episode_success(env_id: str, data: dict[str, np.ndarray], ep: np.ndarray, window: int) -> np.ndarray:
    """[episodes] bool: CartPole reached the time limit; Pendulum kept cos(theta) > 0.9 over its last
    `window` steps."""
    n_ep = int(ep.max()) + 1
    if env_id == "CartPole-v1":
        return np.bincount(ep, weights=data["timeouts"].astype(float), minlength=n_ep) > 0
    if env_id == "Pendulum-v1":
        out = np.zeros(n_ep, dtype=bool)
        starts = np.searchsorted(ep, np.arange(n_ep))
        ends = np.append(starts[1:], len(ep))
        for e in range(n_ep):
            tail = data["next_observations"][max(starts[e], ends[e] - window):ends[e], 0]
            out[e] = bool((tail > 0.9).all())
        return out
    raise ConfigError(f"config error: dataset.env = {env_id!r}: grrl defines success for CartPole-v1, Pendulum-v1")


def sparse_success_rewards(ep: np.ndarray, success: np.ndarray, gamma: float, k: int) -> np.ndarray:
    """[N] r_t = gamma^(T-1-t) on the last k steps of successful episodes, else 0 (module docstring)."""
    n_ep = len(success)
    starts = np.searchsorted(ep, np.arange(n_ep))
    ends = np.append(starts[1:], len(ep))
    r = np.zeros(len(ep), dtype=np.float32)
    for e in np.nonzero(success)[0]:
        t = np.arange(max(starts[e], ends[e] - k), ends[e])
        r[t] = gamma ** (ends[e] - 1 - t)
    return r


def progress_filter(v: torch.Tensor, v_next: torch.Tensor, rewards: torch.Tensor, done: torch.Tensor,
                    gamma: float, margin: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep [N] bool, delta [N]): delta = r + gamma (1 - done) V(s') - V(s); keep delta >= -margin."""
    delta = rewards + gamma * (1 - done) * v_next - v
    return delta >= -margin, delta


def mirror(env_id: str, obs: torch.Tensor, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reflected copy of (obs [N, D], actions) under the environment's left-right symmetry."""
    if env_id == "CartPole-v1":
        return -obs, 1 - actions
    if env_id == "Pendulum-v1":
        return obs * torch.tensor([1.0, -1.0, -1.0]), -actions
    raise ConfigError(f"config error: dataset.env = {env_id!r}: grrl mirrors CartPole-v1 and Pendulum-v1")


class Config(Section):
    kind: Literal["grrl"] = Field("grrl", description="trainer: GR-RL demonstration filtering + behaviour cloning")
    seed: int = Field(0, ge=0, description="random seed")
    dataset: DatasetConfig = Field(DatasetConfig(env="Pendulum-v1", kind="medium-expert"), description="offline data")
    train: OfflineLoop = Field(OfflineLoop(), description="behaviour cloning on the filtered data, and evaluation")
    critic_steps: int = Field(5000, ge=0, description="progress-critic updates (0: no filter)")
    gamma: float = Field(0.99, gt=0, le=1, description="discount of the sparse success reward")
    success_k: int = Field(20, ge=1, description="last steps of a successful episode that are rewarded")
    success_window: int = Field(20, ge=1, description="Pendulum: final steps that must be upright to succeed")
    expectile: float = Field(0.7, gt=0, lt=1, description="critic: expectile of the value loss")
    margin: float = Field(0.0, ge=0, description="keep a transition when its progress gain >= -margin")
    filter: bool = Field(True, description="drop transitions that lose progress (False: clone everything)")
    mirror: bool = Field(True, description="add mirrored copies of the kept transitions")


def _data(cfg: Config) -> tuple[OfflineData, dict]:
    ds = cfg.dataset
    raw = load_raw(ds)
    ep = episode_ids(raw["terminals"], raw["timeouts"])
    success = episode_success(ds.env, raw, ep, cfg.success_window)
    rewards = sparse_success_rewards(ep, success, cfg.gamma, cfg.success_k)
    done = (raw["terminals"] | raw["timeouts"]).astype(np.float32)  # the task ends with the episode
    spec = env_spec(ds.env)
    actions = as_actions(raw["actions"], spec)
    obs = torch.as_tensor(raw["observations"], dtype=torch.float32)
    zeros, ones = torch.zeros(obs.shape[1]), torch.ones(obs.shape[1])
    data = OfflineData(obs, actions, torch.as_tensor(rewards), torch.as_tensor(raw["next_observations"], dtype=torch.float32),
                       torch.as_tensor(done), spec, zeros, ones)
    return data, {"grrl/episodes": float(len(success)), "grrl/success_rate": float(success.mean())}


def _filtered(cfg: Config, data: OfflineData) -> tuple[OfflineData, dict]:
    keep = torch.ones(data.obs.shape[0], dtype=torch.bool)
    info: dict[str, float] = {}
    if cfg.filter and cfg.critic_steps > 0:
        critic = IQLUpdate(data.spec, cfg.train.hidden, num_q=2, target_reduce="min", quantile=0.0, q_loss="mse",
                           huber_delta=1.0, expectile=cfg.expectile, beta=0.0, gamma=cfg.gamma, polyak=0.005,
                           lr=cfg.train.lr)
        gen = torch.Generator().manual_seed(cfg.seed + 7)
        for _ in range(cfg.critic_steps):
            critic.critic_step(*sample(data, cfg.train.batch_size, gen))
            critic.polyak_update()
        with torch.no_grad():
            v, v_next = critic.value(data.obs).squeeze(-1), critic.value(data.next_obs).squeeze(-1)
        keep, delta = progress_filter(v, v_next, data.rewards, data.terminated, cfg.gamma, cfg.margin)
        info = {"grrl/kept_fraction": float(keep.float().mean()), "grrl/delta_mean": float(delta.mean())}
    obs, actions = data.obs[keep], data.actions[keep]
    if cfg.mirror:
        m_obs, m_act = mirror(cfg.dataset.env, obs, actions)
        obs, actions = torch.cat([obs, m_obs]), torch.cat([actions, m_act])
    n = obs.shape[0]
    out = OfflineData(obs, actions, torch.zeros(n), obs, torch.ones(n), data.spec, data.obs_mean, data.obs_std)
    return out, {**info, "grrl/bc_rows": float(n)}


def run(cfg: Config, run: RunDir | None) -> dict:
    """Sparse-reward critic -> progress filter -> (mirror) -> behaviour cloning. The critic stage is
    deterministic in the seed, so a resumed run recomputes it and continues cloning from its checkpoint."""
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data, info = _data(cfg)
    bc_data, finfo = _filtered(cfg, data)
    info.update(finfo)
    if run is not None:
        run.log(0, info)
    learner = BCUpdate(data.spec, cfg.train.hidden, cfg.train.lr)
    return {**info, **train_offline("grrl", cfg.train, learner, bc_data, cfg.dataset.env, cfg.seed, run)}
