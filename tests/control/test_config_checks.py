"""Control configs that cannot work are refused at load, naming the field, instead of training wrongly or
failing deep inside a run."""

import json
from pathlib import Path

import pytest

from rlx.cli import main
from rlx.control.datasets import build_dataset, save_dataset

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


@pytest.mark.parametrize("recipe, overrides, message", [
    # inverted or empty histogram support: every target clamped to 0, or sigma 0 and a NaN loss
    ("pqn_cartpole_hlgauss.yaml", ["net.v_min=10", "net.v_max=0"], "net.v_max = 0.0 must be greater than net.v_min"),
    ("pqn_cartpole_hlgauss.yaml", ["net.v_min=5", "net.v_max=5"], "net.v_max = 5.0 must be greater"),
    # a negative width was a torch traceback, a zero width a constant network
    ("pqn_cartpole.yaml", ["net.hidden=[-8]"], "net.hidden.0"),
    ("pqn_cartpole.yaml", ["net.hidden=[64,0]"], "net.hidden.1"),
    ("iql_cartpole.yaml", ["train.hidden=[0]"], "train.hidden.0"),
    ("sqirl_cartpole.yaml", ["hidden=[0]"], "hidden.0"),
    # one update collects num_envs x num_steps env steps: 100 ran 1024
    ("pqn_cartpole.yaml", ["total_steps=100"], "total_steps = 100 is less than one update"),
    # regress() splits the rollout evenly: 1024 rows in 3 minibatches dropped one row every pass
    ("pqn_cartpole.yaml", ["minibatches=3"], "minibatches = 3 must divide env.num_envs x num_steps = 1024"),
    # DQN that would never take a gradient step reported an evaluation of its random policy
    ("dqn_cartpole.yaml", ["total_steps=500", "learning_starts=1000"], "no gradient step would run"),
    ("dqn_cartpole.yaml", ["total_steps=500", "learning_starts=0", "train_freq=600"], "no gradient step would run"),
    # the torch back-end is CartPole only: this failed at the first evaluation, naming env.backend
    ("pqn_cartpole.yaml", ["env.id=Acrobot-v1", "env.backend=gymnasium", "eval.backend=torch"],
     "eval.backend = 'torch': only CartPole-v1"),
    ("dqn_cartpole.yaml", ["env.id=Acrobot-v1", "eval.backend=torch"], "eval.backend = 'torch'"),
    ("srl_cartpole.yaml", ["total_steps=100"], "total_steps = 100 is less than one update's 1024 frames"),
    ("qweb_form.yaml", ["total_steps=400", "learning_starts=500"], "learning_starts = 500 >= total_steps = 400"),
    ("parl_pendulum.yaml", ["samples=2", "top_k=8"], "top_k = 8 > samples = 2"),
    # ACT always trained on torch CartPole whatever env.id said
    ("act_cartpole.yaml", ["env.id=Acrobot-v1"], "env.id = 'Acrobot-v1': act supports CartPole-v1"),
])
def test_refused_at_load(recipe, overrides, message, tmp_path, capsys):
    assert main(["train", str(RECIPES / recipe), *overrides, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and "config error: config error" not in err
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_the_smallest_dqn_that_trains_is_accepted(tmp_path):
    """The boundary of the check above: the one training phase at iteration train_freq, past learning_starts."""
    args = ["train", str(RECIPES / "dqn_cartpole.yaml"), "total_steps=200", "learning_starts=99", "train_freq=100",
            "gradient_steps=1", "eval.every_steps=200", "eval.episodes=1", "net.hidden=[8]", "log_every=1",
            "--out", str(tmp_path / "run")]
    assert main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in r for r in rows)


def test_a_dataset_of_another_env_is_a_config_error(tmp_path, capsys):
    """A Pendulum dataset with the CartPole IQL recipe ended in a matmul shape error deep in the update."""
    path = tmp_path / "pendulum.npz"
    save_dataset(build_dataset("Pendulum-v1", "medium", 300, 0), path)
    args = ["train", str(RECIPES / "iql_cartpole.yaml"), f"dataset.path={path}", "train.steps=20",
            "train.eval_episodes=1", "train.hidden=[16]", "--out", str(tmp_path / "run")]
    assert main(args) == 2
    assert "holds Pendulum-v1 transitions, but dataset.env = 'CartPole-v1'" in capsys.readouterr().err
    assert main([*args[:-1], str(tmp_path / "ok"), "dataset.env=Pendulum-v1", "train.eval_every=20"]) == 0


@pytest.mark.parametrize("recipe", ["iql_cartpole.yaml", "bc_cartpole.yaml"])
def test_resuming_a_finished_offline_run_keeps_its_evaluation(recipe, tmp_path):
    """The loop is empty when resuming from the final checkpoint: summary.json lost every eval/* value."""
    args = ["train", str(RECIPES / recipe), "dataset.transitions=300", "train.steps=20", "train.eval_every=10",
            "train.eval_episodes=2", "train.hidden=[16]", "--out", str(tmp_path / "run")]
    assert main(args) == 0
    first = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert main([*args, "--resume"]) == 0
    again = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "eval/return_mean" in first and again == first
