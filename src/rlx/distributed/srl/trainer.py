"""Trainer `kind: srl`: PQN run under SRL's dataflow (actor, policy and trainer workers).  Paper: srl

The trainer worker (this process) owns the Q-network and the parameter service. Actor workers step
environments; one policy worker answers their inference requests in batches with the newest
weights it has pulled; segments of `num_steps` steps flow to the trainer on the sample stream.
Each update takes `segments_per_update` segments whose oldest acting policy is at most
`max_staleness` versions behind (older ones are dropped and counted), stacks them into one
[T, N] rollout, and runs PQN's update on it (`rlx.control.pqn`: Q(lambda) targets from the current
network, `epochs` x `minibatches` regressions), then pushes version v+1. Epsilon follows PQN's
schedule in frames served by the policy worker; the learning rate anneals per update as in PQN.

Departures from the paper: one machine, processes and pipes instead of SRL's sockets and shared
memory streams across nodes; one policy worker and one trainer worker (SRL scales both); PQN on
CartPole instead of PPO on hide-and-seek.

Checkpoint and resume: the checkpoint holds the network, optimizer, RNG, update count, frames,
parameter version and evaluation schedule, and resume restores all of them exactly (the version
counter continues, so staleness stays meaningful). What cannot be exact with asynchronous actors:
environment states and in-flight segments are not saved (actors restart their episodes, with seeds
shifted by the frame count), and which segments form which update depends on process timing.
"""

from __future__ import annotations

import multiprocessing as mp
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.control.common import (EvalConfig, QNetConfig, check_eval_backend, load_torch_state, progress,
                                save_torch_state)
from rlx.control.envs import make_vec_env
from rlx.control.online import EvalClock, Rollout, linear_epsilon, rollout_targets
from rlx.control.pqn import build_q_network, regress
from rlx.distributed.srl.actor import EnvFactory
from rlx.distributed.srl.params import ParameterService, num_params
from rlx.distributed.srl.policy import EpsilonSchedule, NetSpec
from rlx.distributed.srl.streams import Segment, accept_segment, segment_staleness
from rlx.distributed.srl.system import DataflowConfig, SRLSystem
from rlx.rundir import RunDir
from rlx.runtime import rng_state, seed_everything, set_rng_state, set_threads

__all__ = ["Config", "run", "segments_to_rollout"]


class Config(Section):
    kind: Literal["srl"] = Field("srl", description="trainer: PQN under SRL's actor / policy / trainer dataflow")
    seed: int = Field(0, ge=0, description="random seed (network, exploration, environments)")
    dataflow: DataflowConfig = Field(DataflowConfig(), description="workers and streams")
    net: QNetConfig = Field(QNetConfig(), description="Q-network and value loss")
    eval: EvalConfig = Field(EvalConfig(), description="greedy evaluation (in the trainer process)")
    total_steps: int = Field(200_000, ge=1, description="environment frames the trainer consumes")
    segments_per_update: int = Field(0, ge=0, le=65_536, description="segments per update (0: actors * ring)")
    gamma: float = Field(0.99, ge=0, le=1, description="discount")
    lambda_: float = Field(0.65, ge=0, le=1, description="Q(lambda) trace parameter")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    lr_anneal: bool = Field(True, description="decay the learning rate linearly to 0 over training")
    epochs: int = Field(2, ge=1, le=100, description="passes over each update's rollout")
    minibatches: int = Field(4, ge=1, le=1024, description="minibatches per pass")
    max_grad_norm: float = Field(10.0, gt=0, description="gradient norm clip")
    eps_start: float = Field(1.0, ge=0, le=1, description="initial epsilon of epsilon-greedy exploration")
    eps_end: float = Field(0.05, ge=0, le=1, description="final epsilon")
    exploration_fraction: float = Field(0.2, gt=0, le=1, description="fraction of training over which epsilon decays")
    threads: int = Field(1, ge=0, le=256, description="torch threads of the trainer (0: 1)")
    tensorboard: bool = Field(False, description="mirror metrics to TensorBoard (if installed)")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many updates (0: only at the end)")
    log_every: int = Field(1, ge=1, description="log train/* and srl/* every this many updates")

    @model_validator(mode="after")
    def _budget(self):
        df = self.dataflow
        per_update = (self.segments_per_update or df.actors * df.ring) * df.num_steps * df.envs_per_group
        if self.total_steps < per_update:  # an update consumes whole segments: 100 ran 1024 frames
            raise ValueError(f"total_steps = {self.total_steps} is less than one update's {per_update} frames "
                             "(segments_per_update or dataflow.actors x ring, x num_steps x envs_per_group)")
        check_eval_backend(df.env_id, self.eval)
        return self


