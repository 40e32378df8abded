"""Adversarial Cheap Talk: an adversary that can only append messages to the victim's observation.  Paper: act

Cheap Talk MDP: the victim observes [s_t, m_t] with m_t = f_phi(s_t), a deterministic function of
the true state (`CheapTalkEnv`). The adversary cannot hide or change s_t, the dynamics or the
rewards, sees neither the victim's actions nor its parameters, and adds no randomness. Here
f_phi(s) = tanh(W s + b) with k messages, phi = (W, b) (`linear_messages`).

ACT meta-learns phi with evolution strategies over whole victim trainings. The fitness of phi is the
area under a fresh PQN victim's learning curve (the mean over its updates of the mean return of the
episodes that ended in each update) for an `ally`, and minus that for an `adversary`. One generation
(OpenAI-ES with antithetic pairs and centred ranks, `es_gradient`):

    eps_i ~ N(0, I), i = 1..P/2;   F_i^+ = F(phi + sigma eps_i),  F_i^- = F(phi - sigma eps_i)
    g = 1 / (P sigma) * sum_i (u(F_i^+) - u(F_i^-)) eps_i,   u = centred ranks in [-0.5, 0.5]  (1)
    phi <- Adam step along +g

All members of a generation train their victims with the same seed (common random numbers), so an
antithetic pair differs only by its messages.

`evaluate_messages` then trains fresh victims (seeds never used by ES) with the final phi and
reports their mean training return and final greedy return, beside victims that see no messages and
victims that see the initial (random) phi.

Departures: PQN on CartPole instead of PPO victims on Brax/MinAtar; a linear-tanh adversary and a
small ES budget (population 8, 10 generations by default); the paper's test-time control of a
victim (messages that steer a trained victim to a target behaviour) is not implemented.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rlx.config import Section
from rlx.control import pqn
from rlx.control.common import episode_returns, load_torch_state, progress, save_torch_state
from rlx.control.envs import StepOut, TorchCartPole, VecEnv
from rlx.control.online import collect_rollout, finished_returns, linear_epsilon, rollout_targets
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "ActConfig", "CheapTalkEnv", "linear_messages", "centred_ranks", "es_gradient",
           "train_victim", "evaluate_messages", "run"]


class CheapTalkEnv:
    """Observations [N, D] become [N, D + k]: the state and `message(state)` [N, k]."""

    def __init__(self, base: VecEnv, message: Callable[[torch.Tensor], torch.Tensor], k: int):
        self.base, self.message, self.k = base, message, k
        self.num_envs = base.num_envs
        self.spec = dataclasses.replace(base.spec, obs_dim=base.spec.obs_dim + k)

    def _talk(self, obs: torch.Tensor) -> torch.Tensor:
        return torch.cat([obs, self.message(obs)], dim=1) if self.k else obs

    def reset(self, seed: int | None = None) -> torch.Tensor:
        return self._talk(self.base.reset(seed))

    def step(self, actions: torch.Tensor) -> StepOut:
        out = self.base.step(actions)
        return dataclasses.replace(out, obs=self._talk(out.obs), final_obs=self._talk(out.final_obs))

    def close(self) -> None:
        self.base.close()


def linear_messages(phi: torch.Tensor, obs_dim: int, k: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """m = tanh(W s + b), with phi = [W.flatten(), b] of length k * (obs_dim + 1)."""
    if phi.numel() != k * (obs_dim + 1):
        raise ValueError(f"phi has {phi.numel()} entries, expected k * (obs_dim + 1) = {k * (obs_dim + 1)}")
    w, b = phi[: k * obs_dim].view(k, obs_dim).float(), phi[k * obs_dim:].float()
    return lambda s: torch.tanh(s @ w.T + b)


def centred_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks of x scaled to [-0.5, 0.5] (ties broken by position): fitness shaping for ES."""
    ranks = np.empty(len(x))
    ranks[np.argsort(x, kind="stable")] = np.arange(len(x))
    return ranks / max(1, len(x) - 1) - 0.5


