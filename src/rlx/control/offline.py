"""Shared offline-RL machinery: dataset config, policies (categorical / Gaussian), critics, and the
IQL-family update that IQL and RIQL configure differently.

    IQL  (paper: iql):  2 Q-nets, target = min over them, MSE Q loss, raw observations.
    RIQL (paper: riql): K Q-nets, target = alpha-quantile over them, Huber Q loss, normalised
                        observations.

One update on a minibatch (s, a, r, s', terminated):
    V:  L = E[ L_tau( Qhat_target(s, a) - V(s) ) ]                        expectile, tau ~ 0.7
    Q:  L = sum_i E[ loss( Q_i(s, a) - (r + gamma (1 - terminated) V(s')) ) ]
    pi: L = -E[ min(exp(beta (Qhat_target(s, a) - V(s))), 100) log pi(a | s) ]   (AWR)
    Polyak: Q_target <- (1 - polyak) Q_target + polyak Q
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from rlx.config import ConfigError, Section
from rlx.control.common import Widths
from rlx.control.corruption import CorruptionKind, CorruptionMode, corrupt
from rlx.control.datasets import DatasetKind, build_dataset, load_dataset
from rlx.control.envs import EnvSpec, GymVecEnv
from rlx.control.losses import expectile_loss, huber, quantile_target
from rlx.control.networks import mlp

__all__ = ["DatasetConfig", "CorruptionConfig", "OfflineData", "OfflineLoop", "prepare_data", "load_raw", "env_spec",
           "as_actions", "Policy", "Critic",
           "IQLUpdate", "BCUpdate", "train_offline"]


class DatasetConfig(Section):
    env: str = Field("CartPole-v1", description="gymnasium id the data comes from (and evaluation runs on)")
    path: str | None = Field(None, description=".npz with D4RL keys; None builds `kind` in memory (no download)")
    kind: DatasetKind = Field("medium-replay", description="dataset to build when path is None")
    transitions: int = Field(20_000, ge=100, description="transitions to build when path is None")
    seed: int = Field(0, ge=0, description="seed of the built dataset (independent of the training seed)")


class CorruptionConfig(Section):
    kind: CorruptionKind | None = Field(None, description="states | actions | rewards | dynamics, or None for clean data")
    mode: CorruptionMode = Field("random", description="random | adversarial (adversarial needs a critic: random only here)")
    fraction: float = Field(0.3, ge=0, le=1, description="fraction of transitions corrupted")
    scale: float = Field(1.0, ge=0, description="corruption scale epsilon")


@dataclass(frozen=True)
class OfflineData:
    obs: torch.Tensor  # [N, D] (normalised if asked)
    actions: torch.Tensor  # [N] long or [N, A] float
    rewards: torch.Tensor  # [N]
    next_obs: torch.Tensor  # [N, D]
    terminated: torch.Tensor  # [N] float 0/1
    spec: EnvSpec
    obs_mean: torch.Tensor  # [D]
    obs_std: torch.Tensor  # [D]


def load_raw(ds: DatasetConfig) -> dict:
    """The dataset's D4RL-style arrays: from `path`, or built in memory. A file must hold `dataset.env`'s
    transitions: its `meta` names the env it was collected on, and the shapes must fit that env."""
    if not ds.path:
        return build_dataset(ds.env, ds.kind, ds.transitions, ds.seed)
    raw = load_dataset(ds.path)
    made_on = json.loads(str(raw["meta"])).get("env") if "meta" in raw else None
    if made_on is not None and made_on != ds.env:
        raise ConfigError(f"config error: dataset.path = {ds.path!r} holds {made_on} transitions, but dataset.env = "
                          f"{ds.env!r} (the env evaluated on)")
    spec = env_spec(ds.env)
    obs, actions = np.asarray(raw["observations"]), np.asarray(raw["actions"])
    want_actions = [()] if spec.discrete else [(spec.action_dim,)] + ([()] if spec.action_dim == 1 else [])
    if obs.ndim != 2 or obs.shape[1] != spec.obs_dim or actions.shape[1:] not in want_actions:
        raise ConfigError(f"config error: dataset.path = {ds.path!r}: observations {obs.shape[1:]} and actions "
                          f"{actions.shape[1:]} per transition do not fit dataset.env = {ds.env!r} (observations "
                          f"({spec.obs_dim},), actions {want_actions[0]})")
    return raw


def env_spec(env_id: str) -> EnvSpec:
    """Observation / action spec of `env_id` (from a throwaway one-env instance)."""
    probe = GymVecEnv(env_id, 1, seed=0)
    try:
        return probe.spec
    finally:
        probe.close()


def as_actions(actions, spec: EnvSpec) -> torch.Tensor:
    """[N] long (discrete) or [N, A] float (continuous) action tensor."""
    a = torch.as_tensor(actions)
    return a.long() if spec.discrete else a.float().reshape(len(a), -1)


def prepare_data(ds: DatasetConfig, corruption: CorruptionConfig, normalize_obs: bool, reward_scale: float,
                 corruption_seed: int) -> OfflineData:
    raw = load_raw(ds)
    spec = env_spec(ds.env)
    if corruption.kind is not None:
        if corruption.mode == "adversarial":
            raise ConfigError("config error: corruption.mode = 'adversarial': trainers support random corruption; "
                              "use rlx.control.corruption.corrupt with a critic for adversarial data")
        raw, _ = corrupt(raw, corruption.kind, corruption.mode, corruption.fraction, corruption.scale,
                         seed=corruption_seed, num_actions=spec.num_actions,
                         action_low=spec.action_low, action_high=spec.action_high)
    obs = torch.as_tensor(raw["observations"], dtype=torch.float32)
    nxt = torch.as_tensor(raw["next_observations"], dtype=torch.float32)
    mean, std = obs.mean(0), obs.std(0).clamp_min(1e-3)
    if not normalize_obs:
        mean, std = torch.zeros_like(mean), torch.ones_like(std)
    actions = as_actions(raw["actions"], spec)
    return OfflineData((obs - mean) / std, actions, torch.as_tensor(raw["rewards"], dtype=torch.float32) * reward_scale,
                       (nxt - mean) / std, torch.as_tensor(raw["terminals"], dtype=torch.float32), spec, mean, std)


class Policy(nn.Module):
    """Categorical (discrete) or tanh-mean Gaussian with state-independent log-std (continuous)."""

    def __init__(self, spec: EnvSpec, hidden: list[int]):
        super().__init__()
        self.spec = spec
        out = spec.num_actions if spec.discrete else spec.action_dim
        self.body = mlp(spec.obs_dim, hidden, out)
        self.log_std = nn.Parameter(torch.zeros(spec.action_dim))
        self.half_range = (spec.action_high - spec.action_low) / 2
        self.mid = (spec.action_high + spec.action_low) / 2

    def log_prob(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        out = self.body(obs)
        if self.spec.discrete:
            return torch.log_softmax(out, -1).gather(1, actions.unsqueeze(1)).squeeze(1)
        mean = torch.tanh(out) * self.half_range + self.mid
        std = self.log_std.clamp(-5, 2).exp() * self.half_range
        z = (actions - mean) / std
        return (-0.5 * z.square() - std.log() - 0.5 * math.log(2 * math.pi)).sum(-1)

    def sample(self, obs: torch.Tensor, n: int) -> torch.Tensor:
        """n actions per state, [n, B] (discrete) or [n, B, A] (continuous, clipped to the bounds)."""
        out = self.body(obs)
        if self.spec.discrete:
            return torch.multinomial(torch.softmax(out, -1), n, replacement=True).T
        mean = torch.tanh(out) * self.half_range + self.mid
        std = self.log_std.clamp(-5, 2).exp() * self.half_range
        a = mean + std * torch.randn(n, *mean.shape)
        return a.clamp(self.spec.action_low, self.spec.action_high)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action: the mode."""
        out = self.body(obs)
        if self.spec.discrete:
            return out.argmax(-1)
        return torch.tanh(out) * self.half_range + self.mid