def segments_to_rollout(segs: list[Segment]) -> Rollout:
    """Stack k segments of [T, n_i] steps side by side into one Rollout of [T, sum_i n_i]."""
    cat = lambda name: torch.from_numpy(np.concatenate([getattr(s, name) for s in segs], axis=1))  # noqa: E731
    return Rollout(cat("obs"), cat("actions"), cat("rewards"), cat("terminated"), cat("done"), cat("final_obs"))


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if run is not None and cfg.tensorboard:
        run.enable_tensorboard()
    df = cfg.dataflow
    probe = make_vec_env(df.env_id, 1, cfg.seed, df.env_backend)
    spec = probe.spec
    probe.close()
    if not spec.discrete:
        raise ConfigError(f"config error: dataflow.env_id = {df.env_id!r}: PQN needs a discrete action space")
    q_net = build_q_network(spec.obs_dim, spec.num_actions, cfg.net)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    seg_per_update = cfg.segments_per_update or df.actors * df.ring
    per_update = seg_per_update * df.num_steps * df.envs_per_group
    if per_update // cfg.minibatches < 1:
        raise ConfigError(f"config error: minibatches = {cfg.minibatches}: more than the {per_update} frames of an update")
    num_updates = max(1, cfg.total_steps // per_update)
    start, version, dropped, generated = 0, 0, 0, 0
    clock = EvalClock(cfg.eval, df.env_id, cfg.seed, run)
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        state = load_torch_state(ckpt)
        q_net.load_state_dict(state["q_net"])
        opt.load_state_dict(state["opt"])
        set_rng_state(state["rng"])
        start, version, dropped, generated = state["update"], state["version"], state["dropped"], state["generated"]
        clock.load_state_dict(state.get("clock", {"next_eval": state["next_eval"]}))
        run.truncate_metrics(start * per_update)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()

    def act_greedy(o: torch.Tensor) -> torch.Tensor:
        return q_net.q(o).argmax(1)

    service = ParameterService(num_params(q_net), mp.get_context(df.start_method))
    service.push(q_net, version)
    eps = EpsilonSchedule(cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
    system = SRLSystem(df, EnvFactory(df.env_id, df.envs_per_group, df.env_backend),
                       NetSpec(spec.obs_dim, spec.num_actions, cfg.net), service, eps, cfg.seed, start * per_update)
    done = start
    end = num_updates if clock.steps_to_target is None else start  # a resumed run that reached its target is done
    with system, progress(num_updates * per_update, "srl") as bar:
        for update in range(start, end):
            if cfg.lr_anneal:
                for g in opt.param_groups:
                    g["lr"] = cfg.lr * (1.0 - update / num_updates)
            segs: list[Segment] = []
            while len(segs) < seg_per_update:
                seg = system.next_segment()
                generated += seg.frames
                if accept_segment(seg.versions, version, df.max_staleness):
                    segs.append(seg)
                else:
                    dropped += 1
            ro = segments_to_rollout(segs)
            T, N = ro.rewards.shape
            with torch.no_grad():
                targets = rollout_targets(ro, lambda o: q_net.q(o).max(1).values, cfg.gamma, cfg.lambda_)
            loss, metrics = regress(q_net, opt, ro.obs.reshape(T * N, -1), ro.actions.reshape(-1),
                                    targets.reshape(-1), cfg.epochs, cfg.minibatches, cfg.max_grad_norm)
            version = service.push(q_net)
            done = update + 1
            steps = done * per_update
            bar(steps, f"eval {clock.last_mean:.1f}  v{version}  dropped {dropped}")
            if run is not None and done % cfg.log_every == 0:
                lags = [segment_staleness(s.versions, version - 1) for s in segs]
                returns = np.concatenate([s.episode_returns for s in segs])
                row = {"train/loss": float(loss.detach()), "train/td_abs": float(metrics["td_abs"]),
                       "train/epsilon": linear_epsilon(steps, cfg.total_steps, cfg.eps_start, cfg.eps_end,
                                                       cfg.exploration_fraction),
                       "srl/version": float(version), "srl/staleness_mean": float(np.mean([m for _, m in lags])),
                       "srl/staleness_max": float(max(x for x, _ in lags)), "srl/dropped_segments": float(dropped),
                       "srl/frames_generated": float(generated),
                       "srl/policy_batch_rows": float(np.mean([s.batch_rows.mean() for s in segs])),
                       "time/train_seconds": clock.elapsed()}
                if returns.size:
                    row["env/episode_return"] = float(returns.mean())
                run.log(steps, row)
            if clock.due(steps) and clock.evaluate(steps, act_greedy):
                break
            if run is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                _save(run, done, per_update, q_net, opt, clock, version, dropped, generated)
    steps = done * per_update
    if clock.steps_to_target is None and clock.last_step != steps:
        clock.evaluate(steps, act_greedy)
    clock.stop()
    if run is not None:
        _save(run, done, per_update, q_net, opt, clock, version, dropped, generated)
    return {**clock.summary(), "env/steps": float(steps), "srl/version": float(version),
            "srl/dropped_segments": float(dropped), "srl/frames_generated": float(generated)}


def _save(run: RunDir, update: int, per_update: int, q_net, opt, clock: EvalClock, version: int, dropped: int,
          generated: int) -> None:
    state = {"q_net": q_net.state_dict(), "opt": opt.state_dict(), "rng": rng_state(), "update": update,
             "next_eval": clock.next_eval, "clock": clock.state_dict(), "version": version, "dropped": dropped,
             "generated": generated}
    run.save_checkpoint(update * per_update, lambda d: save_torch_state(d, state))
