"""QWeb: DQN on a form-filling web task with a warm-start curriculum and potential shaping.  Paper: qweb

The environment (`FormEnv`, torch-batched) is a web form with F fields (from, to, date, ...). Field
e has V candidate values; its value tokens are e*V + v + 1 (0 is an empty box), so a value typed
into the wrong field is always wrong. An instruction lists every field's (key, value) pair in a
random order, so the agent must align instruction slots with page elements. Actions are QWeb's
composite actions, flattened: Type(e, j), "type the value of instruction slot j into element e",
is action e*F + j, and Click(submit) is action F*F. The episode ends at submit, with the World of
Bits sparse reward +1 if every field holds its instructed value and -1 otherwise, or with -1 when
`max_steps` run out. Observation (floats, D = 3F + 1): page tokens [F], instruction keys [F],
instruction value tokens [F], steps left / max_steps.

From the paper:
* **QWeb's factorised Q** (`QWebNet`): Q(s, Type(e, j)) = Q^D(s, e) + Q^T(s, e, j) and
  Q(s, Click(submit)) = Q^D(s, submit); element encodings see the instruction fields whose key
  overlaps theirs, the pair scores see element, slot and their key match.
* **Warm-start curriculum** (`warm_start_fields`): episodes start with k fields already filled
  correctly (an oracle played those sub-instructions), k(t) = k0 max(0, 1 - t / (f T)), so the
  agent first only has to finish nearly done forms and then ever longer sub-instructions. The
  default k0 = F (the first episodes need only a submit, which teaches what success looks like);
  `curriculum_start: F-1` starts one sub-instruction away; on recipes/qweb_form.yaml it did not
  learn within the budget (experiments/qweb/results.md).
* **Potential-based reward augmentation** (`potential`, `shaped_rewards`): Phi(s) = fraction of
  fields that hold their instructed value; r' = r + gamma (1 - terminated) Phi(s') - Phi(s).

Departures: the paper's warm start visits each DOM element independently with probability p and
decays p; here exactly k = floor(k(t)) or ceil(k(t)) (stochastic rounding) randomly chosen fields
are filled. Elements and instructions are token ids, not words, so QWeb's word embeddings, LSTM
encoders and word-overlap features become key/value embeddings and an exact key-match feature; a
Click(e) on a text box does nothing and is left out, so a^C (click vs type) is implied by a^D.
Exploration is epsilon-greedy, uniform over the F*F + 1 composite actions.
Phi at a terminal state is 0 (Ng et al.'s condition for an unchanged optimal policy). Not
implemented: curriculum from demonstrations, goal-simulation curricula, and the meta-learned
instruction generator (the paper's "meta-trainer").
"""

from __future__ import annotations

import copy
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from rlx.config import Section
from rlx.control.buffer import ReplayBuffer
from rlx.control.common import episode_returns, load_torch_state, progress, save_torch_state
from rlx.control.dqn import dqn_targets
from rlx.control.envs import EnvSpec, StepOut
from rlx.control.losses import huber
from rlx.control.networks import mlp
from rlx.control.online import linear_epsilon
from rlx.rundir import RunDir
from rlx.runtime import rng_state, seed_everything, set_rng_state, set_threads

__all__ = ["FormConfig", "Config", "FormEnv", "QWebNet", "warm_start_fields", "stochastic_round", "potential",
           "shaped_rewards", "run"]


class FormConfig(Section):
    fields: int = Field(4, ge=1, le=32, description="form fields F (instruction size); actions F*F + 1")
    values: int = Field(8, ge=1, le=64, description="candidate values V per field (V**F instructions)")
    max_steps: int = Field(8, ge=2, le=1000, description="step limit; running out is a failure (-1)")
    num_envs: int = Field(8, ge=1, le=4096, description="parallel form copies")

    @model_validator(mode="after")
    def _enough_steps(self) -> "FormConfig":
        if self.max_steps < self.fields + 1:
            raise ValueError(f"max_steps = {self.max_steps} < fields + 1 = {self.fields + 1}: no success possible")
        return self


