"""PA-RL online fine-tuning (paper parl): the offline / online minibatch mix and exploration by hand, a short
online run, kill and exact resume inside the online phase, config errors."""

import json

import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.control.buffer import ReplayBuffer
from rlx.control.envs import EnvSpec
from rlx.control.offline import OfflineData
from rlx.control.parl import Config, PARLUpdate, explore, mixed_batch

CONT = EnvSpec(obs_dim=2, num_actions=0, action_dim=1, action_low=-2.0, action_high=2.0, max_episode_steps=200)
DISC = EnvSpec(obs_dim=2, num_actions=3, action_dim=1, action_low=0.0, action_high=1.0, max_episode_steps=200)


def offline_rows(n: int) -> OfflineData:
    """Row i: obs (i, 0), action i, reward i, next_obs (i, 1), terminated 0. Offline values are >= 0."""
    i = torch.arange(n, dtype=torch.float32)
    return OfflineData(torch.stack([i, 0 * i], 1), i[:, None], i.clone(), torch.stack([i, 1 + 0 * i], 1),
                       torch.zeros(n), CONT, torch.zeros(2), torch.ones(2))


def online_buffer(adds: list[float], capacity: int) -> ReplayBuffer:
    """Online row with value v: obs (v, 0), action v, reward v, next_obs (v, 1), terminated 1."""
    buf = ReplayBuffer(capacity, 2, (1,), discrete=False)
    for v in adds:
        buf.add(torch.tensor([[v, 0.0]]), torch.tensor([[v]]), torch.tensor([v]), torch.tensor([[v, 1.0]]),
                torch.tensor([True]))
    return buf


def test_mixed_batch_by_hand():
    data = offline_rows(5)
    # capacity 3, six adds: the ring keeps -4, -5, -6 (rows 0, 1, 2 hold -4, -5, -6 after wrapping)
    buf = online_buffer([-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], capacity=3)
    obs, actions, rewards, next_obs, terminated = mixed_batch(data, buf, 10, 0.3, torch.Generator().manual_seed(0))
    # round(10 * 0.3) = 3 online rows, after 10 - 3 = 7 offline rows
    assert obs.shape == (10, 2) and actions.shape == (10, 1) and rewards.shape == (10,)
    assert (rewards[:7] >= 0).all() and set(rewards[7:].tolist()) <= {-4.0, -5.0, -6.0}
    assert terminated.tolist() == [0.0] * 7 + [1.0] * 3
    # rows stay whole: obs, action, reward and next_obs of one transition travel together
    assert torch.equal(obs[:, 0], rewards) and torch.equal(actions[:, 0], rewards) and torch.equal(next_obs[:, 0], rewards)
    assert next_obs[:, 1].tolist() == [1.0] * 10
    # the same generator draws 7 offline indices, then 3 online ones
    g = torch.Generator().manual_seed(0)
    off, on = torch.randint(0, 5, (7,), generator=g), torch.randint(0, 3, (3,), generator=g)
    assert rewards[:7].tolist() == off.float().tolist()
    assert rewards[7:].tolist() == [[-4.0, -5.0, -6.0][j] for j in on.tolist()]


def test_mixed_batch_fraction_edges_and_empty_buffer():
    data, gen = offline_rows(5), torch.Generator().manual_seed(1)
    empty = online_buffer([], capacity=4)
    assert (mixed_batch(data, empty, 8, 0.5, gen)[2] >= 0).all()  # nothing online yet: all 8 rows offline
    buf = online_buffer([-1.0, -2.0], capacity=4)  # two of four rows filled: the zero rows are never drawn
    assert set(mixed_batch(data, buf, 8, 1.0, gen)[2].tolist()) <= {-1.0, -2.0}
    assert (mixed_batch(data, buf, 8, 0.0, gen)[2] >= 0).all()
    # round(8 * 0.5) = 4 online rows
    assert (mixed_batch(data, buf, 8, 0.5, gen)[2] < 0).sum() == 4


