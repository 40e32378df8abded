"""DQN baseline: replay buffer, target network, epsilon-greedy, optional double-Q.

Paper: pqn (the baseline PQN is compared to). The schedule follows Stable-Baselines3's DQN so that
the zoo's hyperparameters mean the same here: every `train_freq` env steps (per env copy) do
`gradient_steps` minibatch updates; copy the online net into the target net every
`target_update_interval` env steps. Targets r + gamma (1 - terminated) max_a Q_target(s', a) use
the true successor state, so time-limit truncation bootstraps and termination does not.
The value loss can be Huber (SB3's), MSE, HL-Gauss or two-hot (paper: hlgauss).
"""

from __future__ import annotations

import copy
from typing import Literal

import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.control.buffer import ReplayBuffer
from rlx.control.common import (EnvConfig, EvalConfig, QNetConfig, check_eval_backend, env_checkpoint,
                                load_torch_state, progress, restore_env, save_torch_state)
from rlx.control.envs import make_vec_env
from rlx.control.online import EvalClock, linear_epsilon
from rlx.control.pqn import build_q_network
from rlx.rundir import RunDir
from rlx.runtime import rng_state, seed_everything, set_rng_state, set_threads

__all__ = ["Config", "run", "dqn_targets"]


class Config(Section):
    kind: Literal["dqn"] = Field("dqn", description="trainer: DQN")
    seed: int = Field(0, ge=0, description="random seed")
    env: EnvConfig = Field(EnvConfig(num_envs=1), description="training environments")
    net: QNetConfig = Field(QNetConfig(hidden=[256, 256], layer_norm=False, value_loss="huber"), description="Q-network and value loss")
    eval: EvalConfig = Field(EvalConfig(), description="greedy evaluation")
    total_steps: int = Field(50_000, ge=1, description="environment steps (summed over copies)")
    buffer_size: int = Field(100_000, ge=1, description="replay capacity (transitions)")
    learning_starts: int = Field(1000, ge=0, description="env steps of pure exploration before learning")
    batch_size: int = Field(64, ge=1, description="minibatch size")
    train_freq: int = Field(256, ge=1, description="env steps (per copy) between training phases")
    gradient_steps: int = Field(128, ge=1, description="gradient steps per training phase")
    target_update_interval: int = Field(10, ge=1, description="env steps between target-network copies")
    double_q: bool = Field(False, description="double DQN: online net picks a', target net values it")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    lr: float = Field(2.3e-3, gt=0, le=1, description="Adam learning rate")
    max_grad_norm: float = Field(10.0, gt=0, description="gradient norm clip")
    eps_start: float = Field(1.0, ge=0, le=1, description="initial epsilon")
    eps_end: float = Field(0.04, ge=0, le=1, description="final epsilon")
    exploration_fraction: float = Field(0.16, gt=0, le=1, description="fraction of training over which epsilon decays")
    threads: int = Field(1, ge=0, le=256, description="torch threads (0: 1)")
    tensorboard: bool = Field(False, description="mirror metrics to TensorBoard (if installed)")
    log_every: int = Field(1000, ge=1, description="log train/* every this many env steps")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many env steps, replay buffer "
                                  "included (0: only at the end)")

    @model_validator(mode="after")
    def _learns(self):
        iters = max(1, self.total_steps // self.env.num_envs)
        last_phase = iters // self.train_freq * self.train_freq  # the last iteration that trains, if any
        if last_phase == 0 or last_phase * self.env.num_envs <= self.learning_starts:
            raise ValueError(f"no gradient step would run: total_steps = {self.total_steps} with learning_starts = "
                             f"{self.learning_starts}, train_freq = {self.train_freq} (per copy) and env.num_envs = "
                             f"{self.env.num_envs}; the first training phase needs train_freq x num_envs env steps "
                             "past learning_starts")
        check_eval_backend(self.env.id, self.eval)
        return self


def dqn_targets(r_t: torch.Tensor, terminated_t: torch.Tensor, q_next_target: torch.Tensor,
                q_next_online: torch.Tensor | None, gamma: float) -> torch.Tensor:
    """y = r + gamma (1 - terminated) Q_target(s', a*), a* = argmax Q_target (or Q_online if double).

    Shapes: r_t, terminated_t [B]; q_next_* [B, A] evaluated at the true successor state."""
    if q_next_online is None:
        v = q_next_target.max(1).values
    else:
        v = q_next_target.gather(1, q_next_online.argmax(1, keepdim=True)).squeeze(1)
    return r_t + gamma * (1 - terminated_t) * v


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if run is not None and cfg.tensorboard:
        run.enable_tensorboard()
    env = make_vec_env(cfg.env.id, cfg.env.num_envs, cfg.seed, cfg.env.backend)
    spec = env.spec
    if not spec.discrete:
        raise ConfigError(f"config error: env.id = {cfg.env.id!r}: DQN needs a discrete action space")
    N, A = cfg.env.num_envs, spec.num_actions
    q_net = build_q_network(spec.obs_dim, A, cfg.net)
    target = copy.deepcopy(q_net).requires_grad_(False)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    buf = ReplayBuffer(min(cfg.buffer_size, cfg.total_steps + N), spec.obs_dim)
    clock = EvalClock(cfg.eval, cfg.env.id, cfg.seed, run)
    it, num_iters = 0, max(1, cfg.total_steps // N)
    obs = env.reset(cfg.seed)
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        state = load_torch_state(ckpt)
        q_net.load_state_dict(state["q_net"])
        target.load_state_dict(state["target"])
        opt.load_state_dict(state["opt"])
        buf.load_state_dict(state["buffer"])
        set_rng_state(state["rng"])
        it = state["iter"]
        clock.load_state_dict(state.get("clock", {"next_eval": state["next_eval"]}))
        obs = restore_env(env, state.get("env"), obs)
        run.truncate_metrics(it * N)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()
    target_every = max(1, cfg.target_update_interval // N)
    loss = torch.zeros(())
    metrics: dict[str, torch.Tensor] = {}

    def act_greedy(o: torch.Tensor) -> torch.Tensor:
        return q_net.q(o).argmax(1)

    start = done = it  # iterations (vector steps) completed

    def save(done: int) -> None:
        state = {"q_net": q_net.state_dict(), "target": target.state_dict(), "opt": opt.state_dict(),
                 "buffer": buf.state_dict(), "rng": rng_state(), "iter": done, "next_eval": clock.next_eval,
                 "clock": clock.state_dict(),
                 "env": env_checkpoint(env, obs)}
        run.save_checkpoint(done * N, lambda d: save_torch_state(d, state))

    end = num_iters if clock.steps_to_target is None else start  # a resumed run that reached its target is done
    with progress(num_iters * N, "dqn") as bar:
        for it in range(start, end):
            steps = (it + 1) * N
            eps = linear_epsilon(it * N, cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
            with torch.no_grad():
                if it * N < cfg.learning_starts:
                    action = torch.randint(0, A, (N,))
                else:
                    action = torch.where(torch.rand(N) < eps, torch.randint(0, A, (N,)), act_greedy(obs))
                out = env.step(action)
            buf.add(obs, action, out.reward, out.final_obs, out.terminated)
            obs = out.obs
            if steps > cfg.learning_starts and (it + 1) % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    b = buf.sample(cfg.batch_size)
                    with torch.no_grad():
                        y = dqn_targets(b.rewards, b.terminated, target.q(b.next_obs),
                                        q_net.q(b.next_obs) if cfg.double_q else None, cfg.gamma)
                    out_sa = q_net(b.obs)[torch.arange(cfg.batch_size), b.actions]
                    loss, metrics = q_net.head.loss(out_sa, y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
                    opt.step()
            done = it + 1
            if steps % 1000 < N:
                bar(steps, f"eval {clock.last_mean:.1f}")
            if done % target_every == 0:
                target.load_state_dict(q_net.state_dict())
            if run is not None and steps % cfg.log_every < N and metrics:
                run.log(steps, {"train/loss": float(loss.detach()), "train/td_abs": float(metrics["td_abs"]),
                                "train/epsilon": eps, "time/train_seconds": clock.elapsed()})
            if clock.due(steps):
                if clock.evaluate(steps, act_greedy):
                    break
            if run is not None and cfg.checkpoint_every and steps % cfg.checkpoint_every < N and done < num_iters:
                save(done)
    steps = done * N
    if clock.steps_to_target is None and clock.last_step != steps:
        clock.evaluate(steps, act_greedy)
    clock.stop()
    if run is not None:
        save(done)
    env.close()
    return {**clock.summary(), "env/steps": float(steps)}
