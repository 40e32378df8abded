"""PA-RL: policy-agnostic RL. The critic picks better actions; the policy only imitates them.  Paper: parl

Most offline RL methods are written for one policy class (a Gaussian actor, a specific loss). PA-RL
only asks the policy for samples and a log-likelihood, so any class trained by supervised learning
(Gaussian, categorical, diffusion, autoregressive) can be improved by RL:

1. Critic: IQL's expectile V and twin Q (`rlx.control.offline.IQLUpdate.critic_step`), never querying
   Q outside the data during its own training.
2. Action optimisation (`optimize_actions`), for each state s of a minibatch:
   global: draw m actions from the current policy pi(. | s), score them by min_i Q_i(s, a), keep the top k;
   local (continuous actions): `grad_steps` steps of gradient ascent on a along grad_a Q(s, a),
   clipped to the action bounds;
   a*(s) = the best of the k by Q.
   Sampling from pi keeps a* near the policy's support, so Q is queried where it is trustworthy.
3. Policy: supervised learning on the optimised actions, L = -E_s[ log pi(a*(s) | s) ]   (`PARLUpdate.policy_step`).

The policy starts from behaviour cloning on the dataset (`bc_steps`), as the paper's base policies do,
then the three steps repeat on minibatches.

Departures: offline only (the paper's online fine-tuning phase is not implemented); the shipped
Gaussian / categorical `Policy` as the policy class (diffusion and transformer policies in the paper);
IQL as the critic in every setting.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from rlx.control.offline import (CorruptionConfig, DatasetConfig, IQLUpdate, OfflineLoop, prepare_data,
                                 train_offline)
from rlx.config import Section
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "PARLUpdate", "optimize_actions", "run"]


def optimize_actions(policy, critic, obs: torch.Tensor, samples: int, top_k: int, grad_steps: int, grad_lr: float,
                     low: float, high: float) -> torch.Tensor:
    """a*(s) for each state of obs [B, D]: best-by-Q of `samples` policy actions, refined by gradient
    ascent on Q for continuous actions. Returns [B] (discrete) or [B, A]. No gradient reaches the networks."""
    b = obs.shape[0]
    with torch.no_grad():
        cand = policy.sample(obs, samples)  # [m, B] or [m, B, A]
        rep = obs.unsqueeze(0).expand(samples, *obs.shape).reshape(samples * b, -1)
        q = critic(rep, cand.reshape(samples * b, *cand.shape[2:])).min(0).values.view(samples, b)
    k = min(top_k, samples)
    top = q.topk(k, dim=0).indices  # [k, B]
    if cand.dim() == 2:  # discrete: no local step
        return cand.gather(0, top[:1]).squeeze(0)
    a = cand.gather(0, top.unsqueeze(-1).expand(k, b, cand.shape[-1])).clone()  # [k, B, A]
    rep_k = obs.unsqueeze(0).expand(k, *obs.shape).reshape(k * b, -1)
    for _ in range(grad_steps):
        with torch.enable_grad():  # also when called under no_grad
            a.requires_grad_(True)
            val = critic(rep_k, a.reshape(k * b, -1)).min(0).values.sum()
            (g,) = torch.autograd.grad(val, a)
        a = (a.detach() + grad_lr * g).clamp(low, high)
    with torch.no_grad():
        q_k = critic(rep_k, a.reshape(k * b, -1)).min(0).values.view(k, b)
        best = q_k.argmax(0)  # [B]
        return a[best, torch.arange(b)]


class PARLUpdate(IQLUpdate):
    """IQL's critic; the policy imitates optimised actions after `bc_steps` of behaviour cloning."""

    def __init__(self, *args, samples: int, top_k: int, grad_steps: int, grad_lr: float, bc_steps: int, **kw):
        super().__init__(*args, **kw)
        self.samples, self.top_k, self.grad_steps, self.grad_lr, self.bc_steps = samples, top_k, grad_steps, grad_lr, bc_steps
        self.updates = 0

    def policy_step(self, obs, actions, q_hat, v) -> dict[str, float]:
        self.updates += 1
        spec = self.policy.spec
        if self.updates <= self.bc_steps:
            target = actions
        else:
            target = optimize_actions(self.policy, self.target, obs, self.samples, self.top_k, self.grad_steps,
                                      self.grad_lr, spec.action_low, spec.action_high)
        loss_pi = -self.policy.log_prob(obs, target).mean()
        self.opt_pi.zero_grad(set_to_none=True)
        loss_pi.backward()
        self.opt_pi.step()
        out = {"train/loss_pi": float(loss_pi.detach())}
        if self.updates > self.bc_steps:
            with torch.no_grad():
                gain = self.reduce(self.target(obs, target)) - q_hat
            out["parl/q_gain"] = float(gain.mean())  # Q(s, a*) - Q(s, a_data)
        return out

    def state_dict(self) -> dict:
        return {**super().state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        self.updates = int(state.pop("updates"))
        super().load_state_dict(state)


class Config(Section):
    kind: Literal["parl"] = Field("parl", description="trainer: PA-RL (offline)")
    seed: int = Field(0, ge=0, description="random seed (networks, minibatches, evaluation)")
    dataset: DatasetConfig = Field(DatasetConfig(), description="offline data")
    corruption: CorruptionConfig = Field(CorruptionConfig(), description="optional data corruption")
    train: OfflineLoop = Field(OfflineLoop(), description="optimisation and evaluation")
    expectile: float = Field(0.7, gt=0, lt=1, description="critic: expectile tau of the value loss")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    polyak: float = Field(0.005, gt=0, le=1, description="target-network Polyak rate")
    reward_scale: float = Field(1.0, gt=0, description="multiply rewards by this")
    samples: int = Field(16, ge=1, le=4096, description="actions drawn from the policy per state (global step)")
    top_k: int = Field(4, ge=1, description="best actions kept for the local step")
    grad_steps: int = Field(5, ge=0, le=1000, description="gradient-ascent steps on the actions (continuous only)")
    grad_lr: float = Field(0.05, ge=0, description="action step size, in action units per unit of dQ/da")
    bc_steps: int = Field(500, ge=0, description="behaviour-cloning updates before the policy follows a*")


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data = prepare_data(cfg.dataset, cfg.corruption, normalize_obs=False, reward_scale=cfg.reward_scale,
                        corruption_seed=cfg.seed)
    learner = PARLUpdate(data.spec, cfg.train.hidden, num_q=2, target_reduce="min", quantile=0.0, q_loss="mse",
                         huber_delta=1.0, expectile=cfg.expectile, beta=0.0, gamma=cfg.gamma, polyak=cfg.polyak,
                         lr=cfg.train.lr, samples=cfg.samples, top_k=cfg.top_k, grad_steps=cfg.grad_steps,
                         grad_lr=cfg.grad_lr, bc_steps=cfg.bc_steps)
    return train_offline("parl", cfg.train, learner, data, cfg.dataset.env, cfg.seed, run)
