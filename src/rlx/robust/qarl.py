"""QARL: adversarial RL whose adversary grows from random to rational (a bounded-rationality curriculum).

Paper: qarl (Reddi et al., "Robust Adversarial Reinforcement Learning via Bounded Rationality Curricula").

The game is RARL's zero-sum Markov game: a protagonist and an adversary act on the same state, the
protagonist collects r_t and the adversary -r_t. Here: CartPole-v1, the protagonist pushes the cart
left or right (10 N) and the adversary adds one of K evenly spaced forces in [-F, F] (`PushedCartPole`).

Regularising the adversary's objective with entropy at temperature alpha,

    max_nu  E[ sum_t gamma^t ( -r_t + alpha H(nu(. | s_t)) ) ],

makes its best response the quantal (softmax) response and its state value the soft maximum:

    nu_alpha(a | s) = exp(Q_adv(s, a) / alpha) / sum_b exp(Q_adv(s, b) / alpha)        (1)  `quantal_probs`
    V_alpha(s)      = alpha log sum_a exp(Q_adv(s, a) / alpha)  ->  max_a Q_adv(s, a) as alpha -> 0   (2)  `soft_value`

Policies that are each other's (quantal) responses form a quantal response equilibrium; alpha is the
adversary's bounded rationality: alpha -> inf plays uniformly at random, alpha = 0 is RARL's fully
rational adversary (a Nash equilibrium). QARL starts hot and cools alpha to 0 during training, so the
protagonist first meets a weak, noisy adversary and a rational one only at the end (`Temperature`):

- `linear`: alpha_k = alpha_start + (alpha_end - alpha_start) * min(1, k / (anneal_fraction * K));
- `paced`: alpha drops by (alpha_start - alpha_end) / pace_steps after each update in which the
  protagonist's finished training episodes averaged at least `pace_return` (the protagonist sets the pace).

Both players learn with PQN (`rlx.control.pqn`: Q(lambda) targets, LayerNorm MLP, no replay): the
protagonist with max-targets, the adversary with the soft targets (2) and actions drawn from (1); both
explore epsilon-greedily on top. `adversary.mode`: none (plain PQN), rarl (alpha = 0 from the start),
qarl (the curriculum).

`robust_report` measures what the method is for, on the protagonist's greedy policy: the nominal return,
the mean return over a grid of pole masses and lengths, the return under random pushes, and the return
against a best-response adversary trained from scratch against the frozen protagonist.

Departures from the paper: discrete actions and PQN instead of MuJoCo with SAC/PPO; the paper's
curriculum is a self-paced optimisation of a distribution over temperatures under a performance
constraint, `paced` keeps its rule (advance only while the protagonist performs) with a fixed step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.control import pqn
from rlx.control.common import QNetConfig, Widths, episode_returns, load_torch_state, progress, save_torch_state
from rlx.control.envs import EnvSpec, StepOut, TorchCartPole
from rlx.control.online import EvalClock, collect_rollout, finished_returns, linear_epsilon, rollout_targets
from rlx.rundir import RunDir
from rlx.runtime import rng_state, seed_everything, set_rng_state, set_threads

__all__ = ["Config", "AdversaryConfig", "RobustConfig", "quantal_probs", "soft_value", "Temperature",
           "PushedCartPole", "greedy_returns", "best_response", "robust_report", "run"]


def quantal_probs(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (1): softmax(q / alpha) over the last dim; alpha = 0 gives the one-hot argmax (lowest index on ties)."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return torch.nn.functional.one_hot(q.argmax(-1), q.shape[-1]).to(q.dtype)
    return torch.softmax(q / alpha, dim=-1)


def soft_value(q: torch.Tensor, alpha: float) -> torch.Tensor:
    """Eq. (2): alpha * logsumexp(q / alpha) over the last dim; alpha = 0 gives max."""
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    if alpha == 0:
        return q.max(-1).values
    return alpha * torch.logsumexp(q / alpha, dim=-1)


class AdversaryConfig(Section):
    mode: Literal["none", "rarl", "qarl"] = Field("qarl", description="none: plain PQN | rarl: rational adversary throughout | qarl: temperature curriculum")
    force: float = Field(5.0, gt=0, le=100, description="largest push in newtons (the protagonist's is 10)")
    actions: int = Field(3, ge=2, le=21, description="number of evenly spaced pushes in [-force, force]")
    alpha_start: float = Field(10.0, ge=0, description="qarl: initial temperature of the adversary's quantal response")
    alpha_end: float = Field(0.0, ge=0, description="qarl: final temperature (0: fully rational)")
    schedule: Literal["linear", "paced"] = Field("linear", description="qarl: how the temperature falls")
    anneal_fraction: float = Field(0.75, gt=0, le=1, description="linear: fraction of training over which alpha falls")
    pace_return: float = Field(200.0, description="paced: protagonist training return that lets alpha fall one step")
    pace_steps: int = Field(100, ge=1, description="paced: number of steps from alpha_start to alpha_end")
    lr: float = Field(1e-3, gt=0, le=1, description="adversary's Adam learning rate")
    hidden: Widths = Field([64, 64], min_length=1, description="adversary's Q-network MLP widths")

    @model_validator(mode="after")
    def _check(self):
        if self.mode == "qarl" and not self.alpha_start > self.alpha_end:
            raise ValueError(f"adversary.alpha_start = {self.alpha_start}: qarl needs it above "
                              f"adversary.alpha_end = {self.alpha_end}")
        return self


class RobustConfig(Section):
    episodes: int = Field(20, ge=1, le=1000, description="greedy episodes per robustness condition")
    masspoles: list[float] = Field([0.1, 0.5, 1.0], min_length=1, description="pole masses of the physics grid (gymnasium: 0.1)")
    lengths: list[float] = Field([0.25, 0.5, 1.0], min_length=1, description="pole half-lengths of the physics grid (gymnasium: 0.5)")
    push: float = Field(5.0, ge=0, description="random pushes: +-push newtons with a random sign every step")
    best_response_steps: int = Field(100_000, ge=0, description="env steps to train a best-response adversary (0: skip)")

    @model_validator(mode="after")
    def _check(self):
        for name in ("masspoles", "lengths"):
            if min(getattr(self, name)) <= 0:
                raise ValueError(f"robust.{name} = {getattr(self, name)}: values must be > 0")
        return self


class Config(pqn.Config):
    kind: Literal["qarl"] = Field("qarl", description="trainer: PQN protagonist against a PQN adversary (qarl / rarl)")
    total_steps: int = Field(300_000, ge=1, description="environment steps (summed over copies)")
    adversary: AdversaryConfig = Field(AdversaryConfig(), description="the adversary and its temperature curriculum")
    robust: RobustConfig = Field(RobustConfig(), description="robustness report at the end of training")

    @model_validator(mode="after")
    def _check_env(self):
        if self.env.id != "CartPole-v1":
            raise ValueError(f"env.id = {self.env.id!r}: qarl supports CartPole-v1 (pushes act on the cart)")
        return self


class Temperature:
    """The adversary's temperature alpha over training (see the module docstring); checkpointable."""

    def __init__(self, cfg: AdversaryConfig, num_updates: int):
        self.cfg, self.num_updates = cfg, num_updates
        self.alpha = cfg.alpha_start if cfg.mode == "qarl" else 0.0
        self.update = 0

    def step(self, recent_return: float) -> float:
        """Advance one update (given the protagonist's mean finished-episode return in it); returns the new alpha."""
        c = self.cfg
        self.update += 1
        if c.mode != "qarl":
            return self.alpha
        if c.schedule == "linear":
            frac = min(1.0, self.update / max(1.0, c.anneal_fraction * self.num_updates))
            self.alpha = c.alpha_start + (c.alpha_end - c.alpha_start) * frac
        elif recent_return >= c.pace_return:
            self.alpha = max(c.alpha_end, self.alpha - (c.alpha_start - c.alpha_end) / c.pace_steps)
        return self.alpha

    def state_dict(self) -> dict:
        return {"alpha": self.alpha, "update": self.update}

    def load_state_dict(self, state: dict) -> None:
        self.alpha, self.update = float(state["alpha"]), int(state["update"])


