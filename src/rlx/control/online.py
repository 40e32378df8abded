"""Bookkeeping shared by the online trainers (PQN, DQN): exploration schedule and timed evaluation.

`EvalClock` measures training wall-clock with evaluation excluded, runs a greedy evaluation each
time the env-step counter crosses a multiple of `every_steps`, and remembers when the mean return
first reached `stop_at_return` (the time-to-target that bench/pqn_vs_sb3.py reports).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rlx.control.common import EvalConfig, evaluate
from rlx.control.envs import VecEnv
from rlx.control.losses import q_lambda_targets
from rlx.rundir import RunDir

__all__ = ["linear_epsilon", "EvalClock", "Rollout", "collect_rollout", "rollout_targets", "finished_returns"]


@dataclass(frozen=True)
class Rollout:
    obs: torch.Tensor  # [T, N, D] observation acted on
    actions: torch.Tensor  # [T, N] long
    rewards: torch.Tensor  # [T, N]
    terminated: torch.Tensor  # [T, N] float 0/1
    done: torch.Tensor  # [T, N] float 0/1, terminated or truncated
    final_obs: torch.Tensor  # [T, N, D] true successor state


def collect_rollout(env: VecEnv, obs: torch.Tensor, policy: Callable[[torch.Tensor], torch.Tensor],
                    num_steps: int) -> tuple[Rollout, torch.Tensor]:
    """Step `env` num_steps times from `obs` with `policy(obs) -> actions`; returns the rollout and
    the observation to continue from. Call under torch.no_grad()."""
    obs_l, act_l, rew_l, term_l, done_l, fin_l = [], [], [], [], [], []
    for _ in range(num_steps):
        action = policy(obs)
        out = env.step(action)
        obs_l.append(obs)
        act_l.append(action)
        rew_l.append(out.reward)
        term_l.append(out.terminated)
        done_l.append(out.terminated | out.truncated)
        fin_l.append(out.final_obs)
        obs = out.obs
    ro = Rollout(torch.stack(obs_l), torch.stack(act_l), torch.stack(rew_l), torch.stack(term_l).float(),
                 torch.stack(done_l).float(), torch.stack(fin_l))
    return ro, obs


def rollout_targets(ro: Rollout, v_fn: Callable[[torch.Tensor], torch.Tensor], gamma: float,
                    lambda_: float, trace_bonus: torch.Tensor | None = None) -> torch.Tensor:
    """Q(lambda) targets [T, N] for a rollout, bootstrapping with `v_fn(final_obs [M, D]) -> [M]`
    (e.g. max_a Q): truncated steps bootstrap from the true final state, terminated steps do not.
    `trace_bonus` [T, N]: -alpha log nu(a_t | s_t) when `v_fn` is a soft value (see q_lambda_targets)."""
    T, N = ro.rewards.shape
    v_tp1 = v_fn(ro.final_obs.reshape(T * N, -1)).view(T, N)
    return q_lambda_targets(ro.rewards, gamma * (1 - ro.terminated), v_tp1, 1 - ro.done, lambda_, trace_bonus)


def finished_returns(ro: Rollout, running: torch.Tensor) -> torch.Tensor:
    """Returns of the episodes that ended in rollout `ro` ([T, N] rewards / done); `running` [N] carries
    the unfinished episodes' partial returns across rollouts and is updated in place."""
    done_returns = []
    for t in range(ro.rewards.shape[0]):
        running += ro.rewards[t]
        ended = ro.done[t].bool()
        done_returns.append(running[ended].clone())
        running[ended] = 0.0
    return torch.cat(done_returns)


def linear_epsilon(step: int, total: int, start: float, end: float, fraction: float) -> float:
    """Linear decay from `start` to `end` over the first `fraction * total` steps, then flat."""
    horizon = max(1.0, fraction * total)
    return end + (start - end) * max(0.0, 1.0 - step / horizon)


class EvalClock:
    def __init__(self, cfg: EvalConfig, env_id: str, seed: int, run: RunDir | None):
        self.cfg, self.env_id, self.seed, self.run = cfg, env_id, seed, run
        self.train_seconds = 0.0
        self.next_eval = cfg.every_steps
        self.last_mean = float("nan")
        self.last_step = -1
        self.steps_to_target: int | None = None
        self.seconds_to_target: float | None = None
        self._t0: float | None = time.perf_counter()

    def due(self, env_steps: int) -> bool:
        return env_steps >= self.next_eval

    def evaluate(self, env_steps: int, act: Callable[[torch.Tensor], torch.Tensor]) -> bool:
        """Pause the training clock, evaluate greedily, log eval/*; True once the target is reached."""
        self.train_seconds += time.perf_counter() - self._t0
        returns = evaluate(act, self.env_id, self.cfg.episodes, self.seed, self.cfg.backend)
        while self.next_eval <= env_steps:
            self.next_eval += self.cfg.every_steps
        self.last_mean = float(np.mean(returns))
        self.last_step = env_steps
        reached = self.cfg.stop_at_return is not None and self.last_mean >= self.cfg.stop_at_return
        if reached and self.steps_to_target is None:
            self.steps_to_target, self.seconds_to_target = env_steps, self.train_seconds
        if self.run is not None:
            self.run.log(env_steps, {"eval/return_mean": self.last_mean, "eval/return_std": float(np.std(returns)),
                                     "time/train_seconds": self.train_seconds})
        self._t0 = time.perf_counter()
        return reached

    def state_dict(self) -> dict:
        """Everything a resumed run needs to continue the clock: the training seconds so far (the time since
        the last evaluation included), the next evaluation, the last result and the time to target."""
        return {"train_seconds": self.elapsed(), "next_eval": self.next_eval, "last_mean": self.last_mean,
                "last_step": self.last_step, "steps_to_target": self.steps_to_target,
                "seconds_to_target": self.seconds_to_target}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()`; a checkpoint that kept only `next_eval` restores just that."""
        for k in ("train_seconds", "next_eval", "last_mean", "last_step", "steps_to_target", "seconds_to_target"):
            if k in state:
                setattr(self, k, state[k])
        self._t0 = time.perf_counter()

    def stop(self) -> None:
        """Freeze the training clock at the end of training, so the final checkpoint and the summary hold the
        same seconds: a resume from that checkpoint then reports at least the first run's time, never less
        (the final save itself is not training time)."""
        self.train_seconds = self.elapsed()
        self._t0 = None

    def elapsed(self) -> float:
        if self._t0 is None:
            return self.train_seconds
        return self.train_seconds + time.perf_counter() - self._t0

    def summary(self) -> dict[str, float]:
        out = {"eval/return_mean": self.last_mean, "time/train_seconds": self.elapsed()}
        if self.steps_to_target is not None:
            out["env/steps_to_target"] = float(self.steps_to_target)
            out["time/seconds_to_target"] = float(self.seconds_to_target)
        return out
