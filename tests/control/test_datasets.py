"""Offline dataset builder: D4RL keys, consistent transitions, normalised scores."""

import json

import numpy as np
import pytest

from rlx.cli import main as cli_main
from rlx.control.datasets import REF_SCORES, build_dataset, expert_action, load_dataset, normalized_score


def test_dataset_keys_and_transition_consistency(tmp_path):
    data = build_dataset("CartPole-v1", "medium-replay", 2000, seed=0)
    n = len(data["rewards"])
    assert n >= 2000
    assert data["observations"].shape == (n, 4) and data["next_observations"].shape == (n, 4)
    assert data["actions"].dtype == np.int64 and data["terminals"].dtype == bool
    done = data["terminals"] | data["timeouts"]
    assert done[-1]  # cut at an episode end
    # inside an episode the next row starts where this one ended
    inside = ~done[:-1]
    np.testing.assert_array_equal(data["next_observations"][:-1][inside], data["observations"][1:][inside])
    meta = json.loads(str(data["meta"]))
    assert meta["kind"] == "medium-replay" and meta["transitions"] == n
    # CLI writes the same thing to disk
    out = tmp_path / "cp.npz"
    assert cli_main(["make-dataset", "--env", "CartPole-v1", "--kind", "expert", "--transitions", "600",
                     "--out", str(out)]) == 0
    disk = load_dataset(out)
    assert disk["timeouts"].sum() == 2 and disk["terminals"].sum() == 0  # two 500-step expert episodes
    assert disk["rewards"].sum() == 1000.0


def test_pendulum_continuous_and_normalized_score():
    data = build_dataset("Pendulum-v1", "expert", 400, seed=0)
    assert data["actions"].shape == (400, 1) and np.abs(data["actions"]).max() <= 2.0
    assert data["timeouts"].sum() == 2 and data["terminals"].sum() == 0
    # D4RL normalisation: random -> 0, expert -> 100, halfway -> 50
    ref = REF_SCORES["CartPole-v1"]
    assert normalized_score("CartPole-v1", ref["random"]) == 0.0
    assert normalized_score("CartPole-v1", ref["expert"]) == 100.0
    assert abs(normalized_score("CartPole-v1", (ref["random"] + ref["expert"]) / 2) - 50.0) < 1e-9


def test_inverted_pendulum_mujoco_dataset():
    data = build_dataset("InvertedPendulum-v5", "medium-expert", 300, seed=0)
    n = len(data["rewards"])
    assert n >= 300
    assert data["observations"].shape == (n, 4) and data["next_observations"].shape == (n, 4)
    assert data["observations"].dtype == np.float32 and data["rewards"].dtype == np.float32
    assert data["actions"].shape == (n, 1) and data["actions"].dtype == np.float32
    assert np.abs(data["actions"]).max() <= 3.0
    assert data["terminals"].dtype == bool and data["timeouts"].dtype == bool
    assert not (data["terminals"] & data["timeouts"]).any()
    done = data["terminals"] | data["timeouts"]
    assert done[-1]
    inside = ~done[:-1]
    np.testing.assert_array_equal(data["next_observations"][:-1][inside], data["observations"][1:][inside])
    # v5 terminates exactly when |pole angle| > 0.2 rad, and rewards 1 per step with the pole up
    # (0 on the falling step)
    fell = np.abs(data["next_observations"][:, 1]) > 0.2
    np.testing.assert_array_equal(data["terminals"], fell)
    np.testing.assert_array_equal(data["rewards"], (~fell).astype(np.float32))
    # a timeout closes a 1000-step episode: the first episode is medium, the second the expert's
    # (1000 steps, ends on the time limit, not a fall)
    ends = np.nonzero(done)[0] + 1
    lengths = np.diff(np.concatenate([[0], ends]))
    np.testing.assert_array_equal(lengths[data["timeouts"][ends - 1]], 1000)
    assert data["timeouts"].sum() >= 1 and data["terminals"].sum() >= 1
    meta = json.loads(str(data["meta"]))
    assert meta["episodes"] == len(ends) and meta["transitions"] == n


def test_inverted_pendulum_expert_keeps_the_pole_up():
    from rlx.control.envs import GymVecEnv

    env = GymVecEnv("InvertedPendulum-v5", 4, seed=123)  # 4 seeds: 123..126
    obs = env.reset()
    for _ in range(250):
        out = env.step(expert_action("InvertedPendulum-v5", obs))
        assert not (out.terminated | out.truncated).any()
        obs = out.obs
    env.close()
    assert obs[:, 1].abs().max() < 0.05  # the pole stays near upright, well inside the 0.2 rad limit


def test_bad_kind_is_a_config_error(tmp_path, capsys):
    assert cli_main(["make-dataset", "--kind", "great", "--out", str(tmp_path / "x.npz")]) == 2
    assert "--kind" in capsys.readouterr().err


def test_missing_dataset_file():
    with pytest.raises(FileNotFoundError, match="make-dataset"):
        load_dataset("/nonexistent/data.npz")


def test_offline_training_on_an_env_without_reference_scores(tmp_path):
    """Any gymnasium env's D4RL-keyed dataset can be trained on: the normalised score is null (there is no
    random/expert reference), the raw return is logged. It used to raise KeyError at the first evaluation,
    after all the training."""
    import gymnasium as gym
    import numpy as np

    from rlx.control import iql
    from rlx.control.datasets import save_dataset

    env = gym.make("Acrobot-v1")
    o, _ = env.reset(seed=0)
    cols = {k: [] for k in ["observations", "actions", "rewards", "next_observations", "terminals", "timeouts"]}
    for _ in range(200):
        a = env.action_space.sample()
        o2, r, te, tr, _ = env.step(a)
        for k, v in zip(cols, [o, a, r, o2, te, tr]):
            cols[k].append(v)
        o = o2 if not (te or tr) else env.reset()[0]
    save_dataset({k: np.array(v) for k, v in cols.items()}, tmp_path / "acro.npz")
    out = iql.run(iql.Config(dataset=dict(env="Acrobot-v1", path=str(tmp_path / "acro.npz")),
                             train=dict(steps=4, eval_every=4, eval_episodes=1, hidden=[8])), None)
    assert -500 <= out["eval/return_mean"] <= 0 and np.isnan(out["eval/normalized_score"])


def test_grrl_reads_float64_datasets(tmp_path):
    """D4RL exports often store float64 observations; every array is cast to float32 on load."""
    import numpy as np

    from rlx.control import grrl
    from rlx.control.datasets import build_dataset, save_dataset

    d = build_dataset("Pendulum-v1", "medium-expert", 400, 0)
    d = {k: (v.astype(np.float64) if k in ("observations", "next_observations") else v) for k, v in d.items()}
    save_dataset(d, tmp_path / "pend64.npz")
    out = grrl.run(grrl.Config(dataset=dict(env="Pendulum-v1", path=str(tmp_path / "pend64.npz")), critic_steps=2,
                               train=dict(steps=2, eval_every=2, eval_episodes=1, hidden=[8])), None)
    assert np.isfinite(out["eval/normalized_score"]) and out["train/steps"] == 2