class PushedCartPole:
    """CartPole whose step takes joint actions [N, 2]: column 0 the protagonist's (0/1), column 1 the
    index into `pushes` [K] (newtons added to the cart's force). Rewards are the protagonist's."""

    def __init__(self, base: TorchCartPole, pushes: torch.Tensor):
        self.base, self.pushes = base, pushes.to(torch.float64)
        self.num_envs = base.num_envs
        self.spec = EnvSpec(4, 2, 1, 0.0, 1.0, base.max_episode_steps)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        return self.base.reset(seed)

    def step(self, joint: torch.Tensor) -> StepOut:
        return self.base.step(joint[:, 0], self.pushes[joint[:, 1]])

    def close(self) -> None:
        self.base.close()


def _pushes(cfg: AdversaryConfig) -> torch.Tensor:
    return torch.linspace(-cfg.force, cfg.force, cfg.actions) if cfg.mode != "none" else torch.zeros(1)


def _explore(greedy: torch.Tensor, eps: float, k: int) -> torch.Tensor:
    random = torch.rand(greedy.shape[0]) < eps
    return torch.where(random, torch.randint(0, k, (greedy.shape[0],)), greedy)


def greedy_returns(act: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int, *, masspole: float = 0.1,
                   length: float = 0.5, push: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   max_steps: int = 500) -> np.ndarray:
    """Undiscounted returns [episodes] of `act(obs [N, 4]) -> [N]` on CartPole with the given pole, one episode
    per copy, with `push(obs) -> [N] newtons` added every step when given."""
    env = TorchCartPole(episodes, seed + 20_000, max_steps, masspole=masspole, length=length)
    return episode_returns(env, act, push)