class Config(Section):
    kind: Literal["qweb"] = Field("qweb", description="trainer: QWeb (DQN on a form-filling web task)")
    seed: int = Field(0, ge=0, description="random seed (network, exploration, instructions)")
    env: FormConfig = Field(FormConfig(), description="the form-filling environment")
    hidden: int = Field(32, ge=4, le=4096, description="width of QWeb's embeddings and MLPs")
    curriculum: Literal["none", "warm_start"] = Field("warm_start", description="none | warm_start (k fields prefilled)")
    curriculum_start: int | None = Field(None, ge=0, le=32, description="fields prefilled at t = 0 (None: all F, so the first episodes need only a submit)")
    curriculum_fraction: float = Field(0.6, gt=0, le=1, description="fraction of training over which k goes k0 -> 0")
    shaping: bool = Field(False, description="add potential-based shaping gamma Phi(s') - Phi(s) to the reward")
    total_steps: int = Field(16_000, ge=1, description="environment steps (summed over copies)")
    buffer_size: int = Field(50_000, ge=1, description="replay capacity (transitions)")
    learning_starts: int = Field(500, ge=0, description="env steps of pure exploration before learning")
    batch_size: int = Field(128, ge=1, description="minibatch size")
    train_freq: int = Field(1, ge=1, description="vector steps between training phases")
    gradient_steps: int = Field(1, ge=1, description="gradient steps per training phase")
    target_update_interval: int = Field(500, ge=1, description="env steps between target-network copies")
    double_q: bool = Field(True, description="double DQN: the online net picks a', the target net values it")
    gamma: float = Field(0.95, ge=0, le=1, description="discount")
    lr: float = Field(1e-3, gt=0, le=1, description="Adam learning rate")
    max_grad_norm: float = Field(10.0, gt=0, description="gradient norm clip")
    eps_start: float = Field(1.0, ge=0, le=1, description="initial epsilon")
    eps_end: float = Field(0.05, ge=0, le=1, description="final epsilon")
    exploration_fraction: float = Field(0.15, gt=0, le=1, description="fraction of training over which epsilon decays")
    eval_every: int = Field(2000, ge=1, description="greedy evaluation on fresh, empty forms every this many env steps")
    eval_episodes: int = Field(200, ge=1, le=100_000, description="episodes per evaluation (fresh instructions)")
    threads: int = Field(1, ge=0, le=256, description="torch threads (0: 1)")
    checkpoint_every: int = Field(0, ge=0, description="checkpoint every this many env steps (0: only at the end)")
    log_every: int = Field(1000, ge=1, description="log train/* every this many env steps")

    @model_validator(mode="after")
    def _start_fits(self) -> "Config":
        if self.curriculum_start is not None and self.curriculum_start > self.env.fields:
            raise ValueError(f"curriculum_start = {self.curriculum_start} > env.fields = {self.env.fields}")
        if self.learning_starts >= self.total_steps:  # the run finished normally without one gradient step
            raise ValueError(f"learning_starts = {self.learning_starts} >= total_steps = {self.total_steps}: no "
                             "gradient step would run")
        return self


# -- curriculum and shaping: pure functions ------------------------------------------------------

def warm_start_fields(step: int, total: int, k0: int, fraction: float) -> float:
    """k(t) = k0 * max(0, 1 - t / (fraction * T)): fields prefilled at env step t; k0 at t = 0, 0 from t = fT on.

    Paper: qweb (warm-starting an episode close to the goal; linear decay of the oracle's share)."""
    return k0 * max(0.0, 1.0 - step / max(1.0, fraction * total))


def stochastic_round(k: float, n: int, gen: torch.Generator) -> torch.Tensor:
    """[n] long: floor(k) + Bernoulli(k - floor(k)), so E[result] = k."""
    base = int(np.floor(k))
    return base + (torch.rand(n, generator=gen) < (k - base)).long()


def _instructed(obs: torch.Tensor, fields: int) -> torch.Tensor:
    """[B, F] the value token the instruction asks for in each page element (slot j with key e)."""
    keys, vals = obs[:, fields:2 * fields].long(), obs[:, 2 * fields:3 * fields]
    return torch.zeros_like(vals).scatter(1, keys, vals)


def potential(obs: torch.Tensor, fields: int) -> torch.Tensor:
    """Phi(s) = (1/F) sum_e 1[page_e = instructed value of field e], [B]. Paper: qweb (potential = matching
    elements between the current and the goal state, normalised)."""
    return (obs[:, :fields] == _instructed(obs, fields)).float().mean(1)


