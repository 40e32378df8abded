"""Every control recipe runs end to end through `rlx train` on a tiny budget; resume works."""

import json
from pathlib import Path

import pytest

from rlx.cli import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
TINY = {
    "pqn_cartpole.yaml": ["total_steps=2048", "eval.every_steps=1024", "eval.episodes=2", "num_steps=8"],
    "pqn_cartpole_hlgauss.yaml": ["total_steps=1024", "eval.every_steps=1024", "eval.episodes=2"],
    "dqn_cartpole.yaml": ["total_steps=600", "learning_starts=100", "train_freq=50", "gradient_steps=2",
                          "eval.every_steps=300", "eval.episodes=2", "net.hidden=[16]"],
    "iql_cartpole.yaml": ["dataset.transitions=300", "train.steps=20", "train.eval_every=10", "train.eval_episodes=2",
                          "train.hidden=[16]"],
    "riql_cartpole.yaml": ["dataset.transitions=300", "train.steps=20", "train.eval_every=10",
                           "train.eval_episodes=2", "train.hidden=[16]", "num_q=3"],
    "bc_cartpole.yaml": ["dataset.transitions=300", "train.steps=20", "train.eval_every=10", "train.eval_episodes=2",
                         "train.hidden=[16]"],
    "sqirl_cartpole.yaml": ["transitions=320", "fit_steps=10", "eval_episodes=2", "hidden=[16]"],
    "grrl_pendulum.yaml": ["dataset.transitions=400", "train.steps=20", "train.eval_every=10", "train.eval_episodes=2",
                           "train.hidden=[16]", "critic_steps=20"],
    "parl_pendulum.yaml": ["dataset.transitions=400", "train.steps=20", "train.eval_every=10", "train.eval_episodes=2",
                           "train.hidden=[16]", "bc_steps=10"],
}