def best_response(act: Callable[[torch.Tensor], torch.Tensor], cfg: Config, steps: int, seed: int) -> np.ndarray:
    """Train a fresh rational adversary (PQN, alpha = 0) for `steps` env steps against the frozen greedy
    protagonist `act`; return the protagonist's greedy returns under that adversary's greedy pushes."""
    a = cfg.adversary
    pushes = torch.linspace(-a.force, a.force, a.actions)
    env = PushedCartPole(TorchCartPole(cfg.env.num_envs, seed + 30_000), pushes)
    adv = pqn.build_q_network(4, a.actions, QNetConfig(hidden=a.hidden))
    opt = torch.optim.Adam(adv.parameters(), lr=a.lr)
    n, t = cfg.env.num_envs, cfg.num_steps
    updates = max(1, steps // (n * t))
    obs = env.reset()
    for u in range(updates):
        eps = linear_epsilon(u * n * t, steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
        with torch.no_grad():
            ro, obs = collect_rollout(env, obs, lambda o: torch.stack(
                (act(o), _explore(adv.q(o).argmax(1), eps, a.actions)), 1), t)
            ro_a = dataclasses.replace(ro, rewards=-ro.rewards)
            tgt = rollout_targets(ro_a, lambda o: adv.q(o).max(1).values, cfg.gamma, cfg.lambda_)
        pqn.regress(adv, opt, ro.obs.view(t * n, -1), ro.actions[..., 1].reshape(-1), tgt.view(-1),
                    cfg.epochs, cfg.minibatches, cfg.max_grad_norm)
    with torch.no_grad():
        return greedy_returns(act, cfg.robust.episodes, seed, push=lambda o: pushes[adv.q(o).argmax(1)])


def robust_report(act: Callable[[torch.Tensor], torch.Tensor], cfg: Config, seed: int) -> dict[str, float]:
    """robust/* metrics of a greedy protagonist (means over `cfg.robust.episodes` episodes)."""
    r = cfg.robust
    out = {"robust/nominal": float(greedy_returns(act, r.episodes, seed).mean())}
    grid = [float(greedy_returns(act, r.episodes, seed, masspole=m, length=ln).mean())
            for m in r.masspoles for ln in r.lengths]
    out["robust/physics_grid"] = float(np.mean(grid))
    out["robust/physics_worst"] = float(np.min(grid))
    g = torch.Generator().manual_seed(seed + 40_000)
    out["robust/random_push"] = float(greedy_returns(
        act, r.episodes, seed, push=lambda o: (torch.randint(0, 2, (o.shape[0],), generator=g) * 2 - 1) * r.push).mean())
    if r.best_response_steps:
        out["robust/best_response"] = float(best_response(act, cfg, r.best_response_steps, seed).mean())
    return out


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    if run is not None and cfg.tensorboard:
        run.enable_tensorboard()
    a = cfg.adversary
    pushes = _pushes(a)
    k = pushes.numel()
    base = TorchCartPole(cfg.env.num_envs, cfg.seed)
    env = PushedCartPole(base, pushes)
    n, t = cfg.env.num_envs, cfg.num_steps
    per_update = n * t
    if per_update // cfg.minibatches < 1:
        raise ConfigError(f"config error: minibatches = {cfg.minibatches}: more than num_envs * num_steps = {per_update}")
    num_updates = max(1, cfg.total_steps // per_update)
    prot = pqn.build_q_network(4, 2, cfg.net)
    adv = pqn.build_q_network(4, k, QNetConfig(hidden=a.hidden)) if a.mode != "none" else None
    opt_p = torch.optim.Adam(prot.parameters(), lr=cfg.lr)
    opt_a = torch.optim.Adam(adv.parameters(), lr=a.lr) if adv is not None else None
    temp = Temperature(a, num_updates)
    clock = EvalClock(cfg.eval, cfg.env.id, cfg.seed, run)
    obs = env.reset(cfg.seed)
    running = torch.zeros(n)
    start = 0
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        s = load_torch_state(ckpt)
        prot.load_state_dict(s["prot"])
        opt_p.load_state_dict(s["opt_p"])
        if adv is not None:
            adv.load_state_dict(s["adv"])
            opt_a.load_state_dict(s["opt_a"])
        temp.load_state_dict(s["temperature"])
        base.load_state_dict(s["env"] if "env" in s else  # checkpoints before session 10 kept the parts
                             {"state": s["env_state"], "elapsed": s["env_elapsed"], "generator": s["env_gen"]})
        obs, running = s["obs"], s["running"]
        set_rng_state(s["rng"])
        start = s["update"]
        clock.load_state_dict(s.get("clock", {"next_eval": s["next_eval"]}))
        run.truncate_metrics(start * per_update)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()

    def act_greedy(o: torch.Tensor) -> torch.Tensor:
        return prot.q(o).argmax(1)

    def save(done: int) -> None:
        state = {"prot": prot.state_dict(), "opt_p": opt_p.state_dict(), "temperature": temp.state_dict(),
                 "env": base.state_dict(), "obs": obs,
                 "running": running, "rng": rng_state(), "update": done, "next_eval": clock.next_eval,
                 "clock": clock.state_dict()}
        if adv is not None:
            state |= {"adv": adv.state_dict(), "opt_a": opt_a.state_dict()}
        run.save_checkpoint(done * per_update, lambda d: save_torch_state(d, state))

    done = start
    end = num_updates if clock.steps_to_target is None else start  # a resumed run that reached its target is done
    with progress(num_updates * per_update, f"qarl ({a.mode})") as bar:
        for update in range(start, end):
            eps = linear_epsilon(update * per_update, cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
            if cfg.lr_anneal:
                frac = 1.0 - update / num_updates
                for o, lr in ((opt_p, cfg.lr), (opt_a, a.lr)):
                    for g in o.param_groups if o is not None else ():
                        g["lr"] = lr * frac
            alpha = temp.alpha

            def behave(o: torch.Tensor) -> torch.Tensor:
                p_act = _explore(prot.q(o).argmax(1), eps, 2)
                if adv is None:
                    return torch.stack((p_act, torch.zeros_like(p_act)), 1)
                a_act = _explore(torch.multinomial(quantal_probs(adv.q(o), alpha), 1).squeeze(1), eps, k)
                return torch.stack((p_act, a_act), 1)

            with torch.no_grad():
                ro, obs = collect_rollout(env, obs, behave, t)
                tgt_p = rollout_targets(ro, lambda o: prot.q(o).max(1).values, cfg.gamma, cfg.lambda_)
                if adv is not None:  # soft Q(lambda): the trace carries the entropy of the action it follows
                    bonus = None
                    if alpha > 0:
                        logits = adv.q(ro.obs.view(t * n, -1)) / alpha
                        logp = torch.log_softmax(logits, -1).gather(1, ro.actions[..., 1].reshape(-1, 1)).view(t, n)
                        bonus = -alpha * logp
                    tgt_a = rollout_targets(dataclasses.replace(ro, rewards=-ro.rewards),
                                            lambda o: soft_value(adv.q(o), alpha), cfg.gamma, cfg.lambda_, bonus)
            flat_obs = ro.obs.view(t * n, -1)
            loss, _ = pqn.regress(prot, opt_p, flat_obs, ro.actions[..., 0].reshape(-1), tgt_p.view(-1),
                                  cfg.epochs, cfg.minibatches, cfg.max_grad_norm)
            if adv is not None:
                loss_a, _ = pqn.regress(adv, opt_a, flat_obs, ro.actions[..., 1].reshape(-1), tgt_a.view(-1),
                                        cfg.epochs, cfg.minibatches, cfg.max_grad_norm)
            ended = finished_returns(ro, running)
            recent = float(ended.mean()) if ended.numel() else float("nan")
            temp.step(recent if ended.numel() else -float("inf"))
            done = update + 1
            steps = done * per_update
            bar(steps, f"alpha {alpha:.2f}  eval {clock.last_mean:.1f}")
            if run is not None and done % cfg.log_every == 0:
                row = {"train/loss": float(loss.detach()), "train/episode_return": recent, "train/epsilon": eps,
                       "adversary/alpha": alpha, "time/train_seconds": clock.elapsed()}
                if adv is not None:
                    row["adversary/loss"] = float(loss_a.detach())
                    row["adversary/mean_push"] = float(pushes[ro.actions[..., 1]].abs().mean())
                run.log(steps, row)
            if clock.due(steps) and clock.evaluate(steps, act_greedy):
                break
            if run is not None and cfg.checkpoint_every and done % cfg.checkpoint_every == 0:
                save(done)
    steps = done * per_update
    if clock.last_step != steps:
        clock.evaluate(steps, act_greedy)
    clock.stop()
    summary = {**clock.summary(), "env/steps": float(steps), "adversary/alpha_final": temp.alpha}
    summary |= robust_report(act_greedy, cfg, cfg.seed)
    if run is not None:
        save(done)
        run.log(steps, {k_: v for k_, v in summary.items() if k_.startswith("robust/")})
    return summary
