"""Environments: torch CartPole matches gymnasium step by step; truncation bootstraps, termination does not."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlx.control.dqn import dqn_targets
from rlx.control.envs import EnvSpec, GymVecEnv, StepOut, TorchCartPole
from rlx.control.online import collect_rollout, rollout_targets


def test_torch_cartpole_matches_gymnasium_step_by_step():
    ref = gym.make("CartPole-v1").unwrapped
    mine = TorchCartPole(1, seed=0, max_episode_steps=10**9)  # dynamics only; limits tested below
    rng = np.random.default_rng(0)
    steps = 0
    for episode in range(6):
        ref.reset(seed=episode)
        mine.reset()
        mine.state = torch.tensor(ref.state, dtype=torch.float64).unsqueeze(0)  # same start state
        for _ in range(500):
            a = int(rng.integers(2)) if episode % 2 == 0 else int(ref.state[2] + 0.5 * ref.state[3] > 0)
            o_ref, r_ref, term_ref, _, _ = ref.step(a)
            out = mine.step(torch.tensor([a]))
            steps += 1
            np.testing.assert_allclose(out.final_obs[0].numpy(), o_ref, rtol=0, atol=1e-6)
            assert bool(out.terminated[0]) == term_ref and float(out.reward[0]) == r_ref
            if term_ref:
                break
            # keep the float64 states identical so rounding never drifts apart over 500 steps
            np.testing.assert_allclose(mine.state[0].numpy(), ref.state, rtol=0, atol=1e-12)
    assert steps > 1000  # the balancing episodes run long


def test_torch_cartpole_truncates_at_limit_with_true_final_obs():
    env = TorchCartPole(3, seed=1, max_episode_steps=5)
    env.reset()
    for t in range(5):
        # alternate pushes keep the pole up for 5 steps
        out = env.step(torch.tensor([t % 2] * 3))
    assert out.truncated.all() and not out.terminated.any()
    assert not torch.equal(out.final_obs, out.obs)  # obs is the fresh reset, final_obs the real s_5
    assert (out.obs.abs() <= 0.05).all()
    assert int(env.elapsed.max()) == 0


class ChainEnv:
    """obs = [steps so far]; reward 1 per step; episode ends after 3 steps, by truncation
    (time limit) or termination (a real terminal state) depending on `terminate`."""

    def __init__(self, terminate: bool):
        self.num_envs, self.terminate, self.t = 1, terminate, 0
        self.spec = EnvSpec(1, 2, 1, 0.0, 1.0, 3)

    def reset(self, seed=None):
        self.t = 0
        return torch.zeros(1, 1)

    def step(self, actions):
        self.t += 1
        final = torch.full((1, 1), float(self.t))
        done = self.t == 3
        if done:
            self.t = 0
        flag = torch.tensor([done])
        term, trunc = (flag, ~flag & False) if self.terminate else (torch.tensor([False]), flag)
        return StepOut(torch.full((1, 1), float(self.t)), torch.ones(1), term, trunc, final)

    def close(self):
        pass


def test_truncation_bootstraps_and_termination_does_not():
    v = lambda o: 10.0 + o[:, 0]  # noqa: E731  V(s) = 10 + s, so each bootstrap is recognisable
    policy = lambda o: torch.zeros(o.shape[0], dtype=torch.long)  # noqa: E731
    for terminate, last in ((False, 1 + 0.5 * (10 + 3)), (True, 1.0)):
        env = ChainEnv(terminate)
        ro, _ = collect_rollout(env, env.reset(), policy, 4)
        g = rollout_targets(ro, v, gamma=0.5, lambda_=0.0)[:, 0]
        # t=0: s=0 -> s'=1: 1 + 0.5*(10+1) = 6.5 ; t=1: 1 + 0.5*11+... = 1 + 0.5*12 = 7.0
        # t=2 ends the episode at s'=3: truncated -> 1 + 0.5*13 = 7.5 ; terminated -> 1
        # t=3 starts a new episode from the reset state 0 -> s'=1: 6.5
        torch.testing.assert_close(g, torch.tensor([6.5, 7.0, last, 6.5]), rtol=0, atol=1e-6)
        # with lambda = 1 the return of t=0 runs to the episode end: 1 + 0.5 + 0.25 + 0.125 * bootstrap
        g1 = rollout_targets(ro, v, gamma=0.5, lambda_=1.0)[:, 0]
        tail = 0.125 * 13 if not terminate else 0.0
        assert abs(float(g1[0]) - (1.75 + tail)) < 1e-6


def test_dqn_targets_use_terminated_only():
    r = torch.tensor([1.0, 1.0])
    q_next = torch.tensor([[2.0, 5.0], [2.0, 5.0]])
    # row 0 truncated (terminated = 0): 1 + 0.9*5 = 5.5; row 1 terminated: 1
    y = dqn_targets(r, torch.tensor([0.0, 1.0]), q_next, None, 0.9)
    torch.testing.assert_close(y, torch.tensor([5.5, 1.0]), rtol=0, atol=1e-6)
    # double DQN: online net prefers action 0, the target net values it at 2: 1 + 0.9*2 = 2.8
    y = dqn_targets(r, torch.tensor([0.0, 1.0]), q_next, torch.tensor([[9.0, 0.0], [9.0, 0.0]]), 0.9)
    torch.testing.assert_close(y, torch.tensor([2.8, 1.0]), rtol=0, atol=1e-6)


def test_gym_vec_env_returns_true_final_obs_on_truncation():
    env = GymVecEnv("CartPole-v1", 2, seed=0, max_episode_steps=4)
    env.reset()
    for t in range(4):
        out = env.step(torch.tensor([t % 2, t % 2]))
        if t < 3:
            assert torch.equal(out.final_obs, out.obs)
    assert out.truncated.all() and not out.terminated.any()
    # same-step autoreset: obs is already the next episode's start; final_obs is the 4th state
    assert (out.obs.abs() <= 0.05).all() and not torch.equal(out.final_obs, out.obs)
    env.close()


def test_per_dimension_action_bounds_are_refused_not_collapsed():
    """EnvSpec holds one box for all action dimensions; an env with low [-1, -2] / high [1, 2] used to get
    [-2, 2] for both, silently widening the first dimension's range. Now it is a config error."""
    import gymnasium as gym
    from gymnasium import spaces
    from gymnasium.envs.registration import register

    from rlx.config import ConfigError
    from rlx.control.envs import make_vec_env

    class Lopsided(gym.Env):
        observation_space = spaces.Box(-1.0, 1.0, (2,))
        action_space = spaces.Box(np.array([-1.0, -2.0], dtype=np.float32), np.array([1.0, 2.0], dtype=np.float32))

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return np.zeros(2, np.float32), {}

        def step(self, a):
            return np.zeros(2, np.float32), 0.0, False, False, {}

    register("RlxLopsided-v0", entry_point=Lopsided, max_episode_steps=5)
    with pytest.raises(ConfigError, match=r"action bounds differ per dimension \(low \[-1.0, -2.0\]"):
        make_vec_env("RlxLopsided-v0", 2, 0, "gymnasium")
    assert make_vec_env("Pendulum-v1", 1, 0, "gymnasium").spec.action_high == 2.0