@pytest.mark.parametrize("recipe", sorted(TINY))
def test_recipe_runs_from_cli(recipe, tmp_path):
    out = tmp_path / "run"
    assert main(["train", str(RECIPES / recipe), *TINY[recipe], "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    if "cartpole" in recipe:
        assert summary["eval/return_mean"] > 0
    else:  # Pendulum: -16.3 per step at worst, 0 at best, 200 steps
        assert -3300 < summary["eval/return_mean"] <= 0
    assert (out / "config.yaml").exists() and (out / "checkpoints" / "LATEST").exists()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/return_mean" in r for r in rows)


def test_pqn_resume_continues_from_checkpoint(tmp_path):
    out = tmp_path / "run"
    args = ["train", str(RECIPES / "pqn_cartpole.yaml"), "num_steps=8", "eval.episodes=2", "eval.every_steps=512",
            "checkpoint_every=1", "--out", str(out)]
    assert main([*args, "total_steps=1024"]) == 0
    assert main([*args, "total_steps=2048", "--resume"]) == 0
    steps = [json.loads(x)["step"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 2048 and steps == sorted(steps)


def test_bad_field_is_one_line_error(tmp_path, capsys):
    assert main(["train", str(RECIPES / "pqn_cartpole.yaml"), "lambda_=2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "lambda_" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x").exists()


def test_resume_without_a_checkpoint_starts_over_without_duplicate_rows(tmp_path):
    """A run killed before its first checkpoint restarts from scratch on --resume; the killed run's rows
    used to stay, so every step appeared twice."""
    out = tmp_path / "run"
    args = ["train", str(RECIPES / "pqn_cartpole.yaml"), "num_steps=8", "eval.episodes=2", "eval.every_steps=512",
            "total_steps=1024", "checkpoint_every=0", "--out", str(out)]
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 512, "train/loss": 123.0}\n{"step": 1024, "train/lo')  # killed run
    assert main([*args, "--resume"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and not any(r.get("train/loss") == 123.0 for r in rows)


def _rows_without_clock(path: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(x).items() if not k.startswith("time/")}
            for x in path.read_text().splitlines() if x.strip()]


@pytest.mark.parametrize("trainer", ["pqn", "dqn"])
def test_killed_mid_run_resumes_exactly(trainer, tmp_path, kill_on_call):
    """The checkpoint carries the environments (physics, step counters, their RNG) and the observation
    to act on next, so a killed run continues the same episodes: its metrics equal the uninterrupted
    run's. PQN steps the torch CartPole, DQN gymnasium's (attributes snapshot)."""
    from rlx.control.envs import GymVecEnv, TorchCartPole

    if trainer == "pqn":
        args = ["train", str(RECIPES / "pqn_cartpole.yaml"), "num_steps=8", "total_steps=4096", "eval.every_steps=1024",
                "eval.episodes=2", "eval.backend=torch", "checkpoint_every=2", "log_every=1"]
        env_cls, kill_at = TorchCartPole, 45  # inside the 6th of 8 updates, after the checkpoint at update 4
    else:
        args = ["train", str(RECIPES / "dqn_cartpole.yaml"), *TINY["dqn_cartpole.yaml"], "checkpoint_every=200",
                "log_every=50", "eval.backend=torch"]
        env_cls, kill_at = GymVecEnv, 350  # env step 350 of 600, after the checkpoint at 200
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(env_cls, "step", kill_at)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert (tmp_path / "b" / "checkpoints" / "LATEST").exists()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = (_rows_without_clock(tmp_path / d / "metrics.jsonl") for d in "ab")
    assert len(a) > 4 and a == b
    sa, sb = ({k: v for k, v in json.loads((tmp_path / d / "summary.json").read_text()).items()
               if not k.startswith("time/")} for d in "ab")
    assert sa == sb


def test_resuming_a_finished_run_keeps_its_clock_and_adds_no_evaluation(tmp_path):
    """The evaluation clock is in the checkpoint: a resume from the final checkpoint does not evaluate the
    last step again (a duplicate eval row), and the training seconds continue instead of restarting at 0."""
    out = tmp_path / "run"
    args = ["train", str(RECIPES / "pqn_cartpole.yaml"), "num_steps=8", "total_steps=2048", "eval.every_steps=1024",
            "eval.episodes=2", "eval.backend=torch", "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "summary.json").read_text())
    evals = [r for r in _rows_without_clock(out / "metrics.jsonl") if "eval/return_mean" in r]
    assert main([*args, "--resume"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert [r for r in _rows_without_clock(out / "metrics.jsonl") if "eval/return_mean" in r] == evals
    assert again["time/train_seconds"] >= first["time/train_seconds"] > 0
    assert again["eval/return_mean"] == first["eval/return_mean"]


@pytest.mark.parametrize("recipe", ["pqn_cartpole.yaml", "dqn_cartpole.yaml"])
def test_the_final_checkpoint_holds_the_summarys_training_seconds(recipe, tmp_path):
    """The clock stops before the final save: the summary and the last checkpoint report the same seconds, so
    a resume from that checkpoint can never report less time than the run it continues (CI once saw 0.055 s
    after a 0.065 s run: the first summary had counted its own final save)."""
    from rlx.control.common import load_torch_state

    out = tmp_path / "run"
    assert main(["train", str(RECIPES / recipe), *TINY[recipe], "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    ckpt = out / "checkpoints" / (out / "checkpoints" / "LATEST").read_text().strip()
    assert load_torch_state(ckpt)["clock"]["train_seconds"] == summary["time/train_seconds"] > 0


def test_a_run_that_reached_its_target_stays_done_on_resume(tmp_path):
    """stop_at_return reached at the first evaluation: --resume used to train on to total_steps and report
    the resumed run's steps to target."""
    out = tmp_path / "run"
    args = ["train", str(RECIPES / "pqn_cartpole.yaml"), "num_steps=8", "total_steps=8192", "eval.every_steps=1024",
            "eval.episodes=2", "eval.backend=torch", "eval.stop_at_return=1.0", "--out", str(out)]
    assert main(args) == 0
    first = json.loads((out / "summary.json").read_text())
    rows = _rows_without_clock(out / "metrics.jsonl")
    assert first["env/steps_to_target"] == 1024 and first["env/steps"] == 1024
    assert main([*args, "--resume"]) == 0
    again = json.loads((out / "summary.json").read_text())
    assert _rows_without_clock(out / "metrics.jsonl") == rows
    assert again["env/steps_to_target"] == 1024 and again["env/steps"] == 1024
