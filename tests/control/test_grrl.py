"""GR-RL pieces (paper grrl) by hand: episodes, sparse success reward, progress filter, mirroring; resume."""

import json

import numpy as np
import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError
from rlx.control import grrl


def test_episode_ids_and_sparse_rewards_by_hand():
    term = np.array([0, 0, 1, 0, 0, 0, 0], dtype=bool)
    tout = np.array([0, 0, 0, 0, 0, 0, 1], dtype=bool)
    ep = grrl.episode_ids(term, tout)
    assert ep.tolist() == [0, 0, 0, 1, 1, 1, 1]
    # episode 0 failed, episode 1 (4 steps) succeeded; last k = 2 steps rewarded gamma^(T-1-t)
    r = grrl.sparse_success_rewards(ep, np.array([False, True]), gamma=0.5, k=2)
    np.testing.assert_allclose(r, [0, 0, 0, 0, 0, 0.5, 1.0])


def test_success_definitions():
    data = {"timeouts": np.array([0, 0, 0, 1], dtype=bool),
            "next_observations": np.array([[0.95, 0, 0], [0.5, 0, 0], [0.95, 0, 0], [0.99, 0, 0]], dtype=np.float32)}
    ep = np.array([0, 0, 1, 1])
    assert grrl.episode_success("CartPole-v1", data, ep, 2).tolist() == [False, True]  # only ep 1 hit the limit
    assert grrl.episode_success("Pendulum-v1", data, ep, 2).tolist() == [False, True]  # ep 0 ends hanging (0.5)
    assert grrl.episode_success("Pendulum-v1", data, ep, 1).tolist() == [False, True]
    with pytest.raises(ConfigError, match="grrl defines success"):
        grrl.episode_success("Acrobot-v1", data, ep, 2)


def test_progress_filter_keeps_what_does_not_lose_progress():
    v, v_next = torch.tensor([0.5, 0.5, 0.5, 0.9]), torch.tensor([0.6, 0.4, 0.5, 0.0])
    r, done = torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 1.0])
    keep, delta = grrl.progress_filter(v, v_next, r, done, gamma=1.0, margin=0.0)
    torch.testing.assert_close(delta, torch.tensor([0.1, -0.1, 0.0, 0.1]))
    assert keep.tolist() == [True, False, True, True]
    assert grrl.progress_filter(v, v_next, r, done, 1.0, margin=0.2)[0].all()


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_mirror_is_a_symmetry_of_the_dynamics(env_id):
    # step a state and its mirror image with the mirrored action: the next observations mirror each other
    import gymnasium as gym

    env, twin = gym.make(env_id).unwrapped, gym.make(env_id).unwrapped
    env.reset(seed=3)
    twin.reset(seed=3)
    state = np.array([0.1, -0.3, 0.05, 0.4]) if env_id == "CartPole-v1" else np.array([2.0, -1.5])
    env.state, twin.state = state.copy(), -state
    obs = torch.as_tensor(env._get_obs() if env_id == "Pendulum-v1" else state, dtype=torch.float32)[None]
    m_obs = torch.as_tensor(twin._get_obs() if env_id == "Pendulum-v1" else -state, dtype=torch.float32)[None]
    action = torch.tensor([1]) if env_id == "CartPole-v1" else torch.tensor([[0.7]])
    mirrored_obs, m_action = grrl.mirror(env_id, obs, action)
    torch.testing.assert_close(mirrored_obs, m_obs)
    nxt = torch.as_tensor(env.step(action[0].numpy() if env_id == "Pendulum-v1" else int(action))[0])[None]
    m_nxt = torch.as_tensor(twin.step(m_action[0].numpy() if env_id == "Pendulum-v1" else int(m_action))[0])[None]
    torch.testing.assert_close(grrl.mirror(env_id, nxt.float(), action)[0], m_nxt.float(), atol=1e-5, rtol=0)
    assert not torch.allclose(nxt.float(), m_nxt.float())  # the two states really differ


def test_killed_and_resumed_run_matches_the_uninterrupted_one(tmp_path, kill_on_call):
    from rlx.control.offline import BCUpdate

    args = ["train", "recipes/grrl_pendulum.yaml", "dataset.transitions=400", "train.steps=40", "train.eval_every=20",
            "train.eval_episodes=1", "train.hidden=[16]", "critic_steps=30", "train.checkpoint_every=10"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(BCUpdate, "step", 25)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a == b and 0 < a["grrl/kept_fraction"] < 1