def es_gradient(f_plus: np.ndarray, f_minus: np.ndarray, eps: np.ndarray, sigma: float) -> np.ndarray:
    """Eq. (1): the ES estimate of the fitness gradient from antithetic pairs; eps [P/2, d]."""
    u = centred_ranks(np.concatenate([f_plus, f_minus]))
    half = len(f_plus)
    return (u[:half] - u[half:]) @ eps / (2 * half * sigma)


class ActConfig(Section):
    mode: Literal["adversary", "ally"] = Field("adversary", description="adversary: lower the victim's training return | ally: raise it")
    messages: int = Field(2, ge=1, le=64, description="message dimensions k appended to the observation")
    generations: int = Field(10, ge=0, description="ES generations (0: keep the initial random phi)")
    population: int = Field(8, ge=2, description="victim trainings per generation (antithetic pairs, even)")
    sigma: float = Field(0.5, gt=0, description="ES perturbation scale")
    es_lr: float = Field(0.2, gt=0, description="Adam learning rate on phi")
    init_scale: float = Field(1.0, ge=0, description="std of the initial phi")
    eval_seeds: list[int] = Field([100, 101, 102, 103, 104], min_length=1, description="fresh victim seeds for the final evaluation")


def es_victim_seed(seed: int, generation: int) -> int:
    """The victim seed ES generation `generation` trains on (every candidate of a generation shares it)."""
    return seed * 1_000_003 + generation


class Config(pqn.Config):
    kind: Literal["act"] = Field("act", description="trainer: ACT adversary (or ally) against PQN victims on CartPole")
    total_steps: int = Field(100_000, ge=1, description="env steps of each victim training")
    act: ActConfig = Field(ActConfig(), description="the cheap-talk adversary and its ES")

    @model_validator(mode="after")
    def _fresh_eval_seeds(self) -> "Config":
        if self.env.id != "CartPole-v1":  # the victims and the cheap-talk channel are built on torch CartPole
            raise ValueError(f"env.id = {self.env.id!r}: act supports CartPole-v1")
        used = {es_victim_seed(self.seed, g) for g in range(self.act.generations)}
        clash = sorted(used & set(self.act.eval_seeds))
        if clash:
            raise ValueError(f"act.eval_seeds {clash[:5]} are victim seeds ES trained on (seed * 1000003 + generation "
                             f"for generation < {self.act.generations}): the final evaluation must use fresh victims")
        return self


