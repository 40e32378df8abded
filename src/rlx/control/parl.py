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

Online fine-tuning (`online.steps > 0`), after the offline phase, one gymnasium env, episode by episode:
   act:    a_t = explore(a*(s_t)), a* from `optimize_actions` with the target critic, plus Gaussian noise
           (continuous) or a uniform random action with probability `noise` (discrete);
   store:  (s_t, a_t, r_t, s_t+1, terminated) in an online replay buffer;
   update: `updates_per_step` times per env step, the same critic + distillation step on a minibatch that
           takes round(online_fraction * B) rows from the online buffer and the rest from the offline data
           (`mixed_batch`; 50/50 is Cal-QL's / the paper's mixing).
Checkpoints fall on episode boundaries (each episode resets with seed + 20000 + its index), so a killed
run resumes exactly.

Departures: the shipped Gaussian / categorical `Policy` as the policy class (diffusion and transformer
policies in the paper); IQL as the critic in every setting, online too (the paper fine-tunes with Cal-QL;
the abstract's point is that the critic is independent of the policy class, and IQL fine-tunes online
without a conservative regulariser to anneal); exploration noise on a* is ours.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from rlx.config import Section
from rlx.control.buffer import ReplayBuffer
from rlx.control.envs import EnvSpec
from rlx.control.offline import (CorruptionConfig, DatasetConfig, IQLUpdate, OfflineData, OfflineLoop, prepare_data,
                                 train_offline)
from rlx.rundir import RunDir
from rlx.runtime import seed_everything, set_threads

__all__ = ["Config", "OnlineConfig", "PARLUpdate", "optimize_actions", "explore", "mixed_batch", "run"]


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


def explore(actions: torch.Tensor, noise: float, spec: EnvSpec, gen: torch.Generator) -> torch.Tensor:
    """Exploration on top of a*(s) during online fine-tuning.  Paper: parl (the noise model is ours)

    continuous: a = clip(a* + noise * (high - low) / 2 * eps, low, high),  eps ~ N(0, I);
    discrete:   a = uniform random action with probability `noise`, else a*.
    actions: [B] long or [B, A]; the draws come from `gen` only."""
    if spec.discrete:
        flip = torch.rand(actions.shape[0], generator=gen) < noise
        return torch.where(flip, torch.randint(0, spec.num_actions, actions.shape, generator=gen), actions)
    eps = torch.randn(actions.shape, generator=gen)
    half = (spec.action_high - spec.action_low) / 2
    return (actions + noise * half * eps).clamp(spec.action_low, spec.action_high)