def test_explore_by_hand():
    a = torch.tensor([[0.5], [1.9]])
    assert torch.equal(explore(a, 0.0, CONT, torch.Generator().manual_seed(0)), a)
    eps = torch.randn(2, 1, generator=torch.Generator().manual_seed(0))
    # half range (2 - (-2)) / 2 = 2: a + 0.1 * 2 * eps, clipped to [-2, 2]
    want = (a + 0.2 * eps).clamp(-2, 2)
    torch.testing.assert_close(explore(a, 0.1, CONT, torch.Generator().manual_seed(0)), want, rtol=0, atol=1e-7)
    big = explore(a, 1.0, CONT, torch.Generator().manual_seed(0))
    assert float(big.abs().max()) <= 2.0
    d = torch.tensor([2, 2, 2, 2, 2, 2, 2, 2])
    assert torch.equal(explore(d, 0.0, DISC, torch.Generator().manual_seed(0)), d)
    rnd = explore(d, 1.0, DISC, torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(0)
    torch.rand(8, generator=g)  # the flip draws come first, then the random actions
    assert rnd.tolist() == torch.randint(0, 3, (8,), generator=g).tolist()


def test_config_errors():
    with pytest.raises(ConfigError, match="learning_starts"):
        build_config(Config, {"online": {"steps": 100, "learning_starts": 100}})
    with pytest.raises(ConfigError, match="online_fraction"):
        build_config(Config, {"online": {"steps": 100, "online_fraction": 1.5}})
    with pytest.raises(ConfigError, match="stepz"):
        build_config(Config, {"online": {"stepz": 100}})
    assert build_config(Config, {}).online.steps == 0  # off by default


ARGS = ["train", "recipes/parl_pendulum.yaml", "dataset.transitions=400", "train.steps=40", "train.eval_every=20",
        "train.eval_episodes=1", "train.hidden=[16]", "train.batch_size=32", "bc_steps=20", "samples=4", "top_k=2",
        "grad_steps=1"]
ONLINE = ["online.steps=450", "online.learning_starts=50", "online.eval_every=225", "online.checkpoint_every=1"]


def policy_of(run_dir):
    ckpt = run_dir / "checkpoints" / (run_dir / "checkpoints" / "LATEST").read_text().strip()
    return torch.load(ckpt / "state.pt", weights_only=False)["learner"]["policy"]


def test_online_run_changes_the_policy_and_logs_online_returns(tmp_path):
    assert main([*ARGS, "--out", str(tmp_path / "off")]) == 0
    assert main([*ARGS, *ONLINE, "--out", str(tmp_path / "on")]) == 0
    off = json.loads((tmp_path / "off" / "summary.json").read_text())
    on = json.loads((tmp_path / "on" / "summary.json").read_text())
    # the offline phase is the same run: its score is reported under offline/
    assert on["offline/return_mean"] == off["eval/return_mean"]
    # 450 steps of 200-step Pendulum episodes: two whole episodes, the third cut at 50 steps
    assert on["online/env_steps"] == 450 and on["online/episodes"] == 2
    rows = [json.loads(x) for x in (tmp_path / "on" / "metrics.jsonl").read_text().splitlines()]
    ep = [r for r in rows if "online/episode_return" in r]
    assert [r["step"] for r in ep] == [40 + 200, 40 + 400]
    assert on["online/return_mean"] == pytest.approx(sum(r["online/episode_return"] for r in ep) / 2, abs=1e-9)
    assert all(r["online/episode_return"] < 0 for r in ep)  # Pendulum rewards are <= 0
    evals = [r["step"] for r in rows if "eval/return_mean" in r and r["step"] > 40]
    assert evals == [40 + 225, 40 + 450]
    p_off, p_on = policy_of(tmp_path / "off"), policy_of(tmp_path / "on")
    assert any(not torch.equal(p_off[k], p_on[k]) for k in p_off)


@pytest.mark.parametrize("kill_at", [130, 490])
def test_killed_in_the_online_phase_resumes_exactly(tmp_path, kill_on_call, kill_at):
    # PARLUpdate.step calls: 40 offline, then one per online env step after learning_starts = 50, so call c is
    # made at env step c - 40 + 50. kill_at 130: env step 140, the 1st episode (resumes from the hand-over
    # checkpoint); kill_at 490: env step 500, the 3rd episode (resumes from the end of the 2nd).
    args = [*ARGS, "online.steps=600", "online.learning_starts=50", "online.eval_every=150",
            "online.checkpoint_every=1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(PARLUpdate, "step", kill_at)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())
    b = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert a == b and a["online/episodes"] == 3
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()
    pa, pb = policy_of(tmp_path / "a"), policy_of(tmp_path / "b")
    assert all(torch.equal(pa[k], pb[k]) for k in pa)


def test_online_recipe_validates():
    from rlx.cli import load_recipe

    _, cfg = load_recipe("recipes/parl_pendulum_online.yaml", [])
    assert cfg.online.steps == 1500 and cfg.online.online_fraction == 0.5
    _, off = load_recipe("recipes/parl_pendulum.yaml", [])
    assert off.online.steps == 0