class Critic(nn.Module):
    """An ensemble of K Q-functions: [K, B] values for given (s, a)."""

    def __init__(self, spec: EnvSpec, hidden: list[int], k: int, layer_norm: bool = False):
        super().__init__()
        self.spec = spec
        in_dim = spec.obs_dim + (0 if spec.discrete else spec.action_dim)
        out_dim = spec.num_actions if spec.discrete else 1
        self.nets = nn.ModuleList(mlp(in_dim, hidden, out_dim, layer_norm) for _ in range(k))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        if self.spec.discrete:
            idx = actions.unsqueeze(1)
            return torch.stack([net(obs).gather(1, idx).squeeze(1) for net in self.nets])
        x = torch.cat([obs, actions], -1)
        return torch.stack([net(x).squeeze(-1) for net in self.nets])


class IQLUpdate:
    """The IQL-family learner; `target_reduce` and `q_loss` are picked once at construction."""

    def __init__(self, spec: EnvSpec, hidden: list[int], num_q: int, target_reduce: Literal["min", "quantile"],
                 quantile: float, q_loss: Literal["mse", "huber"], huber_delta: float, expectile: float,
                 beta: float, gamma: float, polyak: float, lr: float, layer_norm: bool = False):
        self.critic = Critic(spec, hidden, num_q, layer_norm)
        self.target = copy.deepcopy(self.critic).requires_grad_(False)
        self.value = mlp(spec.obs_dim, hidden, 1, layer_norm)
        self.policy = Policy(spec, hidden)
        self.opt_q = torch.optim.Adam(self.critic.parameters(), lr=lr)
        self.opt_v = torch.optim.Adam(self.value.parameters(), lr=lr)
        self.opt_pi = torch.optim.Adam(self.policy.parameters(), lr=lr)
        self.reduce = (lambda q: q.min(0).values) if target_reduce == "min" else (lambda q: quantile_target(q, quantile))
        self.q_loss = (lambda u: 0.5 * u.square()) if q_loss == "mse" else (lambda u: huber(u, huber_delta))
        self.expectile, self.beta, self.gamma, self.polyak = expectile, beta, gamma, polyak

    def step(self, obs, actions, rewards, next_obs, terminated) -> dict[str, float]:
        q_hat, v, metrics = self.critic_step(obs, actions, rewards, next_obs, terminated)
        metrics.update(self.policy_step(obs, actions, q_hat, v))
        self.polyak_update()
        return metrics

    def critic_step(self, obs, actions, rewards, next_obs, terminated):
        """The V (expectile) and Q (TD) updates; returns (Qhat_target(s, a) [B], V(s) [B] detached, metrics)."""
        with torch.no_grad():
            q_hat = self.reduce(self.target(obs, actions))  # [B]
        v = self.value(obs).squeeze(-1)
        loss_v, _ = expectile_loss(q_hat - v, self.expectile)
        self.opt_v.zero_grad(set_to_none=True)
        loss_v.backward()
        self.opt_v.step()

        with torch.no_grad():
            y = rewards + self.gamma * (1 - terminated) * self.value(next_obs).squeeze(-1)
        q = self.critic(obs, actions)  # [K, B]
        loss_q = self.q_loss(q - y).mean(1).sum()
        self.opt_q.zero_grad(set_to_none=True)
        loss_q.backward()
        self.opt_q.step()
        return q_hat, v.detach(), {"train/loss_v": float(loss_v.detach()), "train/loss_q": float(loss_q.detach()),
                                   "train/q_mean": float(q_hat.mean())}

    def policy_step(self, obs, actions, q_hat, v) -> dict[str, float]:
        """IQL's extraction: advantage-weighted regression onto the dataset actions."""
        with torch.no_grad():
            adv = q_hat - v
            w = torch.exp(self.beta * adv).clamp(max=100.0)
        loss_pi = -(w * self.policy.log_prob(obs, actions)).mean()
        self.opt_pi.zero_grad(set_to_none=True)
        loss_pi.backward()
        self.opt_pi.step()
        return {"train/loss_pi": float(loss_pi.detach()), "train/adv_mean": float(adv.mean())}

    def polyak_update(self) -> None:
        with torch.no_grad():
            for p, tp in zip(self.critic.parameters(), self.target.parameters()):
                tp.lerp_(p, self.polyak)

    def state_dict(self) -> dict:
        return {k: getattr(self, k).state_dict() for k in ("critic", "target", "value", "policy", "opt_q", "opt_v", "opt_pi")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)


