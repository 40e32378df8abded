"""SQIRL: random exploration, then k steps of fitted-Q iteration, then act greedily.  Paper: sqirl

1. Roll out the uniformly random policy for `transitions` env steps (vectorised, whole episodes).
2. Regress Q_1 onto the discounted Monte-Carlo returns of those rollouts: Q_1 ~ Q^{pi_rand}.
   (Where the time limit cut an episode, the tail is bootstrapped with the current Q_1 estimate
   once after fitting, so returns are not biased low.)
3. k - 1 times: regress Q_{i+1}(s, a) onto r + gamma (1 - terminated) max_a' Q_i(s', a')
   (fitted-Q iteration over the same random data).
4. Act greedily with respect to Q_k.

k = 1 is "greedy with respect to the random policy's Q". The paper's claim is that when a task's
effective horizon is small, a small k already gives a near-optimal policy. Departures: one
round of exploration with a fixed budget (the paper repeats rounds with growing budgets), a
discounted stationary Q instead of the paper's finite-horizon time-indexed one, and an MLP as
the regression oracle (warm-started from the previous iterate).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from rlx.config import ConfigError, Section
from rlx.control.common import Widths, evaluate, progress
from rlx.control.envs import make_vec_env
from rlx.control.networks import mlp
from rlx.control.online import collect_rollout
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "run", "discounted_returns"]


class Config(Section):
    kind: Literal["sqirl"] = Field("sqirl", description="trainer: SQIRL")
    seed: int = Field(0, ge=0, description="random seed")
    env: str = Field("CartPole-v1", description="gymnasium id (discrete actions)")
    num_envs: int = Field(16, ge=1, le=4096, description="parallel envs for random exploration")
    transitions: int = Field(20_000, ge=100, description="random-policy env steps collected")
    k: int = Field(1, ge=1, le=50, description="Q_1 = Q of the random policy, then k-1 fitted-Q iterations")
    gamma: float = Field(0.99, ge=0, lt=1, description="discount")
    hidden: Widths = Field([128, 128], min_length=1, description="regression MLP hidden widths")
    fit_steps: int = Field(2000, ge=1, description="minibatch steps per regression")
    batch_size: int = Field(256, ge=1, description="regression minibatch size")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate of the regression")
    eval_episodes: int = Field(10, ge=1, le=1000, description="greedy evaluation episodes")
    threads: int = Field(1, ge=0, le=256, description="torch threads (0: 1)")
    tensorboard: bool = Field(False, description="mirror metrics to TensorBoard (if installed)")


def discounted_returns(r_t: torch.Tensor, done_t: torch.Tensor, gamma: float, tail: torch.Tensor) -> torch.Tensor:
    """Monte-Carlo returns over [T, N] rollouts, restarting at episode ends (done_t = 1):
    G_t = r_t + gamma (1 - done_t) G_{t+1}, with G_T = tail [N] (value of the unfinished tail)."""
    out = torch.empty_like(r_t)
    g = tail
    for t in range(r_t.shape[0] - 1, -1, -1):
        g = r_t[t] + gamma * (1 - done_t[t]) * g
        out[t] = g
    return out


def _fit(q_net, opt, obs, actions, targets, steps, batch, gen) -> float:
    loss = torch.zeros(())
    for _ in range(steps):
        idx = torch.randint(0, obs.shape[0], (batch,), generator=gen)
        pred = q_net(obs[idx]).gather(1, actions[idx].unsqueeze(1)).squeeze(1)
        loss = (pred - targets[idx]).square().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return float(loss.detach())


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if run is not None and cfg.tensorboard:
        run.enable_tensorboard()
    env = make_vec_env(cfg.env, cfg.num_envs, cfg.seed, "gymnasium")
    spec = env.spec
    if not spec.discrete:
        raise ConfigError(f"config error: env = {cfg.env!r}: SQIRL here needs a discrete action space")
    A, T = spec.num_actions, max(1, cfg.transitions // cfg.num_envs)
    with torch.no_grad():
        ro, _ = collect_rollout(env, env.reset(cfg.seed), lambda o: torch.randint(0, A, (o.shape[0],)), T)
    env.close()
    obs, actions = ro.obs.reshape(T * cfg.num_envs, -1), ro.actions.reshape(-1)
    rewards, term = ro.rewards.reshape(-1), ro.terminated.reshape(-1)
    next_obs = ro.final_obs.reshape(T * cfg.num_envs, -1)
    truncated = (ro.done - ro.terminated).reshape(-1)
    gen = torch.Generator().manual_seed(cfg.seed)
    q_net = mlp(spec.obs_dim, cfg.hidden, A)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    # 1. Q of the random policy from Monte-Carlo returns (unfinished tails valued at 0 first) ...
    mc = discounted_returns(ro.rewards, ro.done, cfg.gamma, torch.zeros(cfg.num_envs)).reshape(-1)
    loss = _fit(q_net, opt, obs, actions, mc, cfg.fit_steps, cfg.batch_size, gen)
    # ... then once more with the tails (rollout end, time-limit cuts) valued by the fitted Q_1
    with torch.no_grad():
        v_rand = q_net(next_obs).mean(1)  # V^{pi_rand}(s') = mean over uniform actions
        r_fix = ro.rewards + cfg.gamma * (ro.done - ro.terminated) * v_rand.view(T, -1)
        mc = discounted_returns(r_fix, ro.done, cfg.gamma, v_rand.view(T, -1)[-1]).reshape(-1)
    loss = _fit(q_net, opt, obs, actions, mc, cfg.fit_steps, cfg.batch_size, gen)
    log = {"train/loss_q1": loss, "env/random_episodes": float(ro.done.sum()), "train/truncated": float(truncated.sum())}
    # 2. k - 1 fitted-Q iterations on the same data
    with progress(cfg.k - 1, "sqirl") as bar:
        for i in range(1, cfg.k):
            with torch.no_grad():
                y = rewards + cfg.gamma * (1 - term) * q_net(next_obs).max(1).values
            loss = _fit(q_net, opt, obs, actions, y, cfg.fit_steps, cfg.batch_size, gen)
            log[f"train/loss_q{i + 1}"] = loss
            bar(i, f"loss {loss:.3g}")
    returns = evaluate(lambda o: q_net(o).argmax(1), cfg.env, cfg.eval_episodes, cfg.seed)
    summary = {"eval/return_mean": float(np.mean(returns)), "eval/return_std": float(np.std(returns)),
               "env/steps": float(T * cfg.num_envs)}
    if run is not None:
        run.log(T * cfg.num_envs, {**log, **summary})
        run.save_checkpoint(T * cfg.num_envs, lambda d: torch.save({"q_net": q_net.state_dict()}, d / "state.pt"))
    return summary
