"""Task mixtures and RECAP reweighting (paper recap): weights by hand, dispatch, observer state, resume."""

import math

import pytest
import torch
from pydantic import ValidationError

from rlx.cli import main
from rlx.rundir import read_metrics
from rlx.tasks import MixtureConfig, make_task
from rlx.tasks.mixture import MixtureTask, recap_weights

TWO = [{"name": "arithmetic", "operators": "*"}, {"name": "arithmetic", "operators": "+-"}]


def test_recap_weights_by_hand():
    # task 0 saturated (1, 1: score 0), task 1 failing and volatile (0, 1 -> mean 0.5, std 0.5: score 1)
    w = recap_weights([[1.0, 0.0], [1.0, 1.0]], temperature=1.0, floor=0.0)
    e = math.exp(1.0)
    torch.testing.assert_close(w, torch.tensor([1 / (1 + e), e / (1 + e)]))
    # the floor mixes in a uniform share; a task without samples scores neutrally (0.5)
    w = recap_weights([[None, 0.5]], temperature=1.0, floor=0.5)
    torch.testing.assert_close(w, torch.tensor([0.5, 0.5]))
    w = recap_weights([[1.0, 0.0]], temperature=0.1, floor=0.2)
    assert w[1] > 0.89 and w[0] >= 0.1 - 1e-6


def test_mixture_draws_by_weight_and_dispatches():
    task = make_task(MixtureConfig(tasks=TWO, weights=[3, 1]))
    problems = task.train_problems(400, seed=0)
    share = sum(p.meta["mixture_task"] == 0 for p in problems) / 400
    assert 0.68 < share < 0.82
    for p in problems[:20]:
        ops = "*" if p.meta["mixture_task"] == 0 else "+-"
        assert any(o in p.question for o in ops)
        assert task.score(p.answer, p).correct and task.prompt(p).endswith("=")
    assert all(p.meta["mixture_task"] == 0 and "*" in p.question for p in task.heldout(10))
    assert task.train_problems(16, seed=5) == task.train_problems(16, seed=5)


def test_observe_end_step_and_state_roundtrip():
    task = make_task(MixtureConfig(tasks=TWO, reweight="recap", temperature=1.0, floor=0.0, window=2))
    p0, p1 = task.train_problems(64, seed=1)[0], task.train_problems(64, seed=1)[-1]
    assert p0.meta["mixture_task"] == 0 and p1.meta["mixture_task"] == 1
    task.observe([(p0, 8, 8), (p1, 0, 8)])
    m = task.end_step(1)
    assert m["mixture/accuracy_0"] == 1.0 and m["mixture/accuracy_1"] == 0.0
    torch.testing.assert_close(task.weights, recap_weights([[1.0, 0.0]], 1.0, 0.0))
    assert task.weights[1] > task.weights[0]  # the failing task gets the larger share
    other = make_task(MixtureConfig(tasks=TWO, reweight="recap", temperature=1.0, floor=0.0, window=2))
    other.load_state_dict(task.state_dict())
    assert torch.equal(other.weights, task.weights) and other.history == task.history
    fixed = make_task(MixtureConfig(tasks=TWO))
    fixed.observe([(p0, 8, 8)])
    fixed.end_step(1)
    assert fixed.weights.tolist() == [0.5, 0.5]


def test_bad_mixtures_are_rejected():
    with pytest.raises(ValidationError, match="weights"):
        MixtureConfig(tasks=TWO, weights=[1.0])
    with pytest.raises(ValidationError):
        MixtureConfig(tasks=TWO[:1])


def test_every_task_holds_out_the_targets_problems():
    """Two tasks over the same problems (1-digit arithmetic) with different held-out fractions: task 1 used to
    train on task 0's held-out problems (25 of heldout(50) among 400 draws). Now a config error; with equal
    fractions (also an ssl task's source) no training draw of any task is held out by the target."""
    one = {"name": "arithmetic", "min_digits": 1, "max_digits": 1}
    with pytest.raises(ValidationError, match=r"tasks\[1\]\.heldout_fraction = 0.05, but the target"):
        MixtureConfig(tasks=[{**one, "heldout_fraction": 0.3}, {**one, "heldout_fraction": 0.05}])
    with pytest.raises(ValidationError, match=r"tasks\[1\]\.source\.heldout_fraction = 0.1"):
        MixtureConfig(tasks=[{**one, "heldout_fraction": 0.2}, {"name": "ssl"}])
    task = make_task(MixtureConfig(tasks=[{**one, "heldout_fraction": 0.3}, {**one, "heldout_fraction": 0.3}]))
    held = {p.question for p in task.heldout(10_000, allow_fewer=True)}
    assert len(held) > 10 and not held & {p.question for p in task.train_problems(400, seed=0)}


def test_a_dataset_target_keeps_its_own_allow_fewer():
    """MixtureTask.heldout used to force allow_fewer=False, so a math target (6 held-out problems in the
    shipped sample) failed `heldout(200)` inside a mixture while it gives its 6 alone."""
    task = make_task(MixtureConfig(tasks=[{"name": "math"}, {"name": "arithmetic"}]))
    alone = make_task(MixtureConfig(tasks=[{"name": "math"}, {"name": "arithmetic"}]).tasks[0])
    assert [p.id for p in task.heldout(200)] == [p.id for p in alone.heldout(200)] and len(alone.heldout(200)) < 200


def test_recap_run_resumes_exactly(tmp_path, kill_on_call, base_model_dir):
    args = ["recipes/arith_recap.yaml", f"model.path={base_model_dir}", "train.steps=4", "train.checkpoint_every=2",
            "eval.n=8", "eval.every=0", "rollout.prompts_per_step=4", "rollout.group_size=4", "task.window=3"]
    assert main(["train", *args, "--out", str(tmp_path / "a")]) == 0
    restore = kill_on_call(MixtureTask, "train_problems", 3)
    assert main(["train", *args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main(["train", *args, "--out", str(tmp_path / "b"), "--resume"]) == 0

    def rows(p):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(p / "metrics.jsonl")]

    a = rows(tmp_path / "a")
    assert a == rows(tmp_path / "b")
    weights = [r["mixture/weight_0"] for r in a if "mixture/weight_0" in r]
    assert len(weights) == 4 and len(set(weights)) > 1  # the shares moved