def sample(data: OfflineData, batch: int, gen: torch.Generator):
    idx = torch.randint(0, data.obs.shape[0], (batch,), generator=gen)
    return data.obs[idx], data.actions[idx], data.rewards[idx], data.next_obs[idx], data.terminated[idx]


def normalized_act(policy: Policy, data: OfflineData):
    """Greedy actor on raw observations (applies the dataset normalisation)."""
    return lambda o: policy.act((o - data.obs_mean) / data.obs_std)


def np_mean(x) -> float:
    return float(np.mean(x))


class BCUpdate:
    """Behaviour cloning: maximise log pi(a | s) over the dataset (the AWR loss with all weights 1)."""

    def __init__(self, spec: EnvSpec, hidden: list[int], lr: float):
        self.policy = Policy(spec, hidden)
        self.opt_pi = torch.optim.Adam(self.policy.parameters(), lr=lr)

    def step(self, obs, actions, rewards, next_obs, terminated) -> dict[str, float]:
        loss = -self.policy.log_prob(obs, actions).mean()
        self.opt_pi.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_pi.step()
        return {"train/loss_pi": float(loss.detach())}

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "opt_pi": self.opt_pi.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.opt_pi.load_state_dict(state["opt_pi"])


class OfflineLoop(Section):
    """Fields every offline trainer shares (embedded as `train:` in iql / riql / bc recipes)."""

    steps: int = Field(20_000, ge=1, description="gradient steps")
    batch_size: int = Field(256, ge=1, description="minibatch size")
    lr: float = Field(3e-4, gt=0, le=1, description="Adam learning rate (all networks)")
    hidden: Widths = Field([256, 256], min_length=1, description="hidden widths of every MLP")
    eval_every: int = Field(5000, ge=1, description="greedy evaluation every this many gradient steps")
    eval_episodes: int = Field(10, ge=1, le=1000, description="greedy evaluation episodes")
    threads: int = Field(1, ge=0, le=256, description="torch threads (0: 1)")
    tensorboard: bool = Field(False, description="mirror metrics to TensorBoard (if installed)")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many steps (0: only at the end)")