def train_victim(cfg: Config, message: Callable[[torch.Tensor], torch.Tensor] | None, k: int, seed: int
                 ) -> dict[str, float]:
    """Train a fresh PQN victim on CartPole with cheap talk `message` (None: no messages, k ignored) for
    `cfg.total_steps`; returns its training return (the mean over updates of the mean return of the episodes
    that ended in that update: the area under the learning curve, not weighted toward the many short early
    episodes) and its final greedy return (20 episodes)."""
    torch.manual_seed(seed)
    k = k if message is not None else 0
    env = CheapTalkEnv(TorchCartPole(cfg.env.num_envs, seed), message or (lambda s: s[:, :0]), k)
    n, t = cfg.env.num_envs, cfg.num_steps
    q = pqn.build_q_network(env.spec.obs_dim, 2, cfg.net)
    opt = torch.optim.Adam(q.parameters(), lr=cfg.lr)
    updates = max(1, cfg.total_steps // (n * t))
    obs, running, ended = env.reset(seed), torch.zeros(n), []
    for u in range(updates):
        eps = linear_epsilon(u * n * t, cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
        if cfg.lr_anneal:
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (1.0 - u / updates)
        with torch.no_grad():
            def behave(o):
                greedy = q.q(o).argmax(1)
                return torch.where(torch.rand(o.shape[0]) < eps, torch.randint(0, 2, (o.shape[0],)), greedy)

            ro, obs = collect_rollout(env, obs, behave, t)
            tgt = rollout_targets(ro, lambda o: q.q(o).max(1).values, cfg.gamma, cfg.lambda_)
        pqn.regress(q, opt, ro.obs.view(t * n, -1), ro.actions.view(-1), tgt.view(-1), cfg.epochs, cfg.minibatches,
                    cfg.max_grad_norm)
        done = finished_returns(ro, running)
        if done.numel():
            ended.append(float(done.mean()))
    test = CheapTalkEnv(TorchCartPole(20, seed + 50_000), message or (lambda s: s[:, :0]), k)
    total = episode_returns(test, lambda o: q.q(o).argmax(1))
    return {"train_return": float(np.mean(ended)) if ended else 0.0, "final_return": float(total.mean())}


def evaluate_messages(cfg: Config, phi: torch.Tensor | None, seeds: list[int]) -> dict[str, list[float]]:
    """Victims trained from each seed with messages phi (None: no messages); their per-seed results."""
    k = cfg.act.messages
    msg = linear_messages(phi, 4, k) if phi is not None else None
    rows = [train_victim(cfg, msg, k, s) for s in seeds]
    return {key: [r[key] for r in rows] for key in ("train_return", "final_return")}


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    a = cfg.act
    if a.population % 2:
        from rlx.config import ConfigError

        raise ConfigError(f"config error: act.population = {a.population}: must be even (antithetic pairs)")
    k, d = a.messages, a.messages * 5
    rng = np.random.default_rng(cfg.seed)
    phi0 = torch.as_tensor(rng.normal(0.0, a.init_scale, d))
    phi = torch.nn.Parameter(phi0.clone())
    opt = torch.optim.Adam([phi], lr=a.es_lr)
    sign = -1.0 if a.mode == "adversary" else 1.0
    start = 0
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        s = load_torch_state(ckpt)
        phi.data.copy_(s["phi"])
        opt.load_state_dict(s["opt"])
        rng.bit_generator.state = s["np_rng"]
        start = s["generation"]
        run.truncate_metrics(start)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()

    def save(gen: int) -> None:
        state = {"phi": phi.detach().clone(), "opt": opt.state_dict(), "np_rng": rng.bit_generator.state,
                 "generation": gen}
        run.save_checkpoint(gen, lambda dd: save_torch_state(dd, state))

    half = a.population // 2
    with progress(a.generations * a.population, f"act ({a.mode})") as bar:
        for gen in range(start, a.generations):
            eps = rng.normal(size=(half, d))
            victim_seed = es_victim_seed(cfg.seed, gen)
            base = phi.detach().double().numpy()
            fit = np.zeros((2, half))
            for i in range(half):
                for j, sgn in enumerate((1.0, -1.0)):
                    cand = torch.as_tensor(base + sgn * a.sigma * eps[i])
                    r = train_victim(cfg, linear_messages(cand, 4, k), k, victim_seed)
                    fit[j, i] = sign * r["train_return"]
                    bar(gen * a.population + 2 * i + j + 1, f"gen {gen + 1}  victim return {r['train_return']:.0f}")
            g = es_gradient(fit[0], fit[1], eps, a.sigma)
            opt.zero_grad()
            phi.grad = torch.as_tensor(-g, dtype=phi.dtype)  # Adam minimises: step along +g
            opt.step()
            if run is not None:
                run.log(gen + 1, {"act/victim_return_mean": float(sign * fit.mean()),
                                  "act/victim_return_best": float(sign * fit.max()),
                                  "act/grad_norm": float(np.linalg.norm(g)), "act/phi_norm": float(phi.detach().norm())})
                save(gen + 1)
    final = evaluate_messages(cfg, phi.detach(), a.eval_seeds)
    summary = {"act/train_return": float(np.mean(final["train_return"])),
               "act/final_return": float(np.mean(final["final_return"])), "act/generations": float(a.generations)}
    for s_, tr, fr in zip(a.eval_seeds, final["train_return"], final["final_return"]):
        summary |= {f"act/train_return_seed{s_}": tr, f"act/final_return_seed{s_}": fr}
    if run is not None:
        run.log(a.generations, summary)
        torch.save({"phi": phi.detach(), "messages": k}, run.path / "messages.pt")
    return summary
