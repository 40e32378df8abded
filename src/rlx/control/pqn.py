"""PQN: parallelised Q-learning with LayerNorm, Q(lambda) targets, no target network, no replay.

Paper: pqn (Gallici et al., "Simplifying Deep Temporal Difference Learning").

Each update: step `num_envs` environments for `num_steps` steps with an epsilon-greedy policy
(acting under no_grad), compute Peng's Q(lambda) returns backwards over the rollout with the
current network (bootstrapping from the true final observation where a time limit cut the
episode, not at all where it terminated), then run `epochs` passes of `minibatches` minibatches of
regression of Q(s_t, a_t) onto those fixed returns. The value loss is MSE by default and can be
HL-Gauss or two-hot (`net.value_loss`, paper: hlgauss).

Departures from the paper: CPU-sized defaults (64 envs, a 2x64 MLP) and a torch-batched CartPole
(`env.backend: torch`) so that the per-step Python cost is one network call and ~20 tensor ops.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.control.common import (EnvConfig, EvalConfig, QNetConfig, check_eval_backend, env_checkpoint,
                                load_torch_state, progress, restore_env, save_torch_state)
from rlx.control.envs import make_vec_env
from rlx.control.networks import QNetwork, make_value_head
from rlx.control.online import EvalClock, collect_rollout, linear_epsilon, rollout_targets
from rlx.rundir import RunDir
from rlx.runtime import rng_state, seed_everything, set_rng_state, set_threads

__all__ = ["Config", "run", "build_q_network", "regress"]


class Config(Section):
    kind: Literal["pqn"] = Field("pqn", description="trainer: PQN")
    seed: int = Field(0, ge=0, description="random seed (torch, numpy, environments)")
    env: EnvConfig = Field(EnvConfig(num_envs=64, backend="torch"), description="training environments")
    net: QNetConfig = Field(QNetConfig(), description="Q-network and value loss")
    eval: EvalConfig = Field(EvalConfig(), description="greedy evaluation")
    total_steps: int = Field(200_000, ge=1, description="environment steps (summed over copies)")
    num_steps: int = Field(16, ge=1, le=4096, description="rollout length per environment per update")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    lambda_: float = Field(0.65, ge=0, le=1, description="Q(lambda) trace parameter (0: one-step Q-learning)")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    lr_anneal: bool = Field(True, description="decay the learning rate linearly to 0 over training")
    epochs: int = Field(2, ge=1, le=100, description="passes over each rollout")
    minibatches: int = Field(4, ge=1, le=1024, description="minibatches per pass")
    max_grad_norm: float = Field(10.0, gt=0, description="gradient norm clip")
    eps_start: float = Field(1.0, ge=0, le=1, description="initial epsilon of epsilon-greedy exploration")
    eps_end: float = Field(0.05, ge=0, le=1, description="final epsilon")
    exploration_fraction: float = Field(0.2, gt=0, le=1, description="fraction of training over which epsilon decays")
    threads: int = Field(1, ge=0, le=256, description="torch threads (0: 1); 1 is fastest for tiny nets")
    tensorboard: bool = Field(False, description="mirror metrics to TensorBoard (if installed)")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many updates (0: only at the end)")
    log_every: int = Field(10, ge=1, description="log train/* every this many updates")

    @model_validator(mode="after")
    def _budget(self):
        per_update = self.env.num_envs * self.num_steps
        if self.total_steps < per_update:  # one update collects num_envs x num_steps: it would run past the budget
            raise ValueError(f"total_steps = {self.total_steps} is less than one update's env.num_envs x num_steps "
                             f"= {self.env.num_envs} x {self.num_steps} = {per_update}")
        if per_update % self.minibatches:  # regress() splits the rollout evenly: the remainder was dropped
            raise ValueError(f"minibatches = {self.minibatches} must divide env.num_envs x num_steps = {per_update}")
        check_eval_backend(self.env.id, self.eval)
        return self


def build_q_network(obs_dim: int, num_actions: int, net: QNetConfig) -> QNetwork:
    head = make_value_head(net.value_loss, net.v_min, net.v_max, net.num_bins, net.sigma_ratio)
    return QNetwork(obs_dim, num_actions, net.hidden, net.layer_norm, head)


def regress(q_net: QNetwork, opt: torch.optim.Optimizer, obs: torch.Tensor, actions: torch.Tensor,
            targets: torch.Tensor, epochs: int, minibatches: int, max_grad_norm: float
            ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PQN's update: `epochs` shuffled passes of `minibatches` regressions of Q(obs [M, D], actions [M])
    onto the fixed `targets` [M]. Returns the last minibatch's loss and metrics."""
    m = obs.shape[0]
    batch = m // minibatches
    for _ in range(epochs):
        perm = torch.randperm(m)
        for k in range(minibatches):
            idx = perm[k * batch:(k + 1) * batch]
            out_sa = q_net(obs[idx])[torch.arange(idx.numel()), actions[idx]]
            loss, metrics = q_net.head.loss(out_sa, targets[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(q_net.parameters(), max_grad_norm)
            opt.step()
    return loss, metrics


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if run is not None and cfg.tensorboard:
        run.enable_tensorboard()
    env = make_vec_env(cfg.env.id, cfg.env.num_envs, cfg.seed, cfg.env.backend)
    spec = env.spec
    if not spec.discrete:
        raise ConfigError(f"config error: env.id = {cfg.env.id!r}: PQN needs a discrete action space")
    N, T, A = cfg.env.num_envs, cfg.num_steps, spec.num_actions
    q_net = build_q_network(spec.obs_dim, A, cfg.net)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    per_update = N * T
    num_updates = max(1, cfg.total_steps // per_update)
    batch = per_update // cfg.minibatches
    if batch < 1:
        raise ConfigError(f"config error: minibatches = {cfg.minibatches}: more than num_envs * num_steps = {per_update}")
    start = 0
    clock = EvalClock(cfg.eval, cfg.env.id, cfg.seed, run)
    obs = env.reset(cfg.seed)
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        state = load_torch_state(ckpt)
        q_net.load_state_dict(state["q_net"])
        opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        start = state["update"]
        clock.load_state_dict(state.get("clock", {"next_eval": state["next_eval"]}))
        obs = restore_env(env, state.get("env"), obs)
        run.truncate_metrics(start * per_update)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()

    def act_greedy(o: torch.Tensor) -> torch.Tensor:
        return q_net.q(o).argmax(1)

    metrics: dict[str, torch.Tensor] = {}
    done = start  # updates completed
    end = num_updates if clock.steps_to_target is None else start  # a resumed run that reached its target is done
    with progress(num_updates * per_update, "pqn") as bar:
        for update in range(start, end):
            steps = update * per_update
            eps = linear_epsilon(steps, cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
            if cfg.lr_anneal:
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * (1.0 - update / num_updates)
            def behave(o: torch.Tensor) -> torch.Tensor:
                explore = torch.rand(o.shape[0]) < eps
                return torch.where(explore, torch.randint(0, A, (o.shape[0],)), q_net.q(o).argmax(1))

            with torch.no_grad():
                ro, obs = collect_rollout(env, obs, behave, T)
                targets = rollout_targets(ro, lambda o: q_net.q(o).max(1).values, cfg.gamma, cfg.lambda_)
            loss, metrics = regress(q_net, opt, ro.obs.view(T * N, -1), ro.actions.view(-1), targets.view(-1),
                                    cfg.epochs, cfg.minibatches, cfg.max_grad_norm)
            done = update + 1
            steps = done * per_update
            bar(steps, f"eval {clock.last_mean:.1f}")
            if run is not None and done % cfg.log_every == 0:
                run.log(steps, {"train/loss": float(loss.detach()), "train/td_abs": float(metrics["td_abs"]),
                                "train/epsilon": eps, "train/target_mean": float(targets.mean()),
                                "env/episodes_ended": float(ro.done.sum()), "time/train_seconds": clock.elapsed()})
            if clock.due(steps):
                if clock.evaluate(steps, act_greedy):
                    break
            if run is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                _save(run, done, per_update, q_net, opt, clock, env_checkpoint(env, obs))
    steps = done * per_update
    if clock.steps_to_target is None and clock.last_step != steps:
        clock.evaluate(steps, act_greedy)
    clock.stop()
    if run is not None:
        _save(run, done, per_update, q_net, opt, clock, env_checkpoint(env, obs))
    env.close()
    return {**clock.summary(), "env/steps": float(steps)}


def _save(run: RunDir, update: int, per_update: int, q_net, opt, clock: EvalClock, env: dict) -> None:
    state = {"q_net": q_net.state_dict(), "opt": opt.state_dict(), "rng": rng_state(), "update": update,
             "next_eval": clock.next_eval, "clock": clock.state_dict(), "env": env}
    run.save_checkpoint(update * per_update, lambda d: save_torch_state(d, state))