def train_offline(name: str, loop: OfflineLoop, learner, data: OfflineData, env_id: str, seed: int, run) -> dict:
    """Minibatch updates with periodic greedy evaluation, logging, checkpoints and resume."""
    from rlx.control.common import evaluate, load_torch_state, progress, save_torch_state
    from rlx.control.datasets import normalized_score
    from rlx.runtime import rng_state, set_rng_state

    if run is not None and loop.tensorboard:
        run.enable_tensorboard()
    gen = torch.Generator().manual_seed(seed)
    start = 0
    last: dict[str, float] = {}  # the latest evaluation: the summary's eval/* (checkpointed, so a resume of a
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:  # finished run keeps it)
        state = load_torch_state(ckpt)
        learner.load_state_dict(state["learner"])
        set_rng_state(state["rng"])
        gen.set_state(state["gen"])
        start, last = state["step"], state.get("last", {})
        run.truncate_metrics(start)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()
    act = normalized_act(learner.policy, data)

    def save(step: int) -> None:
        if run is not None:
            st = {"learner": learner.state_dict(), "rng": rng_state(), "gen": gen.get_state(), "step": step,
                  "last": last}
            run.save_checkpoint(step, lambda d: save_torch_state(d, st))

    with progress(loop.steps, name) as bar:
        for step in range(start + 1, loop.steps + 1):
            m = learner.step(*sample(data, loop.batch_size, gen))
            if run is not None and step % 500 == 0:
                run.log(step, m)
            if step % loop.eval_every == 0 or step == loop.steps:
                returns = evaluate(act, env_id, loop.eval_episodes, seed)
                last = {"eval/return_mean": np_mean(returns), "eval/return_std": float(np.std(returns)),
                        "eval/normalized_score": float(normalized_score(env_id, np_mean(returns)))}
                if run is not None:
                    run.log(step, last)
                bar(step, f"eval {last['eval/return_mean']:.1f}")
            if loop.checkpoint_every and step % loop.checkpoint_every == 0:
                save(step)
    save(loop.steps)
    return {**last, "train/steps": float(loop.steps)}