def shaped_rewards(r_t: torch.Tensor, phi_tm1: torch.Tensor, phi_t: torch.Tensor, terminated_t: torch.Tensor,
                   gamma: float) -> torch.Tensor:
    """r' = r + gamma (1 - terminated) Phi(s') - Phi(s) (Phi = 0 at terminal states, so every policy's
    return changes by -Phi(s_0) only and the optimal policy is unchanged). Shapes [B]. Paper: qweb."""
    return r_t + gamma * (1 - terminated_t) * phi_t - phi_tm1


# -- the environment ------------------------------------------------------------------------------

class FormEnv:
    """F-field forms in `num_envs` copies, same-step autoreset (the `rlx.control.envs.VecEnv` contract).

    `warm_start` (float k) is read at every reset: each new episode starts with stochastic_round(k)
    randomly chosen fields already holding their instructed value."""

    def __init__(self, num_envs: int, fields: int, values: int, max_steps: int, seed: int):
        self.num_envs, self.fields, self.values, self.max_steps = num_envs, fields, values, max_steps
        self.spec = EnvSpec(obs_dim=3 * fields + 1, num_actions=fields * fields + 1, action_dim=1,
                            action_low=0.0, action_high=0.0, max_episode_steps=max_steps)
        self.warm_start = 0.0
        self.gen = torch.Generator().manual_seed(seed)
        shape = (num_envs, fields)
        self.target = torch.zeros(shape, dtype=torch.long)  # [N, F] value token each element must hold
        self.order = torch.zeros(shape, dtype=torch.long)  # [N, F] key of instruction slot j
        self.page = torch.zeros(shape, dtype=torch.long)  # [N, F] value token in each element (0: empty)
        self.t = torch.zeros(num_envs, dtype=torch.long)
        self._reset_rows(torch.ones(num_envs, dtype=torch.bool))

    def _reset_rows(self, rows: torch.Tensor) -> None:
        n, F = int(rows.sum()), self.fields
        if n == 0:
            return
        self.target[rows] = torch.arange(F) * self.values + 1 + torch.randint(0, self.values, (n, F), generator=self.gen)
        self.order[rows] = torch.rand(n, F, generator=self.gen).argsort(1)
        k = stochastic_round(self.warm_start, n, self.gen)
        rank = torch.rand(n, F, generator=self.gen).argsort(1).argsort(1)  # a random permutation per row
        self.page[rows] = torch.where(rank < k[:, None], self.target[rows], 0)
        self.t[rows] = 0

    def obs(self) -> torch.Tensor:
        vals = self.target.gather(1, self.order)
        left = (self.max_steps - self.t).float()[:, None] / self.max_steps
        return torch.cat([self.page.float(), self.order.float(), vals.float(), left], 1)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self.gen.manual_seed(seed)
        self._reset_rows(torch.ones(self.num_envs, dtype=torch.bool))
        return self.obs()

    def step(self, actions: torch.Tensor) -> StepOut:
        F = self.fields
        submit = actions == F * F
        e, j = (actions // F).clamp(max=F - 1), actions % F
        rows = torch.arange(self.num_envs)
        typed = self.target[rows, self.order[rows, j]]
        self.page[rows, e] = torch.where(submit, self.page[rows, e], typed)
        self.t += 1
        solved = (self.page == self.target).all(1)
        timeout = ~submit & (self.t >= self.max_steps)
        reward = torch.where(submit & solved, 1.0, torch.where(submit | timeout, -1.0, 0.0))
        terminated = submit | timeout
        final_obs = self.obs()
        self._reset_rows(terminated)
        return StepOut(self.obs(), reward, terminated, torch.zeros_like(terminated), final_obs)

    def state_dict(self) -> dict:
        return {"target": self.target.clone(), "order": self.order.clone(), "page": self.page.clone(),
                "t": self.t.clone(), "gen": self.gen.get_state(), "warm_start": self.warm_start}

    def load_state_dict(self, state: dict) -> None:
        self.target, self.order, self.page, self.t = state["target"], state["order"], state["page"], state["t"]
        self.gen.set_state(state["gen"])
        self.warm_start = state["warm_start"]

    def close(self) -> None:
        pass


# -- QWeb's Q-network ----------------------------------------------------------------------------

class QWebNet(nn.Module):
    """Q(s, Type(e, j)) = Q^D(s, e) + Q^T(s, e, j), Q(s, submit) = Q^D(s, submit); flat output [B, F*F + 1].

    u_j = MLP(E_key[k_j] + E_val[v_j])                  instruction slot j
    z_e = MLP([E_key[e] + E_val[p_e], sum_j m_ej u_j])   element e with its overlapping slot (m_ej = 1[k_j = e])
    c   = MLP([mean_e z_e, steps left])                  page context
    Q^D(s, e) = MLP([z_e, c]),  Q^D(s, submit) = MLP(c),  Q^T(s, e, j) = MLP([z_e, u_j, m_ej, c])
    """

    def __init__(self, fields: int, values: int, hidden: int):
        super().__init__()
        self.fields, H = fields, hidden
        self.key_emb = nn.Embedding(fields, H)
        self.val_emb = nn.Embedding(fields * values + 1, H)
        self.slot = mlp(H, [H], H)
        self.elem = mlp(2 * H, [H], H)
        self.ctx = mlp(H + 1, [H], H)
        self.q_elem = mlp(2 * H, [H], 1)
        self.q_submit = mlp(H, [H], 1)
        # Q^T's first layer W [z_e, u_j, m_ej, c] + b, split into its four blocks so that it costs
        # O(B F H^2) (per element and per slot) instead of O(B F^2 H^2) (per pair)
        self.pair_z, self.pair_u, self.pair_c = nn.Linear(H, H), nn.Linear(H, H, bias=False), nn.Linear(H, H, bias=False)
        self.pair_m = nn.Parameter(torch.zeros(H))
        self.pair_out = nn.Linear(H, 1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        B, F = obs.shape[0], self.fields
        page, keys, vals = obs[:, :F].long(), obs[:, F:2 * F].long(), obs[:, 2 * F:3 * F].long()
        u = self.slot(self.key_emb(keys) + self.val_emb(vals))  # [B, F(slots), H]
        match = (keys[:, None, :] == torch.arange(F)[None, :, None]).float()  # [B, F(elements), F(slots)]
        h = self.key_emb.weight[None] + self.val_emb(page)  # [B, F, H]
        z = self.elem(torch.cat([h, match @ u], -1))  # [B, F, H]
        c = self.ctx(torch.cat([z.mean(1), obs[:, 3 * F:]], -1))  # [B, H]
        q_d = self.q_elem(torch.cat([z, c[:, None].expand(B, F, -1)], -1)).squeeze(-1)  # [B, F]
        pre = ((self.pair_z(z) + self.pair_c(c)[:, None])[:, :, None] + self.pair_u(u)[:, None]
               + match[..., None] * self.pair_m)  # [B, F, F, H]
        q_t = self.pair_out(torch.relu(pre)).squeeze(-1)  # [B, F(elements), F(slots)]
        return torch.cat([(q_d[:, :, None] + q_t).reshape(B, F * F), self.q_submit(c)], 1)


# -- training ---------------------------------------------------------------------------------------

def greedy_success(q_net: QWebNet, cfg: Config, episodes: int, seed: int) -> float:
    """Fraction of `episodes` fresh, empty forms (k = 0) the greedy policy submits correctly."""
    env = FormEnv(episodes, cfg.env.fields, cfg.env.values, cfg.env.max_steps, seed)
    returns = episode_returns(env, lambda o: q_net(o).argmax(1))
    return float((returns > 0).mean())


def run(cfg: Config, run: RunDir | None) -> dict:
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    e = cfg.env
    N, A = e.num_envs, e.fields * e.fields + 1
    env = FormEnv(N, e.fields, e.values, e.max_steps, cfg.seed)
    q_net = QWebNet(e.fields, e.values, cfg.hidden)
    target = copy.deepcopy(q_net).requires_grad_(False)
    opt = torch.optim.Adam(q_net.parameters(), lr=cfg.lr)
    buf = ReplayBuffer(min(cfg.buffer_size, cfg.total_steps + N), env.spec.obs_dim)
    num_iters = max(1, cfg.total_steps // N)
    target_every, ckpt_every = max(1, cfg.target_update_interval // N), max(1, cfg.checkpoint_every // N)
    eval_seed = cfg.seed + 10_000
    k0 = e.fields if cfg.curriculum_start is None else cfg.curriculum_start
    it, next_eval, ended, solved = 0, cfg.eval_every, 0, 0
    last_eval = float("nan")
    if run is not None and run.resume and (ckpt := run.latest_checkpoint()) is not None:
        s = load_torch_state(ckpt)
        q_net.load_state_dict(s["q_net"])
        target.load_state_dict(s["target"])
        opt.load_state_dict(s["opt"])
        buf.load_state_dict(s["buffer"])
        env.load_state_dict(s["env"])
        set_rng_state(s["rng"])
        it, next_eval, ended, solved, last_eval = s["iter"], s["next_eval"], s["ended"], s["solved"], s["last_eval"]
        run.truncate_metrics(it * N)
    elif run is not None and run.resume:  # no checkpoint yet: start over without the killed run's rows
        run.start_over()

    def save(done: int) -> None:
        state = {"q_net": q_net.state_dict(), "target": target.state_dict(), "opt": opt.state_dict(),
                 "buffer": buf.state_dict(), "env": env.state_dict(), "rng": rng_state(), "iter": done,
                 "next_eval": next_eval, "ended": ended, "solved": solved, "last_eval": last_eval}
        run.save_checkpoint(done * N, lambda d: save_torch_state(d, state))

    obs = env.obs()
    loss, td_abs = torch.zeros(()), torch.zeros(())
    start = it
    with progress(num_iters * N, "qweb") as bar:
        for it in range(start, num_iters):
            steps = (it + 1) * N
            eps = linear_epsilon(it * N, cfg.total_steps, cfg.eps_start, cfg.eps_end, cfg.exploration_fraction)
            if cfg.curriculum == "warm_start":
                env.warm_start = warm_start_fields(it * N, cfg.total_steps, k0, cfg.curriculum_fraction)
            with torch.no_grad():
                explore = torch.rand(N) < eps if it * N >= cfg.learning_starts else torch.ones(N, dtype=torch.bool)
                action = torch.where(explore, torch.randint(0, A, (N,)), q_net(obs).argmax(1))
                out = env.step(action)
            r = out.reward
            if cfg.shaping:
                r = shaped_rewards(r, potential(obs, e.fields), potential(out.final_obs, e.fields),
                                   out.terminated.float(), cfg.gamma)
            buf.add(obs, action, r, out.final_obs, out.terminated)
            ended += int(out.terminated.sum())
            solved += int((out.reward > 0).sum())
            obs = out.obs
            if steps > cfg.learning_starts and (it + 1) % cfg.train_freq == 0:
                for _ in range(cfg.gradient_steps):
                    b = buf.sample(cfg.batch_size)
                    with torch.no_grad():
                        y = dqn_targets(b.rewards, b.terminated, target(b.next_obs),
                                        q_net(b.next_obs) if cfg.double_q else None, cfg.gamma)
                    diff = q_net(b.obs).gather(1, b.actions[:, None]).squeeze(1) - y
                    loss, td_abs = huber(diff, 1.0).mean(), diff.abs().mean().detach()
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(q_net.parameters(), cfg.max_grad_norm)
                    opt.step()
            if (it + 1) % target_every == 0:
                target.load_state_dict(q_net.state_dict())
            if run is not None and steps % cfg.log_every < N:
                run.log(steps, {"train/loss": float(loss.detach()), "train/td_abs": float(td_abs), "train/epsilon": eps,
                                "train/warm_start_k": env.warm_start,
                                "train/success_rate": solved / max(1, ended), "env/episodes": float(ended)})
                ended = solved = 0
            if steps >= next_eval:
                with torch.no_grad():
                    last_eval = greedy_success(q_net, cfg, cfg.eval_episodes, eval_seed)
                while next_eval <= steps:
                    next_eval += cfg.eval_every
                if run is not None:
                    run.log(steps, {"eval/success_rate": last_eval})
            bar(steps, f"k {env.warm_start:.1f} eval {last_eval:.2f}")
            if run is not None and cfg.checkpoint_every and (it + 1) % ckpt_every == 0:
                save(it + 1)
    done = max(num_iters, start)
    with torch.no_grad():
        final = greedy_success(q_net, cfg, cfg.eval_episodes, eval_seed + 1)
    if run is not None:
        run.log(done * N, {"eval/final_success_rate": final})
        save(done)
    return {"eval/success_rate": final, "eval/last_periodic_success_rate": last_eval,
            "env/steps": float(done * N), "train/warm_start_k": env.warm_start}