def mixed_batch(data: OfflineData, buf: ReplayBuffer, batch_size: int, online_fraction: float,
                gen: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A minibatch of round(online_fraction * B) online rows (uniform over the buffer's filled rows) after
    B - that many offline rows (uniform over the dataset); fewer online rows while the buffer is empty.
    Returns (obs [B, D], actions, rewards [B], next_obs [B, D], terminated [B]).  Paper: parl (symmetric
    offline / online sampling of Cal-QL, which the paper fine-tunes with)."""
    n_on = round(batch_size * online_fraction) if buf.size > 0 else 0
    off = torch.randint(0, data.obs.shape[0], (batch_size - n_on,), generator=gen)
    on = torch.randint(0, max(buf.size, 1), (n_on,), generator=gen)
    pairs = ((data.obs, buf.obs), (data.actions, buf.actions), (data.rewards, buf.rewards),
             (data.next_obs, buf.next_obs), (data.terminated, buf.terminated))
    return tuple(torch.cat([d[off], b[on]]) for d, b in pairs)


class OnlineConfig(Section):
    steps: int = Field(0, ge=0, description="online env steps after the offline phase (0: offline only)")
    online_fraction: float = Field(0.5, ge=0, le=1, description="share of each minibatch from online transitions")
    updates_per_step: int = Field(1, ge=1, le=64, description="critic + policy updates per online env step")
    learning_starts: int = Field(200, ge=0, description="online env steps collected before online updates begin")
    noise: float = Field(0.1, ge=0, le=1, description="exploration: Gaussian std in half action ranges "
                                                      "(continuous) or random-action probability (discrete)")
    buffer_size: int = Field(100_000, ge=1, description="online replay capacity (transitions, oldest dropped)")
    eval_every: int = Field(1000, ge=1, description="greedy evaluation every this many online env steps")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many online episodes (0: only at the end)")

    @model_validator(mode="after")
    def _learns(self) -> "OnlineConfig":
        if self.steps > 0 and self.learning_starts >= self.steps:
            raise ValueError(f"learning_starts = {self.learning_starts} >= steps = {self.steps}: no online update")
        return self


class Config(Section):
    kind: Literal["parl"] = Field("parl", description="trainer: PA-RL (offline, optional online fine-tuning)")
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
    online: OnlineConfig = Field(OnlineConfig(), description="online fine-tuning after the offline phase")

    @model_validator(mode="after")
    def _top_k(self) -> "Config":
        if self.top_k > self.samples:  # was clamped to samples without a word
            raise ValueError(f"top_k = {self.top_k} > samples = {self.samples}: it keeps the best of the samples")
        return self


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.train.threads)
    data = prepare_data(cfg.dataset, cfg.corruption, normalize_obs=False, reward_scale=cfg.reward_scale,
                        corruption_seed=cfg.seed)
    learner = PARLUpdate(data.spec, cfg.train.hidden, num_q=2, target_reduce="min", quantile=0.0, q_loss="mse",
                         huber_delta=1.0, expectile=cfg.expectile, beta=0.0, gamma=cfg.gamma, polyak=cfg.polyak,
                         lr=cfg.train.lr, samples=cfg.samples, top_k=cfg.top_k, grad_steps=cfg.grad_steps,
                         grad_lr=cfg.grad_lr, bc_steps=cfg.bc_steps)
    if cfg.online.steps == 0:
        return train_offline("parl", cfg.train, learner, data, cfg.dataset.env, cfg.seed, run)
    return run_online(cfg, learner, data, run)


def run_online(cfg: Config, learner: PARLUpdate, data: OfflineData, run: RunDir | None) -> dict:
    """The offline phase (skipped when resuming past it), then online fine-tuning with episode-boundary
    checkpoints. Online rows are logged at step = train.steps + online env steps."""
    from rlx.control.common import evaluate, load_torch_state, progress, save_torch_state
    from rlx.control.datasets import normalized_score
    from rlx.control.envs import GymVecEnv
    from rlx.runtime import rng_state, set_rng_state

    on, spec, env_id = cfg.online, data.spec, cfg.dataset.env
    ckpt = run.latest_checkpoint() if run is not None and run.resume else None
    state = load_torch_state(ckpt) if ckpt is not None else None
    buf = ReplayBuffer(min(on.buffer_size, on.steps), spec.obs_dim, () if spec.discrete else (spec.action_dim,),
                       spec.discrete)
    gen = torch.Generator().manual_seed(cfg.seed + 1)

    def norm(o: torch.Tensor) -> torch.Tensor:
        return (o - data.obs_mean) / data.obs_std

    def greedy_eval() -> dict[str, float]:
        ret = evaluate(lambda o: learner.policy.act(norm(o)), env_id, cfg.train.eval_episodes, cfg.seed)
        mean = float(np.mean(ret))
        return {"eval/return_mean": mean, "eval/return_std": float(np.std(ret)),
                "eval/normalized_score": float(normalized_score(env_id, mean))}

    if state is not None and "online" in state:
        learner.load_state_dict(state["learner"])
        buf.load_state_dict(state["buffer"])
        set_rng_state(state["rng"])
        gen.set_state(state["gen"])
        prog = state["online"]
        run.truncate_metrics(cfg.train.steps + prog["env_steps"])
        if cfg.train.tensorboard:
            run.enable_tensorboard()
    else:
        offline = train_offline("parl", cfg.train, learner, data, env_id, cfg.seed, run)
        if "eval/return_mean" not in offline:  # resumed from the final offline checkpoint: evaluate again
            offline.update(greedy_eval())
        prog = {"env_steps": 0, "episode": 0, "returns": [], "last": {},
                "offline": {f"offline/{k.split('/')[-1]}": v for k, v in offline.items() if k.startswith("eval/")}}

    def save() -> None:
        if run is not None:
            st = {"learner": learner.state_dict(), "buffer": buf.state_dict(), "rng": rng_state(),
                  "gen": gen.get_state(), "online": prog}
            run.save_checkpoint(cfg.train.steps + prog["env_steps"], lambda d: save_torch_state(d, st))

    if state is None or "online" not in state:
        save()  # the hand-over point: a kill from here on never repeats the offline phase
    env = GymVecEnv(env_id, 1, seed=cfg.seed + 20_000)
    act_args = (cfg.samples, cfg.top_k, cfg.grad_steps, cfg.grad_lr, spec.action_low, spec.action_high)
    m: dict[str, float] = {}
    with progress(on.steps, "parl online") as bar:
        while prog["env_steps"] < on.steps:
            obs, ret, done = norm(env.reset(seed=cfg.seed + 20_000 + prog["episode"])), 0.0, False
            n = prog["env_steps"]
            while not done and n < on.steps:
                a = explore(optimize_actions(learner.policy, learner.target, obs, *act_args), on.noise, spec, gen)
                out = env.step(a)
                buf.add(obs, a, out.reward * cfg.reward_scale, norm(out.final_obs), out.terminated)
                ret, n, done = ret + float(out.reward[0]), n + 1, bool(out.terminated[0] or out.truncated[0])
                obs = norm(out.obs)
                if n > on.learning_starts:
                    for _ in range(on.updates_per_step):
                        m = learner.step(*mixed_batch(data, buf, cfg.train.batch_size, on.online_fraction, gen))
                if n % on.eval_every == 0 or n == on.steps:
                    prog["last"] = greedy_eval()
                    if run is not None:
                        run.log(cfg.train.steps + n, prog["last"])
            prog["env_steps"], prog["episode"] = n, prog["episode"] + 1
            if done:  # the budget may cut the last episode: its partial return is not an episode return
                prog["returns"].append(ret)
                if run is not None:
                    run.log(cfg.train.steps + n, {**m, "online/episode_return": ret, "online/env_steps": float(n)})
            bar(n, f"return {ret:.1f} eval {prog['last'].get('eval/return_mean', float('nan')):.1f}")
            if on.checkpoint_every and prog["episode"] % on.checkpoint_every == 0 and n < on.steps:
                save()
    env.close()
    save()
    rets = prog["returns"]
    return {**prog["last"], **prog["offline"], "train/steps": float(cfg.train.steps),
            "online/env_steps": float(prog["env_steps"]), "online/episodes": float(len(rets)),
            "online/return_mean": float(np.mean(rets)) if rets else float("nan")}
