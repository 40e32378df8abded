"""Vectorised environments with one step contract: same-step autoreset and the true final observation.

Every environment here returns, for each of N parallel copies, the observation to act on next
(`obs`, already reset where an episode ended) *and* the true successor state (`final_obs`, equal to
`obs` where the episode goes on). Bootstrapping must use `final_obs`:

    terminated -> no bootstrap (the MDP ended);
    truncated  -> bootstrap from final_obs (only the time limit ended the episode).

Two back-ends behind the same protocol:

* `TorchCartPole`: CartPole-v1 written as batched torch ops (float64 state like gymnasium, float32
  observations, 500-step time limit). Same dynamics, termination and reward as gymnasium's
  `CartPoleEnv`; `tests/control/test_envs.py` checks them step by step against it. No Python loop
  over environments, so stepping 256 copies costs about as much as stepping one.
* `GymVecEnv`: any gymnasium id via `gym.make_vec(..., autoreset_mode=SAME_STEP)`, pinned so the
  meaning of `final_obs` never depends on the gymnasium default.

Usage:
    env = make_vec_env("CartPole-v1", num_envs=32, seed=0, backend="torch")
    obs = env.reset()
    out = env.step(actions)            # out.obs, out.reward, out.terminated, out.truncated, out.final_obs
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
import torch

from rlx.config import ConfigError

__all__ = ["StepOut", "VecEnv", "TorchCartPole", "GymVecEnv", "make_vec_env", "EnvSpec"]


@dataclass(frozen=True)
class StepOut:
    obs: torch.Tensor  # [N, D] float32, observation to act on next (reset where done)
    reward: torch.Tensor  # [N] float32
    terminated: torch.Tensor  # [N] bool, the MDP reached a terminal state
    truncated: torch.Tensor  # [N] bool, a time limit cut the episode (and not terminated)
    final_obs: torch.Tensor  # [N, D] float32, true successor state s_{t+1} (== obs where not done)


@dataclass(frozen=True)
class EnvSpec:
    obs_dim: int
    num_actions: int  # 0 for continuous action spaces
    action_dim: int  # 1 for discrete
    action_low: float  # continuous bounds (ignored for discrete)
    action_high: float
    max_episode_steps: int

    @property
    def discrete(self) -> bool:
        return self.num_actions > 0


class VecEnv(Protocol):
    num_envs: int
    spec: EnvSpec

    def reset(self, seed: int | None = None) -> torch.Tensor:
        """Reset every copy; returns obs [N, D] float32."""
        ...

    def step(self, actions: torch.Tensor) -> StepOut:
        """Step every copy with actions [N] (discrete, long) or [N, A] (continuous)."""
        ...

    def close(self) -> None: ...

    def state_dict(self) -> dict | None:
        """Everything `step` depends on (physics, step counters, the env's own RNG), or None where the
        back-end cannot capture it; a checkpoint stores it so that a resumed run continues the same
        episodes."""
        ...

    def load_state_dict(self, state: dict) -> None: ...


class TorchCartPole:
    """Batched CartPole-v1 (gymnasium's dynamics, reward 1 per step, 500-step limit)."""

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masspole + masscart
    length = 0.5
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02
    theta_threshold = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def __init__(self, num_envs: int, seed: int = 0, max_episode_steps: int = 500, *, masspole: float = 0.1,
                 length: float = 0.5, masscart: float = 1.0):
        """`masspole`, `length` (half the pole's length) and `masscart` change the physics (robustness
        tests, paper qarl); the defaults are gymnasium's."""
        if min(masspole, length, masscart) <= 0:
            raise ValueError(f"CartPole physics must be positive, got masspole={masspole}, length={length}, "
                             f"masscart={masscart}")
        self.masspole, self.length, self.masscart = masspole, length, masscart
        self.total_mass = masspole + masscart
        self.polemass_length = masspole * length
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.spec = EnvSpec(4, 2, 1, 0.0, 1.0, max_episode_steps)
        self._gen = torch.Generator().manual_seed(seed)
        self.state = torch.zeros(num_envs, 4, dtype=torch.float64)
        self.elapsed = torch.zeros(num_envs, dtype=torch.long)

    def _sample(self, n: int) -> torch.Tensor:
        return torch.rand(n, 4, generator=self._gen, dtype=torch.float64) * 0.1 - 0.05

    def reset(self, seed: int | None = None) -> torch.Tensor:
        if seed is not None:
            self._gen.manual_seed(seed)
        self.state = self._sample(self.num_envs)
        self.elapsed.zero_()
        return self.state.float()

    def dynamics(self, state: torch.Tensor, actions: torch.Tensor, push: torch.Tensor | None = None) -> torch.Tensor:
        """One Euler step of gymnasium's CartPole for states [N, 4] and actions [N] in {0, 1}; `push` [N]
        is an extra horizontal force on the cart in newtons (an adversary or a disturbance)."""
        x, x_dot, theta, theta_dot = state.unbind(1)
        force = (actions.to(torch.float64) * 2.0 - 1.0) * self.force_mag
        if push is not None:
            force = force + push.to(torch.float64)
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot.square() * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.square() / self.total_mass)
        )
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        return torch.stack(
            (x + self.tau * x_dot, x_dot + self.tau * xacc, theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc),
            dim=1,
        )

    def step(self, actions: torch.Tensor, push: torch.Tensor | None = None) -> StepOut:
        nxt = self.dynamics(self.state, actions, push)
        x, theta = nxt[:, 0], nxt[:, 2]
        terminated = (x.abs() > self.x_threshold) | (theta.abs() > self.theta_threshold)
        self.elapsed += 1
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        final_obs = nxt.float()
        self.state = nxt
        if bool(done.any()):
            idx = done.nonzero().squeeze(1)
            self.state = nxt.clone()
            self.state[idx] = self._sample(idx.numel())
            self.elapsed[idx] = 0
            obs = self.state.float()
        else:
            obs = final_obs
        reward = torch.ones(self.num_envs)
        return StepOut(obs, reward, terminated, truncated, final_obs)

    def state_dict(self) -> dict:
        return {"state": self.state.clone(), "elapsed": self.elapsed.clone(), "generator": self._gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.state, self.elapsed = state["state"].clone(), state["elapsed"].clone()
        self._gen.set_state(state["generator"])

    def close(self) -> None:
        pass


class GymVecEnv:
    """A gymnasium vector env (sync) with SAME_STEP autoreset, returning torch tensors."""

    def __init__(self, env_id: str, num_envs: int, seed: int = 0, **kwargs):
        import gymnasium as gym
        from gymnasium.vector import AutoresetMode

        self.num_envs = num_envs
        self._seed = seed
        self.env = gym.make_vec(
            env_id, num_envs=num_envs, vectorization_mode="sync",
            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs,
        )
        assert self.env.metadata.get("autoreset_mode") == AutoresetMode.SAME_STEP
        obs_space, act_space = self.env.single_observation_space, self.env.single_action_space
        max_steps = self.env.spec.max_episode_steps if self.env.spec and self.env.spec.max_episode_steps else 0
        if isinstance(act_space, gym.spaces.Discrete):
            self.spec = EnvSpec(int(np.prod(obs_space.shape)), int(act_space.n), 1, 0.0, 1.0, max_steps)
        else:
            low, high = np.asarray(act_space.low), np.asarray(act_space.high)
            if np.ptp(low) > 0 or np.ptp(high) > 0:  # EnvSpec holds one box for every action dimension
                self.env.close()
                raise ConfigError(f"config error: env.id = {env_id!r}: its action bounds differ per dimension "
                                  f"(low {low.tolist()}, high {high.tolist()}); rlx's continuous-control code "
                                  "supports one [low, high] box for all dimensions")
            self.spec = EnvSpec(
                int(np.prod(obs_space.shape)), 0, int(np.prod(act_space.shape)),
                float(low.min()), float(high.max()), max_steps,
            )

    def reset(self, seed: int | None = None) -> torch.Tensor:
        obs, _ = self.env.reset(seed=self._seed if seed is None else seed)
        return torch.as_tensor(obs, dtype=torch.float32).reshape(self.num_envs, -1)

    def step(self, actions: torch.Tensor) -> StepOut:
        a = actions.cpu().numpy()
        obs, rew, term, trunc, info = self.env.step(a)
        obs_t = torch.as_tensor(obs, dtype=torch.float32).reshape(self.num_envs, -1)
        final = obs_t
        if "_final_obs" in info:
            mask = info["_final_obs"]
            final = obs_t.clone()
            for i in np.nonzero(mask)[0]:
                final[i] = torch.as_tensor(info["final_obs"][i], dtype=torch.float32).reshape(-1)
        term_t = torch.as_tensor(term, dtype=torch.bool)
        return StepOut(
            obs_t, torch.as_tensor(rew, dtype=torch.float32), term_t,
            torch.as_tensor(trunc, dtype=torch.bool) & ~term_t, final,
        )

    def state_dict(self) -> dict | None:
        """Each copy's state: MuJoCo envs by qpos/qvel, pure-Python envs (classic control) by their
        attributes; plus the env's RNG and the time limit's step counter. None for anything else."""
        copies = [_snapshot(e) for e in self.env.envs]
        return None if any(c is None for c in copies) else {"copies": copies}

    def load_state_dict(self, state: dict) -> None:
        for e, c in zip(self.env.envs, state["copies"], strict=True):
            _restore(e, c)

    def close(self) -> None:
        self.env.close()


def _wrappers(env):
    while env is not None:
        yield env
        env = getattr(env, "env", None)


def _snapshot(env) -> dict | None:
    u = env.unwrapped
    counters = [getattr(w, "_elapsed_steps", None) for w in _wrappers(env)]
    rng = copy.deepcopy(u.np_random.bit_generator.state)
    if hasattr(u, "data") and hasattr(u, "set_state"):  # gymnasium MujocoEnv
        return {"kind": "mujoco", "qpos": u.data.qpos.copy(), "qvel": u.data.qvel.copy(), "time": float(u.data.time),
                "rng": rng, "counters": counters}
    attrs = {k: v for k, v in vars(u).items() if k not in ("screen", "clock", "_np_random", "spec")}
    try:
        attrs = copy.deepcopy(attrs)
    except Exception:  # an env holding handles (a simulator, a socket): not capturable
        return None
    return {"kind": "attributes", "attrs": attrs, "rng": rng, "counters": counters}


def _restore(env, snap: dict) -> None:
    u = env.unwrapped
    if snap["kind"] == "mujoco":
        u.set_state(snap["qpos"], snap["qvel"])
        u.data.time = snap["time"]
    else:
        vars(u).update(copy.deepcopy(snap["attrs"]))
    u.np_random.bit_generator.state = copy.deepcopy(snap["rng"])
    for w, n in zip(_wrappers(env), snap["counters"], strict=True):
        if n is not None:
            w._elapsed_steps = n


Backend = Literal["torch", "gymnasium"]


def make_vec_env(env_id: str, num_envs: int, seed: int, backend: Backend = "gymnasium") -> VecEnv:
    """`backend="torch"` is available for CartPole-v1 only; anything else goes through gymnasium."""
    if backend == "torch":
        if env_id != "CartPole-v1":
            from rlx.config import ConfigError

            raise ConfigError(f"config error: env.backend = 'torch': only CartPole-v1 has a torch back-end, got {env_id!r}")
        return TorchCartPole(num_envs, seed)
    return GymVecEnv(env_id, num_envs, seed)
